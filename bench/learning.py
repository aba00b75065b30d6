"""Benchmark of the learning stage against a plain ``model.fit``: throughput and where the stage's per-epoch time goes.

    python bench/learning.py [--train 1878] [--validation 822] [--epochs 8]
                             [--real-train 97036] [--real-validation 42584] [--real-steps 320] [--skip-real]
                             [--store-clips 139620] [--store-steps 100] [--store-validation 2000] [--skip-memory]

Throughput, at the demo size (1,878 training and 822 validation clips of 40 x 51, the demo set's
location-disjoint split) and at a real-data epoch size (97,036 training and 42,584 validation
clips, TAU 2022 fold1's split; synthetic features, no audio). The baseline CNN (task1a.yaml
defaults, batch size 16) is trained by :func:`utils.learning.train_model` (the stage: its feed,
``steps_per_execution``, validation in batches of 256, best-epoch selection, checkpoint, CSV log,
epoch log line) and by a plain ``model.fit`` with default compile settings on in-memory tensors
(same network, optimizer, smoothed targets, shuffling, and the same validation data in the same
batches of 256), alternating epoch by epoch in one process: the plain epoch runs inside the
stage's ``on_epoch_begin`` (before the stage's epoch is timed), so both see the same load on a
shared machine.

Every figure comes from Keras callbacks and timers (``time.perf_counter`` and this process' CPU
time), none from patching the stage: a :class:`Clock` callback, first in the stage's callback list,
marks each epoch's begin, its first and every training execution, the validation pass and the epoch
end; a stage epoch runs from its ``on_epoch_begin`` (after the plain epoch) to the next one (the
last to ``on_train_end``), so it counts everything the stage does between epochs. Its parts:
input pipeline set-up (epoch begin to first batch), training, validation (last training step to
the end of the validation pass, the validation iterator included), and the epoch end (every
callback's ``on_epoch_end``: selection, checkpoint, CSV log, log line). The checkpoint and the CSV
log inside the epoch end, the model save and the training-curve plot (once per run) are timed
directly on the run's own model, history and folder.

Demo size: ``--epochs`` epochs; the first (tracing) is left out, figures are medians over the
others; the ratio is the median over epoch pairs of plain epoch / stage epoch time. Real size: one
epoch of each, cut after ``--real-steps`` training steps (``stop_training``); the full validation
pass runs; the epoch is extrapolated as set-up + (all steps) x (time per step after the first
execution, which traces) + validation (after its first execution) + epoch end. The extrapolation
is printed as such.

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

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from process_memory import memory_status  # noqa: E402  (bench/ is on sys.path when run as a script)

N_MELS, N_FRAMES, CLASS_COUNT = 40, 51, 10
BATCH_SIZE = 16


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
    """``lscpu``'s model name (what the docs quote), else /proc/cpuinfo's, else the platform's."""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
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


class Clock(keras.callbacks.Callback):
    """Marks (wall, CPU) at a fit's events, epoch by epoch.

    ``before_epoch(epoch)`` runs at each epoch begin before the epoch's marks (the interleaved plain
    epoch); ``stop_after``: stop the fit after that many training steps. Each epoch's record:
    ``begin``, ``first_batch``, ``steps`` [(steps done, mark)], ``test_begin``, ``test_steps``,
    ``test_end``, ``end`` (its ``on_epoch_end``), ``next`` (the next epoch's begin or train end).
    """

    def __init__(self, batches: int, before_epoch=None, stop_after: int | None = None, between_steps=None, before_validation=None):
        super().__init__()
        self.batches, self.before_epoch, self.stop_after = batches, before_epoch, stop_after
        self.between_steps, self.before_validation = between_steps, before_validation
        self.epochs: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs:
            self.epochs[-1].setdefault("next", clocks())  # a fit of one epoch per call ends at on_train_end
        if self.before_epoch is not None:
            self.before_epoch(epoch)
        self.epochs.append({"begin": clocks(), "steps": [], "test_steps": []})

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.epochs[-1]["first_batch"] = clocks()

    def on_train_batch_end(self, batch, logs=None):
        done = min(batch + 1, self.batches)  # Keras reports the last step of each execution
        self.epochs[-1]["steps"].append((done, clocks()))
        if self.stop_after is not None and done >= self.stop_after:
            self.model.stop_training = True
        elif self.between_steps is not None:
            self.between_steps()
            self.epochs[-1].setdefault("resumed", []).append(clocks())

    def on_test_begin(self, logs=None):
        if self.before_validation is not None:
            self.before_validation()
        self.epochs[-1]["test_begin"] = clocks()

    def on_test_batch_end(self, batch, logs=None):
        self.epochs[-1]["test_steps"].append((batch + 1, clocks()))

    def on_test_end(self, logs=None):
        self.epochs[-1]["test_end"] = clocks()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[-1]["end"] = clocks()

    def on_train_end(self, logs=None):
        self.epochs[-1].setdefault("next", clocks())


def epoch_parts(record: dict) -> dict:
    """(wall, CPU) seconds of an epoch's parts: set-up, training, validation, epoch end, whole."""
    last_step = record["steps"][-1][1]
    validation_end = record.get("test_end", last_step)
    return {
        "set-up": record["first_batch"] - record["begin"],
        "training": last_step - record["first_batch"],
        "validation": validation_end - last_step,
        "epoch end": record["next"] - validation_end,
        "fixed": record["first_batch"] - record["begin"] + record["next"] - validation_end,
        "epoch": record["next"] - record["begin"],
    }


def steady_seconds(marks: list, count: int) -> np.ndarray:
    """(wall, CPU) seconds per step after the first execution (which traces), from ``(steps done, mark)`` pairs."""
    (first_done, first_mark), (last_done, last_mark) = ((min(done, count), mark) for done, mark in (marks[0], marks[-1]))
    if last_done == first_done:
        raise SystemExit("too few steps to time after the first execution; raise --real-steps")
    return (last_mark - first_mark) / (last_done - first_done) * count


def plain_epoch_runner(parameters, X, targets, validation, clock):
    """A function running one plain ``model.fit`` epoch (training + the same validation) under ``clock``; ``.calls``: each call's (wall, CPU) seconds."""
    bare = compiled_bare_model(parameters)

    def run(epoch=None):
        begun = clocks()
        bare.fit(X, targets, batch_size=BATCH_SIZE, epochs=1, shuffle=True, validation_data=validation,
                 validation_batch_size=parameters["fit"]["validation_batch_size"], verbose=0, callbacks=[clock])
        calls.append(clocks() - begun)

    calls = []
    run.calls = calls
    return run


def tensors(X, y, label_smoothing: float):
    """``X`` as (n, 40, 51, 1) and the smoothed targets as TensorFlow tensors (fit then copies nothing per call)."""
    import tensorflow as tf

    from utils.learning import smooth_labels

    return tf.convert_to_tensor(X[..., None]), tf.convert_to_tensor(smooth_labels(y, CLASS_COUNT, label_smoothing))


def direct_costs(result, work: Path, parameters: dict, repeats: int = 5) -> dict:
    """(wall, CPU) medians of what the stage writes, timed directly on the run's model, history and folder:
    the checkpoint (values read and written) and the CSV log (every epoch), the model save and the plot (once per run)."""
    from utils import callbacks as cb
    from utils import learning

    network, history = result.model, result.history  # utils.learning.TrainingResult
    optimizer = network.optimizer
    state = learning.load_checkpoint(result.checkpoint_path)[0]
    best = network.get_weights()
    metric = parameters["compile"]["metrics"][0]

    def checkpoint():
        learning.save_checkpoint(work / "timed_checkpoint.npz", *cb.checkpoint_values(network, optimizer), state, best)

    jobs = {
        "checkpoint": checkpoint,
        "CSV log": lambda: learning._write_training_log(work / "timed_log.csv", history),
        "model save (once)": lambda: network.save(work / "timed_model.keras"),
        "plot (once)": lambda: learning.plot_training_curves(work / "timed_curves.png", history, metric, result.best_epoch, 1),
    }
    costs = {}
    for name, job in jobs.items():
        times = []
        for _ in range(repeats):
            begun = clocks()
            job()
            times.append(clocks() - begun)
        costs[name] = np.median(np.array(times), axis=0)
    return costs


def show(name: str, seconds: np.ndarray, extra: str = "") -> None:
    print(f"  {name:<34} {seconds[0]:8.3f} s wall  {seconds[1]:8.3f} s CPU{extra}", flush=True)


def demo_size(args) -> dict:
    """Interleaved epochs of the stage and a plain fit at the demo size; the stage's per-epoch costs split."""
    from utils.learning import train_model
    from utils.settings import learner_from_block

    parameters = baseline_parameters(args.epochs)
    X, y = toy_data(args.train, seed=0)
    X_val, y_val = toy_data(args.validation, seed=1)
    batches = -(-args.train // BATCH_SIZE)
    plain_clock = Clock(batches)
    X_t, targets = tensors(X, y, parameters["fit"]["label_smoothing"])
    validation = tensors(X_val, y_val, 0.0)
    plain_epoch = plain_epoch_runner(parameters, X_t, targets, validation, plain_clock)
    stage_clock = Clock(batches, before_epoch=plain_epoch)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        begun = clocks()
        result = train_model(learner_from_block(parameters), X, y, X_val, y_val, work / "stage", seed=0, progress=False, callbacks=[stage_clock])
        stage_total = clocks() - begun
        plain_total = sum(plain_epoch.calls, np.zeros(2))
        costs = direct_costs(result, work, parameters)
    stage = [epoch_parts(record) for record in stage_clock.epochs[1:]]
    plain = [epoch_parts(record) for record in plain_clock.epochs[1:]]

    def median(parts, name):
        return np.median(np.array([p[name] for p in parts]), axis=0)

    print(f"demo size: {args.train} training + {args.validation} validation clips, {args.epochs} epochs (epoch 1, which traces, left out; medians of epochs "
          f"2..{args.epochs})")
    for who, parts in (("plain fit", plain), ("stage", stage)):
        print(f" {who} epoch:")
        for name in ("set-up", "training", "validation", "epoch end", "epoch"):
            show(name, median(parts, name))
    stage_epoch, plain_epoch_seconds = median(stage, "epoch"), median(plain, "epoch")
    ratios = np.array([p["epoch"] / s["epoch"] for p, s in zip(plain, stage)])
    per_epoch = {name: costs[name] for name in ("checkpoint", "CSV log")}
    fixed = median(stage, "fixed")
    print(" the stage's fixed cost per epoch (beyond its training steps and validation pass):")
    show("input pipeline set-up", median(stage, "set-up"))
    for name, seconds in per_epoch.items():
        show(f"{name} (timed directly)", seconds)
    show("other callbacks and Keras", median(stage, "epoch end") - sum(per_epoch.values()))
    show("total", fixed)
    for who, parts in (("stage", stage), ("plain fit", plain)):
        each = ", ".join(f"{part['fixed'][0]:.2f}" for part in parts)
        print(f"  {who}, set-up + epoch end of each epoch (wall s): {each}")
    show("validation pass (stage)", median(stage, "validation"), f"   (plain fit's: {median(plain, 'validation')[0]:.3f} s wall)")
    show("input pipeline per step (stage - plain)", median(stage, "training") - median(plain, "training"), "   (training steps, feed included)")
    print(" once per run:")
    for name in ("model save (once)", "plot (once)"):
        show(name, costs[name])
    show("whole stage run", stage_total - plain_total, "   (the plain fit calls taken out)")
    figures = {
        "plain_fit_samples_per_s": args.train / plain_epoch_seconds[0],
        "plain_fit_training_only_samples_per_s": args.train / median(plain, "training")[0],
        "stage_samples_per_s": args.train / stage_epoch[0],
        "stage_training_samples_per_s": args.train / median(stage, "training")[0],
        "stage_fixed_cost_per_epoch_s": float(fixed[0]),
        "ratio": float(np.median(ratios)),
        "cpu_ratio": float(median(plain, "epoch")[1] / stage_epoch[1]),
    }
    return figures


def real_size(args) -> dict:
    """One stage epoch at the real fold's size, cut after ``--real-steps`` steps, with a plain fit interleaved
    execution by execution (32 plain steps after each stage execution, a plain validation pass before the
    stage's); the whole epoch of each extrapolated."""
    from utils.learning import train_model
    from utils.settings import learner_from_block

    parameters = baseline_parameters(1)
    began = time.perf_counter()
    X, y = toy_data(args.real_train, seed=0)
    X_val, y_val = toy_data(args.real_validation, seed=1)
    print(f"real size: {args.real_train} training + {args.real_validation} validation clips made in {time.perf_counter() - began:.0f} s", flush=True)
    batches = -(-args.real_train // BATCH_SIZE)
    validation_batch_size = parameters["fit"]["validation_batch_size"]
    validation_batches = -(-args.real_validation // validation_batch_size)
    chunk = parameters["fit"]["steps_per_execution"]
    X_t, targets = tensors(X, y, parameters["fit"]["label_smoothing"])
    X_val_t, val_targets = tensors(X_val, y_val, 0.0)
    bare, plain_clock, plain_validation = compiled_bare_model(parameters), Clock(chunk), []
    bare.evaluate(X_val_t[:validation_batch_size], val_targets[:validation_batch_size], batch_size=validation_batch_size,
                  verbose=0)  # traced before it is timed

    def plain_steps():
        bare.fit(X_t, targets, batch_size=BATCH_SIZE, epochs=1, steps_per_epoch=chunk, shuffle=True, verbose=0, callbacks=[plain_clock])

    def plain_validation_pass():
        begun = clocks()
        bare.evaluate(X_val_t, val_targets, batch_size=validation_batch_size, verbose=0)
        plain_validation.append(clocks() - begun)

    stage_clock = Clock(batches, stop_after=args.real_steps, between_steps=plain_steps, before_validation=plain_validation_pass)
    with tempfile.TemporaryDirectory() as work:
        train_model(learner_from_block(parameters), X, y, X_val, y_val, Path(work) / "stage", seed=0, progress=False, callbacks=[stage_clock])
    record = stage_clock.epochs[0]
    # Stage execution k runs from the end of the plain steps after execution k-1 to its own end; the
    # first of each (tracing) is left out.
    ends, resumed = record["steps"], record["resumed"]
    stage_steps = [(ends[k][0] - ends[k - 1][0], ends[k][1] - resumed[k - 1]) for k in range(1, len(ends))]
    plain_runs = [(chunk, c["steps"][-1][1] - c["first_batch"]) for c in plain_clock.epochs[1:]]
    pairs = min(len(stage_steps), len(plain_runs))
    if pairs < 2:
        raise SystemExit("too few executions to time; raise --real-steps")
    stage_step = sum(seconds for _, seconds in stage_steps[:pairs]) / sum(steps for steps, _ in stage_steps[:pairs])
    plain_step = sum(seconds for _, seconds in plain_runs[:pairs]) / sum(steps for steps, _ in plain_runs[:pairs])
    step_ratios = [(p / ps) / (s / ss) for (ps, p), (ss, s) in zip(plain_runs[:pairs], stage_steps[:pairs])]
    plain_set_up = np.median(np.array([c["first_batch"] - c["begin"] for c in plain_clock.epochs[1:]]), axis=0)
    plain_end = np.median(np.array([c["next"] - c["steps"][-1][1] for c in plain_clock.epochs[1:]]), axis=0)
    parts = {
        "plain fit": {"set-up": plain_set_up, f"training ({batches} steps)": plain_step * batches, "validation": plain_validation[0], "epoch end": plain_end},
        "stage": {"set-up": record["first_batch"] - record["begin"], f"training ({batches} steps)": stage_step * batches,
                  "validation": steady_seconds(record["test_steps"], validation_batches), "epoch end": record["next"] - record["test_end"]},
    }
    print(f" one stage epoch cut after {args.real_steps} of {batches} training steps, {chunk} plain steps after each of its executions ({pairs} pairs after "
          "the first);")
    print(f" the full validation pass of each ({validation_batches} batches of {validation_batch_size}; the stage's first execution, which traces, left out)")
    print(" extrapolated epoch = set-up + all steps x time per step + validation + epoch end:")
    epochs = {}
    for who, figures in parts.items():
        print(f" {who}:")
        for name, seconds in figures.items():
            show(name, seconds)
        epochs[who] = sum(figures.values(), np.zeros(2))
        show("epoch", epochs[who])
    stage_training = parts["stage"][f"training ({batches} steps)"]
    return {
        "plain_fit_samples_per_s": args.real_train / epochs["plain fit"][0],
        "stage_samples_per_s": args.real_train / epochs["stage"][0],
        "stage_training_samples_per_s": args.real_train / stage_training[0],
        "stage_fixed_cost_per_epoch_s": float(parts["stage"]["set-up"][0] + parts["stage"]["epoch end"][0]),
        "step_ratio_median_of_pairs": float(np.median(step_ratios)),
        "ratio": float(epochs["plain fit"][0] / epochs["stage"][0]),
        "cpu_ratio": float(epochs["plain fit"][1] / epochs["stage"][1]),
    }


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
    from utils.learning import EpochFeed, smooth_labels, train_model
    from utils.settings import learner_from_block

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
    train_model(learner_from_block(baseline_parameters(1)), X_train, y_train, X_val, y_val, work, seed=0, progress=False, callbacks=[StopAfter()])
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
    parser.add_argument("--train", type=int, default=1878, help="training clips at the demo size (the demo set's training split)")
    parser.add_argument("--validation", type=int, default=822, help="validation clips at the demo size")
    parser.add_argument("--epochs", type=int, default=8, help="epochs at the demo size (epoch 1 is left out)")
    parser.add_argument("--real-train", type=int, default=97036, help="training clips at the real size (fold1_train less its validation split)")
    parser.add_argument("--real-validation", type=int, default=42584, help="validation clips at the real size")
    parser.add_argument("--real-steps", type=int, default=320, help="training steps of the real-size epochs before they are cut")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--store-clips", type=int, default=139620, help="clips in the synthetic memmap store")
    parser.add_argument("--store-steps", type=int, default=100, help="training batches taken from the store")
    parser.add_argument("--store-validation", type=int, default=2000, help="validation clips taken from the store")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.store_steps, args.store_validation, args.work)
        return
    load = os.getloadavg()[0]
    print(f"learning benchmark: {cpu_model()}, {os.cpu_count()} CPU cores (load average {load:.1f} at start), baseline CNN, batch size {BATCH_SIZE}",
          flush=True)
    targets = {"demo size": 0.9, "real size": 0.97}
    for name, skip, run in (("demo size", args.skip_demo, demo_size), ("real size", args.skip_real, real_size)):
        if skip:
            continue
        result = run(args)
        print(f"{name} summary:")
        for key, value in result.items():
            print(f"  {key}: {value:.3f}")
        print(f"  stage / plain fit >= {targets[name]}: {'PASS' if result['ratio'] >= targets[name] else 'FAIL'} (ratio {result['ratio']:.3f})", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if not args.skip_memory:
        result = memory(args)
        print(f"memory (synthetic store of {result['store_clips']} clips, {result['store_mb']:.0f} MB float32 memmap):")
        for key, value in result.items():
            print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")
        print(f"  peak RSS <= 3 GB: {'PASS' if result['peak_rss_mb'] <= 3 * 1024 else 'FAIL'}")


if __name__ == "__main__":
    main()
