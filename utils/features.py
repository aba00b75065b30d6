"""Log-mel features of the official baseline, exactly, fast, in one resumable store.

Owns everything between an audio file and the feature matrix the network sees:

- :func:`load_audio`: read, down-mix and resample exactly as dcase_util ``AudioContainer.load``
  (spec ``../shared/spec/features.md`` sections 1-3);
- :class:`LogMelExtractor`: the dcase_util ``MelExtractor`` log-mel (sections 4-7), one clip in
  float64 (:meth:`~LogMelExtractor.extract`) or many clips per vectorised STFT
  (:meth:`~LogMelExtractor.extract_batch`);
- :func:`segment_audio`: cut recordings into whole segments (1 s for TAU 2022);
- :func:`extract_to_store` / :class:`FeatureStore`: every file of a dataset, in parallel, into one
  store that survives ``kill -9`` and resumes;
- the normalisations of ``data_processing.normalization``: :func:`normalize_max_abs_int16` (the
  official per-clip int16 storage quirk), ``none`` and :class:`MeanStdNormalizer`.

Command line (features of the whole file, before any normalisation, float32 ``(n_mels, n_frames)``)::

    python -m utils.features AUDIO.wav -o OUT.npy
    python -m utils.features DIR -o STORE [--jobs N]

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import multiprocessing
import os
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile

from utils.errors import Task1aError
from utils.files import atomic_path, lock_file, unlock_file, write_json_atomic

# numpy.spacing(1) = 2**-52: dcase_util adds it to the signal before the STFT and to the mel
# energies before the log (spec sections 4.1 and 7).
EPS = float(np.spacing(1))

SPECTROGRAM_TYPES = ("magnitude", "power")
# dcase_util SpectralFeatureExtractor.get_window_function: name -> (scipy window, symmetric)
WINDOW_TYPES = {
    "hamming_asymmetric": ("hamming", False),
    "hamming_symmetric": ("hamming", True),
    "hamming": ("hamming", True),
    "hann_asymmetric": ("hann", False),
    "hann_symmetric": ("hann", True),
    "hann": ("hann", True),
}
NORMALIZATIONS = ("max_abs_int16", "none", "mean_std")
STORAGE_TYPES = {"float32": np.float32, "int16": np.int16}
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aif", ".aiff", ".au", ".m4a")
# The official int16 representation: x * 32767 stored as int16, read back as int16 / 32767.
INT16_SCALE = 32767.0


# ============================================================================================ audio
# (format tag, bits) -> (stored dtype, libsndfile's float64 scale); "i3" = packed 24-bit
_PLAIN_WAV_LAYOUTS = {
    (1, 16): ("<i2", 2.0**-15),
    (1, 24): ("i3", 2.0**-31),  # applied to v * 256, see below
    (1, 32): ("<i4", 2.0**-31),
    (3, 32): ("<f4", None),
    (3, 64): ("<f8", None),
}


def _read_wav_fast(path: Path):
    """``(data (channels, n) float64, fs, is_float)`` of a plain PCM/float WAV exactly as ``soundfile.read``, or None.

    Why this exists: libsndfile converts 24-bit samples to float64 one at a time (about 0.4 ms
    for a 1 s clip, half the whole feature budget); numpy does the same exact conversion (a
    power-of-two scaling) several times faster. Only PCM 16/24/32 and float 32/64 (also
    WAVE_FORMAT_EXTENSIBLE) are handled; anything else, or any header this parser does not fully
    understand (truncated data, odd block sizes), returns None and goes through soundfile. So a
    result also means that the file is not truncated (:func:`wav_truncation` walks the same chunks).
    The file is read in one call: its data chunk is nearly all of it.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        size = len(raw)
        if size < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
            return None
        fmt, position = None, 12
        while position + 8 <= size:
            chunk_id, chunk_size = raw[position : position + 4], int.from_bytes(raw[position + 4 : position + 8], "little")
            if chunk_id == b"fmt ":
                fmt = raw[position + 8 : position + 8 + min(chunk_size, 40)]
            elif chunk_id == b"data":
                break
            position += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
        else:
            return None
        if fmt is None or len(fmt) < 16:
            return None
        tag, channels = int.from_bytes(fmt[0:2], "little"), int.from_bytes(fmt[2:4], "little")
        fs, block_align, bits = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[12:14], "little"), int.from_bytes(fmt[14:16], "little")
        if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
            tag = int.from_bytes(fmt[24:26], "little")
        layout = _PLAIN_WAV_LAYOUTS.get((tag, bits))
        if (layout is None or channels < 1 or fs < 1 or block_align != channels * bits // 8
                or chunk_size > size - (position + 8) or chunk_size % block_align):
            return None  # unusual or truncated: let libsndfile decide what it means
        dtype, scale = layout
        n_frames = chunk_size // block_align
        n_values = n_frames * channels
        if dtype == "i3":
            # Read from one byte before the data, so that each 24-bit value v is the top three
            # bytes of a little-endian int32 whose low byte is the byte before it:
            # (int32 & ~0xFF) = v * 256, and v * 256 / 2**31 = v / 2**23, libsndfile's scaling.
            words = np.ndarray((n_values,), dtype="<i4", buffer=raw, offset=position + 7, strides=(3,))
            values = np.bitwise_and(words, -256)
        else:
            values = np.frombuffer(raw, dtype=dtype, count=n_values, offset=position + 8)
    except (OSError, ValueError, TypeError):
        return None
    data = values.astype(np.float64)  # integers and float32 convert exactly
    if scale is not None:
        data *= scale  # a power of two: exact, as libsndfile's division
    return data.reshape(n_frames, channels).T, fs, scale is None


def _read_any(path: Path):
    """``(data (channels, n) float64, fs)`` via soundfile, else librosa (audioread) for what libsndfile cannot decode."""
    try:
        data, fs = soundfile.read(str(path), dtype="float64", always_2d=True)
        return data.T, fs
    except Exception as soundfile_error:  # libsndfile cannot decode it: try librosa's audioread backend
        if path.suffix.lower() == ".wav":
            raise Task1aError(f"cannot read audio file {path}: {soundfile_error}; check that it is a valid WAV file (re-encode or restore it)") from None
        try:
            import librosa

            with warnings.catch_warnings():  # librosa warns that it falls back to audioread: we know
                warnings.simplefilter("ignore")
                data, fs = librosa.load(str(path), sr=None, mono=False, dtype=np.float64)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            raise Task1aError(f"cannot read audio file {path}: {soundfile_error} (audioread: {reason}); check that it is a valid audio file (WAV, FLAC, MP3, OGG)") from None
        return np.atleast_2d(data), int(fs)


def wav_truncation(path) -> str | None:
    """Why a RIFF WAV file is cut short (its data chunk declares more bytes than the file holds), or None.

    libsndfile (and so dcase_util) silently reads whatever part of such a file is there; for a dataset
    file that is a broken download or copy, and its features would be silently wrong. Sizes 0 and
    0xFFFFFFFF (streaming writers that never fill in the length) are not counted as truncation.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                return None
            size = os.fstat(handle.fileno()).st_size
            position = 12
            while position + 8 <= size:
                handle.seek(position)
                chunk = handle.read(8)
                chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if chunk_id == b"data":
                    available = size - (position + 8)
                    if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                        return f"its data chunk declares {chunk_size} bytes but the file holds {available}"
                    return None
                position += 8 + chunk_size + (chunk_size & 1)
    except OSError:
        return None
    return None


def load_audio(path, fs: int = 44100, mono: bool = True, strict: bool = False) -> np.ndarray:
    """Load an audio file exactly as dcase_util ``AudioContainer.load(filename, mono, fs)`` (spec sections 1-3).

    Samples are libsndfile's float64 scaling (PCM ``v / 2**(bits-1)``, float as stored), the
    channels are averaged (``numpy.mean``) *before* resampling, and a rate other than ``fs`` is
    converted with ``librosa.resample(res_type='kaiser_best')`` (resampy, then ``fix_length`` to
    ``ceil(n * fs / rate)``). dcase_util reads non-WAV files with ``librosa.load`` in float32;
    here every format is read in float64 (the difference is below 1e-7 of full scale).

    ``strict`` also rejects a truncated WAV file (:func:`wav_truncation`) instead of reading the part
    that is there as libsndfile does: dataset files are extracted strictly.

    Returns ``(n_samples,)`` float64 when ``mono``, else ``(n_channels, n_samples)``.
    Raises :class:`Task1aError` naming the file for a missing, empty, unreadable or non-finite file.
    """
    path = Path(path)
    if not isinstance(fs, (int, np.integer)) or isinstance(fs, bool) or fs <= 0:
        raise Task1aError(f"load_audio: fs must be a positive integer sampling rate, got {fs!r}")
    try:
        status = os.stat(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        raise Task1aError(f"audio file {path} not found; check the dataset path (or download the dataset)")
    if status.st_size == 0:
        raise Task1aError(f"audio file {path} is empty (0 bytes); restore it from the dataset archive")
    is_wav = path.suffix.lower() == ".wav"
    loaded = _read_wav_fast(path) if is_wav else None  # a result: a plain WAV file, not truncated
    if loaded is None:
        if strict and is_wav:
            truncation = wav_truncation(path)
            if truncation:
                raise Task1aError(f"audio file {path} is truncated ({truncation}); restore it from the dataset archive")
        loaded = (*_read_any(path), True)
    data, source_fs, is_float = loaded
    if data.shape[-1] == 0:
        raise Task1aError(f"audio file {path} has no samples; restore it from the dataset archive")
    if is_float and not np.all(np.isfinite(data)):  # integer PCM is always finite
        raise Task1aError(f"audio file {path} contains NaN or infinite samples; restore or re-encode it")
    if mono:
        data = data[0] if data.shape[0] == 1 else np.mean(data, axis=0)
    if source_fs != fs:
        import librosa  # resampy is numba-compiled: import only when a file needs it

        try:
            data = librosa.resample(data, orig_sr=source_fs, target_sr=fs, res_type="kaiser_best")
        except Exception as exc:  # e.g. a handful of samples resampy cannot filter
            raise Task1aError(f"cannot resample audio file {path} from {source_fs} Hz to {fs} Hz: {exc}; check the file") from None
    return data


def segment_audio(y: np.ndarray, segment_samples: int) -> np.ndarray:
    """Cut ``y (n_samples,)`` into whole segments ``(n_segments, segment_samples)``.

    The remainder after the last whole segment is dropped (the TAU 2022 clips are exactly one
    segment). A signal shorter than one segment is zero-padded at the end to one segment, so
    every file gives at least one segment; note that its features then differ from the features
    of the unpadded file (the zeros take part in the STFT).
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise Task1aError(f"segment_audio: expected a non-empty mono signal (n_samples,), got shape {y.shape}")
    if not isinstance(segment_samples, (int, np.integer)) or segment_samples <= 0:
        raise Task1aError(f"segment_audio: segment_samples must be a positive integer, got {segment_samples!r}")
    n_segments = len(y) // segment_samples
    if n_segments == 0:
        padded = np.zeros(segment_samples, dtype=y.dtype)
        padded[: len(y)] = y
        return padded[None, :]
    return y[: n_segments * segment_samples].reshape(n_segments, segment_samples)


# ======================================================================================= extractor
class LogMelExtractor:
    """The dcase_util ``MelExtractor`` log-mel energies (spec sections 4-7), vectorised over clips.

    Parameters are those of ``feature_extractor_method_parameters.mel`` in task1a.yaml.
    ``win_length_samples = int(fs * win_length_seconds)`` and ``hop_length_samples =
    int(fs * hop_length_seconds)`` as dcase_util computes them.

    What is computed, for a signal ``y`` at ``fs``: ``|STFT(y + eps)|`` (centred frames, zero
    padding, the window zero-padded centred to ``n_fft``), squared for ``power``; the librosa
    Slaney (or HTK) mel basis in float32 (divided by each band's peak when
    ``normalize_mel_bands``); ``ln(mel + eps)`` when ``logarithmic``. All in float64.

    The mel product only visits each band's non-zero bins (about 2,000 of the 41,000 basis
    entries at the official setting): a 20x smaller product with the same terms.

    Everything stays in float64 on purpose: a float32 STFT is ~1.7x faster but deviates by up to
    1e-4 on real recordings (measured on ../shared/data/real/audio), the whole tolerance.
    """

    #: clips per block in :meth:`extract_batch` and the store workers: its frames share one mel
    #: product row grouping (see :meth:`_extract_into`); kept at 16 so stored values stay bit-identical
    clips_per_block = 16
    #: frames per window / FFT / mel pass: small enough to stay in cache (64 rows: about 2.5 MB
    #: of work buffers); a multiple of 4 (see :meth:`_extract_into`)
    rows_per_pass = 64

    def __init__(
        self,
        fs: int = 44100,
        win_length_seconds: float = 0.04,
        hop_length_seconds: float = 0.02,
        spectrogram_type: str = "magnitude",
        window_type: str = "hamming_asymmetric",
        n_mels: int = 40,
        n_fft: int = 2048,
        fmin: float = 0,
        fmax: float | None = None,
        htk: bool = False,
        normalize_mel_bands: bool = False,
        logarithmic: bool = True,
    ):
        def number(name, value, integer=False, positive=True):
            kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or (value <= 0 if positive else value < 0):
                raise Task1aError(f"feature extractor parameter {name} must be a {'positive' if positive else 'non-negative'} {'integer' if integer else 'number'}, got {value!r}; fix task1a.yaml")
            return value

        number("fs", fs, integer=True)
        number("win_length_seconds", win_length_seconds)
        number("hop_length_seconds", hop_length_seconds)
        number("n_mels", n_mels, integer=True)
        number("n_fft", n_fft, integer=True)
        number("fmin", fmin, positive=False)
        if fmax is None:
            fmax = fs / 2.0
        number("fmax", fmax)
        if spectrogram_type not in SPECTROGRAM_TYPES:
            raise Task1aError(f"feature extractor parameter spectrogram_type '{spectrogram_type}' is unknown (known: {', '.join(SPECTROGRAM_TYPES)}); fix task1a.yaml")
        if window_type not in WINDOW_TYPES:
            raise Task1aError(f"feature extractor parameter window_type '{window_type}' is unknown (known: {', '.join(WINDOW_TYPES)}); fix task1a.yaml")
        for name, flag in (("htk", htk), ("normalize_mel_bands", normalize_mel_bands), ("logarithmic", logarithmic)):
            if not isinstance(flag, (bool, np.bool_)):
                raise Task1aError(f"feature extractor parameter {name} must be true or false, got {flag!r}; fix task1a.yaml")
        if not fmin < fmax <= fs / 2.0:
            raise Task1aError(f"feature extractor parameters need fmin < fmax <= fs / 2 ({fs / 2.0:g}), got fmin={fmin!r}, fmax={fmax!r}; fix task1a.yaml")
        win_length = int(fs * win_length_seconds)
        hop_length = int(fs * hop_length_seconds)
        if win_length < 1 or hop_length < 1:
            raise Task1aError(f"feature extractor window ({win_length_seconds} s) and hop ({hop_length_seconds} s) must be at least one sample at fs={fs}; fix task1a.yaml")
        if win_length > n_fft:
            raise Task1aError(f"feature extractor window ({win_length} samples) is longer than n_fft ({n_fft}); raise n_fft or shorten win_length_seconds in task1a.yaml")

        self.fs = int(fs)
        self.win_length_seconds = win_length_seconds
        self.hop_length_seconds = hop_length_seconds
        self.spectrogram_type = spectrogram_type
        self.window_type = window_type
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.fmin = fmin
        self.fmax = fmax
        self.htk = bool(htk)
        self.normalize_mel_bands = bool(normalize_mel_bands)
        self.logarithmic = bool(logarithmic)
        self.win_length = win_length
        self.hop_length = hop_length
        self._setup()

    def _setup(self):
        import librosa  # imported here: librosa and scipy.signal take seconds to import
        import scipy.signal

        name, symmetric = WINDOW_TYPES[self.window_type]
        # scipy.signal.windows.hamming(n, sym=False) is what dcase_util's scipy.signal.hamming was
        self.window = scipy.signal.windows.get_window(name, self.win_length, fftbins=not symmetric).astype(np.float64)
        # librosa.stft pads the window centred to n_fft; only its non-zero span is multiplied
        self.window_offset = (self.n_fft - self.win_length) // 2
        basis = librosa.filters.mel(sr=self.fs, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax, htk=self.htk)
        if self.normalize_mel_bands:
            basis /= np.max(basis, axis=-1)[:, None]
        self.mel_basis = basis  # (n_mels, 1 + n_fft // 2) float32, as dcase_util keeps it
        self._bands = []  # per band: (first bin, end bin, float64 weights of the non-zero span)
        for row in basis.astype(np.float64):
            nonzero = np.flatnonzero(row)
            lo, hi = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0)
            self._bands.append((lo, hi, np.ascontiguousarray(row[lo:hi])))
        self._buffers = {}

    # pickling for worker processes: the parameters, not the work buffers
    def __getstate__(self):
        return self.params

    def __setstate__(self, params):
        self.__init__(**params)

    def __repr__(self):
        return "LogMelExtractor(" + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    @property
    def params(self) -> dict:
        """The constructor parameters (the names of ``feature_extractor_method_parameters.mel``)."""
        return {
            "fs": self.fs,
            "win_length_seconds": self.win_length_seconds,
            "hop_length_seconds": self.hop_length_seconds,
            "spectrogram_type": self.spectrogram_type,
            "window_type": self.window_type,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "htk": self.htk,
            "normalize_mel_bands": self.normalize_mel_bands,
            "logarithmic": self.logarithmic,
        }

    def n_frames(self, n_samples: int) -> int:
        """Frames of a signal of ``n_samples``: ``1 + (n_samples + 2 (n_fft // 2) - n_fft) // hop`` (librosa, centred)."""
        return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def extract(self, y: np.ndarray) -> np.ndarray:
        """Log-mel of one signal ``y (n_samples,)`` at ``fs``: ``(n_mels, n_frames)`` float64, as dcase_util returns it."""
        Y = self._check_signals(np.asarray(y)[None, :] if np.ndim(y) == 1 else None, "extract", "(n_samples,)")
        out = np.empty((1, self.n_mels, self.n_frames(Y.shape[1])), dtype=np.float64)
        self._extract_into(Y, out)
        return out[0]

    def extract_batch(self, Y: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Log-mel of equal-length clips ``Y (n_clips, n_samples)``: ``(n_clips, n_mels, n_frames)``, float32 by default.

        Computed in float64 exactly as :meth:`extract` (same numbers, then cast), many clips per
        FFT call.
        """
        Y = self._check_signals(Y, "extract_batch", "(n_clips, n_samples)")
        out = np.empty((Y.shape[0], self.n_mels, self.n_frames(Y.shape[1])), dtype=dtype)
        for start in range(0, Y.shape[0], self.clips_per_block):
            self._extract_into(Y[start : start + self.clips_per_block], out[start : start + self.clips_per_block])
        return out

    def _check_signals(self, Y, method, shape):
        if Y is None or Y.ndim != 2 or Y.shape[1] == 0:
            raise Task1aError(f"LogMelExtractor.{method}: expected a float array {shape} with at least one sample, got shape {np.shape(Y)}")
        if not np.issubdtype(Y.dtype, np.floating) and not np.issubdtype(Y.dtype, np.integer):
            raise Task1aError(f"LogMelExtractor.{method}: expected audio samples as floats, got dtype {Y.dtype}")
        return Y

    def _work_buffers(self, n_clips: int, n_samples: int):
        """Reused per shape: fresh multi-megabyte arrays cost more in page faults than the FFT.

        Only the mel energies span the whole block; the centred signal holds one clip and the
        frames, spectrum and magnitude one pass of ``rows_per_pass`` rows, small enough to stay in
        cache from the window product to the mel product (and few pages for a fresh worker to fault in).
        """
        key = (n_clips, n_samples)
        if key not in self._buffers:
            if len(self._buffers) > 4:
                self._buffers.clear()
            n_rows = n_clips * self.n_frames(n_samples)
            pass_rows, n_bins = min(self.rows_per_pass, n_rows), self.n_fft // 2 + 1
            self._buffers[key] = (
                np.zeros(n_samples + 2 * (self.n_fft // 2)),  # one centred clip; the padding stays 0
                np.zeros((pass_rows, self.n_fft)),  # windowed frames; outside the window stays 0
                np.empty((pass_rows, n_bins), dtype=np.complex128),
                np.empty((pass_rows, n_bins)),
                np.empty((self.n_mels, n_rows)),
            )
        return self._buffers[key]

    def _extract_into(self, Y, out: np.ndarray):
        """Log-mel of the clips ``Y`` (an array ``(n_clips, n_samples)`` or a list of ``(n_samples,)``
        arrays of one length) into ``out (n_clips, n_mels, n_frames)``; the list spares a copy."""
        n_clips, n_samples = len(Y), len(Y[0])
        n_frames = out.shape[2]
        n_rows = n_clips * n_frames
        padded, frames, spectrum, magnitude, mel = self._work_buffers(n_clips, n_samples)
        pad = self.n_fft // 2
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.win_length)
        windows = windows[self.window_offset :: self.hop_length][:n_frames]  # (n_frames, win_length) of the centred clip
        span = frames[:, self.window_offset : self.window_offset + self.win_length]
        centred = -1  # the clip now in padded
        # Rows (frames, clip after clip) go through in passes of rows_per_pass. The mel product must
        # see the same row grouping as one product over all rows of the block: OpenBLAS's dgemv
        # computes groups of 4 rows with one kernel and the last n_rows % 4 rows with another
        # (they differ in the last bit), so every pass but the last has a multiple of 4 rows.
        for start in range(0, n_rows, self.rows_per_pass):
            stop = min(start + self.rows_per_pass, n_rows)
            row = start
            while row < stop:  # the frames of this pass, clip by clip
                clip, frame = divmod(row, n_frames)
                if clip != centred:
                    np.add(Y[clip], EPS, out=padded[pad : pad + n_samples])  # eps on every sample, not on the padding
                    centred = clip
                frame_stop = min(n_frames, frame + stop - row)
                np.multiply(windows[frame:frame_stop], self.window, out=span[row - start : row - start + frame_stop - frame])
                row += frame_stop - frame
            n = stop - start
            np.fft.rfft(frames[:n], axis=-1, out=spectrum[:n])
            np.abs(spectrum[:n], out=magnitude[:n])
            if self.spectrogram_type == "power":
                np.square(magnitude[:n], out=magnitude[:n])
            for band, (lo, hi, weights) in enumerate(self._bands):
                if hi > lo:
                    np.dot(magnitude[:n, lo:hi], weights, out=mel[band, start:stop])
                else:
                    mel[band, start:stop] = 0.0
        if self.logarithmic:
            np.add(mel, EPS, out=mel)
            np.log(mel, out=mel)
        out[...] = mel.reshape(self.n_mels, n_clips, n_frames).transpose(1, 0, 2)


# =================================================================================== normalisation
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


def normalize_max_abs_int16(X: np.ndarray) -> np.ndarray:
    """The official normalisation: per-clip max-abs scaling and the int16 round trip, float32 in [-1, 1], same shape."""
    return from_official_int16(to_official_int16(X))


class MeanStdNormalizer:
    """Per mel band mean / standard deviation over every frame of the training rows, accumulated in batches.

    Fit on the training split only (:meth:`partial_fit` batch by batch, so the store is never
    loaded at once); :meth:`transform` gives ``(X - mean) / std`` per band as float32. A band
    with zero spread keeps std 1 (no division by zero).
    """

    def __init__(self):
        self.count = 0
        self.mean = None
        self._m2 = None

    def partial_fit(self, X: np.ndarray) -> "MeanStdNormalizer":
        """Add a batch ``(n_clips, n_mels, n_frames)`` (Chan et al. parallel update, float64)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[0] == 0:
            raise Task1aError(f"MeanStdNormalizer.partial_fit: expected a non-empty (n_clips, n_mels, n_frames) batch, got shape {X.shape}")
        values = X.transpose(1, 0, 2).reshape(X.shape[1], -1)
        n = values.shape[1]
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
        if self.mean is None:
            self.count, self.mean, self._m2 = n, mean, m2
            return self
        if mean.shape != self.mean.shape:
            raise Task1aError(f"MeanStdNormalizer.partial_fit: batch has {mean.shape[0]} mel bands, earlier batches {self.mean.shape[0]}")
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self._m2 = self._m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total
        return self

    def fit(self, X: np.ndarray) -> "MeanStdNormalizer":
        self.__init__()
        return self.partial_fit(X)

    @property
    def std(self) -> np.ndarray:
        if self.mean is None:
            raise Task1aError("MeanStdNormalizer: not fitted; call partial_fit on the training rows first")
        std = np.sqrt(self._m2 / self.count)
        return np.where(std > 0, std, 1.0)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean) / std`` per mel band, ``(n_clips, n_mels, n_frames)`` float32."""
        std = self.std
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[1] != self.mean.shape[0]:
            raise Task1aError(f"MeanStdNormalizer.transform: expected (n_clips, {self.mean.shape[0]}, n_frames), got shape {X.shape}")
        return ((X - self.mean[:, None]) / std[:, None]).astype(np.float32)

    def to_dict(self) -> dict:
        std = self.std
        return {"count": int(self.count), "mean": self.mean.tolist(), "std": std.tolist()}

    @classmethod
    def from_dict(cls, statistics: dict) -> "MeanStdNormalizer":
        try:
            mean = np.asarray(statistics["mean"], dtype=np.float64)
            std = np.asarray(statistics["std"], dtype=np.float64)
            count = int(statistics["count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Task1aError(f"mean_std statistics need count, mean and std lists ({exc}); rerun learning with -o to recompute them") from None
        if mean.ndim != 1 or mean.shape != std.shape or count < 1 or np.any(std <= 0):
            raise Task1aError("mean_std statistics are inconsistent (mean and std of one length, std > 0, count >= 1); rerun learning with -o")
        normalizer = cls()
        normalizer.count, normalizer.mean, normalizer._m2 = count, mean, std**2 * count
        return normalizer


# =========================================================================================== store
# A NumPy memmap + an append-only journal rather than HDF5: a process killed while h5py writes can
# leave the whole file unreadable (HDF5 metadata is not journaled), a memmap is read without any
# library lock from many processes (Keras data loaders), and rows are raw bytes at fixed offsets,
# so reading thousands of random rows per second is just page-cache copies.
#
# Layout of a store folder:
#   manifest.json  extractor parameters, segment length, storage dtype, row shape, planned keys
#                  (written atomically before anything else)
#   data.bin       rows (n_mels, n_frames) of float32 or int16, appended chunk by chunk
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
            raise Task1aError(f"{self.path} is not a feature store (no manifest.json); extract features into it with python -m utils.features DIR -o {self.path}")
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

    @classmethod
    def open(cls, store_dir) -> "FeatureStore":
        """Open an existing store (same as ``FeatureStore(store_dir)``)."""
        return cls(store_dir)

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
        """All rows ``(n_rows, n_mels, n_frames)``, memory-mapped (nothing is loaded until indexed).

        The stored dtype: float32 raw log-mel, or int16 for an ``int16`` store (use :meth:`read`
        to get its float32 values).
        """
        if self._data is None:
            if self.n_rows == 0:
                self._data = np.empty((0,) + self.row_shape, dtype=self.dtype)
            else:
                self._data = np.memmap(self.path / "data.bin", dtype=self.dtype, mode="r", shape=(self.n_rows,) + self.row_shape)
        return self._data

    def read(self, rows) -> np.ndarray:
        """Rows ``(len(rows), n_mels, n_frames)`` float32: the raw log-mel, or for an int16 store ``int16 / 32767``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1:
            raise Task1aError(f"FeatureStore.read: rows must be a 1-D list of row indices, got shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise Task1aError(f"FeatureStore.read: row index out of range [0, {self.n_rows}) for {self.path}")
        block = self.data[rows]
        return from_official_int16(block) if self.storage == "int16" else np.asarray(block, dtype=np.float32)

    def read_normalized(self, rows, normalization: str, normalizer: MeanStdNormalizer | None = None) -> np.ndarray:
        """Rows normalised by ``data_processing.normalization`` (an int16 store already holds ``max_abs_int16``)."""
        if normalization not in NORMALIZATIONS:
            raise Task1aError(f"normalization '{normalization}' is unknown (known: {', '.join(NORMALIZATIONS)}); fix task1a.yaml")
        block = self.read(rows)
        if self.storage == "int16":
            if normalization != "max_abs_int16":
                raise Task1aError(f"feature store {self.path} holds the int16 (max_abs_int16) representation only; extract a float32 store for normalization '{normalization}'")
            return block
        if normalization == "max_abs_int16":
            return normalize_max_abs_int16(block)
        if normalization == "mean_std":
            if normalizer is None:
                raise Task1aError("mean_std normalisation needs a MeanStdNormalizer fitted on the training rows")
            return normalizer.transform(block)
        return block


def _storage_dtype(storage, where):
    """The numpy dtype of a store's rows; one clear error for an unknown storage name."""
    if storage not in STORAGE_TYPES:
        raise Task1aError(f"feature storage '{storage}' ({where}) is unknown (known: {', '.join(STORAGE_TYPES)})")
    return STORAGE_TYPES[storage]


def _json_ready(value):
    """Parameters as JSON compares them after a round trip (numpy scalars to Python)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


# ------------------------------------------------------------------------------- parallel workers
_WORKER = {}


def _limit_blas_threads():
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
    _WORKER["limits"] = _limit_blas_threads()  # none needed when forked from extract_to_store's process
    _WORKER.update(extractor=extractor, segment_samples=segment_samples, storage=storage)


def _extract_chunk(task):
    """Load, segment and extract one chunk of files: ``(chunk index, keys, counts, rows, failed)``.

    Segments are copied into reused block rows and extracted ``clips_per_block`` at a time. Rows
    rather than one block array: above 4 MB numpy asks for huge pages, whose compaction cost a
    fresh worker tens of milliseconds. Reused rather than keeping each file's array until its
    block is done: freeing megabytes at once lets malloc return them to the system, and touching
    them again page by page cost 50 page faults per file (10-30 % of the run).
    """
    chunk_index, items = task
    extractor, segment_samples, storage = _WORKER["extractor"], _WORKER["segment_samples"], _WORKER["storage"]
    row_shape = (extractor.n_mels, extractor.n_frames(segment_samples))
    block = _WORKER.get("block")
    if block is None or len(block) != extractor.clips_per_block or block[0].shape != (segment_samples,):
        block = _WORKER["block"] = [np.empty(segment_samples) for _ in range(extractor.clips_per_block)]
    block_features = _WORKER.get("block_features")  # (clips_per_block, n_mels, n_frames) float64
    if block_features is None or block_features.shape != (extractor.clips_per_block,) + row_shape:
        block_features = _WORKER["block_features"] = np.empty((extractor.clips_per_block,) + row_shape)
    keys, counts, rows, failed, filled = [], [], [], {}, 0

    def extract_block():
        features = block_features[:filled]
        extractor._extract_into(block[:filled], features)
        rows.append(to_official_int16(features) if storage == "int16" else features.astype(np.float32))  # both per clip

    for path, key in items:
        try:
            clip_segments = segment_audio(load_audio(path, fs=extractor.fs, mono=True, strict=True), segment_samples)
        except Task1aError as exc:
            failed[key] = str(exc)
            continue
        except Exception as exc:  # any decoder failure is recorded for the caller, never fatal
            failed[key] = f"cannot read audio file {path}: {type(exc).__name__}: {exc}"
            continue
        keys.append(key)
        counts.append(len(clip_segments))
        for segment in clip_segments:
            block[filled][...] = segment
            filled += 1
            if filled == extractor.clips_per_block:
                extract_block()
                filled = 0
    if filled:
        extract_block()
    return chunk_index, keys, counts, np.concatenate(rows) if rows else None, failed


def _pool_context():
    """fork (instant start) unless TensorFlow is loaded here: forking its threads can deadlock, so then
    forkserver (workers forked from a clean server process that imports only this module)."""
    if "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["utils.features"])
    return context


def _default_jobs(n_jobs: int) -> int:
    if not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
        raise Task1aError(f"n_jobs must be a positive number of processes or -1 (all cores), got {n_jobs!r}; fix feature_extractor.n_jobs")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if n_jobs == -1 else int(n_jobs)


class _StoreWriter:
    """The single writer of a store: appends chunk rows to data.bin, then commits a journal line."""

    def __init__(self, store_dir: Path, manifest: dict):
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
                existing = {"extractor": store.extractor_params, "segment_samples": store.segment_samples, "storage": store.storage, "row_shape": list(store.row_shape)}[field]
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
                raise Task1aError(f"cannot write {self.path / 'data.bin'}: {exc.strerror}; free disk space (or choose another folder), then rerun to resume") from None
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
    extractor: LogMelExtractor,
    segment_length_seconds: float = 1.0,
    n_jobs: int = -1,
    progress: bool = True,
    storage: str = "float32",
    chunk_size: int = 64,
    retry_failed: bool = True,
    max_chunks: int | None = None,
) -> FeatureStore:
    """Extract the log-mel of every file into the store at ``store_dir``; resume what an earlier run left.

    Each file is loaded (:func:`load_audio`), cut into whole segments of
    ``segment_length_seconds`` (:func:`segment_audio`) and each segment becomes one row
    ``(n_mels, n_frames)``: raw float32 log-mel (``storage='float32'``) or the official int16
    representation (``'int16'``: per-segment max-abs scaling, computed from the float64 features).
    Keys already stored are skipped; files that fail are recorded in ``.failed`` (key -> reason)
    and tried again by the next run when ``retry_failed``; nothing about one file stops the run.
    ``n_jobs`` worker processes (-1: all cores) each load and extract ``chunk_size`` files at a
    time; the calling process writes. ``max_chunks`` stops after that many chunks (a time-boxed
    run; the next call resumes). Returns the reopened store.
    """
    if len(audio_paths) != len(keys):
        raise Task1aError(f"extract_to_store: {len(audio_paths)} audio paths but {len(keys)} keys; give one key per file")
    keys = [str(k) for k in keys]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise Task1aError(f"extract_to_store: key {duplicate} appears more than once; keys must be unique")
    if not isinstance(extractor, LogMelExtractor):
        raise Task1aError(f"extract_to_store: extractor must be a LogMelExtractor, got {type(extractor).__name__}")
    _storage_dtype(storage, "extract_to_store storage")
    if not isinstance(segment_length_seconds, (int, float)) or segment_length_seconds <= 0:
        raise Task1aError(f"segment_length_seconds must be a positive number, got {segment_length_seconds!r}; fix feature_extractor.segment_length_seconds")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise Task1aError(f"extract_to_store: chunk_size must be a positive integer, got {chunk_size!r}")
    segment_samples = int(round(segment_length_seconds * extractor.fs))
    jobs = _default_jobs(n_jobs)
    store_dir = Path(store_dir)
    manifest = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "extractor": _json_ready(extractor.params),
        "segment_samples": segment_samples,
        "storage": storage,
        "row_shape": [extractor.n_mels, extractor.n_frames(segment_samples)],
        "keys": keys,
    }
    writer = _StoreWriter(store_dir, manifest)
    try:
        done = FeatureStore(store_dir)
        pending = [(str(p), k) for p, k in zip(audio_paths, keys) if k not in done and not (k in done.failed and not retry_failed)]
        chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
        if max_chunks is not None:
            chunks = chunks[:max_chunks]
        tasks = list(enumerate(chunks))
        from tqdm import tqdm

        bar = tqdm(total=sum(len(c) for c in chunks), desc="features", unit="file", disable=not progress, smoothing=0.1)
        jobs = max(1, min(jobs, len(tasks)))
        pool = None
        # Limited here (before the workers fork, undone below) so that forked workers inherit it.
        _WORKER["limits"] = _limit_blas_threads()
        if jobs == 1:
            _WORKER.update(extractor=extractor, segment_samples=segment_samples, storage=storage)
            results = map(_extract_chunk, tasks)
        else:
            # concurrent.futures rather than multiprocessing.Pool: Pool.terminate() after an error here
            # (a full disk) can hang for ever when it kills a worker that holds the result queue's lock
            # (seen in tests); the executor cancels what has not started and lets running chunks end.
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(jobs, mp_context=_pool_context(), initializer=_init_worker, initargs=(extractor, segment_samples, storage))
            results = pool.map(_extract_chunk, tasks)  # in order: rows land in the order of the keys
        finished = False
        try:
            last_commit = time.monotonic()
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
    finally:
        writer.close()  # an interrupted run loses at most the rows since the last commit
    return FeatureStore(store_dir)


# ============================================================================================= CLI
def _mel_parameters(params_file: Path | None) -> dict:
    """``defaults.feature_extractor_method_parameters.mel`` of task1a.yaml (the official values)."""
    import yaml

    path = params_file or Path(__file__).resolve().parents[1] / "task1a.yaml"
    try:
        return dict(yaml.safe_load(path.read_text())["defaults"]["feature_extractor_method_parameters"]["mel"])
    except FileNotFoundError:
        raise Task1aError(f"parameter file {path} not found; give one with --params") from None
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        raise Task1aError(f"{path} has no defaults.feature_extractor_method_parameters.mel ({exc}); give a task1a.yaml with --params") from None


def audio_files_under(folder: Path) -> list:
    """Audio files (by extension) under ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.features", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="an audio file (-> .npy of its log-mel) or a folder (-> a feature store of every audio file under it)")
    parser.add_argument("-o", "--output", required=True, help="OUT.npy for a file, a store folder for a folder")
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes for a folder (-1: all cores)")
    parser.add_argument("--params", type=Path, default=None, help="task1a.yaml whose defaults.feature_extractor_method_parameters.mel to use (default: the repository's)")
    parser.add_argument("--segment-length", type=float, default=1.0, help="segment length in seconds for a folder (default 1.0)")
    parser.add_argument("--storage", choices=tuple(STORAGE_TYPES), default="float32", help="row type of a store (default float32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        extractor = LogMelExtractor(**_mel_parameters(args.params))
        source = Path(args.source)
        if source.is_dir():
            files = audio_files_under(source)
            if not files:
                raise Task1aError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {source}; give a folder of audio files")
            keys = [p.relative_to(source).as_posix() for p in files]
            store = extract_to_store(files, keys, args.output, extractor, segment_length_seconds=args.segment_length,
                                     n_jobs=args.jobs, progress=not args.no_progress, storage=args.storage)
            print(f"{len(store.keys)} files, {len(store)} segments in {store.path}")
            if store.failed:
                print(f"error: {len(store.failed)} file(s) could not be read and were skipped:", file=sys.stderr)
                for key, reason in store.failed.items():
                    print(f"  {key}: {reason}", file=sys.stderr)
                return 1
            return 0
        features = extractor.extract(load_audio(source, fs=extractor.fs, mono=True)).astype(np.float32)
        output = Path(args.output)
        if output.suffix != ".npy":
            raise Task1aError(f"output {output} must end in .npy (numpy.save would add the suffix)")
        with atomic_path(output) as tmp:
            np.save(tmp, features)
        print(f"{output}: {features.shape[0]} x {features.shape[1]} log-mel (float32)")
        return 0
    except Task1aError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
