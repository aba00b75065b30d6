"""Testing: running a TFLite model over a test list or over any recordings, writing the system output.

Owns the clip-level prediction (a clip's probabilities are the mean over its segments' softmax rows)
from a feature store or straight from audio files (``--predict``). Features are normalised exactly as
the model was trained (:class:`utils.features` normalisers, stored with the model); the interpreter
and its int8 quantisation live in :mod:`utils.tflite`; the output file format in
:mod:`utils.system_output`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from utils.audio import AUDIO_EXTENSIONS
from utils.errors import Task1aError
from utils.settings import worker_count

log = logging.getLogger(__name__)



def clip_probabilities(segment_probabilities: np.ndarray, segment_counts: np.ndarray) -> np.ndarray:
    """Average segment rows into clip rows.

    Parameters
    ----------
    segment_probabilities : (n_segments, n_classes), segments of clip 0 first, then clip 1, ...
    segment_counts : (n_clips,) number of consecutive segments of each clip (>= 1)

    Returns
    -------
    (n_clips, n_classes) mean over each clip's segments
    """
    segment_counts = np.asarray(segment_counts, dtype=np.int64)
    if segment_counts.ndim != 1 or (segment_counts < 1).any():
        raise ValueError("segment_counts must be a 1-D array of positive counts")
    if segment_counts.sum() != len(segment_probabilities):
        raise ValueError(f"segment_counts add up to {segment_counts.sum()}, but there are {len(segment_probabilities)} segment rows")
    starts = np.concatenate([[0], np.cumsum(segment_counts)[:-1]])
    return np.add.reduceat(np.asarray(segment_probabilities, dtype=np.float64), starts, axis=0) / segment_counts[:, None]


def predict_store(classifier, store, keys, normalizer, batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """Clip probabilities ``(n_clips, n_classes)`` for ``keys`` of a feature store, in ``keys`` order.

    The next batch is read, normalised and prepared (quantized for int8 io) on a second thread
    while the interpreter runs the current one (LiteRT releases the GIL in ``invoke``), so the
    stage runs at nearly the interpreter's own rate: the Python work fills the moments when the
    interpreter's threads wait for it. The numbers are those of a plain loop.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    rows = store.rows_of(keys)
    counts = np.asarray(store.segment_counts(keys))
    if len(rows) == 0:
        return np.zeros((0, len(counts)))

    def prepared(start):
        return classifier.prepare_input(normalizer(store.read(rows[start : start + batch_size])))

    starts = range(0, len(rows), batch_size)
    outputs = []
    with ThreadPoolExecutor(1, thread_name_prefix="testing-read") as reader:
        pending = reader.submit(prepared, starts[0])
        for index in tqdm(range(len(starts)), desc="testing", unit="batch", disable=None if progress else True, leave=False):
            batch = pending.result()
            if index + 1 < len(starts):
                pending = reader.submit(prepared, starts[index + 1])
            outputs.append(classifier.predict_prepared(batch))
    return clip_probabilities(np.concatenate(outputs), counts)


def find_recordings(paths) -> list[tuple[Path, str]]:
    """Audio files to classify: ``(path, name as written in the output)``.

    A folder contributes every audio file under it (sorted), named relative to that folder; a file is
    named as given. A path that does not exist raises :class:`Task1aError`.
    """
    found = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS):
                found.append((file, file.relative_to(path).as_posix()))
        elif path.is_file():
            found.append((path, str(given)))
        else:
            raise Task1aError(f"{given} not found; give audio files or folders to --predict")
    if not found:
        raise Task1aError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {', '.join(map(str, paths))}; give audio files or folders")
    return found


#: seconds of audio a ``--predict`` worker holds at once (``recognizer.max_chunk_seconds``)
DEFAULT_MAX_CHUNK_SECONDS = 30.0

_WORKER = {}


def predict_recordings(recordings, classifier, extractor, normalizer, segment_length_seconds: float = 1.0, progress: bool = True,
                       max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS, n_jobs: int | None = None):
    """Classify whole recordings of any rate, channel count and length.

    Each file is read as the features spec says (downmix, resample to the extractor's rate), cut into
    whole segments (a file shorter than one segment is zero-padded to one), each segment gives a
    log-mel matrix, normalised as in training; the file's probabilities are the mean over segments.

    Streaming: a file is read ``max_chunk_seconds`` at a time (:func:`utils.audio.iter_audio_segments`,
    whose segments are bit for bit those of the whole-file load), classified, and only the running
    sum of its segment probabilities is kept, so memory depends on ``max_chunk_seconds``
    (``recognizer.max_chunk_seconds``), not on the length of the recording (a peak of about 60 MB
    of arrays per worker at 30 s of 48 kHz stereo, against 2.8 GB for an hour loaded whole).

    Files are classified in parallel: ``n_jobs`` worker processes (default: the classifier's
    thread count, i.e. ``recognizer.num_threads``; -1: all cores, :func:`utils.settings.worker_count`), each with its own one-thread
    interpreter; with one worker, or one file, everything runs here with ``classifier`` as it is.

    Returns ``(names, probabilities (n_files, n_classes), failures {name: reason})`` in the order
    of ``recordings``.
    """
    from tqdm import tqdm

    recordings = [(Path(path), name) for path, name in recordings]
    jobs = min(worker_count(getattr(classifier, "num_threads", 1) if n_jobs is None else n_jobs), max(1, len(recordings)))
    settings = (extractor, normalizer, int(round(segment_length_seconds * extractor.fs)), float(max_chunk_seconds))
    pool = None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        from utils.feature_store import pool_context

        content = getattr(classifier, "model_content", None)
        context = pool_context(("utils.features",))
        if content is None or (context.get_start_method() != "fork" and not _picklable(settings)):
            log.info("predict: classifying one file at a time (%s)",
                     "the classifier cannot be copied to workers" if content is None else "the normaliser cannot be sent to workers")
            jobs = 1
        else:
            pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                       initargs=(content, classifier.batch_size, settings))
    if pool is None:
        _WORKER.update(classifier=classifier, settings=settings)
        results = map(_classify_recording, recordings)
    else:
        results = pool.map(_classify_recording, recordings)
    names, rows, failures = [], [], {}
    try:
        for name, probabilities, failure in tqdm(results, total=len(recordings), desc="predicting", unit="file", disable=None if progress else True,
                                                 leave=False):
            if failure is not None:
                failures[name] = failure
            else:
                names.append(name)
                rows.append(probabilities)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            _WORKER.clear()
    probabilities = np.vstack(rows) if rows else np.zeros((0, 0))
    return names, probabilities, failures


def _picklable(value) -> bool:
    import pickle

    try:
        pickle.dumps(value)
    except Exception:  # lambdas, local functions: a forkserver worker cannot receive them
        return False
    return True


def _init_worker(model_content: bytes, batch_size: int, settings):
    from utils.feature_store import limit_blas_threads
    from utils.tflite import TFLiteClassifier

    limit_blas_threads()  # the workers are the parallelism
    _WORKER.update(classifier=TFLiteClassifier(model_content, batch_size=batch_size, num_threads=1), settings=settings)


def _classify_recording(item):
    """``(name, mean segment probabilities or None, failure reason or None)`` of one recording, streamed."""
    from utils.audio import iter_audio_segments

    path, name = item
    classifier = _WORKER["classifier"]
    extractor, normalizer, segment_samples, max_chunk_seconds = _WORKER["settings"]
    total, count = None, 0
    try:
        for segments in iter_audio_segments(path, extractor.fs, segment_samples, max_chunk_seconds, strict=True):
            probabilities = classifier.predict_proba(normalizer(extractor.extract_batch(segments)))
            total = probabilities.sum(axis=0) if total is None else total + probabilities.sum(axis=0)
            count += len(probabilities)
    except Task1aError as exc:
        return name, None, str(exc)
    except Exception as exc:  # a decoder failure is this file's, never the run's
        return name, None, f"cannot read audio file {path}: {type(exc).__name__}: {exc}"
    return name, total / count, None
