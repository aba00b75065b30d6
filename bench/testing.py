"""Testing-stage throughput against the bare TFLite interpreter at the same thread count, measured in the same run.

    python bench/testing.py [--clips 4000] [--rounds 5] [--model M.tflite] [--threads N] [--batch-size B]
    python bench/testing.py --compare-forms [--clips 2000] [--rounds 3]

The stage is :func:`utils.testing.predict_store` exactly as the testing stage calls it, with the
default settings of task1a.yaml (``recognizer.batch_size`` 256, ``recognizer.num_threads`` -1 = all
cores): row lookup, ``FeatureStore.read`` (memmap), the max_abs_int16 normaliser,
:class:`utils.tflite.TFLiteClassifier` (int8 quantisation for int8 io), clip averaging. The store
(``--clips`` synthetic float32 clips, keys from the official meta.csv) is written to a temporary folder
by ``bench/scale.py``'s writer and read in the random order of a test list.

The bare interpreter is a LiteRT ``Interpreter`` with the same model, thread count and batch size
running ``set_tensor`` + ``invoke`` + ``get_tensor`` over the same clips, already normalised and
quantised in memory: the ceiling of the stage. The two alternate for ``--rounds`` rounds and the
median of the per-round ratios (stage / interpreter) is reported; another process's load changes both
sides of a round alike. Then the same with one thread, a CPU-time breakdown, and the interpreter
without XNNPACK (the built-in kernels) for comparison.

``--compare-forms`` measures the shipped network (task1a.yaml's default set, untrained: the speed
depends on the graph, not the weights) exported two ways instead of ``--model``: the official graph form
the learning stage writes (a batch of one that the interpreter resizes to each batch) and the
converter's own form (a dynamic batch, ``official_form=False``), the same rounds for each
(docs/tflite.md). It needs TensorFlow for the two conversions.
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


def bare_rate(model: Path, batches: list, threads: int, xnnpack: bool = True) -> tuple[float, float]:
    """(clips per wall second, clips per CPU second) of a bare interpreter over prepared input batches."""
    from utils.tflite import _interpreter_class

    options = {"num_threads": threads}
    if not xnnpack:
        from ai_edge_litert.interpreter import OpResolverType

        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = _interpreter_class()(model_path=str(model), **options)
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]
    allocated = None

    def run():
        nonlocal allocated
        for batch in batches:
            if batch.shape[0] != allocated:
                interpreter.resize_tensor_input(index, list(batch.shape))
                interpreter.allocate_tensors()
                allocated = batch.shape[0]
            interpreter.set_tensor(index, batch)
            interpreter.invoke()
            interpreter.get_tensor(output)

    run()  # first calls allocate
    _, wall, cpu = clocked(run)
    n = sum(len(batch) for batch in batches)
    return n / wall, n / cpu


def export_forms(folder: Path) -> dict:
    """``{form: path}``: the default set's untrained network converted (float io) in the official graph form and in the converter's own form."""
    from utils.complexity import untrained_network
    from utils.parameters import ParameterContainer
    from utils.settings import build_settings
    from utils.tflite import convert_to_tflite

    settings = build_settings(ParameterContainer().resolve())  # the active set (the shipped defaults: the 2023 baseline)
    network, calibration = untrained_network(settings.features, settings.learner.model)
    forms = {"official graph form (batch one, resized by the interpreter)": True, "converter's own form (dynamic batch)": False}
    paths = {}
    for number, (form, official) in enumerate(forms.items()):
        paths[form] = folder / f"form_{number}.tflite"
        paths[form].write_bytes(convert_to_tflite(network, calibration, official_form=official))
    return paths


def compare_forms(paths: dict, store, test_keys: list, batch_size: int, thread_counts: list, rounds: int) -> None:
    """The testing stage over the same clips with each form's model, the forms alternating within each round (a
    load change hits both alike); medians of the rates and of the per-round ratio first form / second form."""
    import statistics

    from utils.features import normalize_max_abs_int16
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    for thread_count in thread_counts:
        classifiers = {form: TFLiteClassifier(path, batch_size=batch_size, num_threads=thread_count) for form, path in paths.items()}
        rates = {form: [] for form in paths}
        for round_number in range(rounds + 1):  # round 0 warms up (allocations)
            for form, classifier in classifiers.items():
                _, wall, _ = clocked(predict_store, classifier, store, test_keys, normalize_max_abs_int16, batch_size=batch_size, progress=False)
                if round_number:
                    rates[form].append(len(test_keys) / wall)
        first, second = rates.values()
        print(f"{thread_count} interpreter thread(s), testing stage:")
        for form, values in rates.items():
            print(f"  {form}: {', '.join(f'{r:.0f}' for r in values)} clips/s, median {statistics.median(values):,.0f}")
        print(f"  median ratio (first / second): {statistics.median(a / b for a, b in zip(first, second)):.3f}")


def main() -> None:
    import statistics

    import yaml

    defaults = yaml.safe_load((BENCH_DIR.parent / "task1a.yaml").read_text())["defaults"]["recognizer"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4000, help="clips in the store and in the test list")
    parser.add_argument("--rounds", type=int, default=5, help="alternating stage / interpreter rounds (medians are reported)")
    parser.add_argument("--model", type=Path, default=OFFICIAL_MODEL, help="TFLite model (default: the official baseline)")
    parser.add_argument("--meta", type=Path, default=DEFAULT_META)
    parser.add_argument("--threads", type=int, default=defaults["num_threads"],
                        help="interpreter threads (recognizer.num_threads; default from task1a.yaml, -1 = all cores)")
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"], help="recognizer.batch_size (default from task1a.yaml)")
    parser.add_argument("--compare-forms", action="store_true",
                        help="the shipped network's official-form export against the converter's own form, instead of --model")
    args = parser.parse_args()
    if not args.compare_forms and not args.model.is_file():
        raise SystemExit(f"error: TFLite model {args.model} not found; give one with --model")

    from utils.feature_store import FeatureStore
    from utils.features import normalize_max_abs_int16
    from utils.settings import worker_count
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    threads = worker_count(args.threads)
    work = Path(tempfile.mkdtemp(prefix="task1a_bench_testing_"))
    try:
        keys = development_items(args.meta, args.clips)["filename"].tolist()
        grow_store(work / "store", keys, 0, len(keys), store_manifest(keys[:1])["row_shape"])
        store = FeatureStore(work / "store")
        test_keys = list(np.random.default_rng(0).permutation(keys))  # a test list's order, not the store's
        n = len(test_keys)
        rows = store.rows_of(test_keys)
        print(f"{n:,} clips, model {'the shipped network, two forms' if args.compare_forms else args.model.name}, batch size {args.batch_size}; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
              f"(another process's load takes CPU from both sides of a round)\n")

        def compare(thread_count: int):
            classifier = TFLiteClassifier(args.model, batch_size=args.batch_size, num_threads=thread_count)
            prepared = [classifier.prepare_input(normalize_max_abs_int16(store.read(rows[i : i + args.batch_size]))) for i in range(0, n, args.batch_size)]
            predict_store(classifier, store, test_keys, normalize_max_abs_int16, batch_size=args.batch_size, progress=False)  # warm-up
            stage, bare, ratios = [], [], []
            for _ in range(args.rounds):
                _, wall, _ = clocked(predict_store, classifier, store, test_keys, normalize_max_abs_int16, batch_size=args.batch_size, progress=False)
                stage.append(n / wall)
                bare.append(bare_rate(args.model, prepared, thread_count)[0])
                ratios.append(stage[-1] / bare[-1])
            print(f"{thread_count} interpreter thread(s): stage {', '.join(f'{r:.0f}' for r in stage)} clips/s; "
                  f"bare interpreter {', '.join(f'{r:.0f}' for r in bare)} clips/s")
            print(f"  median: stage {statistics.median(stage):,.0f} clips/s, interpreter {statistics.median(bare):,.0f} clips/s, "
                  f"stage / interpreter {statistics.median(ratios):.3f}")
            return prepared

        if args.compare_forms:
            compare_forms(export_forms(work), store, test_keys, args.batch_size, sorted({threads, 1}), args.rounds)
            return
        print(f"default settings (recognizer.num_threads {args.threads} = {threads} thread(s)):")
        prepared = compare(threads)
        if threads != 1:
            compare(1)

        print("\nCPU time per clip, one thread, step by step (batch %d)" % args.batch_size)
        raw, _, read_cpu = clocked(lambda: [store.read(rows[i : i + args.batch_size]) for i in range(0, n, args.batch_size)])
        normalised, _, norm_cpu = clocked(lambda: [normalize_max_abs_int16(block) for block in raw])
        classifier = TFLiteClassifier(args.model, batch_size=args.batch_size, num_threads=1)
        _, _, prepare_cpu = clocked(lambda: [classifier.prepare_input(block) for block in normalised])
        _, _, predict_cpu = clocked(lambda: [classifier.predict_prepared(batch) for batch in prepared])
        total = read_cpu + norm_cpu + prepare_cpu + predict_cpu
        for name, cpu in (("store read", read_cpu), ("max_abs_int16", norm_cpu), ("prepare_input", prepare_cpu), ("TFLite predict_prepared", predict_cpu)):
            print(f"  {name:<24} {1e3 * cpu / n:7.4f} ms   {100 * cpu / total:5.1f} %")
        print("\nbare interpreter, XNNPACK (LiteRT's default) against the built-in kernels")
        for thread_count in sorted({1, threads}):
            for xnnpack in (True, False):
                wall_rate, cpu_rate = bare_rate(args.model, prepared, thread_count, xnnpack)
                print(f"  {thread_count} thread(s), {'XNNPACK' if xnnpack else 'built-in kernels'}: {wall_rate:7.0f} clips/s wall, {cpu_rate:7.0f} clips per "
                      "CPU-second")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
