"""Benchmark of the feature stage: files/s into a store, one process and all cores, peak RSS.

    python bench/features.py [--files 2000] [--jobs -1] [--repeat 3]

Writes N synthetic 1 s, 44.1 kHz, 24-bit mono WAV clips (seeded noise; TAU 2022 format) into a
temporary folder, then times :func:`utils.features.extract_to_store` (load + log-mel + store
write, float32 rows) with one process and with ``--jobs`` processes (all cores by default),
each into a fresh store, best of ``--repeat`` runs. Also reports the official-style loop
(one file at a time, ``LogMelExtractor.extract``) for comparison, and the peak resident memory of
the writing process and of the largest worker.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.features import FeatureStore, LogMelExtractor, _default_jobs, extract_to_store, load_audio  # noqa: E402


def make_clips(folder: Path, n_files: int, fs: int = 44100, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        path = folder / f"clip-{i:06d}.wav"
        soundfile.write(path, rng.uniform(-0.5, 0.5, fs), fs, subtype="PCM_24")
        paths.append(path)
    return paths


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_store(paths, extractor, jobs: int, work: Path, repeat: int):
    """Best wall-clock files/s over ``repeat`` fresh stores, and files per CPU-second of that run."""
    best, best_cpu = float("inf"), float("inf")
    for attempt in range(repeat):
        store_dir = work / f"store-{jobs}-{attempt}"
        start, start_cpu = time.perf_counter(), cpu_seconds()
        store = extract_to_store(paths, [p.name for p in paths], store_dir, extractor, n_jobs=jobs, progress=False)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
        if elapsed < best:
            best, best_cpu = elapsed, cpu
        assert store.is_complete and not store.failed and len(store) == len(paths)
        shutil.rmtree(store_dir)
    return len(paths) / best, len(paths) / best_cpu


def time_reads(store_dir: Path, batch: int = 64, n_batches: int = 200) -> float:
    """Rows/s of ``FeatureStore.read`` on random batches (what a training data loader does)."""
    store = FeatureStore(store_dir)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n_batches):
        store.read(np.sort(rng.integers(0, len(store), batch)))
    return batch * n_batches / (time.perf_counter() - start)


def time_one_by_one(paths, extractor) -> float:
    start = time.perf_counter()
    for path in paths:
        extractor.extract(load_audio(path, fs=extractor.fs)).astype(np.float32)
    return len(paths) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="synthetic 1 s clips (default 2000)")
    parser.add_argument("--jobs", type=int, default=-1, help="processes of the parallel run (default -1: all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the best is reported (default 3)")
    args = parser.parse_args()

    extractor = LogMelExtractor()  # the official parameters
    jobs = _default_jobs(args.jobs)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        work = Path(tmp)
        (work / "audio").mkdir()
        paths = make_clips(work / "audio", args.files)
        time_store(paths[:50], extractor, 1, work, 1)  # warm-up: imports, page cache
        load_before = os.getloadavg()[0]
        single, single_cpu = time_store(paths, extractor, 1, work, args.repeat)
        parallel, parallel_cpu = time_store(paths, extractor, jobs, work, args.repeat)
        load_after = os.getloadavg()[0]  # of the timed runs (this process's own runs count in it)
        loop = time_one_by_one(paths[: min(len(paths), 500)], extractor)
        extract_to_store(paths, [p.name for p in paths], work / "read", extractor, n_jobs=jobs, progress=False)
        reads = time_reads(work / "read")
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before the runs, {load_after:.1f} after (other processes share the cores)")
    print(f"{args.files} synthetic 1 s 24-bit clips, best of {args.repeat}; files/s wall clock (files per CPU-second)")
    print(f"extract_to_store, 1 process:     {single:6.0f} files/s ({single_cpu:.0f} per CPU-s)")
    print(f"extract_to_store, {jobs} processes:   {parallel:6.0f} files/s ({parallel_cpu:.0f} per CPU-s)")
    print(f"one file at a time (extract):    {loop:6.0f} files/s")
    print(f"FeatureStore.read, random batches of 64: {reads:,.0f} rows/s")
    print(f"peak RSS: writer {rss_self:.0f} MiB, largest worker {rss_worker:.0f} MiB")
    print(f"230,350-clip development set at {parallel:.0f} files/s: {230350 / parallel / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
