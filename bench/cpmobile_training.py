"""Benchmark: the DCASE2024/2025 baseline's training time per epoch (CP-Mobile, its recipe) and the projected full-data time.

    python bench/cpmobile_training.py [--clips 1000] [--epochs 3] [--set dcase2024_cpmobile_split100] [--json]

Trains ``utils.cpmobile.cp_mobile`` with the set's learner parameters (AdamW with the warm-up + cosine
schedule, batch 256, its augmentations: time roll, frequency masks, Freq-MixStyle) through
:func:`utils.learning.train_model` on ``--clips`` synthetic 256 x 65 log-mels (random: the time per
clip does not depend on the values), a tenth of them as validation, for ``--epochs`` epochs; the first
epoch (tracing) is left out. Reports seconds per epoch (wall and this process's CPU time: on a shared
machine the wall time grows with the neighbours' load, the CPU time much less), milliseconds per training clip, and the
projected time of the official trainings: 150 epochs on each DCASE2024 subset of fold1_train (6,980 /
13,960 / 34,900 / 69,800 / 139,620 clips; 25 % is DCASE2025's general model), at this machine's
speed. Run it with the cores you mean (``taskset -c 0,1`` for 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUBSETS = {5: 6_980, 10: 13_960, 25: 34_900, 50: 69_800, 100: 139_620}  # fold1_train clips per DCASE2024 split
OFFICIAL_EPOCHS = 150


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", default="dcase2024_cpmobile_split100")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import keras

    from utils.learning import train_model
    from utils.parameters import ParameterContainer
    from utils.settings import learner_settings

    parameters = copy.deepcopy(ParameterContainer().resolve(args.set)["learner"]["parameters"])
    parameters["fit"]["epochs"] = args.epochs
    parameters["model_selection"]["initial_delay"] = 0
    rng = np.random.default_rng(0)
    n_val = max(args.clips // 10, 1)
    X = rng.normal(-5.0, 2.0, size=(args.clips + n_val, 256, 65)).astype(np.float32)
    y = np.arange(args.clips + n_val) % 10

    times: list[float] = []
    cpu_times: list[float] = []  # this process's CPU seconds (all threads): what a shared machine's load does not inflate

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            cpu_times.append(time.process_time() - self.cpu_start)

    with tempfile.TemporaryDirectory() as folder:
        train_model(learner_settings(parameters), X[: args.clips], y[: args.clips], X[args.clips :], y[args.clips :], Path(folder) / "model",
                    progress=False, callbacks=[EpochTimer()])
    steady = times[1:] or times
    epoch_seconds = float(np.median(steady))
    per_clip = epoch_seconds / args.clips
    cpu_per_clip = float(np.median(cpu_times[1:] or cpu_times)) / args.clips
    report = {
        "set": args.set, "clips": args.clips, "validation_clips": n_val, "epochs": args.epochs,
        "epoch_seconds": [round(t, 2) for t in times], "median_epoch_seconds": round(epoch_seconds, 2),
        "ms_per_training_clip": round(1000 * per_clip, 3),
        "epoch_cpu_seconds": [round(t, 2) for t in cpu_times], "cpu_ms_per_training_clip": round(1000 * cpu_per_clip, 3),
        "projected_hours_150_epochs": {f"split{split}": round(clips * per_clip * OFFICIAL_EPOCHS / 3600, 1) for split, clips in SUBSETS.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"CP-Mobile ({args.set}): {args.clips} training clips, epochs {report['epoch_seconds']} s; "
              f"median {epoch_seconds:.2f} s per epoch (first left out) = {1000 * per_clip:.2f} ms per clip (validation included); "
              f"CPU {1000 * cpu_per_clip:.2f} ms per clip")
        for split, hours in report["projected_hours_150_epochs"].items():
            print(f"  projected {OFFICIAL_EPOCHS} epochs on {split} ({SUBSETS[int(split[5:])]:,} clips): {hours} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
