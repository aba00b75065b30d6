"""Audio in: reading, down-mixing, resampling and segmenting, exactly as dcase_util does it.

Owns everything between an audio file and the float64 samples an extractor sees:

- :data:`AUDIO_EXTENSIONS`: the one list of file types taken as audio (what soundfile or librosa reads here);
- :func:`load_audio`: read, down-mix and resample exactly as dcase_util ``AudioContainer.load``
  (spec ``../shared/spec/features.md`` sections 1-3); plain WAV files are read by numpy
  (:func:`read_plain_wav`, into reusable :class:`ReadBuffers`), everything else by soundfile or librosa;
- :func:`iter_audio_segments`: the same samples, segment by segment, read a block at a time (a long
  recording never in memory at once), bit for bit what the whole-file load gives;
- :func:`segment_audio`: cut recordings into whole segments (1 s for TAU 2022);
- :func:`wav_truncation`: whether a WAV file is cut short; :func:`audio_files_under`: the audio files of a folder.

Importing this module does not import TensorFlow, and does no work: soundfile and librosa are
imported on first use.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from utils.errors import Task1aError

#: the file types taken as audio: what libsndfile (WAV, FLAC, MP3, Ogg Vorbis/Opus, AIFF, AU) reads
#: here; anything else libsndfile refuses goes to librosa's audioread (MP3 with an old libsndfile).
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aif", ".aiff", ".au")

# (format tag, bits) -> (stored dtype, libsndfile's float64 scale); "i3" = packed 24-bit
_PLAIN_WAV_LAYOUTS = {
    (1, 16): ("<i2", 2.0**-15),
    (1, 24): ("i3", 2.0**-31),  # applied to v * 256, see below
    (1, 32): ("<i4", 2.0**-31),
    (3, 32): ("<f4", None),
    (3, 64): ("<f8", None),
}


class ReadBuffers:
    """Byte and sample buffers reused from file to file by a process that reads many files.

    A fresh array per file is not free: above 128 KB (a 1 s 24-bit clip is 132 KB) malloc maps new
    pages for it, and faulting them in cost more than reading the file (measured on a 1 s clip: 63 us
    with ``handle.read()``, 27 us with ``readinto`` a reused buffer). What :func:`read_plain_wav` returns
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


def _wave_chunks(read_at, size: int):
    """``(chunk id, position, declared size)`` of each chunk header of a RIFF WAVE file, in order; nothing if not RIFF WAVE.

    ``read_at(position, n)`` gives the ``n`` bytes at ``position`` of the file, ``size`` its length.
    Only chunk headers lying wholly within ``size`` are given; a chunk's declared size is what its
    header says (it may reach beyond the end of a truncated file). Chunks are padded to even sizes.
    """
    if size < 12:
        return
    header = read_at(0, 12)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    position = 12
    while position + 8 <= size:
        chunk = read_at(position, 8)
        chunk_size = int.from_bytes(chunk[4:8], "little")
        yield bytes(chunk[:4]), position, chunk_size
        position += 8 + chunk_size + (chunk_size & 1)


def _parse_wav_header(raw, size: int):
    """``(fmt bytes, data chunk position, data chunk size)`` of a RIFF WAVE header in ``raw``, or None."""
    fmt = None
    for chunk_id, position, chunk_size in _wave_chunks(lambda at, n: raw[at : at + n], size):
        if chunk_id == b"fmt ":
            fmt = bytes(raw[position + 8 : position + 8 + min(chunk_size, 40)])
        elif chunk_id == b"data":
            return (fmt, position, chunk_size) if fmt is not None and len(fmt) >= 16 else None
    return None


def read_plain_wav(path: Path, buffers: ReadBuffers | None = None):
    """``(data (channels, n) float64, fs, is_float)`` of a plain PCM/float WAV exactly as ``soundfile.read``, or None.

    Why this exists: libsndfile converts 24-bit samples to float64 one at a time (about 0.4 ms
    for a 1 s clip, half the whole feature budget); numpy does the same exact conversion (a
    power-of-two scaling) several times faster. Only PCM 16/24/32 and float 32/64 (also
    WAVE_FORMAT_EXTENSIBLE) are handled; anything else, or any header this parser does not fully
    understand (truncated data, odd block sizes), returns None and goes through soundfile. So a
    result also means that the file is not truncated (:func:`wav_truncation` walks the same chunks).

    The file is read in one ``readinto`` (its data chunk is nearly all of it) and converted from
    that buffer without a copy; with ``buffers`` (a :class:`ReadBuffers`) both the bytes and the
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
            raise Task1aError(f"cannot read audio file {path}: {soundfile_error} (audioread: {reason}); check that it is a valid audio file (WAV, FLAC, MP3, "
                              "OGG)") from None
        return np.atleast_2d(data), int(fs)


def wav_truncation(path) -> str | None:
    """Why a RIFF WAV file is cut short (its data chunk declares more bytes than the file holds), or None.

    libsndfile (and so dcase_util) silently reads whatever part of such a file is there; for a dataset
    file that is a broken download or copy, and its features would be silently wrong. Sizes 0 and
    0xFFFFFFFF (streaming writers that never fill in the length) are not counted as truncation.
    """
    try:
        with open(path, "rb") as handle:

            def read_at(position: int, n: int) -> bytes:
                handle.seek(position)
                return handle.read(n)

            size = os.fstat(handle.fileno()).st_size
            for chunk_id, position, chunk_size in _wave_chunks(read_at, size):
                if chunk_id == b"data":
                    available = size - (position + 8)
                    if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                        return f"its data chunk declares {chunk_size} bytes but the file holds {available}"
                    return None
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


def load_audio(path, fs: int = 44100, mono: bool = True, strict: bool = False, buffers: ReadBuffers | None = None) -> np.ndarray:
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
    With ``buffers`` (a :class:`ReadBuffers`, for a process that reads many files) the result may be a
    view into them, valid until their next use.
    """
    path = Path(path)
    if not isinstance(fs, (int, np.integer)) or isinstance(fs, bool) or fs <= 0:
        _check_audio_request(path, fs)
    is_wav = path.suffix.lower() == ".wav"
    loaded = read_plain_wav(path, buffers) if is_wav else None  # a result: a plain WAV file, not truncated
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
        yield segment_audio(load_audio(path, fs, True, strict), segment_samples)
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
            yield segment_audio(load_audio(path, fs, True, strict), segment_samples)
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



def audio_files_under(folder: Path) -> list:
    """Audio files (by extension, :data:`AUDIO_EXTENSIONS`) under ``folder``, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
