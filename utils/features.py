"""Log-mel features of the official baseline, exactly, fast, in one resumable store.

Owns everything between an audio file and the feature matrix the network sees:

- :func:`load_audio`: read, down-mix and resample exactly as dcase_util ``AudioContainer.load``
  (spec ``../shared/spec/features.md`` sections 1-3);
- :func:`iter_audio_segments`: the same samples, segment by segment, read a block at a time (a long
  recording never in memory at once), bit for bit what the whole-file load gives;
- :class:`LogMelExtractor`: the dcase_util ``MelExtractor`` log-mel (sections 4-7), one clip in
  float64 (:meth:`~LogMelExtractor.extract`) or many (:meth:`~LogMelExtractor.extract_batch`);
- :func:`segment_audio`: cut recordings into whole segments (1 s for TAU 2022);
- :func:`extract_to_store` / :class:`FeatureStore`: every file of a dataset, in parallel, into one
  store that survives ``kill -9`` and resumes;
- the normalisations of ``data_processing.normalization``: :func:`normalize_max_abs_int16` (the
  official per-clip int16 storage quirk), ``none`` and :class:`MeanStdNormalizer`.

Command line (features of the whole file, before any normalisation, float32 ``(n_mels, n_frames)``)::

    python -m utils.features AUDIO.wav -o OUT.npy
    python -m utils.features DIR -o STORE [--jobs N]

Importing this module does not import TensorFlow, and does no work: soundfile, scipy and librosa
are imported on first use (start-up to the first file is about 0.2 s).
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


class _ReadBuffers:
    """Byte and sample buffers reused from file to file by a process that reads many files.

    A fresh array per file is not free: above 128 KB (a 1 s 24-bit clip is 132 KB) malloc maps new
    pages for it, and faulting them in cost more than reading the file (measured on a 1 s clip: 63 us
    with ``handle.read()``, 27 us with ``readinto`` a reused buffer). What :func:`_read_wav_fast` returns
    with buffers is a view into them, valid until the next file.
    """

    def __init__(self):
        self.raw = bytearray(0)
        self.ints = np.empty(0, dtype=np.int32)
        self.samples = np.empty(0)

    def grow(self, n_bytes: int, n_values: int):
        if len(self.raw) < n_bytes:
            self.raw = bytearray(n_bytes + n_bytes // 4)
        if len(self.ints) < n_values:
            self.ints = np.empty(n_values + n_values // 4, dtype=np.int32)
            self.samples = np.empty(len(self.ints))


def _parse_wav_header(raw, size: int):
    """``(fmt bytes, data chunk position, data chunk size)`` of a RIFF WAVE header in ``raw``, or None."""
    if size < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    fmt, position = None, 12
    while position + 8 <= size:
        chunk_id, chunk_size = bytes(raw[position : position + 4]), int.from_bytes(raw[position + 4 : position + 8], "little")
        if chunk_id == b"fmt ":
            fmt = bytes(raw[position + 8 : position + 8 + min(chunk_size, 40)])
        elif chunk_id == b"data":
            return (fmt, position, chunk_size) if fmt is not None and len(fmt) >= 16 else None
        position += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    return None


def _read_wav_fast(path: Path, buffers: _ReadBuffers | None = None):
    """``(data (channels, n) float64, fs, is_float)`` of a plain PCM/float WAV exactly as ``soundfile.read``, or None.

    Why this exists: libsndfile converts 24-bit samples to float64 one at a time (about 0.4 ms
    for a 1 s clip, half the whole feature budget); numpy does the same exact conversion (a
    power-of-two scaling) several times faster. Only PCM 16/24/32 and float 32/64 (also
    WAVE_FORMAT_EXTENSIBLE) are handled; anything else, or any header this parser does not fully
    understand (truncated data, odd block sizes), returns None and goes through soundfile. So a
    result also means that the file is not truncated (:func:`wav_truncation` walks the same chunks).

    The file is read in one ``readinto`` (its data chunk is nearly all of it) and converted from
    that buffer without a copy; with ``buffers`` (a :class:`_ReadBuffers`) both the bytes and the
    samples live in reused buffers and the result is a view, valid until the next call.
    """
    try:
        # O_NONBLOCK: a FIFO given as an audio file must not block here (it is refused below)
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb", buffering=0) as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                return None
            size = status.st_size
            if buffers is None:
                raw = bytearray(size)
            else:
                buffers.grow(size, 0)
                raw = buffers.raw
            view = memoryview(raw)
            got = 0
            while got < size:
                n = handle.readinto(view[got:size])
                if not n:
                    break
                got += n
        size = got
        header = _parse_wav_header(view, size)  # walks the chunk headers only
        if header is None:
            return None
        fmt, position, chunk_size = header
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
        if buffers is None:
            samples = np.empty(n_values)
        else:
            buffers.grow(0, n_values)
            samples = buffers.samples[:n_values]
        if dtype == "i3":
            # Read from one byte before the data, so that each 24-bit value v is the top three
            # bytes of a little-endian int32 whose low byte is the byte before it:
            # (int32 & ~0xFF) = v * 256, and v * 256 / 2**31 = v / 2**23, libsndfile's scaling.
            words = np.ndarray((n_values,), dtype="<i4", buffer=raw, offset=position + 7, strides=(3,))
            ints = np.empty(n_values, dtype=np.int32) if buffers is None else buffers.ints[:n_values]
            np.bitwise_and(words, -256, out=ints)
            values = ints
        else:
            values = np.frombuffer(raw, dtype=dtype, count=n_values, offset=position + 8)
        if scale is None:
            np.copyto(samples, values)  # float32 -> float64 is exact
        else:
            np.multiply(values, scale, out=samples)  # integer -> float64 exactly, times a power of two: exact, as libsndfile's division
    except (OSError, ValueError, TypeError):
        return None
    return samples.reshape(n_frames, channels).T, fs, scale is None


def _read_any(path: Path):
    """``(data (channels, n) float64, fs)`` via soundfile, else librosa (audioread) for what libsndfile cannot decode."""
    import soundfile  # imported on first use: 0.1 s of start-up that plain WAV files never need

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


def _check_audio_request(path: Path, fs) -> None:
    """One clear error for a bad ``fs`` or a missing, non-regular or empty file."""
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
    The whole file is in memory at once; :func:`iter_audio_segments` reads a long recording in blocks.
    """
    return _load_audio(Path(path), fs, mono, strict)


def _load_audio(path: Path, fs, mono: bool, strict: bool, buffers: _ReadBuffers | None = None) -> np.ndarray:
    """:func:`load_audio`; with ``buffers`` the result may be a view into them (valid until their next use)."""
    if not isinstance(fs, (int, np.integer)) or isinstance(fs, bool) or fs <= 0:
        _check_audio_request(path, fs)
    is_wav = path.suffix.lower() == ".wav"
    loaded = _read_wav_fast(path, buffers) if is_wav else None  # a result: a plain WAV file, not truncated
    if loaded is None:
        _check_audio_request(path, fs)  # missing, not a file, empty: say so (a plain WAV file got here without a stat)
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


def iter_audio_segments(path, fs: int = 44100, segment_samples: int = 44100, max_chunk_seconds: float = 30.0, strict: bool = False):
    """The segments of ``segment_audio(load_audio(path, fs, mono=True, strict), segment_samples)``, read in blocks.

    Yields arrays ``(k, segment_samples)`` float64, in order, each covering at most
    ``max_chunk_seconds`` of the recording (at least one segment), so that memory depends on
    ``max_chunk_seconds``, not on the file's length: an hour of 48 kHz stereo is 2.8 GB as the
    float64 whole file that :func:`load_audio` returns.

    The values are exactly (bit for bit) those of the whole-file path: the blocks are read forward with
    libsndfile (``SoundFile.read``, the same float64 conversion; no seeking), averaged over channels with
    the same ``numpy.mean``, and a rate other than ``fs`` is resampled with resampy's own
    ``kaiser_best`` kernel evaluated at the whole-file output times ``t * (source_fs / fs)`` minus
    the block's (integer) first input sample, which is exact in float64, from an input block that
    holds every tap the filter reaches (plus a margin); librosa's ``fix_length`` zeros after
    resampy's ``int(n * fs / source_fs)`` samples are reproduced. Files libsndfile cannot open
    (e.g. MP3 with an old libsndfile) and recordings shorter than one segment are loaded whole.
    """
    path = Path(path)
    _check_audio_request(path, fs)
    if not isinstance(segment_samples, (int, np.integer)) or isinstance(segment_samples, bool) or segment_samples <= 0:
        raise Task1aError(f"iter_audio_segments: segment_samples must be a positive integer, got {segment_samples!r}")
    if isinstance(max_chunk_seconds, bool) or not isinstance(max_chunk_seconds, (int, float)) or not 0 < max_chunk_seconds < math.inf:
        raise Task1aError(f"max_chunk_seconds must be a positive number of seconds, got {max_chunk_seconds!r}; fix recognizer.max_chunk_seconds")
    if strict and path.suffix.lower() == ".wav":
        truncation = wav_truncation(path)
        if truncation:
            raise Task1aError(f"audio file {path} is truncated ({truncation}); restore it from the dataset archive")
    import soundfile

    try:
        handle = soundfile.SoundFile(str(path))
    except Exception:  # not for libsndfile: the whole-file reader knows the other decoders and says what is wrong
        yield segment_audio(_load_audio(path, fs, True, strict), segment_samples)
        return
    with handle:
        source_fs, n_in = int(handle.samplerate), int(handle.frames)
        if n_in == 0:
            raise Task1aError(f"audio file {path} has no samples; restore it from the dataset archive")

        held = {"start": 0, "samples": np.zeros(0)}  # the mono samples read last, from sample "start" on

        def mono(start: int, stop: int) -> np.ndarray:
            """Mono samples [start, stop): read forward only (no seeking, which some decoders do not do
            sample-exactly), keeping what the previous block shares with this one."""
            kept = held["samples"][max(0, start - held["start"]) :]
            have = held["start"] + len(held["samples"])
            if stop > have:
                data = handle.read(stop - have, dtype="float64", always_2d=True).T  # (channels, n) as soundfile.read(...).T
                if data.shape[1] != stop - have:
                    raise Task1aError(f"audio file {path} ended after {have + data.shape[1]} of its {n_in} frames; restore it")
                if not np.all(np.isfinite(data)):
                    raise Task1aError(f"audio file {path} contains NaN or infinite samples; restore or re-encode it")
                fresh = data[0] if data.shape[0] == 1 else np.mean(data, axis=0)
                kept = np.concatenate([kept, fresh]) if len(kept) else fresh
            held["start"], held["samples"] = start, kept
            return kept[: stop - start]

        if source_fs == fs:
            n_total = n_in
        else:
            resampler = _BlockResampler(source_fs, fs, n_in, path)
            n_total = resampler.n_fixed
        n_segments = n_total // segment_samples
        if n_segments == 0:  # shorter than a segment: small, and zero-padded as a whole
            yield segment_audio(_load_audio(path, fs, True, strict), segment_samples)
            return
        per_block = max(1, int(max_chunk_seconds * fs) // segment_samples)
        for first in range(0, n_segments, per_block):
            start, stop = first * segment_samples, min(n_segments, first + per_block) * segment_samples
            if source_fs == fs:
                block = mono(start, stop)
            else:
                block = resampler.resample(mono, start, stop)
            yield block.reshape(-1, segment_samples)


class _BlockResampler:
    """resampy ``kaiser_best`` (as ``librosa.resample(..., res_type='kaiser_best')`` calls it) for output blocks.

    Mirrors ``resampy.resample`` (the filter scaled by the ratio when down-sampling, its
    differences, ``scale = min(1, ratio)``, output times ``arange(n_out) * (1 / ratio)``) and
    librosa's ``fix_length`` to ``ceil(n_in * ratio)``, but calls resampy's kernel for one block of
    output samples at a time with the input samples their taps reach.
    """

    def __init__(self, source_fs: int, fs: int, n_in: int, path: Path):
        from resampy.filters import get_filter
        from resampy.interpn import resample_f_s

        self._kernel = resample_f_s
        ratio = float(fs) / source_fs
        self.n_resampled = int(n_in * float(fs) / float(source_fs))  # resampy's output length
        self.n_fixed = int(math.ceil(n_in * ratio))  # librosa fix_length
        if self.n_resampled < 1:
            raise Task1aError(f"cannot resample audio file {path} from {source_fs} Hz to {fs} Hz: it has only {n_in} sample(s); check the file")
        window, self._precision, _ = get_filter("kaiser_best")
        if ratio < 1:
            window = ratio * window
        self._window = window
        self._delta = np.diff(window, append=window[-1])
        self._scale = min(1.0, ratio)
        self._time_increment = 1.0 / ratio
        self._taps = len(window) // int(self._scale * self._precision) + 2  # samples each wing can reach
        self._n_in = n_in

    def resample(self, read_mono, start: int, stop: int) -> np.ndarray:
        """Output samples ``[start, stop)`` (float64), reading input with ``read_mono(first, end)``."""
        valid = min(stop, self.n_resampled)  # beyond: fix_length's zeros
        if valid <= start:
            return np.zeros(stop - start)
        times = np.arange(start, valid) * self._time_increment  # exactly resampy's t_out[start:valid]
        first = max(0, int(times[0]) - self._taps)
        end = min(self._n_in, int(times[-1]) + self._taps + 2)
        x = read_mono(first, end)  # its multi-channel block is freed before the output exists
        # times - first is exact (an integer off a float below 2**53), so every index and
        # fraction the kernel derives is the whole-file one; both wings see all their taps.
        np.subtract(times, first, out=times)
        out = np.zeros(stop - start)
        self._kernel(x, times, self._window, self._delta, self._precision, self._scale, out[: valid - start])
        return out


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

    Where a 1 s clip's time goes (about 0.2 ms of one core): the FFT (51 frames of 2048 points,
    numpy's pocketfft) is about 60 % of it; the window product, ``abs``, the sparse mel product
    (:class:`_SparseMel`) and the log share the rest. Frames go through in passes of
    :attr:`rows_per_pass` so that the work arrays stay in cache.

    Everything stays in float64 on purpose: a float32 STFT is ~1.7x faster but deviates by up to
    1e-4 on real recordings (measured on ../shared/data/real/audio), the whole tolerance.
    """

    #: frames per window / FFT / mel pass: a 1 s clip (51 frames) is one pass; 64 rows keep the
    #: work arrays near 2.5 MB. Results do not depend on it (every frame is computed alone).
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
        name, symmetric = WINDOW_TYPES[self.window_type]
        # what dcase_util's scipy.signal.hamming(n, sym=False) was; computed here as scipy does
        self.window = _cosine_window(name, self.win_length, symmetric)
        # librosa.stft pads the window centred to n_fft; only its non-zero span is multiplied
        self.window_offset = (self.n_fft - self.win_length) // 2
        basis = _mel_basis(self.fs, self.n_fft, self.n_mels, self.fmin, self.fmax, self.htk)
        if self.normalize_mel_bands:
            basis /= np.max(basis, axis=-1)[:, None]
        self.mel_basis = basis  # (n_mels, 1 + n_fft // 2) float32, as dcase_util keeps it
        self._mel = _SparseMel(basis.astype(np.float64))
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
        out = np.empty((self.n_mels, self.n_frames(Y.shape[1])), dtype=np.float64)
        self._extract_clip(Y[0], out)
        return out

    def extract_batch(self, Y: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Log-mel of equal-length clips ``Y (n_clips, n_samples)``: ``(n_clips, n_mels, n_frames)``, float32 by default.

        Each clip is computed in float64 exactly as :meth:`extract` (the same numbers, then cast).
        """
        Y = self._check_signals(Y, "extract_batch", "(n_clips, n_samples)")
        out = np.empty((Y.shape[0], self.n_mels, self.n_frames(Y.shape[1])), dtype=dtype)
        for clip, features in zip(Y, out):
            self._extract_clip(clip, features)
        return out

    def _check_signals(self, Y, method, shape):
        if Y is None or Y.ndim != 2 or Y.shape[1] == 0:
            raise Task1aError(f"LogMelExtractor.{method}: expected a float array {shape} with at least one sample, got shape {np.shape(Y)}")
        if not np.issubdtype(Y.dtype, np.floating) and not np.issubdtype(Y.dtype, np.integer):
            raise Task1aError(f"LogMelExtractor.{method}: expected audio samples as floats, got dtype {Y.dtype}")
        return Y

    def _signal_buffer(self, n_samples: int):
        """``(centred signal, its windows)`` for ``n_samples``: the zero padding is written once, then reused."""
        key = ("signal", n_samples)
        if key not in self._buffers:
            self._trim_buffers()
            padded = np.zeros(n_samples + 2 * (self.n_fft // 2))
            windows = np.lib.stride_tricks.sliding_window_view(padded, self.win_length)
            self._buffers[key] = (padded, windows[self.window_offset :: self.hop_length][: self.n_frames(n_samples)])
        return self._buffers[key]

    def _pass_buffers(self, n_rows: int):
        """Work arrays of one pass of ``n_rows`` frames (at most :attr:`rows_per_pass`, so that they stay in cache).

        Frames are rows (the FFT runs along them); the spectrum is written transposed, bins by
        frames, so that the mel product adds contiguous rows of frames.
        """
        key = ("pass", n_rows)
        if key not in self._buffers:
            self._trim_buffers()
            n_bins = self.n_fft // 2 + 1
            self._buffers[key] = (
                np.zeros((n_rows, self.n_fft)),  # windowed frames; outside the window stays 0
                np.empty((n_bins, n_rows), dtype=np.complex128),
                np.empty((n_bins, n_rows)),
                np.empty((self.n_mels, n_rows)),
            )
        return self._buffers[key]

    def _trim_buffers(self):
        if len(self._buffers) > 8:  # many signal lengths (files of every length): keep memory bounded
            self._buffers.clear()

    def _extract_clip(self, y, out: np.ndarray):
        """Log-mel of one signal ``y (n_samples,)`` into ``out (n_mels, n_frames)`` (float64, or cast on the way).

        Per frame, the work and the order of every float64 operation is the spec's: ``y + eps``
        (not the padding), times the window, ``numpy.fft.rfft``, ``numpy.abs``, then the mel
        product, a sum over each band's non-zero bins in ascending bin order
        (:class:`_SparseMel`), ``+ eps`` and ``numpy.log``. No result depends on which other
        frames or clips are computed with it, so a store row equals :meth:`extract` of its segment.
        """
        n_samples, n_frames = len(y), out.shape[1]
        padded, windows = self._signal_buffer(n_samples)
        pad = self.n_fft // 2
        np.add(y, EPS, out=padded[pad : pad + n_samples])  # eps on every sample, not on the padding
        span = slice(self.window_offset, self.window_offset + self.win_length)
        for start in range(0, n_frames, self.rows_per_pass):
            n = min(self.rows_per_pass, n_frames - start)
            frames, spectrum, magnitude, mel = self._pass_buffers(n)
            np.multiply(windows[start : start + n], self.window, out=frames[:, span])
            _rfft_rows(frames, spectrum.T)
            np.abs(spectrum, out=magnitude)
            if self.spectrogram_type == "power":
                np.square(magnitude, out=magnitude)
            self._mel.product(magnitude, mel)
            if self.logarithmic:
                np.add(mel, EPS, out=mel)
                np.log(mel, out=mel)
            out[:, start : start + n] = mel


def _rfft_rows(frames: np.ndarray, out: np.ndarray) -> None:
    """``numpy.fft.rfft(frames, axis=-1)`` into ``out`` (numpy >= 2 writes it there directly)."""
    try:
        np.fft.rfft(frames, axis=-1, out=out)
    except TypeError:  # numpy 1.x: no out argument
        out[...] = np.fft.rfft(frames, axis=-1)


class _SparseMel:
    """The mel product ``basis @ magnitude`` over the basis's non-zero entries only.

    At the official setting 2,046 of the basis's 41,000 entries are non-zero (each band touches a
    few bins; each bin at most two bands). The product is scipy's CSR kernel
    (``csr_matvecs``): for each band, ``mel[band] += weight * magnitude[bin]`` over its non-zero
    bins in ascending order, for all frames at once (``magnitude`` is bins x frames). It is 5x
    faster than per-band ``numpy.dot`` calls and 6x faster than the dense product; its float64
    sums differ from a BLAS dot's in the last bits (so does one BLAS from another), below a
    float32 step: the stored float32 features are unchanged (the tests compare them bit for bit).
    """

    def __init__(self, basis: np.ndarray):
        self.n_mels, self.n_bins = basis.shape
        rows, cols = np.nonzero(basis)  # row-major: bands in order, bins ascending within each
        self.indices = cols.astype(np.int32)
        self.data = basis[rows, cols]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n_mels))]).astype(np.int32)
        try:
            from scipy.sparse._sparsetools import csr_matvecs  # the kernel itself: no per-call checks

            self._kernel = csr_matvecs
        except ImportError:  # a scipy that moved it: the public (slower to call, same numbers) route
            self._kernel = None
            import scipy.sparse

            self._matrix = scipy.sparse.csr_matrix((self.data, self.indices, self.indptr), shape=basis.shape)

    def product(self, magnitude: np.ndarray, out: np.ndarray) -> None:
        """``out (n_mels, n) = basis @ magnitude (n_bins, n)``; both C-contiguous float64."""
        if self._kernel is None:
            out[...] = self._matrix @ magnitude
            return
        out.fill(0.0)
        self._kernel(self.n_mels, self.n_bins, magnitude.shape[1], self.indptr, self.indices, self.data, magnitude.reshape(-1), out.reshape(-1))


def _cosine_window(name: str, length: int, symmetric: bool) -> np.ndarray:
    """``scipy.signal.windows.get_window(name, length, fftbins=not symmetric)`` for hamming and hann, bit for bit.

    scipy's ``general_cosine``: ``linspace(-pi, pi, M)`` (``M = length + 1`` for the periodic
    window, whose last point is then dropped), ``w = 0 + a0 cos(0 fac) + a1 cos(1 fac)`` with
    ``a = [alpha, 1 - alpha]``. Written out so that start-up does not import scipy.signal (0.8 s).
    """
    if length <= 1:
        return np.ones(length)
    alpha = {"hamming": 0.54, "hann": 0.5}[name]
    coefficients = np.asarray([alpha, 1.0 - alpha], dtype=np.float64)
    points = length if symmetric else length + 1
    fac = np.linspace(-np.pi, np.pi, points, dtype=np.float64)
    window = np.zeros(points, dtype=np.float64)
    for k in range(coefficients.shape[0]):
        window += coefficients[k] * np.cos(k * fac)
    return window if symmetric else window[:-1]


def _mel_basis(fs: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool) -> np.ndarray:
    """``librosa.filters.mel(sr=fs, n_fft, n_mels, fmin, fmax, htk, norm='slaney')`` (float32), bit for bit.

    librosa's own steps (``mel_frequencies`` of ``n_mels + 2`` edges, ``rfftfreq`` bin centres,
    the triangles ``max(0, min(lower, upper))`` stored into float32, then the Slaney area factor
    ``2 / (f[i+2] - f[i])``); written out so that start-up does not import librosa (with numba,
    scipy.signal and joblib, about a second).
    """

    def hz_to_mel(frequency):
        frequency = np.asanyarray(frequency)
        if htk:
            return 2595.0 * np.log10(1.0 + frequency / 700.0)
        f_sp = 200.0 / 3
        mels = (frequency - 0.0) / f_sp
        min_log_hz, min_log_mel, logstep = 1000.0, (1000.0 - 0.0) / f_sp, np.log(6.4) / 27.0
        if frequency >= min_log_hz:
            mels = min_log_mel + np.log(frequency / min_log_hz) / logstep
        return mels

    def mel_to_hz(mels):
        if htk:
            return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
        f_sp = 200.0 / 3
        freqs = 0.0 + f_sp * mels
        min_log_hz, min_log_mel, logstep = 1000.0, (1000.0 - 0.0) / f_sp, np.log(6.4) / 27.0
        log_t = mels >= min_log_mel
        freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
        return freqs

    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / fs)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


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
    """The official normalisation: per-clip max-abs scaling and the int16 round trip, float32 in [-1, 1], same shape.

    The numbers of ``from_official_int16(to_official_int16(X))``, in fewer passes (it is the testing
    stage's only work besides the interpreter): ``max |x|`` as ``max(max x, -min x)`` on the input,
    every clip divided in float64 (by 1.0, which changes nothing, where its peak is at most 1), the
    scaling and int16 truncation in one ufunc, the read-back divided in float64 into float32.
    """
    X = np.asarray(X)
    if X.ndim not in (2, 3):
        raise Task1aError(f"to_official_int16: expected (n_mels, n_frames) or (n_clips, n_mels, n_frames), got shape {X.shape}")
    clips = X[None] if X.ndim == 2 else X
    if clips.size == 0:
        return X.astype(np.float32)
    peak = np.maximum(clips.max(axis=(1, 2)), -clips.min(axis=(1, 2))).astype(np.float64)  # max and min are exact in any float type
    work = np.divide(clips, np.where(peak > 1.0, peak, 1.0)[:, None, None], dtype=np.float64)
    quantized = np.multiply(work, INT16_SCALE, out=np.empty(work.shape, dtype=np.int16), casting="unsafe")  # truncated toward zero, as astype
    return np.divide(quantized, INT16_SCALE, out=np.empty(clips.shape, dtype=np.float32), dtype=np.float64).reshape(X.shape)


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

    Each file is read into the worker's reused buffers (:class:`_ReadBuffers`: no fresh pages per
    file), and each segment's log-mel is computed straight from that view into the chunk's rows.
    """
    chunk_index, items = task
    extractor, segment_samples, storage = _WORKER["extractor"], _WORKER["segment_samples"], _WORKER["storage"]
    buffers = _WORKER.setdefault("buffers", _ReadBuffers())
    row_shape = (extractor.n_mels, extractor.n_frames(segment_samples))
    keys, counts, rows, failed = [], [], [], {}
    for path, key in items:
        try:
            clip_segments = segment_audio(_load_audio(Path(path), extractor.fs, True, True, buffers), segment_samples)
        except Task1aError as exc:
            failed[key] = str(exc)
            continue
        except Exception as exc:  # any decoder failure is recorded for the caller, never fatal
            failed[key] = f"cannot read audio file {path}: {type(exc).__name__}: {exc}"
            continue
        features = np.empty((len(clip_segments),) + row_shape, dtype=np.float64 if storage == "int16" else np.float32)
        for segment, row in zip(clip_segments, features):
            extractor._extract_clip(segment, row)  # float64 values, cast to float32 on the way
        rows.append(to_official_int16(features) if storage == "int16" else features)  # both per clip
        keys.append(key)
        counts.append(len(clip_segments))
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

        bar = tqdm(total=sum(len(c) for c in chunks), desc="features", unit="file", disable=None if progress else True, smoothing=0.1)
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
    finally:
        writer.close()  # an interrupted run loses at most the rows since the last commit
    return FeatureStore(store_dir)


# ============================================================================================= CLI
def _mel_parameters(params_file: Path | None) -> dict:
    """``defaults.feature_extractor_method_parameters.mel`` of task1a.yaml (the official values)."""
    import yaml

    from utils.paths import default_parameter_file

    path = params_file or default_parameter_file()
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
