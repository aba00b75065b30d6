"""Benchmark of the feature stage against the official per-file loop, measured in the same run.

    python bench/features.py [--files 2000] [--official-files 400] [--rounds 5] [--jobs -1] [--dcase-python PY]

Writes N synthetic 1 s, 44.1 kHz, 24-bit mono WAV clips (seeded noise; the TAU 2022 format) into a
temporary folder, then alternates, ``--rounds`` times:

- the **official loop**: a faithful copy of the work of the official ``do_feature_extraction``
  (dcase_util 0.2.x ``AudioContainer.load`` + ``MelExtractor.extract`` + ``FeatureContainer.save``),
  one file at a time: ``os.path.isfile``, ``soundfile.info``, ``soundfile.read`` (float64),
  ``librosa.stft(y + eps, n_fft=2048, win_length=1764, hop_length=882, center=True,
  window=scipy.signal.windows.hamming(1764, sym=False))``, ``numpy.abs``, ``numpy.dot`` with the
  float32 ``librosa.filters.mel`` basis, ``numpy.log(... + eps)``, and one ``pickle.dump`` per file
  of a container holding the float64 matrix and its time resolution (dcase_util itself cannot be
  installed beside numpy 2 / scipy >= 1.13; see ../shared/spec/features.md section 8);
- with ``--dcase-python PY`` (an interpreter of a throwaway environment with dcase_util 0.2.20,
  numpy < 2, scipy < 1.13, librosa 0.9.2; see README), also **dcase_util itself**: the official
  ``do_feature_extraction`` loop (``bench/dcase_util_loop.py``: per file the progress line,
  ``AudioContainer().load``, ``MelExtractor.extract``, ``FeatureContainer.save``), timed inside
  its own process (imports excluded);
- ``python -m utils.features DIR -o STORE --jobs 1``'s work: :func:`utils.feature_store.extract_to_store`
  with one process into a fresh store (load + log-mel + store write + fsync), on all N files.

Both run with one BLAS thread (the official loop's ``numpy.dot`` is then no slower: with two
threads it collapses when another process holds a core). The ratio of each round is taken, and the
median of the rounds reported, beside the CPU model from /proc/cpuinfo; the other processes on the
machine change both sides of a round alike. Then the store with all cores, the time from the
start of ``python -m utils.features`` to the end of its first file (start-up), and the import time
of each module tool.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from utils import audio  # noqa: E402
from utils.feature_store import extract_to_store  # noqa: E402
from utils.features import EPS, LogMelExtractor  # noqa: E402
from utils.files import usable_cores  # noqa: E402
from utils.settings import worker_count  # noqa: E402


def cpu_model() -> str:
    """``model name`` of /proc/cpuinfo (or the platform's processor string), and the cores usable here."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if not name:
        import platform

        name = platform.processor() or platform.machine()
    return f"{name}, {usable_cores()} cores"


def make_clips(folder: Path, n_files: int, fs: int = 44100, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        path = folder / f"clip-{i:06d}.wav"
        soundfile.write(path, rng.uniform(-0.5, 0.5, fs), fs, subtype="PCM_24")
        paths.append(path)
    return paths


class FeatureContainer:
    """What the official loop pickles per file (dcase_util ``FeatureContainer``: the matrix and its time resolution)."""

    def __init__(self, data, time_resolution):
        self.data = data
        self.time_resolution = time_resolution
        self.filename = None


class OfficialLoop:
    """The official baseline's per-file feature extraction work (spec section 0), as dcase_util does it."""

    def __init__(self, out_dir: Path):
        import librosa
        import scipy.signal

        self.eps = np.spacing(1)
        self.window = scipy.signal.windows.hamming(1764, sym=False)  # 'hamming_asymmetric'
        self.mel_basis = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=40, fmin=0, fmax=22050, htk=False)
        self.stft = librosa.stft
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)

    def file(self, path: Path):
        feature_file = self.out_dir / (path.stem + ".cpickle")
        if not os.path.isfile(path):  # AudioContainer.load: self.exists()
            raise FileNotFoundError(path)
        info = soundfile.info(str(path))  # AudioContainer.load: filetype_info
        data, fs = soundfile.read(str(path))
        data = data.T
        if data.ndim > 1:
            data = np.mean(data, axis=0)
        assert fs == info.samplerate == 44100
        spectrogram = np.abs(self.stft(data + self.eps, n_fft=2048, win_length=1764, hop_length=882, center=True, window=self.window))
        features = np.log(np.dot(self.mel_basis, spectrogram) + self.eps)
        with open(feature_file, "wb") as handle:  # FeatureContainer(...).save(filename): a cpickle per file
            pickle.dump(FeatureContainer(features, 0.02), handle, protocol=pickle.HIGHEST_PROTOCOL)
        return features

    def run(self, paths) -> float:
        """Files per second."""
        start = time.perf_counter()
        for path in paths:
            self.file(path)
        return len(paths) / (time.perf_counter() - start)


def dcase_util_rate(python: str, audio_dir: Path, feature_dir: Path, n_files: int) -> tuple[float, np.ndarray]:
    """(files/s, first file's float64 features) of the official dcase_util loop run by ``python``, one BLAS thread."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run([python, str(REPO / "bench" / "dcase_util_loop.py"), str(audio_dir), str(feature_dir), str(n_files)],
                         capture_output=True, text=True, env=env)
    rates = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("RATE ")]
    if run.returncode != 0 or not rates:
        raise SystemExit(f"error: the dcase_util loop failed under {python}: {(run.stderr or run.stdout).strip().splitlines()[-1:]}")
    return float(rates[0]), np.load(feature_dir / "first.npy")


def store_rate(paths, extractor, jobs: int, store_dir: Path) -> float:
    start = time.perf_counter()
    store = extract_to_store(paths, [p.name for p in paths], store_dir, extractor, n_jobs=jobs, progress=False)
    rate = len(paths) / (time.perf_counter() - start)
    assert store.is_complete and not store.failed and len(store) == len(paths)
    shutil.rmtree(store_dir)
    return rate


def clip_breakdown(paths, extractor, repeat: int = 3) -> dict:
    """Microseconds per 1 s clip of each step of ``_extract_chunk`` (best of ``repeat`` passes over ``paths``).

    The steps are those of :func:`utils.audio.read_plain_wav` and ``LogMelExtractor.extract_into``,
    called one by one on the extractor's own buffers; the store write is the float32 row's share
    of the chunk's ``pwrite`` (fsyncs, once a second, not counted).
    """
    buffers = audio.ReadBuffers()
    padded, windows = extractor._signal_buffer(44100)
    frames, spectrum, magnitude, mel = extractor._pass_buffers(extractor.n_frames(44100))
    span = frames[:, extractor.window_offset : extractor.window_offset + extractor.win_length]
    row = np.empty((extractor.n_mels, extractor.n_frames(44100)), dtype=np.float32)
    sink = os.open(os.devnull, os.O_WRONLY)
    best = {}
    clock = time.perf_counter
    for _ in range(repeat):
        spent = dict.fromkeys(("read file (readinto a reused buffer)", "24-bit PCM to float64", "+ eps, window", "FFT (rfft, 51 x 2048)",
                               "abs", "mel product (sparse)", "+ eps, log, float32", "store write (pwrite)"), 0.0)
        names = list(spent)
        for path in paths:
            t0 = clock()
            with open(path, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                buffers.grow(size, 0)
                handle.readinto(memoryview(buffers.raw)[:size])
            t1 = clock()
            y = audio.read_plain_wav(Path(path), buffers)[0][0]  # reads again (cached): its time minus the read is the conversion
            t2 = clock()
            np.add(y, EPS, out=padded[1024 : 1024 + 44100])
            np.multiply(windows, extractor.window, out=span)
            t3 = clock()
            np.fft.rfft(frames, axis=-1, out=spectrum.T)  # what the extractor calls (numpy >= 2)
            t4 = clock()
            np.abs(spectrum, out=magnitude)
            t5 = clock()
            extractor._mel.product(magnitude, mel)
            t6 = clock()
            np.add(mel, EPS, out=mel)
            np.log(mel, out=mel)
            row[...] = mel
            t7 = clock()
            os.write(sink, row.tobytes())
            t8 = clock()
            for name, elapsed in zip(names, (t1 - t0, (t2 - t1) - (t1 - t0), t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7)):
                spent[name] += elapsed
        for name in names:
            best[name] = min(best.get(name, float("inf")), 1e6 * spent[name] / len(paths))
    os.close(sink)
    return best


def startup_seconds(args, repeat: int = 5) -> float:
    """Median wall time of a fresh ``python ...`` process running ``args`` (in the repository)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if run.returncode != 0:
            raise SystemExit(f"error: {' '.join(args)} failed: {run.stderr.strip()[-300:]}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="synthetic 1 s clips extracted by the store per round (default 2000)")
    parser.add_argument("--official-files", type=int, default=400, help="clips of the official loop per round (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported (default 5)")
    parser.add_argument("--jobs", type=int, default=-1, help="processes of the parallel run (default -1: all cores)")
    parser.add_argument("--dcase-python", default=os.environ.get("TASK1A_DCASE_PYTHON"),
                        help="python of an environment with dcase_util 0.2.20 (default: $TASK1A_DCASE_PYTHON): also time dcase_util itself")
    args = parser.parse_args()
    if args.files < 1 or args.official_files < 1 or args.rounds < 1:
        raise SystemExit("error: --files, --official-files and --rounds must be at least 1")

    from threadpoolctl import threadpool_limits

    extractor = LogMelExtractor()  # the official parameters
    jobs = worker_count(args.jobs)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        work = Path(tmp)
        (work / "audio").mkdir()
        paths = make_clips(work / "audio", max(args.files, args.official_files))
        official = OfficialLoop(work / "official")
        # the same numbers: the float32 features of both sides are identical
        ours = extract_to_store(paths[:20], [p.name for p in paths[:20]], work / "check", extractor, n_jobs=1, progress=False)
        identical = all(np.array_equal(official.file(p).astype(np.float32), ours.read(ours.rows_of([p.name]))[0]) for p in paths[:20])
        shutil.rmtree(work / "check")
        load_before = os.getloadavg()[0]
        official_rates, store_rates, ratios, dcase_rates, dcase_ratios = [], [], [], [], []
        dcase_identical = None
        with threadpool_limits(1):
            official.run(paths[:50])  # warm-up: imports, plans, page cache
            for round_index in range(args.rounds):
                official_rate = official.run(paths[: args.official_files])
                rate = store_rate(paths[: args.files], extractor, 1, work / f"store-{round_index}")
                official_rates.append(official_rate)
                store_rates.append(rate)
                ratios.append(rate / official_rate)
                if args.dcase_python:
                    dcase_rate, first = dcase_util_rate(args.dcase_python, work / "audio", work / "dcase", args.official_files)
                    dcase_identical = np.array_equal(first.astype(np.float32), official.file(paths[0]).astype(np.float32))
                    dcase_rates.append(dcase_rate)
                    dcase_ratios.append(rate / dcase_rate)
        with threadpool_limits(1):
            breakdown = clip_breakdown(paths[: args.official_files], extractor)
        parallel = store_rate(paths[: args.files], extractor, jobs, work / "store-parallel")
        load_after = os.getloadavg()[0]
        one = work / "one"
        one.mkdir()
        shutil.copy(paths[0], one / paths[0].name)
        startup_store = startup_seconds(["-m", "utils.features", str(one), "-o", str(work / "startup-store"), "--jobs", "1", "--no-progress"])
        startup_file = startup_seconds(["-m", "utils.features", str(paths[0]), "-o", str(work / "startup.npy")])
        imports = {module: startup_seconds(["-c", f"import {module}"]) for module in ("utils.features", "utils.dataset", "utils.testing", "utils.tflite",
                                                                                      "utils.demo_dataset", "utils.submission")}
        python_alone = startup_seconds(["-c", "pass"])

    print(f"CPU: {cpu_model()}; load average {load_before:.1f} before the timed rounds, {load_after:.1f} after (other processes share the cores)")
    print(f"features bit-identical to the official loop (float32, 20 clips): {identical}")
    print(f"{args.rounds} alternating rounds, one BLAS thread; files/s per round:")
    print("  official loop, copy on this stack (1 file at a time): " + ", ".join(f"{r:.0f}" for r in official_rates))
    print("  extract_to_store, 1 process (--jobs 1):              " + ", ".join(f"{r:.0f}" for r in store_rates))
    print("  ratio:                                               " + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"median: {statistics.median(store_rates):,.0f} files/s vs official loop (copy) {statistics.median(official_rates):,.0f} files/s: "
          f"ratio {statistics.median(ratios):.2f} on {cpu_model()}")
    if dcase_rates:
        print("  dcase_util 0.2.20 itself (its own environment):      " + ", ".join(f"{r:.0f}" for r in dcase_rates))
        print("  ratio to dcase_util:                                  " + ", ".join(f"{r:.2f}" for r in dcase_ratios))
        print(f"median: {statistics.median(store_rates):,.0f} files/s vs dcase_util {statistics.median(dcase_rates):,.0f} files/s: "
              f"ratio {statistics.median(dcase_ratios):.2f} on {cpu_model()} (dcase_util's float32 features equal ours: {dcase_identical})")
    else:
        print("  (dcase_util itself not measured: give --dcase-python, see README)")
    print(f"where a clip's time goes (us per 1 s clip, best of 3 passes over {args.official_files} files; total {sum(breakdown.values()):.0f} us "
          f"= {1e6 / sum(breakdown.values()):,.0f} clips/s before per-file Python and journal overhead):")
    for name, micros in breakdown.items():
        print(f"  {name:<38} {micros:6.1f} us  {100 * micros / sum(breakdown.values()):4.1f} %")
    print(f"extract_to_store, {jobs} processes: {parallel:,.0f} files/s (230,350-clip development set: {230350 / parallel / 60:.1f} min)")
    print(f"start-up to the end of the first file (median of 5, python itself {python_alone:.2f} s): "
          f"python -m utils.features DIR -o STORE --jobs 1: {startup_store:.2f} s; python -m utils.features FILE -o OUT.npy: {startup_file:.2f} s")
    print("import time of the module tools (fresh process, median of 5): " + ", ".join(f"{m} {t:.2f} s" for m, t in imports.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
