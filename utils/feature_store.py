"""The feature store: rows for keys, journaled, resumable, written by one process from parallel workers.

Owns where features live on disk and how they get there, for any extractor:

- :class:`FeatureStore`: read access (keys, failures, rows of keys, memory-mapped data);
- :func:`extract_to_store`: every audio file of a list, in worker processes, through the extractor it
  is given, into one store that survives ``kill -9`` and resumes;
- :class:`StoreWriter` and :func:`store_manifest`: the single writer and the manifest it plans (public
  for tools that write rows of their own, e.g. ``bench/scale.py``);
- the row storage types: float32, float16 (half the size), or ``int16``, the official representation
  (:func:`to_official_int16`, read back by :func:`from_official_int16`);
- the worker-pool plumbing shared with ``--predict``: :func:`pool_context`, :func:`limit_blas_threads`,
  :func:`resolve_jobs`.

The store is generic: an extractor is any object with ``fs`` (the rate audio is loaded at), ``params``
(a JSON-able dict, recorded in the manifest), ``row_shape(segment_samples)`` and
``extract_into(segment (segment_samples,) float64, out row_shape)``; ``utils.features.LogMelExtractor``
and ``utils.frontend_32k.LogMel32kExtractor`` are two. This module does not import the extractor's module, nor TensorFlow.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from utils.audio import ReadBuffers, load_audio, segment_audio
from utils.errors import Task1aError
from utils.files import lock_file, unlock_file, write_json_atomic
from utils.settings import worker_count

# float16 halves a float32 store (a log-mel value is rounded by at most half its spacing: 0.002 for |x| in
# [4, 8), 0.004 in [8, 16)); it is read back as float32 like float32 rows.
STORAGE_TYPES = {"float32": np.float32, "float16": np.float16, "int16": np.int16}
# The official int16 representation: x * 32767 stored as int16, read back as int16 / 32767.
INT16_SCALE = 32767.0
#: what an extractor given to :func:`extract_to_store` must have
EXTRACTOR_PROTOCOL = ("fs", "params", "row_shape", "extract_into")


def to_official_int16(X: np.ndarray) -> np.ndarray:
    """The official storage of log-mel clips ``(n_clips, n_mels, n_frames)`` (or one ``(n_mels, n_frames)``) as int16.

    As the official ``float32_to_int16``: each clip is divided by its maximum absolute value when
    that exceeds 1, multiplied by 32767 and cast to int16 (``astype``: truncation toward zero,
    not rounding), all in float64.
    """
    X = np.array(X, dtype=np.float64)  # a copy: the official code divides in place
    if X.ndim not in (2, 3):
        raise Task1aError(f"to_official_int16: expected (n_mels, n_frames) or (n_clips, n_mels, n_frames), got shape {X.shape}")
    clips = X[None] if X.ndim == 2 else X
    peak = np.max(np.abs(clips), axis=(1, 2))
    scaled = peak > 1.0
    clips[scaled] /= peak[scaled][:, None, None]
    return (X * INT16_SCALE).astype(np.int16)


def from_official_int16(Q: np.ndarray) -> np.ndarray:
    """The official read-back ``int16 / 32767`` (computed in float64) as float32."""
    return (np.asarray(Q) / INT16_SCALE).astype(np.float32)


# A NumPy memmap + an append-only journal rather than HDF5: a process killed while h5py writes can
# leave the whole file unreadable (HDF5 metadata is not journaled), a memmap is read without any
# library lock from many processes (Keras data loaders), and rows are raw bytes at fixed offsets,
# so reading thousands of random rows per second is just page-cache copies.
#
# Layout of a store folder:
#   manifest.json  extractor parameters, segment length, storage dtype, row shape, planned keys
#                  (written atomically before anything else)
#   data.bin       rows (row_shape, e.g. (n_mels, n_frames)) of float32 or int16, appended chunk by chunk
#   journal.jsonl  one line per commit (about one a second): {"start": first row, "keys", "counts",
#                  "failed"}; appended (and fsynced) only after its rows are fsynced, so a line always
#                  describes complete data. Rows after the last line, or a last line without "\n" (a
#                  run killed while writing it), are ignored by readers and cut off by the next writer.
#   .lock          flock of the (single) writer
STORE_FORMAT = "task1a-logmel-store"
# Journal commits (each two fsyncs, several ms here) at most this often; a killed run redoes less.
COMMIT_SECONDS = 1.0
STORE_VERSION = 1


class FeatureStore:
    """Read access to a feature store written by :func:`extract_to_store` (see the layout above).

    ``keys`` are the keys with rows; ``failed`` the keys whose file could not be read (key ->
    reason); ``is_complete`` is True once every planned key is stored or failed, which a store
    only says after its last row is written. A key has one row per segment.
    """

    def __init__(self, store_dir):
        self.path = Path(store_dir)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise Task1aError(f"{self.path} is not a feature store (no manifest.json); extract features into it with python -m utils.features DIR -o "
                              f"{self.path}")
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") != STORE_FORMAT or manifest.get("version") != STORE_VERSION:
                raise ValueError("unknown format")
            self.extractor_params = manifest["extractor"]
            self.segment_samples = int(manifest["segment_samples"])
            self.storage = manifest["storage"]
            self.row_shape = tuple(int(n) for n in manifest["row_shape"])
            self.planned_keys = list(manifest["keys"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Task1aError(f"{manifest_path} is not a valid feature store manifest ({exc}); delete {self.path} and extract again") from None
        self.dtype = np.dtype(_storage_dtype(self.storage, manifest_path))
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self._load_journal()

    def _load_journal(self):
        journal = self.path / "journal.jsonl"
        raw = journal.read_bytes() if journal.exists() else b""
        index, failed, rows, valid_bytes = {}, {}, 0, 0
        for line in raw.split(b"\n")[:-1]:  # the piece after the last "\n" is an unfinished line
            try:
                record = json.loads(line)
                start, keys, counts = int(record["start"]), record["keys"], [int(c) for c in record["counts"]]
                if start != rows or len(keys) != len(counts) or min(counts, default=1) < 1:
                    raise ValueError("rows out of sequence")
            except (ValueError, KeyError, TypeError):
                raise Task1aError(f"{journal} is corrupt near byte {valid_bytes}; delete {self.path} and extract again") from None
            for key, count in zip(keys, counts):
                index[key] = (rows, count)
                failed.pop(key, None)
                rows += count
            for key, reason in record.get("failed", {}).items():
                failed[key] = reason
                index.pop(key, None)
            valid_bytes += len(line) + 1
        data_path = self.path / "data.bin"
        data_size = data_path.stat().st_size if data_path.exists() else 0
        if data_size < rows * self.row_bytes:
            raise Task1aError(f"{data_path} is shorter than its journal says (lost writes after a crash?); delete {self.path} and extract again")
        self.n_rows = rows
        self._journal_bytes = valid_bytes
        self._index = index
        self.failed = failed
        keys = list(index)
        self.keys = keys
        self._position = {key: i for i, key in enumerate(keys)}
        self._starts = np.array([index[k][0] for k in keys], dtype=np.int64)
        self._counts = np.array([index[k][1] for k in keys], dtype=np.int64)
        self._data = None

    @property
    def missing(self) -> list:
        """Planned keys neither stored nor failed (what a resumed run still has to do)."""
        return [k for k in self.planned_keys if k not in self._index and k not in self.failed]

    @property
    def is_complete(self) -> bool:
        return not self.missing

    def __len__(self):
        return self.n_rows

    def __contains__(self, key):
        return key in self._index

    def _positions(self, keys) -> np.ndarray:
        keys = [keys] if isinstance(keys, str) else list(keys)
        try:
            return np.fromiter((self._position[k] for k in keys), dtype=np.int64, count=len(keys))
        except KeyError as exc:
            key = exc.args[0]
            reason = f" (failed: {self.failed[key]})" if key in self.failed else ""
            raise Task1aError(f"feature store {self.path} has no features for {key}{reason}; extract them (rerun the feature stage)") from None

    def segment_counts(self, keys) -> np.ndarray:
        """Rows (segments) of each key, ``(n_keys,)`` int64."""
        return self._counts[self._positions(keys)]

    def rows_of(self, keys) -> np.ndarray:
        """Row indices of every segment of ``keys``, key by key in the order given, ``(n_rows,)`` int64."""
        positions = self._positions(keys)
        starts, counts = self._starts[positions], self._counts[positions]
        if counts.size and np.all(counts == 1):
            return starts
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.repeat(starts, counts) + offsets

    @property
    def data(self):
        """All rows ``(n_rows, *row_shape)``, memory-mapped (nothing is loaded until indexed).

        The stored dtype: float32 or float16 raw log-mel, or int16 for an ``int16`` store (use
        :meth:`read` to get float32 values).
        """
        if self._data is None:
            if self.n_rows == 0:
                self._data = np.empty((0,) + self.row_shape, dtype=self.dtype)
            else:
                self._data = np.memmap(self.path / "data.bin", dtype=self.dtype, mode="r", shape=(self.n_rows,) + self.row_shape)
        return self._data

    def read(self, rows) -> np.ndarray:
        """Rows ``(len(rows), *row_shape)`` float32: as stored (float32 or float16), or for an int16 store ``int16 / 32767``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1:
            raise Task1aError(f"FeatureStore.read: rows must be a 1-D list of row indices, got shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise Task1aError(f"FeatureStore.read: row index out of range [0, {self.n_rows}) for {self.path}")
        block = self.data[rows]
        return from_official_int16(block) if self.storage == "int16" else np.asarray(block, dtype=np.float32)


def _storage_dtype(storage, where):
    """The numpy dtype of a store's rows; one clear error for an unknown storage name."""
    if storage not in STORAGE_TYPES:
        raise Task1aError(f"feature storage '{storage}' ({where}) is unknown (known: {', '.join(STORAGE_TYPES)})")
    return STORAGE_TYPES[storage]


def _json_ready(value):
    """Parameters as JSON compares them after a round trip (numpy scalars to Python)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def store_manifest(extractor_params: dict, segment_samples: int, storage: str, row_shape, keys) -> dict:
    """The manifest of a store of ``keys`` (in order), each cut into segments of ``segment_samples``,
    one row ``row_shape`` of ``storage`` (float32, float16 or int16) per segment, made with ``extractor_params``.

    What :class:`StoreWriter` is opened with: a new store gets it, an existing one must agree with it
    on everything but the keys (which are added to its planned keys).
    """
    _storage_dtype(storage, "store_manifest storage")
    return {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "extractor": _json_ready(extractor_params),
        "segment_samples": int(segment_samples),
        "storage": storage,
        "row_shape": [int(n) for n in row_shape],
        "keys": [str(k) for k in keys],
    }


# ------------------------------------------------------------------------------- parallel workers
_WORKER = {}


def limit_blas_threads():
    """One BLAS thread in this process (the workers are the parallelism): the limit to undo, or None.

    Only where some library allows more: setting OpenBLAS's thread count in a forked child that
    inherited a limit of one restarts its thread pool, whose spinning threads then take CPU from
    the workers (measured: a fresh worker's first blocks ran 2-3x slower).
    """
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None
    if all(pool.get("num_threads", 1) <= 1 for pool in threadpool_info()):
        return None
    return threadpool_limits(1)


def _init_worker(extractor, segment_samples, storage):
    _WORKER["limits"] = limit_blas_threads()  # none needed when forked from extract_to_store's process
    _WORKER.update(extractor=extractor, segment_samples=segment_samples, storage=storage)


def _extract_chunk(task):
    """Load, segment and extract one chunk of files: ``(chunk index, keys, counts, rows, failed)``.

    Each file is read into the worker's reused buffers (:class:`ReadBuffers`: no fresh pages per
    file), and each segment's row is extracted straight from that view into the chunk's rows.
    """
    chunk_index, items = task
    extractor, segment_samples, storage = _WORKER["extractor"], _WORKER["segment_samples"], _WORKER["storage"]
    buffers = _WORKER.setdefault("buffers", ReadBuffers())
    row_shape = tuple(extractor.row_shape(segment_samples))
    keys, counts, rows, failed = [], [], [], {}
    for path, key in items:
        try:
            clip_segments = segment_audio(load_audio(path, extractor.fs, True, True, buffers), segment_samples)
        except Task1aError as exc:
            failed[key] = str(exc)
            continue
        except Exception as exc:  # any decoder failure is recorded for the caller, never fatal
            failed[key] = f"cannot read audio file {path}: {type(exc).__name__}: {exc}"
            continue
        features = np.empty((len(clip_segments),) + row_shape,
                            dtype=np.float32 if storage == "float32" else np.float64)  # float16 and int16 from the float64 values
        for segment, row in zip(clip_segments, features):
            extractor.extract_into(segment, row)  # float64 values, cast to float32 on the way
        rows.append(to_official_int16(features) if storage == "int16" else features.astype(STORAGE_TYPES[storage], copy=False))  # per clip
        keys.append(key)
        counts.append(len(clip_segments))
    return chunk_index, keys, counts, np.concatenate(rows) if rows else None, failed


def pool_context(preload: Sequence[str] = ("utils.feature_store",)):
    """fork (instant start) unless TensorFlow is loaded here: forking its threads can deadlock, so then
    forkserver (workers forked from a clean server process that imports only the modules ``preload``)."""
    if "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


class StoreWriter:
    """The single writer of a store: appends chunk rows to data.bin, then commits a journal line.

    Opened with a :func:`store_manifest`; holds the store's lock until :meth:`close`.
    """

    def __init__(self, store_dir, manifest: dict):
        store_dir = Path(store_dir)
        self.path = store_dir
        store_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(store_dir / ".lock", "a")
        try:
            lock_file(self._lock)
        except OSError:
            self._lock.close()
            raise Task1aError(f"feature store {store_dir} is being written by another process; wait for it or use another folder") from None
        manifest_path = store_dir / "manifest.json"
        if manifest_path.exists():
            store = FeatureStore(store_dir)
            for field in ("extractor", "segment_samples", "storage", "row_shape"):
                existing = {"extractor": store.extractor_params, "segment_samples": store.segment_samples, "storage": store.storage,
                            "row_shape": list(store.row_shape)}[field]
                if existing != manifest[field]:
                    self.close()
                    raise Task1aError(f"feature store {store_dir} was made with {field}={existing}, not {manifest[field]}; delete it or choose another folder")
            planned = list(dict.fromkeys(store.planned_keys + manifest["keys"]))
            if planned != store.planned_keys:
                write_json_atomic(manifest_path, dict(manifest, keys=planned))
        else:
            write_json_atomic(manifest_path, manifest)
            store = FeatureStore(store_dir)
        # Cut off what a killed run left beyond the last committed line, then append.
        self.rows = store.n_rows
        self.row_bytes = store.row_bytes
        self._data = open(store_dir / "data.bin", "r+b" if (store_dir / "data.bin").exists() else "w+b")  # not "a": Linux pwrite ignores offsets in append mode
        self._data.truncate(self.rows * self.row_bytes)
        self._journal = open(store_dir / "journal.jsonl", "ab+")
        self._journal.truncate(store._journal_bytes)
        self._pending = {"keys": [], "counts": [], "failed": {}}

    def add(self, keys, counts, rows, failed):
        """Write a chunk's rows after the last row; they count once :meth:`commit` journals them."""
        if rows is not None:
            offset = (self.rows + sum(self._pending["counts"])) * self.row_bytes
            try:
                os.pwrite(self._data.fileno(), np.ascontiguousarray(rows).tobytes(), offset)
            except OSError as exc:  # a full disk: what is journaled stays valid, a rerun resumes from it
                raise Task1aError(f"cannot write {self.path / 'data.bin'}: {exc.strerror}; free disk space (or choose another folder), "
                                  "then rerun to resume") from None
        self._pending["keys"] += keys
        self._pending["counts"] += counts
        self._pending["failed"].update(failed)

    def commit(self):
        """Make the rows written so far durable (fsync), then journal them in one line."""
        if not self._pending["keys"] and not self._pending["failed"]:
            return
        os.fsync(self._data.fileno())
        record = {"start": self.rows, **self._pending}
        self._append_journal((json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
        self.rows += sum(self._pending["counts"])
        self._pending = {"keys": [], "counts": [], "failed": {}}

    def _append_journal(self, line: bytes):
        self._journal.write(line)
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def close(self):
        for name in ("_data", "_journal"):
            handle = getattr(self, name, None)
            if handle is not None:
                handle.close()
        unlock_file(self._lock)
        self._lock.close()


def extract_to_store(
    audio_paths: Sequence,
    keys: Sequence[str],
    store_dir,
    extractor,
    segment_length_seconds: float = 1.0,
    n_jobs: int = -1,
    progress: bool = True,
    storage: str = "float32",
    chunk_size: int = 64,
    retry_failed: bool = True,
    max_chunks: int | None = None,
) -> FeatureStore:
    """Extract the rows of every file into the store at ``store_dir``; resume what an earlier run left.

    Each file is loaded at ``extractor.fs`` (:func:`utils.audio.load_audio`, strictly), cut into whole
    segments of ``segment_length_seconds`` (:func:`utils.audio.segment_audio`) and each segment becomes
    one row ``extractor.row_shape(segment_samples)`` (``extractor.extract_into``; see the module's
    extractor protocol): float32 (``storage='float32'``), float16 (``'float16'``) or the official int16 representation
    (``'int16'``: per-segment max-abs scaling, computed from the float64 rows).
    Keys already stored are skipped; files that fail are recorded in ``.failed`` (key -> reason)
    and tried again by the next run when ``retry_failed``; nothing about one file stops the run.
    ``n_jobs`` worker processes (-1: all cores, :func:`utils.settings.worker_count`) each load and extract ``chunk_size``
    files at a time; the calling process writes. ``max_chunks`` stops after that many chunks (a time-boxed
    run; the next call resumes). Returns the reopened store.
    """
    keys = _check_extract_request(audio_paths, keys, extractor, segment_length_seconds, storage, chunk_size)
    segment_samples = int(round(segment_length_seconds * extractor.fs))
    jobs = worker_count(n_jobs)
    store_dir = Path(store_dir)
    manifest = store_manifest(extractor.params, segment_samples, storage, extractor.row_shape(segment_samples), keys)
    writer = StoreWriter(store_dir, manifest)
    try:
        done = FeatureStore(store_dir)
        pending = [(str(p), k) for p, k in zip(audio_paths, keys) if k not in done and not (k in done.failed and not retry_failed)]
        chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
        if max_chunks is not None:
            chunks = chunks[:max_chunks]
        _write_chunks(writer, chunks, extractor, segment_samples, storage, jobs, progress)
    finally:
        writer.close()  # an interrupted run loses at most the rows since the last commit
    return FeatureStore(store_dir)


def _check_extract_request(audio_paths, keys, extractor, segment_length_seconds, storage, chunk_size) -> list:
    """:func:`extract_to_store`'s arguments checked before any work: the keys as strings, or one clear error."""
    if len(audio_paths) != len(keys):
        raise Task1aError(f"extract_to_store: {len(audio_paths)} audio paths but {len(keys)} keys; give one key per file")
    keys = [str(k) for k in keys]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise Task1aError(f"extract_to_store: key {duplicate} appears more than once; keys must be unique")
    lacking = [name for name in EXTRACTOR_PROTOCOL if not hasattr(extractor, name)]
    if lacking:
        raise Task1aError(f"extract_to_store: the extractor ({type(extractor).__name__}) lacks {', '.join(lacking)}; give an extractor such as "
                          "utils.features.LogMelExtractor")
    _storage_dtype(storage, "extract_to_store storage")
    if not isinstance(segment_length_seconds, (int, float)) or segment_length_seconds <= 0:
        raise Task1aError(f"segment_length_seconds must be a positive number, got {segment_length_seconds!r}; fix feature_extractor.segment_length_seconds")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise Task1aError(f"extract_to_store: chunk_size must be a positive integer, got {chunk_size!r}")
    return keys


def _write_chunks(writer: StoreWriter, chunks: list, extractor, segment_samples: int, storage: str, jobs: int, progress: bool) -> None:
    """Extract ``chunks`` of ``(path, key)`` in ``jobs`` worker processes (or here), writing their rows in order."""
    tasks = list(enumerate(chunks))
    from tqdm import tqdm

    bar = tqdm(total=sum(len(c) for c in chunks), desc="features", unit="file", disable=None if progress else True, smoothing=0.1)
    jobs = max(1, min(jobs, len(tasks)))
    pool = None
    # Limited here (before the workers fork, undone below) so that forked workers inherit it.
    _WORKER["limits"] = limit_blas_threads()
    if jobs == 1:
        _WORKER.update(extractor=extractor, segment_samples=segment_samples, storage=storage)
        results = map(_extract_chunk, tasks)
    else:
        # concurrent.futures rather than multiprocessing.Pool: Pool.terminate() after an error here
        # (a full disk) can hang for ever when it kills a worker that holds the result queue's lock
        # (seen in tests); the executor cancels what has not started and lets running chunks end.
        from concurrent.futures import ProcessPoolExecutor

        context = pool_context(("utils.feature_store", type(extractor).__module__))
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(extractor, segment_samples, storage))
        results = pool.map(_extract_chunk, tasks)  # in order: rows land in the order of the keys
    finished = False
    try:
        last_commit = -math.inf  # the first chunk is journaled at once: a run killed early has stored something
        for _, chunk_keys, counts, rows, failed in results:
            writer.add(chunk_keys, counts, rows, failed)
            bar.update(len(chunk_keys) + len(failed))
            if time.monotonic() - last_commit >= COMMIT_SECONDS:
                writer.commit()
                last_commit = time.monotonic()
        writer.commit()
        finished = True
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=finished, cancel_futures=True)
        if _WORKER.get("limits") is not None:
            _WORKER.pop("limits").unregister()
