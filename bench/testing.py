"""Testing-stage throughput: clips/s from a feature store through the official TFLite model, and what limits it.

    python bench/testing.py [--clips 4000] [--batch-sizes 1,32,256,1024] [--repeats 2] [--model M.tflite]

End to end is :func:`utils.testing.predict_store` exactly as the testing stage calls it: row lookup,
``FeatureStore.read`` (memmap), the max_abs_int16 normaliser, :class:`utils.tflite.TFLiteClassifier`
``predict_proba`` (``recognizer.batch_size`` clips per interpreter call), clip averaging. The store
(``--clips`` synthetic float32 clips, keys from the official meta.csv) is written to a temporary
folder by ``bench/scale.py``'s writer and read in the random order of a test list. Target: >= 2,000
clips/s.

Then the same clips step by step (read, normalise, ``predict_proba``), the interpreter's ``invoke``
alone with 1 and 2 threads, with and without the XNNPACK delegate, and the CPU time per clip, so that
a figure below the target says which step limits it. Wall-clock figures depend on the machine's load
(printed); CPU-seconds per clip much less so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from scale import DEFAULT_META, OFFICIAL_MODEL, development_items, grow_store, store_manifest  # noqa: E402

TARGET_CLIPS_PER_S = 2000


def clocked(function, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def invoke_rate(model: Path, batch: np.ndarray, threads: int, xnnpack: bool, repeats: int = 4) -> tuple[float, float]:
    """(clips per wall second, clips per CPU second) of ``invoke`` alone on a prepared float batch."""
    from utils.tflite import _interpreter_class

    options = {"num_threads": threads}
    if not xnnpack:
        from ai_edge_litert.interpreter import OpResolverType

        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = _interpreter_class()(model_path=str(model), **options)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()  # first call allocates

    def run():
        for _ in range(repeats):
            interpreter.set_tensor(index, batch)
            interpreter.invoke()

    _, wall, cpu = clocked(run)
    return repeats * len(batch) / wall, repeats * len(batch) / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4000, help="clips in the store and in the test list")
    parser.add_argument("--batch-sizes", default="1,32,256,1024", help="recognizer.batch_size values tried end to end")
    parser.add_argument("--repeats", type=int, default=2, help="end-to-end passes per batch size (the best is reported)")
    parser.add_argument("--model", type=Path, default=OFFICIAL_MODEL, help="TFLite model (default: the official baseline)")
    parser.add_argument("--meta", type=Path, default=DEFAULT_META)
    parser.add_argument("--threads", type=int, default=-1, help="interpreter threads (recognizer.num_threads; -1 = all cores)")
    args = parser.parse_args()
    if not args.model.is_file():
        raise SystemExit(f"error: TFLite model {args.model} not found; give one with --model")

    from utils.features import FeatureStore, normalize_max_abs_int16
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    work = Path(tempfile.mkdtemp(prefix="task1a_bench_testing_"))
    try:
        keys = development_items(args.meta, args.clips)["filename"].tolist()
        grow_store(work / "store", keys, 0, len(keys), store_manifest(keys[:1])["row_shape"])
        store = FeatureStore(work / "store")
        test_keys = list(np.random.default_rng(0).permutation(keys))  # a test list's order, not the store's
        print(f"{len(test_keys):,} clips, model {args.model.name}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              f"(another process's load takes CPU from these figures)\n")

        print("end to end (utils.testing.predict_store: read + max_abs_int16 + TFLite, as the testing stage)")
        best = {}
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            classifier = TFLiteClassifier(args.model, batch_size=batch_size, num_threads=args.threads)
            runs = [clocked(predict_store, classifier, store, test_keys, normalize_max_abs_int16, batch_size=batch_size, progress=False) for _ in range(args.repeats)]
            _, wall, cpu = min(runs, key=lambda run: run[1])
            best[batch_size] = len(test_keys) / wall
            print(f"  batch {batch_size:>5}: {len(test_keys) / wall:8.0f} clips/s   {1e3 * cpu / len(test_keys):.3f} CPU-ms per clip   (CPU/wall {cpu / wall:.2f})")

        print("\nstep by step (batch 256, CPU-ms per clip; clips per CPU-second)")
        rows = store.rows_of(test_keys)
        raw, _, read_cpu = clocked(lambda: np.concatenate([store.read(rows[i : i + 256]) for i in range(0, len(rows), 256)]))
        normalised, _, norm_cpu = clocked(lambda: np.concatenate([normalize_max_abs_int16(raw[i : i + 256]) for i in range(0, len(raw), 256)]))
        classifier = TFLiteClassifier(args.model, batch_size=256, num_threads=args.threads)
        _, _, predict_cpu = clocked(classifier.predict_proba, normalised)
        n = len(test_keys)
        for name, cpu in (("store read", read_cpu), ("max_abs_int16", norm_cpu), ("TFLite predict_proba", predict_cpu)):
            print(f"  {name:<22} {1e3 * cpu / n:7.3f} ms   {n / cpu:9.0f} clips/s   {100 * cpu / (read_cpu + norm_cpu + predict_cpu):5.1f} %")

        print("\ninterpreter invoke alone (256 clips per call)")
        batch = normalised[:256, ..., np.newaxis].astype(np.float32)
        for threads in (1, 2):
            for xnnpack in (True, False):
                wall_rate, cpu_rate = invoke_rate(args.model, batch, threads, xnnpack)
                print(f"  {threads} thread(s), {'XNNPACK' if xnnpack else 'built-in kernels'}: {wall_rate:7.0f} clips/s wall, {cpu_rate:7.0f} clips per CPU-second")

        ceiling = n / (read_cpu + norm_cpu + predict_cpu)
        verdict = "meets" if max(best.values()) >= TARGET_CLIPS_PER_S else "is below"
        print(f"\nbest end to end {max(best.values()):.0f} clips/s {verdict} the target {TARGET_CLIPS_PER_S}; CPU time per clip allows "
              f"{ceiling:.0f} clips/s per fully used core (all {os.cpu_count()} cores with perfect scaling: {ceiling * os.cpu_count():.0f}); "
              f"the interpreter takes {100 * predict_cpu / (read_cpu + norm_cpu + predict_cpu):.0f} % of the CPU time")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
