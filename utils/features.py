"""Log-mel features of the official baseline, exactly and fast, and their normalisations.

Owns what turns audio samples into what the network sees:

- :class:`LogMelExtractor`: the dcase_util ``MelExtractor`` log-mel (spec ``../shared/spec/features.md``
  sections 4-7), one clip in float64 (:meth:`~LogMelExtractor.extract`), many
  (:meth:`~LogMelExtractor.extract_batch`), or one segment into a feature-store row
  (:meth:`~LogMelExtractor.extract_into`, the extractor protocol of :mod:`utils.feature_store`);
- the normalisations of ``data_processing.normalization``: :func:`normalize_max_abs_int16` (the
  official per-clip int16 storage quirk), ``none`` and :class:`MeanStdNormalizer`; the factory
  :func:`build_normalizer`, the training statistics :func:`fit_mean_std`, and :func:`load_normalized`
  (a store's rows for keys, normalised, in memory).

Audio reading lives in :mod:`utils.audio`, the store in :mod:`utils.feature_store`; this module's
command line joins them (features of the whole file, before any normalisation, float32
``(n_mels, n_frames)``)::

    python -m utils.features AUDIO.wav -o OUT.npy
    python -m utils.features DIR -o STORE [--jobs N] [--method logmel32k] [--storage float16]

Importing this module does not import TensorFlow, and does no work: soundfile, scipy and librosa
are imported on first use (start-up to the first file is about 0.2 s).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Iterable

import numpy as np

from utils import cli
from utils.errors import Task1aError, run_cli
from utils.feature_store import INT16_SCALE, STORAGE_TYPES
from utils.parameters import allowed
from utils.settings import FeatureSettings, features_from_block

# numpy.spacing(1) = 2**-52: dcase_util adds it to the signal before the STFT and to the mel
# energies before the log (spec sections 4.1 and 7).
EPS = float(np.spacing(1))

SPECTROGRAM_TYPES = allowed("feature_extractor_method_parameters.mel.spectrogram_type")  # the parameter registry's
# dcase_util SpectralFeatureExtractor.get_window_function: name -> (scipy window, symmetric)
WINDOW_TYPES = {
    "hamming_asymmetric": ("hamming", False),
    "hamming_symmetric": ("hamming", True),
    "hamming": ("hamming", True),
    "hann_asymmetric": ("hann", False),
    "hann_symmetric": ("hann", True),
    "hann": ("hann", True),
}
#: the values of ``data_processing.normalization`` (the parameter registry's)
NORMALIZATIONS = allowed("data_processing.normalization")
#: rows read from a store at a time when normalising or fitting statistics
READ_CHUNK_ROWS = 4096


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
                raise Task1aError(f"feature extractor parameter {name} must be a {'positive' if positive else 'non-negative'} "
                                  f"{'integer' if integer else 'number'}, got {value!r}; fix task1a.yaml")
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
            raise Task1aError(f"feature extractor parameter spectrogram_type '{spectrogram_type}' is unknown (known: {', '.join(SPECTROGRAM_TYPES)}); fix "
                              "task1a.yaml")
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
            raise Task1aError(f"feature extractor window ({win_length_seconds} s) and hop ({hop_length_seconds} s) must be at least one sample at fs={fs}; fix "
                              "task1a.yaml")
        if win_length > n_fft:
            raise Task1aError(f"feature extractor window ({win_length} samples) is longer than n_fft ({n_fft}); raise n_fft or shorten win_length_seconds in "
                              "task1a.yaml")

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

    def row_shape(self, n_samples: int) -> tuple:
        """``(n_mels, n_frames)`` of a signal of ``n_samples``: the shape of one feature-store row."""
        return (self.n_mels, self.n_frames(n_samples))

    def n_frames(self, n_samples: int) -> int:
        """Frames of a signal of ``n_samples``: ``1 + (n_samples + 2 (n_fft // 2) - n_fft) // hop`` (librosa, centred)."""
        return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def extract(self, y: np.ndarray) -> np.ndarray:
        """Log-mel of one signal ``y (n_samples,)`` at ``fs``: ``(n_mels, n_frames)`` float64, as dcase_util returns it."""
        Y = self._check_signals(np.asarray(y)[None, :] if np.ndim(y) == 1 else None, "extract", "(n_samples,)")
        out = np.empty((self.n_mels, self.n_frames(Y.shape[1])), dtype=np.float64)
        self.extract_into(Y[0], out)
        return out

    def extract_batch(self, Y: np.ndarray, dtype=np.float32) -> np.ndarray:
        """Log-mel of equal-length clips ``Y (n_clips, n_samples)``: ``(n_clips, n_mels, n_frames)``, float32 by default.

        Each clip is computed in float64 exactly as :meth:`extract` (the same numbers, then cast).
        """
        Y = self._check_signals(Y, "extract_batch", "(n_clips, n_samples)")
        out = np.empty((Y.shape[0], self.n_mels, self.n_frames(Y.shape[1])), dtype=dtype)
        for clip, features in zip(Y, out):
            self.extract_into(clip, features)
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

    def extract_into(self, y, out: np.ndarray):
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
def normalize_max_abs_int16(X: np.ndarray) -> np.ndarray:
    """The official normalisation: per-clip max-abs scaling and the int16 round trip, float32 in [-1, 1], same shape.

    The numbers of ``from_official_int16(to_official_int16(X))`` (:mod:`utils.feature_store`'s int16 rows), in fewer passes (it is the testing
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


def build_extractor(features: FeatureSettings):
    """The feature extractor of ``features.method`` with its parameters (``feature_extractor_method_parameters.<method>``).

    ``mel``: :class:`LogMelExtractor` (the 2023 baseline); ``logmel32k``:
    :class:`utils.frontend_32k.LogMel32kExtractor` (the DCASE2024/2025 baseline's front end).
    """
    if features.method == "mel":
        return LogMelExtractor(**features.parameters)
    from utils.frontend_32k import LogMel32kExtractor  # the registry allows no other method (utils.parameters.METHODS)

    return LogMel32kExtractor(**features.parameters)


def build_normalizer(method: str, statistics: dict | None = None):
    """A function ``(n, n_mels, n_frames) -> same shape float32`` applying ``data_processing.normalization``.

    ``statistics`` (:meth:`MeanStdNormalizer.to_dict`, from :func:`fit_mean_std`) are needed by ``mean_std`` only.
    """
    if method == "max_abs_int16":
        return normalize_max_abs_int16
    if method == "none":
        return lambda batch: np.asarray(batch, dtype=np.float32)
    if method == "mean_std":
        if statistics is None:
            raise Task1aError("mean_std normalisation needs the training statistics (normalization.yaml in the model folder); rerun learning with -o")
        return MeanStdNormalizer.from_dict(statistics).transform
    raise Task1aError(f"data_processing.normalization '{method}' is unknown (known: {', '.join(NORMALIZATIONS)}); fix task1a.yaml")


def fit_mean_std(store, keys, chunk: int = READ_CHUNK_ROWS) -> dict:
    """The ``mean_std`` statistics (:meth:`MeanStdNormalizer.to_dict`) of every segment of ``keys`` in ``store``.

    ``store`` is a :class:`utils.feature_store.FeatureStore` (``rows_of``, ``read``); it is read
    ``chunk`` rows at a time, never loaded whole.
    """
    normalizer = MeanStdNormalizer()
    rows = store.rows_of(keys)
    for start in range(0, len(rows), chunk):
        normalizer.partial_fit(store.read(rows[start : start + chunk]))
    return normalizer.to_dict()


def load_normalized(store, keys, normalizer, chunk: int = READ_CHUNK_ROWS) -> np.ndarray:
    """All segments of ``keys`` normalised into one float32 array ``(n_segments, n_mels, n_frames)``.

    The only in-memory copy of the training data (1.1 GB for the full development set); the store
    itself stays on disk.
    """
    rows = store.rows_of(keys)
    first = normalizer(store.read(rows[:1]))
    out = np.empty((len(rows),) + first.shape[1:], dtype=np.float32)
    for start in range(0, len(rows), chunk):
        out[start : start + chunk] = normalizer(store.read(rows[start : start + chunk]))
    return out


# ============================================================================================= CLI
def _extract_folder(source: Path, extractor, features: FeatureSettings, args) -> int:
    """Every audio file under ``source`` into the store ``args.output``; 1 when some could not be read."""
    from utils.audio import AUDIO_EXTENSIONS, audio_files_under
    from utils.feature_store import extract_to_store

    files = audio_files_under(source)
    if not files:
        raise Task1aError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {source}; give a folder of audio files")
    keys = [p.relative_to(source).as_posix() for p in files]
    store = extract_to_store(files, keys, args.output, extractor, segment_length_seconds=features.segment_length_seconds,
                             n_jobs=features.n_jobs, progress=not args.no_progress, storage=args.storage)
    print(f"{len(store.keys)} files, {len(store)} segments in {store.path}")
    if store.failed:
        print(f"error: {len(store.failed)} file(s) could not be read and were skipped:", file=sys.stderr)
        for key, reason in store.failed.items():
            print(f"  {key}: {reason}", file=sys.stderr)
        return 1
    return 0


def _extract_file(source: Path, extractor, output: Path) -> int:
    """The float32 log-mel of the whole file ``source`` into ``output`` (.npy)."""
    from utils.audio import load_audio
    from utils.files import atomic_path

    if output.suffix != ".npy":
        raise Task1aError(f"output {output} must end in .npy (numpy.save would add the suffix)")
    features = extractor.extract(load_audio(source, fs=extractor.fs, mono=True)).astype(np.float32)
    with atomic_path(output) as tmp:
        np.save(tmp, features)
    print(f"{output}: {features.shape[0]} x {features.shape[1]} log-mel (float32)")
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog=cli.prog("utils.features"), description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="an audio file (-> .npy of its log-mel) or a folder (-> a feature store of every audio file under it)")
    parser.add_argument("-o", "--output", required=True, help="OUT.npy for a file, a store folder for a folder")
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes for a folder (-1: all cores)")
    parser.add_argument("--method", choices=allowed("feature_extractor"), default="mel",
                        help="feature_extractor.method: mel (2023, default) or logmel32k (DCASE2024/2025, docs/frontend.md)")
    parser.add_argument("--params", type=Path, default=None,
                        help="task1a.yaml whose defaults.feature_extractor_method_parameters.<method> to use (default: the repository's)")
    parser.add_argument("--segment-length", type=float, default=1.0, help="segment length in seconds for a folder (default 1.0)")
    parser.add_argument("--storage", choices=tuple(STORAGE_TYPES), default="float32", help="row type of a store (default float32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(None if argv is None else list(argv))

    def body() -> int:
        # --storage may also be the official int16 rows, a store type the tool offers beyond feature_extractor.storage
        features = features_from_block({"method": args.method, "n_jobs": args.jobs, "segment_length_seconds": args.segment_length}, args.params,
                                       source=cli.prog("utils.features"))
        extractor = build_extractor(features)
        source = Path(args.source)
        if source.is_dir():
            return _extract_folder(source, extractor, features, args)
        return _extract_file(source, extractor, Path(args.output))

    return run_cli(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
