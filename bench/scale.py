"""Scale benchmark: a full-size feature store (230,350 clips) through the learning and testing data paths.

    python bench/scale.py [--clips 230350] [--fractions 0.1,0.5,1] [--test-clips 10000]
                          [--batch-size 16] [--meta META.csv] [--work DIR] [--keep] [--json OUT.json]

A synthetic float32 store of ``--clips`` clips ``(40, 51)`` is written with the store's own writer
(:class:`utils.feature_store.StoreWriter`: the manifest planning every key, data rows, a journal line
per commit, as :func:`utils.feature_store.extract_to_store` writes them), keyed by the file names of the
official ``meta.csv`` (all 230,350 by default, in a seeded random order so that every prefix is a
uniform sample of scenes, cities and devices; TAU-like names are made up when it is absent). The
store grows to each fraction in turn; after each, a fresh process measures, on every stored key:

- opening the store (journal replay), the feature stage's reuse check (``is_complete``, key subset);
- ``rows_of`` / ``segment_counts`` on N keys; the location-disjoint split on N rows;
- reading and normalising everything (``utils.features.load_normalized``, max_abs_int16): the learning
  stage's in-memory training and validation arrays;
- one epoch of the learning feed without a model (``utils.learning.EpochFeed`` over the training
  array in the epoch's shuffled order, consumed in a ``tf.function`` as ``fit`` consumes it);
- the testing stage's path on ``--test-clips`` random keys (``utils.testing.predict_store``: store
  read + max_abs_int16 + the official TFLite model), in clips/s;
- peak RSS (VmHWM) and the peak anonymous memory (sampled every 20 ms).

Per-clip times that stay flat from 10 % to 100 % show that nothing is quadratic in the number of files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))
from process_memory import memory_status  # noqa: E402  (bench/ is on sys.path when run as a script)

DEFAULT_META = REPO_DIR.parent / "shared" / "data" / "real" / "tau2022_meta" / "meta.csv"
OFFICIAL_MODEL = REPO_DIR.parent / "shared" / "reference" / "model_task1.tflite"
FULL_SIZE = 230_350  # clips of the TAU Urban Acoustic Scenes 2022 Mobile development set
WRITE_CHUNK = 4096  # clips per writer commit
ORDER_SEED = 0


# ---------------------------------------------------------------------------------------- items
def development_items(meta_path: Path, clips: int):
    """``clips`` rows (filename, scene_label, identifier, city, source_label) in a seeded random order."""
    import pandas as pd

    from utils import dataset as tau

    if meta_path.is_file():
        items = tau.read_metadata_csv(meta_path, ("filename", "scene_label", "identifier", "source_label"))
        items["city"] = items["identifier"].str.split("-").str[0]
    else:  # TAU-like names: 10 scenes x 12 cities x 20 locations x 11 devices
        n = max(clips, 1)
        index = np.arange(n)
        scene = np.array(tau.SCENE_LABELS)[index % 10]
        city = np.array([f"city{c}" for c in range(12)])[(index // 10) % 12]
        location = (index // 120) % 20
        device = np.array(["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"])[index % 11]
        identifier = [f"{c}-{loc}" for c, loc in zip(city, location)]
        filename = [f"audio/{s}-{i}-{k}-{k % 10}-{d}.wav" for s, i, k, d in zip(scene, identifier, index, device)]
        items = pd.DataFrame({"filename": filename, "scene_label": scene, "identifier": identifier, "source_label": device, "city": city})
    if clips > len(items):
        raise SystemExit(f"error: --clips {clips} is more than the {len(items)} rows of {meta_path}")
    order = np.random.default_rng(ORDER_SEED).permutation(len(items))[:clips]
    return items.iloc[order].reset_index(drop=True)


# ---------------------------------------------------------------------------------------- store
def store_manifest(keys: list) -> dict:
    """The manifest extract_to_store writes for the official extractor and 1-s segments, float32 rows."""
    from utils.feature_store import store_manifest as manifest_of
    from utils.features import LogMelExtractor
    from utils.parameters import ParameterContainer

    mel = ParameterContainer().defaults["feature_extractor_method_parameters"]["mel"]
    extractor = LogMelExtractor(**mel)
    segment_samples = int(round(1.0 * extractor.fs))
    return manifest_of(extractor.params, segment_samples, "float32", extractor.row_shape(segment_samples), keys)


def grow_store(store_dir: Path, keys: list, start: int, stop: int, row_shape) -> float:
    """Append rows for ``keys[start:stop]`` (one segment each) to the store; returns the seconds taken.

    Rows are log-mel-like float32 (a fixed random pattern plus a per-clip offset): the benchmark
    measures data movement, not values.
    """
    from utils.feature_store import StoreWriter

    pattern = np.random.default_rng(1).normal(-8.0, 3.0, (WRITE_CHUNK, *row_shape)).astype(np.float32)
    started = time.perf_counter()
    writer = StoreWriter(store_dir, store_manifest(keys))
    try:
        for first in range(start, stop, WRITE_CHUNK):
            last = min(first + WRITE_CHUNK, stop)
            offsets = (np.arange(first, last, dtype=np.float32) % 97 / 10.0)[:, None, None]
            writer.add(keys[first:last], [1] * (last - first), pattern[: last - first] + offsets, {})
            writer.commit()
    finally:
        writer.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------- child
class MemorySampler:
    """Peak RssAnon of this process, sampled in a thread (the kernel keeps only the total's peak, VmHWM)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak_anon_mb, self._stop = interval, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    status = staticmethod(memory_status)

    def _run(self):
        while not self._stop.is_set():
            self.peak_anon_mb = max(self.peak_anon_mb, self.status()["RssAnon"])
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_anon_mb = max(self.peak_anon_mb, self.status()["RssAnon"])


def timed(results: dict, name: str, function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    results[name] = time.perf_counter() - started
    return value


def measure(store_dir: Path, meta_path: Path, clips: int, stored: int, test_clips: int, batch_size: int) -> dict:
    """Every measurement on a store holding the first ``stored`` of ``clips`` planned keys."""
    import tensorflow as tf

    from utils import dataset as tau
    from utils.feature_store import FeatureStore
    from utils.features import load_normalized, normalize_max_abs_int16
    from utils.learning import EpochFeed, smooth_labels
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    items = development_items(meta_path, clips).iloc[:stored]
    keys = items["filename"].tolist()
    seconds: dict = {}
    cpu_started = time.process_time()
    with MemorySampler() as memory:
        store = timed(seconds, "open", FeatureStore, store_dir)
        assert len(store.keys) == stored, (len(store.keys), stored)
        timed(seconds, "reuse_check", lambda: store.is_complete or set(keys) <= set(store.keys))
        timed(seconds, "rows_of", store.rows_of, keys)
        timed(seconds, "segment_counts", store.segment_counts, keys)
        train_index, validation_index = timed(seconds, "split", tau.location_disjoint_split, items, 0.3, 0)
        train_keys, validation_keys = items["filename"].iloc[train_index].tolist(), items["filename"].iloc[validation_index].tolist()
        X_train = timed(seconds, "load_train", load_normalized, store, train_keys, normalize_max_abs_int16)
        timed(seconds, "load_validation", load_normalized, store, validation_keys, normalize_max_abs_int16)
        class_index = {label: i for i, label in enumerate(tau.SCENE_LABELS)}
        y_train = items["scene_label"].iloc[train_index].map(class_index).to_numpy()
        targets = smooth_labels(y_train, len(class_index), 0.1)

        @tf.function
        def consume(dataset):
            count = tf.constant(0, tf.int64)
            for features, _ in dataset:
                count += tf.shape(features, out_type=tf.int64)[0]
            return count

        feed = EpochFeed(X_train, targets, batch_size, seed=0, shuffle=True)
        fed = timed(seconds, "feed_epoch", lambda: int(consume(feed.dataset())))
        assert fed == len(y_train)
        del X_train

        test_keys = list(np.random.default_rng(2).choice(keys, size=min(test_clips, stored), replace=False))
        classifier = TFLiteClassifier(OFFICIAL_MODEL, batch_size=256)
        probabilities = timed(seconds, "testing", predict_store, classifier, store, test_keys, normalize_max_abs_int16, batch_size=256, progress=False)
        assert probabilities.shape == (len(test_keys), 10) and np.allclose(probabilities.sum(axis=1), 1.0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "stored": stored,
        "train": len(train_keys),
        "validation": len(validation_keys),
        "test_clips": len(test_keys),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "feed_batches": -(-len(train_keys) // batch_size),
        "testing_clips_per_s": round(len(test_keys) / seconds["testing"], 1),
        "peak_rss_mb": round(MemorySampler.status()["VmHWM"], 1),
        "peak_anon_mb": round(memory.peak_anon_mb, 1),
        "max_rss_mb_getrusage": round(usage.ru_maxrss / 1024, 1),
        "cpu_over_wall": round((time.process_time() - cpu_started) / sum(seconds.values()), 2),
    }


# ----------------------------------------------------------------------------------------- main
def format_table(runs: list) -> str:
    names = ["open", "reuse_check", "rows_of", "segment_counts", "split", "load_train", "load_validation", "feed_epoch", "testing"]
    per = {"open": "stored", "reuse_check": "stored", "rows_of": "stored", "segment_counts": "stored", "split": "stored",
           "load_train": "train", "load_validation": "validation", "feed_epoch": "train", "testing": "test_clips"}
    lines = [f"{'step':<16}" + "".join(f"{r['stored']:>12,} clips" for r in runs) + "   (us per clip)"]
    for name in ["write"] + names:
        cells = []
        for run in runs:
            count = run["written"] if name == "write" else run[per[name]]
            value = run["write_seconds"] if name == "write" else run["seconds"][name]
            cells.append(f"{value:9.3f} s {1e6 * value / count:6.2f}")
        lines.append(f"{name:<16}" + "".join(f"{c:>18}" for c in cells))
    lines.append(f"{'testing clips/s':<16}" + "".join(f"{r['testing_clips_per_s']:>18,.0f}" for r in runs))
    lines.append(f"{'peak RSS MB':<16}" + "".join(f"{r['peak_rss_mb']:>18,.0f}" for r in runs))
    lines.append(f"{'peak anon MB':<16}" + "".join(f"{r['peak_anon_mb']:>18,.0f}" for r in runs))
    lines.append(f"{'CPU / wall':<16}" + "".join(f"{r['cpu_over_wall']:>18.2f}" for r in runs))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=FULL_SIZE, help="clips in the full store (default: the development set's 230,350)")
    parser.add_argument("--fractions", default="0.1,0.5,1", help="store sizes measured, as fractions of --clips")
    parser.add_argument("--test-clips", type=int, default=10_000, help="clips the testing path classifies at each size")
    parser.add_argument("--batch-size", type=int, default=16, help="learning feed batch size (fit.batch_size)")
    parser.add_argument("--meta", type=Path, default=DEFAULT_META, help="meta.csv whose file names become the keys")
    parser.add_argument("--work", type=Path, help="folder for the store (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the store")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=2, metavar=("STORE", "STORED"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = measure(Path(args.child[0]), args.meta, args.clips, int(args.child[1]), args.test_clips, args.batch_size)
        print(json.dumps(result))
        return
    if not OFFICIAL_MODEL.is_file():
        raise SystemExit(f"error: the official model {OFFICIAL_MODEL} is needed for the testing path")
    fractions = sorted(float(f) for f in args.fractions.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="task1a_scale_"))
    store_dir = work / "store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    keys = development_items(args.meta, args.clips)["filename"].tolist()
    row_shape = store_manifest(keys[:1])["row_shape"]
    print(f"store {store_dir}: {args.clips:,} planned clips of {row_shape} float32 ({args.clips * np.prod(row_shape) * 4 / 2**30:.2f} GiB); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    runs, written = [], 0
    try:
        for fraction in fractions:
            stop = int(round(fraction * args.clips))
            write_seconds = grow_store(store_dir, keys, written, stop, row_shape)
            run_written, written = stop - written, stop
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(store_dir), str(stop), "--clips", str(args.clips), "--meta", str(args.meta),
                 "--test-clips", str(args.test_clips), "--batch-size", str(args.batch_size)],
                capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
            )
            if child.returncode:
                raise SystemExit(f"error: measurement at {stop} clips failed:\n{child.stderr[-3000:]}")
            run = json.loads(child.stdout.strip().splitlines()[-1])
            run.update(written=run_written, write_seconds=round(write_seconds, 3), load_average=round(os.getloadavg()[0], 2))
            runs.append(run)
            print(f"{stop:,} clips: {json.dumps(run)}", flush=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
