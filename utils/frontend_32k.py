"""The DCASE2024/2025 baseline's front end: resampling to 32 kHz and a 256-band log-mel, in numpy.

Owns :class:`LogMel32kExtractor`, ``feature_extractor.method: logmel32k``: what the CPJKU
DCASE2024/2025 Task 1 baselines compute on the fly from a 44.1 kHz clip, as facts (issue 23,
"Front end"; written from those facts, no reference code copied):

1. resampling 44.1 -> 32 kHz as torchaudio's default ``sinc_interp_hann`` (lowpass filter width 6,
   rolloff 0.99): a polyphase windowed-sinc filter over the gcd-reduced rates (441 -> 320),
   :func:`sinc_resampling_kernel` and :func:`resample`;
2. the power spectrogram at 32 kHz: n_fft 4096, a periodic Hann window of 3072 samples centred
   in the 4096 frame, hop 500, frames centred on the signal with reflect padding (``n_fft // 2``
   on each side), ``|X|^2``;
3. 256 mel bands from 0 to 16 kHz on the HTK scale, triangles linear in Hz over the 2,049 FFT
   bins, DC bin included, no area normalisation (torchaudio's ``melscale_fbanks`` with
   ``norm=None, mel_scale='htk'``): :func:`htk_mel_filterbank`;
4. ``log(mel + 1e-5)``. No pre-emphasis and no further normalisation (``data_processing.normalization:
   none`` goes with it).

A 1 s clip at 44.1 kHz gives ``(256, 65)``. Everything is computed in float64 (a feature-store
row is then float32, or float16 for a ``float16`` store); ``tests/test_frontend_32k.py`` holds it to
torchaudio's float32 results (``tests/data/reference/frontend_32k.npz``, written by
``tools/reference/frontend.py``) within 1e-4 in the log domain.

Importing this module does not import TensorFlow, torch or scipy (scipy.sparse is imported on the
first extractor built); it follows the extractor protocol of :mod:`utils.feature_store`.
"""

from __future__ import annotations

import math

import numpy as np

from utils.errors import Task1aError

#: ``feature_extractor.method`` of this front end
METHOD = "logmel32k"


# ======================================================================================= resampling
def sinc_resampling_kernel(orig_fs: int, new_fs: int, lowpass_filter_width: int = 6, rolloff: float = 0.99):
    """The polyphase windowed-sinc filter of a rate change ``orig_fs -> new_fs``: ``(kernel (new, taps), width)``.

    With the rates reduced by their gcd (``orig``, ``new``; 441 and 320 for 44.1 -> 32 kHz), the
    cut-off is ``base = min(orig, new) * rolloff`` (in units of the reduced rates) and the filter
    reaches ``width = ceil(lowpass_filter_width * orig / base)`` input samples beyond each block
    (9 here). Output phase ``p`` (0 .. new-1) weighs the input sample at offset ``i`` (``-width ..
    width + orig - 1``) of its block by ``sinc(pi t) * cos(pi t / (2 w))^2 * base / orig`` with
    ``t = base (i / orig - p / new)`` clipped to ``[-w, w]`` (``w = lowpass_filter_width``: the Hann
    window over the sinc's first ``w`` zero crossings on each side) and ``sinc(0) = 1``.
    ``taps = 2 width + orig`` (459 here). float64.
    """
    gcd = math.gcd(int(orig_fs), int(new_fs))
    orig, new = int(orig_fs) // gcd, int(new_fs) // gcd
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    offsets = np.arange(-width, width + orig, dtype=np.float64) / orig
    phases = np.arange(new, dtype=np.float64) / new
    t = np.clip((offsets[None, :] - phases[:, None]) * base, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * (math.pi / lowpass_filter_width / 2)) ** 2
    angle = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(angle == 0.0, 1.0, np.sin(angle) / angle)
    return sinc * window * (base / orig), width


def resampled_length(n_samples: int, orig_fs: int, new_fs: int) -> int:
    """Samples after resampling ``n_samples``: ``ceil(new * n / orig)`` over the reduced rates (32,000 for 44,100)."""
    gcd = math.gcd(int(orig_fs), int(new_fs))
    orig, new = int(orig_fs) // gcd, int(new_fs) // gcd
    return -(-new * int(n_samples) // orig)


def resample(y: np.ndarray, kernel: np.ndarray, width: int, n_out: int) -> np.ndarray:
    """Apply a :func:`sinc_resampling_kernel` to ``y (n,)``: ``(n_out,)`` float64.

    The signal gets ``width`` zeros before and ``width + orig`` after; block ``b`` (input samples
    from ``b orig - width``) gives output samples ``b new .. b new + new - 1``, each the dot product
    of the block's ``taps`` samples with its phase's kernel row; the first ``n_out`` are kept.
    """
    new, taps = kernel.shape
    orig = taps - 2 * width
    padded = np.zeros(len(y) + taps)
    padded[width : width + len(y)] = y
    blocks = np.lib.stride_tricks.sliding_window_view(padded, taps)[::orig]
    n_blocks = -(-n_out // new)
    return (blocks[:n_blocks] @ kernel.T).reshape(-1)[:n_out]


# ==================================================================================== mel features
def htk_mel_filterbank(fs: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular HTK-mel filters over the ``n_fft // 2 + 1`` FFT bins, no area normalisation: ``(n_mels, n_bins)`` float64.

    Band edges: ``n_mels + 2`` points equally spaced in HTK mel (``2595 log10(1 + f / 700)``) from
    ``fmin`` to ``fmax``, back in Hz; bin ``k`` sits at ``k (fs / 2) / (n_bins - 1)`` Hz (DC
    included); band ``m`` rises linearly from edge ``m`` to 1 at edge ``m + 1`` and falls to 0 at edge
    ``m + 2`` (the transpose of torchaudio's ``melscale_fbanks(..., norm=None, mel_scale='htk')``).
    """
    n_bins = n_fft // 2 + 1
    bin_hz = np.linspace(0.0, fs // 2, n_bins)
    mel_edges = np.linspace(2595.0 * math.log10(1.0 + fmin / 700.0), 2595.0 * math.log10(1.0 + fmax / 700.0), n_mels + 2)
    edges_hz = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    widths = np.diff(edges_hz)
    rising = (bin_hz[None, :] - edges_hz[:-2, None]) / widths[:-1, None]
    falling = (edges_hz[2:, None] - bin_hz[None, :]) / widths[1:, None]
    return np.maximum(0.0, np.minimum(rising, falling))


def periodic_hann(length: int) -> np.ndarray:
    """The periodic Hann window ``0.5 - 0.5 cos(2 pi n / length)``, ``(length,)`` float64 (torch.hann_window's default)."""
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(length) / length)


class LogMel32kExtractor:
    """The DCASE2024/2025 baseline front end (module docstring): resample, power mel, ``log(mel + log_offset)``.

    Parameters are those of ``feature_extractor_method_parameters.logmel32k`` in task1a.yaml:
    ``fs`` (the rate clips are loaded at, 44100), ``resample_fs`` (32000), ``lowpass_filter_width``
    (6) and ``rolloff`` (0.99) of the resampling filter, ``n_fft`` (4096), ``win_length`` (3072) and
    ``hop_length`` (500) in samples at ``resample_fs``, ``n_mels`` (256), ``fmin`` (0), ``fmax``
    (16000) and ``log_offset`` (1e-5). Bad values are refused with one line naming the parameter.

    A signal of ``n`` samples becomes ``m = ceil(n resample_fs / fs)`` samples (with the gcd-reduced
    rates) and ``1 + m // hop_length`` frames (for an even ``n_fft``); ``m`` must exceed ``n_fft // 2``
    (reflect padding).
    Each frame's power spectrum is that of its windowed span alone (a window centred in the
    ``n_fft`` frame and the same span at the frame's start have equal DFT magnitudes).
    """

    def __init__(
        self,
        fs: int = 44100,
        resample_fs: int = 32000,
        lowpass_filter_width: int = 6,
        rolloff: float = 0.99,
        n_fft: int = 4096,
        win_length: int = 3072,
        hop_length: int = 500,
        n_mels: int = 256,
        fmin: float = 0.0,
        fmax: float = 16000.0,
        log_offset: float = 1e-5,
    ):
        def number(name, value, integer=False, low=0.0, low_open=True, high=None):
            kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            bad = isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
            bad = bad or (value <= low if low_open else value < low) or (high is not None and value > high)
            if bad:
                bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
                raise Task1aError(f"feature extractor parameter {name} must be {'an integer' if integer else 'a number'} {bound}, got {value!r}; fix "
                                  f"feature_extractor_method_parameters.{METHOD} in task1a.yaml")
            return value

        number("fs", fs, integer=True)
        number("resample_fs", resample_fs, integer=True)
        number("lowpass_filter_width", lowpass_filter_width, integer=True)
        number("rolloff", rolloff, high=1.0)
        number("n_fft", n_fft, integer=True, low=1)
        number("win_length", win_length, integer=True)
        number("hop_length", hop_length, integer=True)
        number("n_mels", n_mels, integer=True)
        number("fmin", fmin, low_open=False)
        number("fmax", fmax)
        number("log_offset", log_offset)
        if win_length > n_fft:
            raise Task1aError(f"feature extractor parameter win_length ({win_length}) is longer than n_fft ({n_fft}); fix "
                              f"feature_extractor_method_parameters.{METHOD} in task1a.yaml")
        if not fmin < fmax <= resample_fs / 2:
            raise Task1aError(f"feature extractor parameters need fmin < fmax <= resample_fs / 2 ({resample_fs / 2:g}), got fmin={fmin!r}, fmax={fmax!r}; fix "
                              f"feature_extractor_method_parameters.{METHOD} in task1a.yaml")
        self.fs, self.resample_fs = int(fs), int(resample_fs)
        self.lowpass_filter_width, self.rolloff = int(lowpass_filter_width), float(rolloff)
        self.n_fft, self.win_length, self.hop_length = int(n_fft), int(win_length), int(hop_length)
        self.n_mels, self.fmin, self.fmax, self.log_offset = int(n_mels), float(fmin), float(fmax), float(log_offset)
        self._setup()

    def _setup(self):
        import scipy.sparse

        self.kernel, self.width = sinc_resampling_kernel(self.fs, self.resample_fs, self.lowpass_filter_width, self.rolloff)
        self.window = periodic_hann(self.win_length)
        self.filterbank = htk_mel_filterbank(self.resample_fs, self.n_fft, self.n_mels, self.fmin, self.fmax)  # (n_mels, n_bins)
        self._sparse_filterbank = scipy.sparse.csr_matrix(self.filterbank)  # each bin in at most two bands

    # pickling for worker processes: the parameters, not the derived arrays
    def __getstate__(self):
        return self.params

    def __setstate__(self, params):
        self.__init__(**params)

    def __repr__(self):
        return "LogMel32kExtractor(" + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    @property
    def params(self) -> dict:
        """The constructor parameters (the names of ``feature_extractor_method_parameters.logmel32k``)."""
        return {
            "fs": self.fs, "resample_fs": self.resample_fs, "lowpass_filter_width": self.lowpass_filter_width,
            "rolloff": self.rolloff, "n_fft": self.n_fft, "win_length": self.win_length, "hop_length": self.hop_length,
            "n_mels": self.n_mels, "fmin": self.fmin, "fmax": self.fmax, "log_offset": self.log_offset,
        }

    def resampled_samples(self, n_samples: int) -> int:
        """Samples at ``resample_fs`` of a clip of ``n_samples`` at ``fs``."""
        return resampled_length(n_samples, self.fs, self.resample_fs)

    def n_frames(self, n_samples: int) -> int:
        """Frames of a clip of ``n_samples`` at ``fs``: ``1 + (m + 2 (n_fft // 2) - n_fft) // hop_length`` of its ``m`` resampled samples (65 for 1 s)."""
        return self._frames_of(self.resampled_samples(n_samples))

    def _frames_of(self, m: int) -> int:
        return 1 + (m + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def row_shape(self, n_samples: int) -> tuple:
        """``(n_mels, n_frames)`` of a clip of ``n_samples``: the shape of one feature-store row."""
        return (self.n_mels, self.n_frames(n_samples))

    def resample(self, y: np.ndarray) -> np.ndarray:
        """``y (n,)`` at ``fs`` resampled to ``resample_fs``: ``(ceil(n resample_fs / fs),)`` float64 (``y`` itself at equal rates, as torchaudio)."""
        if self.fs == self.resample_fs:
            return np.asarray(y, dtype=np.float64)
        return resample(np.asarray(y, dtype=np.float64), self.kernel, self.width, self.resampled_samples(len(y)))

    def power_spectrogram(self, x: np.ndarray) -> np.ndarray:
        """``|STFT|^2`` of ``x (m,)`` at ``resample_fs`` (centred, reflect padding): ``(n_fft // 2 + 1, n_frames)`` float64."""
        pad = self.n_fft // 2
        if len(x) <= pad:
            raise Task1aError(f"{METHOD}: a clip of {len(x)} samples at {self.resample_fs} Hz is too short for reflect padding by n_fft // 2 = {pad}; give "
                              f"clips longer than {pad / self.resample_fs:.3f} s")
        padded = np.pad(x, pad, mode="reflect")
        start = (self.n_fft - self.win_length) // 2  # the window's place in the n_fft frame
        n_frames = self._frames_of(len(x))
        spans = np.lib.stride_tricks.sliding_window_view(padded[start:], self.win_length)[:: self.hop_length][:n_frames]
        spectrum = np.fft.rfft(spans * self.window, n=self.n_fft, axis=-1)
        return (spectrum.real**2 + spectrum.imag**2).T

    def extract(self, y: np.ndarray) -> np.ndarray:
        """The log-mel of one clip ``y (n,)`` at ``fs``: ``(n_mels, n_frames)`` float64."""
        y = np.asarray(y)
        if y.ndim != 1 or y.size == 0 or not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise Task1aError(f"LogMel32kExtractor.extract: expected audio samples (n_samples,) as numbers, got shape {y.shape} dtype {y.dtype}")
        mel = self._sparse_filterbank @ self.power_spectrogram(self.resample(y))
        return np.log(mel + self.log_offset)

    def extract_batch(self, Y: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The log-mel of equal-length clips ``Y (n_clips, n)``: ``(n_clips, n_mels, n_frames)``, float32 by default.

        Each clip is :meth:`extract` (computed alone in float64, then cast); what ``--predict`` calls.
        """
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[1] == 0:
            raise Task1aError(f"LogMel32kExtractor.extract_batch: expected clips (n_clips, n_samples), got shape {Y.shape}")
        out = np.empty((Y.shape[0],) + self.row_shape(Y.shape[1]), dtype=dtype)
        for clip, row in zip(Y, out):
            self.extract_into(clip, row)
        return out

    def extract_into(self, y, out: np.ndarray) -> None:
        """The log-mel of one segment ``y (n,)`` into a store row ``out (n_mels, n_frames)`` (cast on the way)."""
        out[...] = self.extract(y)
