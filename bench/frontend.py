"""Benchmark of the 32 kHz front end (``logmel32k``) against torchaudio's on the same clips, in the same run.

    pip install -e .[reference]       # torch, torchaudio
    python bench/frontend.py [--clips 200] [--rounds 5]

Makes ``--clips`` seeded 1 s, 44.1 kHz noise clips (the TAU 2022 clip length; the time does not
depend on the content) and times, ``--rounds`` times alternately, each with one thread:

- **ours**: :meth:`utils.frontend_32k.LogMel32kExtractor.extract` clip by clip (numpy/scipy, float64),
  what a feature-store worker does per segment;
- **torchaudio, clip by clip**: ``Resample(44100, 32000)`` + ``MelSpectrogram(32 kHz, n_fft 4096,
  win 3072, hop 500, 256 mels)`` + ``log(x + 1e-5)`` in float32, as the baseline's front end runs;
- **torchaudio, batched**: the same on all clips as one batch (how the baseline runs it, per
  training batch, though there on a GPU).

Times are this process's CPU time (one thread on each side, so CPU time is the work; wall time
on a shared machine depends on the neighbours). Each round's ratio (torchaudio time / ours) is taken and the median over rounds reported, beside
the CPU model; other processes on the machine slow both sides of a round alike. It also prints the
largest difference between the two outputs (log domain), to show both computed the same thing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # one BLAS thread, as in a feature-store worker (set before numpy loads)

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from utils.frontend_32k import LogMel32kExtractor  # noqa: E402


def cpu_model() -> str:
    """bench/features.py's CPU description (model name and usable cores)."""
    spec = importlib.util.spec_from_file_location("bench_features", REPO / "bench" / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cpu_model()


def timed(function) -> tuple:
    """``(CPU seconds of this process, result)``: CPU time, for the machine's other processes stretch wall time unevenly."""
    start = time.process_time()
    result = function()
    return time.process_time() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200, help="1 s clips per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (default 5)")
    args = parser.parse_args(argv)
    try:
        import torch
        import torchaudio
    except ImportError:
        sys.exit("error: bench/frontend.py needs torch and torchaudio; install the reference extra (pip install -e .[reference])")

    torch.set_num_threads(1)
    clips = (np.random.default_rng(0).standard_normal((args.clips, 44100)) * 0.1).astype(np.float32)
    ours = LogMel32kExtractor()
    resample = torchaudio.transforms.Resample(44100, 32000)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=32000, n_fft=4096, win_length=3072, hop_length=500, n_mels=256, f_min=0, f_max=None)
    batch = torch.from_numpy(clips)

    def run_ours():
        return np.stack([ours.extract(clip) for clip in clips])

    def run_torch_per_clip():
        with torch.no_grad():
            return np.stack([(mel(resample(x)) + 1e-5).log().numpy() for x in batch])

    def run_torch_batched():
        with torch.no_grad():
            return (mel(resample(batch)) + 1e-5).log().numpy()

    run_ours(), run_torch_per_clip(), run_torch_batched()  # warm-up (first-call allocations, plans)
    times = {"ours": [], "per_clip": [], "batched": []}
    for _ in range(args.rounds):
        t, ours_out = timed(run_ours)
        times["ours"].append(t)
        t, torch_out = timed(run_torch_per_clip)
        times["per_clip"].append(t)
        t, batched_out = timed(run_torch_batched)
        times["batched"].append(t)
    difference = max(np.max(np.abs(ours_out - torch_out)), np.max(np.abs(ours_out - batched_out)))

    def per_clip_ms(name):
        return 1000 * statistics.median(times[name]) / args.clips

    print(f"front end benchmark: {args.clips} clips of 1 s at 44.1 kHz, {args.rounds} rounds, one thread each; "
          f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, numpy {np.__version__}")
    print(f"CPU: {cpu_model()}")
    print(f"ours (numpy, float64, clip by clip):        {per_clip_ms('ours'):.2f} ms CPU per clip")
    print(f"torchaudio float32, clip by clip:           {per_clip_ms('per_clip'):.2f} ms CPU per clip, "
          f"ratio torchaudio / ours {statistics.median(p / o for p, o in zip(times['per_clip'], times['ours'])):.2f}")
    print(f"torchaudio float32, all clips in one batch: {per_clip_ms('batched'):.2f} ms CPU per clip, "
          f"ratio torchaudio / ours {statistics.median(b / o for b, o in zip(times['batched'], times['ours'])):.2f}")
    print(f"largest difference ours - torchaudio float32: {difference:.1e} (log domain; torchaudio's own float32 rounding)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
