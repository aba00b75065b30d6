"""Testing: running a TFLite model over a test list or over any recordings, writing the system output.

Owns the clip-level prediction (a clip's probabilities are the mean over its segments' softmax rows)
from a feature store or straight from audio files (``--predict``). Features are normalised exactly as
the model was trained (:class:`utils.features` normalisers, stored with the model); the interpreter
and its int8 quantisation live in :mod:`utils.tflite`; the output file format in
:mod:`utils.submission`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from utils.errors import Task1aError

log = logging.getLogger("task1a")

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif", ".au")


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
    """Clip probabilities ``(n_clips, n_classes)`` for ``keys`` of a feature store, in ``keys`` order."""
    from tqdm import tqdm

    rows = store.rows_of(keys)
    counts = np.asarray(store.segment_counts(keys))
    outputs = []
    for start in tqdm(range(0, len(rows), batch_size), desc="testing", unit="batch", disable=not progress, leave=False):
        batch = normalizer(store.read(rows[start : start + batch_size]))
        outputs.append(classifier.predict_proba(batch))
    if not outputs:
        return np.zeros((0, len(counts)))
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


def predict_recordings(recordings, classifier, extractor, normalizer, segment_length_seconds: float = 1.0, progress: bool = True):
    """Classify whole recordings of any rate, channel count and length.

    Each file is loaded as the features spec says (downmix, resample to the extractor's rate), cut
    into whole segments (a file shorter than one segment is zero-padded to one), each segment gives a
    log-mel matrix, normalised as in training; the file's probabilities are the mean over segments.

    Returns ``(names, probabilities (n_files, n_classes), failures {name: reason})``.
    """
    from tqdm import tqdm

    from utils.features import load_audio, segment_audio

    names, rows, failures = [], [], {}
    segment_samples = int(round(segment_length_seconds * extractor.fs))
    for path, name in tqdm(recordings, desc="predicting", unit="file", disable=not progress, leave=False):
        try:
            audio = load_audio(path, fs=extractor.fs, mono=True, strict=True)
        except Task1aError as exc:
            failures[name] = str(exc)
            continue
        segments = segment_audio(audio, segment_samples)
        features = normalizer(extractor.extract_batch(segments))
        rows.append(classifier.predict_proba(features).mean(axis=0))
        names.append(name)
    probabilities = np.vstack(rows) if rows else np.zeros((0, 0))
    return names, probabilities, failures
