"""Benchmark of the learning stage: its marginal time per epoch against a plain ``model.fit(batch_size=16)``, and peak RSS.

    python bench/learning.py [--train 1600] [--validation 700] [--epochs 14] [--with-progress]
                             [--store-clips 139620] [--store-steps 100] [--store-validation 2000]

Throughput: the baseline CNN (task1a.yaml defaults, batch size 16) trained by
:func:`utils.learning.train_model` (its defaults: one fit over all epochs, ``steps_per_execution``,
validation in larger batches, checkpoint, CSV log, epoch log line) and by a plain ``model.fit`` with
default compile settings on the same in-memory arrays (same network, optimizer, smoothed targets,
shuffling, validation data at batch size 16), alternating epoch by epoch in one process so that both
see the same load on a shared machine. A stage epoch includes everything the stage does between
epochs (validation pass, checkpoint, CSV log); the first epoch (tracing) is left out. The ratio
(target >= 1.5) is the median over the epoch pairs of plain epoch time / stage epoch time: on a shared machine a
neighbour's burst slows one epoch, and some work spills from one timed interval into the next
(their sum stays put), both of which the median of many pairs ignores. Also reported: samples/s of the best
epoch of each, the ratio of the summed times, and the ratio in CPU time of this process.

Memory: a synthetic float32 memmap store of ``--store-clips`` clips (139,620 = fold1_train, 1.14 GB = 1,087 MiB)
is written to a temporary folder; a fresh process learns from it (70 % training, all of it fed from
the memmap; ``--store-validation`` clips of validation) for ``--store-steps`` batches, then reads every
training example once through the stage's feed (as a full epoch would). Reported: that process's
peak RSS (VmHWM, which counts the memmap's file pages it touched), and its peak anonymous memory.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from process_memory import memory_status  # noqa: E402  (bench/ is on sys.path when run as a script)

N_MELS, N_FRAMES, CLASS_COUNT = 40, 51, 10


def baseline_parameters(epochs: int) -> dict:
    from utils.parameters import DEFAULT_PARAMETER_FILE, load_yaml

    parameters = copy.deepcopy(load_yaml(DEFAULT_PARAMETER_FILE)["defaults"]["learner_method_parameters"]["cnn"])
    parameters["fit"]["epochs"] = epochs
    parameters["model_selection"]["initial_delay"] = 0
    return parameters


def toy_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASS_COUNT, n)
    X = rng.uniform(-1, 1, (n, N_MELS, N_FRAMES)).astype(np.float32)
    X[np.arange(n), y * 4] += 1.0  # a little signal so that the loss moves
    return X, y


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def clocks() -> np.ndarray:
    """(wall-clock seconds, CPU seconds of this process, all threads)."""
    return np.array([time.perf_counter(), time.process_time()])


def compiled_bare_model(parameters):
    from utils.learning import build_loss, build_optimizer
    from utils.model import build_model

    model = build_model(parameters["model"])
    model.compile(  # default compile settings otherwise (steps_per_execution 1)
        optimizer=build_optimizer(parameters["optimizer"]),
        loss=build_loss(parameters["compile"]["loss"]),
        metrics=parameters["compile"]["metrics"],
    )
    return model


def interleaved_run(parameters, X, y, X_val, y_val, work: Path, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """(stage, bare) (wall, CPU) seconds of epochs 2..E-1, the two alternating epoch by epoch.

    After each epoch of the stage, an epoch of the bare ``model.fit`` runs inside the stage's
    callback; a stage epoch is the interval between the starts of its consecutive epochs less the
    bare epoch inside it, so it counts everything the stage does between epochs (dataset, fit call,
    checkpoint, CSV log). Alternating every few seconds, both see the same neighbours on a shared
    machine. The first epoch of each (tracing) and the stage's last (no next start) are left out.
    """
    import keras

    from utils.learning import smooth_labels, train_model
    from utils.model import set_seeds

    set_seeds(0)
    bare = compiled_bare_model(parameters)
    targets = smooth_labels(y, CLASS_COUNT, parameters["fit"]["label_smoothing"])
    validation = (X_val[..., None], smooth_labels(y_val, CLASS_COUNT, 0.0))
    starts, bare_seconds = [], []

    class BareEpochAfterEachStageEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            starts.append(clocks())

        def on_epoch_end(self, epoch, logs=None):
            begun = clocks()
            bare.fit(X[..., None], targets, batch_size=parameters["fit"]["batch_size"], epochs=1, shuffle=True, validation_data=validation, verbose=0)
            bare_seconds.append(clocks() - begun)

    import utils.learning as learning

    writes = []  # wall seconds of each checkpoint + CSV log write (fsynced), to see disk stalls
    original_save, original_log = learning.save_checkpoint, learning._write_training_log

    def timed(function):
        def wrapper(*args, **kwargs):
            begun = time.perf_counter()
            function(*args, **kwargs)
            writes.append(time.perf_counter() - begun)

        return wrapper

    learning.save_checkpoint, learning._write_training_log = timed(original_save), timed(original_log)
    try:
        train_model(parameters, X, y, X_val, y_val, work, seed=0, progress=progress, callbacks=[BareEpochAfterEachStageEpoch()])
    finally:
        learning.save_checkpoint, learning._write_training_log = original_save, original_log
    print(f"  checkpoint + log writes: median {np.median(writes) * 1e3:.0f} ms, max {max(writes) * 1e3:.0f} ms", flush=True)
    stage_seconds = np.diff(np.array(starts), axis=0) - np.array(bare_seconds[:-1])
    return stage_seconds[1:], np.array(bare_seconds[1:-1])


def throughput(args) -> dict:
    parameters = baseline_parameters(args.epochs)
    X, y = toy_data(args.train, seed=0)
    X_val, y_val = toy_data(args.validation, seed=1)
    with tempfile.TemporaryDirectory() as work:
        stage, bare = interleaved_run(parameters, X, y, X_val, y_val, Path(work) / "stage", progress=False)
        for epoch, (stage_epoch, bare_epoch) in enumerate(zip(stage, bare), start=2):
            print(
                f"  epoch {epoch}: bare fit {args.train / bare_epoch[0]:.1f} samples/s ({args.train / bare_epoch[1]:.1f} per CPU s), "
                f"stage {args.train / stage_epoch[0]:.1f} samples/s ({args.train / stage_epoch[1]:.1f} per CPU s)",
                flush=True,
            )
        # Samples/s of each one's best epoch; the ratio is the median over epoch pairs (see the docstring).
        result = {
            "bare_fit_samples_per_s": args.train / bare[:, 0].min(),
            "stage_samples_per_s": args.train / stage[:, 0].min(),
            "bare_fit_samples_per_cpu_s": args.train / bare[:, 1].min(),
            "stage_samples_per_cpu_s": args.train / stage[:, 1].min(),
        }
        result["ratio"] = float(np.median(bare[:, 0] / stage[:, 0]))
        result["mean_ratio"] = float(bare[:, 0].sum() / stage[:, 0].sum())
        result["cpu_ratio"] = result["stage_samples_per_cpu_s"] / result["bare_fit_samples_per_cpu_s"]
        # The official recipe: 200 epochs over the real split (97,036 training and 42,584 validation
        # clips, the same 0.44 validation share as the defaults here), at the stage's median epoch time.
        result["projected_full_training_hours"] = float(200 * (97_036 / args.train) * np.median(stage[:, 0]) / 3600)
        if args.with_progress:
            stage_progress, bare_progress = interleaved_run(parameters, X, y, X_val, y_val, Path(work) / "progress", progress=True)
            result["ratio_with_progress_bar"] = float(np.median(bare_progress[:, 0] / stage_progress[:, 0]))
    return result


def write_store(path: Path, n_clips: int, seed: int = 0) -> None:
    """A float32 (n_clips, 40, 51) .npy memmap of uniform noise in [-1, 1], written in chunks."""
    rng = np.random.default_rng(seed)
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_clips, N_MELS, N_FRAMES))
    chunk = 8192
    for start in range(0, n_clips, chunk):
        stop = min(start + chunk, n_clips)
        store[start:stop] = rng.uniform(-1, 1, (stop - start, N_MELS, N_FRAMES)).astype(np.float32)
    store.flush()
    del store


def memory_child(store_path: str, steps: int, validation: int, work: str) -> None:
    """In a fresh process: learn from the memmap store for ``steps`` batches, then read a full epoch."""
    import keras

    from utils.learning import EpochFeed, smooth_labels, train_model

    X = np.load(store_path, mmap_mode="r")
    n_train = int(round(0.7 * len(X)))
    X_train, X_val = X[:n_train], X[n_train : n_train + validation]
    rng = np.random.default_rng(0)
    y_train, y_val = rng.integers(0, CLASS_COUNT, n_train), rng.integers(0, CLASS_COUNT, len(X_val))
    peak = {"RssAnon": 0.0, "RssFile": 0.0}

    class StopAfter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            status = memory_status()
            for key in peak:
                peak[key] = max(peak[key], status[key])
            if batch + 1 >= steps:
                self.model.stop_training = True

    started = time.perf_counter()
    train_model(baseline_parameters(1), X_train, y_train, X_val, y_val, work, seed=0, progress=False, callbacks=[StopAfter()])
    training_seconds = time.perf_counter() - started
    after_training = memory_status()
    # A full epoch's reads through the stage's feed (no training): every training page is touched.
    started = time.perf_counter()
    for _ in EpochFeed(X_train, smooth_labels(y_train, CLASS_COUNT, 0.1), 16, seed=0, shuffle=True).batches(0):
        pass
    feed_seconds = time.perf_counter() - started
    final = memory_status()
    print(json.dumps({
        "store_clips": len(X),
        "store_mb": os.path.getsize(store_path) / 2**20,
        "training_clips": n_train,
        "steps": steps,
        "stage_seconds": training_seconds,
        "peak_rss_after_training_mb": after_training["VmHWM"],
        "peak_anon_during_training_mb": peak["RssAnon"],
        "full_epoch_feed_seconds": feed_seconds,
        "peak_rss_mb": final["VmHWM"],
        "anon_after_feed_mb": final["RssAnon"],
        "file_backed_after_feed_mb": final["RssFile"],
    }))


def memory(args) -> dict:
    with tempfile.TemporaryDirectory() as work:
        store_path = Path(work) / "features.npy"
        started = time.perf_counter()
        write_store(store_path, args.store_clips)
        print(f"  wrote a {args.store_clips}-clip store in {time.perf_counter() - started:.0f} s", flush=True)
        completed = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(store_path), "--store-steps", str(args.store_steps),
             "--store-validation", str(args.store_validation), "--work", str(Path(work) / "model")],
            capture_output=True, text=True, check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"memory child failed:\n{completed.stderr[-3000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1600, help="training examples for the throughput run")
    parser.add_argument("--validation", type=int, default=700, help="validation examples for the throughput run (the real split: 0.43 x training)")
    parser.add_argument("--epochs", type=int, default=14, help="epochs of the interleaved run (epochs 2..E-1 are timed)")
    parser.add_argument("--with-progress", action="store_true", help="also time the stage with its progress bar")
    parser.add_argument("--store-clips", type=int, default=139620, help="clips in the synthetic memmap store")
    parser.add_argument("--store-steps", type=int, default=100, help="training batches taken from the store")
    parser.add_argument("--store-validation", type=int, default=2000, help="validation clips taken from the store")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.store_steps, args.store_validation, args.work)
        return
    print(f"learning benchmark: {cpu_model()}, {os.cpu_count()} CPU cores, baseline CNN, batch size 16", flush=True)
    if not args.skip_throughput:
        result = throughput(args)
        print(f"throughput ({args.train} training + {args.validation} validation examples, epochs 2..{args.epochs - 1}):")
        for key, value in result.items():
            print(f"  {key}: {value:.3f}")
        print(f"  ratio >= 1.5: {'PASS' if result['ratio'] >= 1.5 else 'FAIL'}")
    if not args.skip_memory:
        result = memory(args)
        print(f"memory (synthetic store of {result['store_clips']} clips, {result['store_mb']:.0f} MB float32 memmap):")
        for key, value in result.items():
            print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")
        print(f"  peak RSS <= 3 GB: {'PASS' if result['peak_rss_mb'] <= 3 * 1024 else 'FAIL'}")


if __name__ == "__main__":
    main()
