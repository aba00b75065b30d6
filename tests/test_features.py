"""utils.features against an independent numpy reference written from ../shared/spec/features.md.

The reference below uses only the spec's formulas (periodic Hamming, centred zero padding, eps on
the signal, numpy rfft magnitude, the Slaney mel filterbank from its closed form, ln(M + eps)),
soundfile to read and resampy (the spec's resampler) for other rates; it calls nothing from
utils.features.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

from test_feature_store import clips
from utils.audio import load_audio, segment_audio
from utils.errors import Task1aError
from utils.feature_store import FeatureStore, extract_to_store
from utils.features import LogMelExtractor, MeanStdNormalizer, normalize_max_abs_int16

REPO = Path(__file__).resolve().parents[1]
FS = 44100
EPS = 2.220446049250313e-16
OFFICIAL = dict(fs=44100, win_length_seconds=0.04, hop_length_seconds=0.02, spectrogram_type="magnitude",
                window_type="hamming_asymmetric", n_mels=40, n_fft=2048, fmin=0, fmax=22050, htk=False,
                normalize_mel_bands=False, logarithmic=True)


# ------------------------------------------------------------------------- the spec, in numpy
def spec_mel_basis(fs=44100, n_fft=2048, n_mels=40, fmin=0.0, fmax=22050.0):
    """Spec section 5: Slaney mel scale, triangles, constant-area norm, stored in float32."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def mel(f):
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    def hz(m):
        return np.where(m < min_log_mel, f_sp * m, min_log_hz * np.exp(logstep * (m - min_log_mel)))

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / fs)
    basis = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        lower = (bins - edges[i]) / (edges[i + 1] - edges[i])
        upper = (edges[i + 2] - bins) / (edges[i + 2] - edges[i + 1])
        basis[i] = np.maximum(0, np.minimum(lower, upper))  # the triangle, stored in float32 first
        basis[i] *= 2.0 / (edges[i + 2] - edges[i])  # then the constant-area factor
    return basis


def spec_logmel(y, fs=44100, win=1764, hop=882, n_fft=2048):
    """Spec sections 4, 6, 7 for a float64 signal already at 44.1 kHz: (40, 1 + N // hop) float64."""
    y = np.asarray(y, dtype=np.float64) + EPS
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win) / win)
    wpad = np.zeros(n_fft)
    wpad[(n_fft - win) // 2 : (n_fft - win) // 2 + win] = window
    ypad = np.concatenate([np.zeros(n_fft // 2), y, np.zeros(n_fft // 2)])
    n_frames = 1 + (len(ypad) - n_fft) // hop
    frames = np.stack([ypad[t * hop : t * hop + n_fft] * wpad for t in range(n_frames)])
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T
    return np.log(np.dot(spec_mel_basis(fs, n_fft).astype(np.float64), magnitude) + EPS)


def spec_load(path, fs=44100):
    """Spec sections 1-3: soundfile float64, channel mean, resampy kaiser_best + fix_length."""
    data, rate = soundfile.read(str(path), dtype="float64")
    if data.ndim == 2:
        data = data.T.mean(axis=0)
    if rate != fs:
        import resampy

        n_fix = int(math.ceil(len(data) * float(fs) / rate))
        data = resampy.resample(data, rate, fs, filter="kaiser_best")
        data = np.concatenate([data, np.zeros(max(0, n_fix - len(data)))])[:n_fix]
    return data


@pytest.fixture(scope="module")
def extractor():
    return LogMelExtractor(**OFFICIAL)


def write(path, data, rate=FS, subtype="PCM_24"):
    soundfile.write(str(path), data, rate, subtype=subtype)
    return path


def noise(n, seed=0, channels=1, level=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    tone = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 9000 * t)
    x = tone + level * rng.standard_normal(n) * np.exp(-3 * t)
    x = np.clip(x, -0.99, 0.99)
    return x if channels == 1 else np.stack([x, np.roll(x, 100) * 0.5][:channels], axis=1)


# --------------------------------------------------------------------------- exact features
@pytest.mark.parametrize(
    "name, samples, subtype, channels",
    [
        ("pcm24_1s", FS, "PCM_24", 1),
        ("pcm16_1s", FS, "PCM_16", 1),
        ("float_1s", FS, "FLOAT", 1),
        ("pcm32_1s", FS, "PCM_32", 1),
        ("stereo_pcm16", FS, "PCM_16", 2),
        ("half_second", FS // 2, "PCM_24", 1),
        ("ten_seconds", 10 * FS, "PCM_24", 1),
        ("not_hop_multiple", 33333, "PCM_24", 1),
    ],
)
def test_logmel_matches_spec_at_44k1(tmp_path, extractor, name, samples, subtype, channels):
    path = write(tmp_path / f"{name}.wav", noise(samples, seed=samples, channels=channels), subtype=subtype)
    reference = spec_logmel(spec_load(path))
    features = extractor.extract(load_audio(path))
    assert features.dtype == np.float64
    assert features.shape == (40, 1 + samples // 882) == reference.shape
    assert np.max(np.abs(features - reference)) <= 1e-4
    # exactly the spec, not merely close: float64 rounding only
    assert np.max(np.abs(features - reference)) < 1e-9


@pytest.mark.parametrize(
    "name, signal",
    [
        ("noise_1s", lambda: noise(FS, seed=11)),
        ("noise_10s", lambda: noise(10 * FS, seed=12)),
        ("quiet_then_loud", lambda: np.concatenate([np.zeros(FS // 2), noise(FS // 2, seed=13, level=0.9)])),
        ("faint", lambda: 1e-6 * noise(FS, seed=14)),
        ("silence", lambda: np.zeros(FS)),
        ("not_hop_multiple", lambda: noise(33333, seed=15)),
    ],
)
def test_stored_float32_features_are_bit_identical_to_the_spec(tmp_path, extractor, name, signal):
    # the promise: cast to float32 (the stored form), the features ARE the spec's, bit for bit,
    # whichever way they are computed (one clip, a batch, a store row)
    path = write(tmp_path / f"{name}.wav", signal())
    y = spec_load(path)
    reference = spec_logmel(y).astype(np.float32)
    assert np.array_equal(extractor.extract(load_audio(path)).astype(np.float32), reference)
    assert np.array_equal(extractor.extract_batch(y[None, :])[0], reference)
    if len(y) == FS:
        store = extract_to_store([path], ["k"], tmp_path / "store", extractor, n_jobs=1, progress=False)
        assert np.array_equal(store.read([0])[0], reference)


def test_window_and_mel_basis_are_scipy_and_librosa_bit_for_bit():
    # computed without importing scipy.signal and librosa (start-up), so checked against them here
    import librosa
    import scipy.signal

    for window_type, (name, symmetric) in {"hamming_asymmetric": ("hamming", False), "hann_symmetric": ("hann", True),
                                           "hamming": ("hamming", True), "hann_asymmetric": ("hann", False)}.items():
        for win_length_seconds in (0.04, 0.025, 0.03):
            ex = LogMelExtractor(**dict(OFFICIAL, window_type=window_type, win_length_seconds=win_length_seconds))
            expected = scipy.signal.windows.get_window(name, ex.win_length, fftbins=not symmetric)
            assert np.array_equal(ex.window, expected), (window_type, win_length_seconds)
    for params in (dict(), dict(htk=True), dict(fmin=50, fmax=14000), dict(fs=22050, n_fft=1024, n_mels=64, fmax=None),
                   dict(fs=16000, n_fft=1024, n_mels=128, fmin=20.5, fmax=7600.0, htk=True), dict(fs=48000, n_mels=40, fmax=24000)):
        merged = dict(OFFICIAL, **params)
        ex = LogMelExtractor(**merged)
        expected = librosa.filters.mel(sr=ex.fs, n_fft=ex.n_fft, n_mels=ex.n_mels, fmin=ex.fmin, fmax=ex.fmax, htk=ex.htk)
        assert ex.mel_basis.dtype == np.float32 and np.array_equal(ex.mel_basis, expected), params
    assert np.array_equal(LogMelExtractor(**OFFICIAL).mel_basis, spec_mel_basis())


def test_stereo_is_the_channel_mean_before_anything_else(tmp_path):
    stereo = noise(FS, channels=2)
    path = write(tmp_path / "stereo.wav", stereo, subtype="FLOAT")
    expected = stereo.astype(np.float32).astype(np.float64).mean(axis=1)
    assert np.array_equal(load_audio(path), expected)
    both = load_audio(path, mono=False)
    assert both.shape == (2, FS)


def test_silence_sits_on_the_eps_floor(tmp_path, extractor):
    path = write(tmp_path / "silence.wav", np.zeros(FS))
    features = extractor.extract(load_audio(path))
    reference = spec_logmel(np.zeros(FS))
    assert np.max(np.abs(features - reference)) <= 1e-4
    # eps on the signal keeps silence above ln(eps) = -36.0437 (spec section 7)
    assert features.min() > math.log(EPS)
    assert -36.0414 < features.min() and features.max() < -34.29


@pytest.mark.parametrize("rate", [48000, 22050])
def test_resampled_input_matches_spec(tmp_path, extractor, rate):
    n = int(1.3 * rate) + 7  # not a whole number of output samples either
    path = write(tmp_path / f"in_{rate}.wav", noise(n, seed=rate), rate=rate)
    y = load_audio(path)
    assert y.shape == (math.ceil(n * FS / rate),)
    reference = spec_logmel(spec_load(path))
    assert np.max(np.abs(extractor.extract(y) - reference)) <= 1e-3


def test_batch_equals_single_clip_extraction(extractor):
    clips = np.stack([noise(FS, seed=s) for s in range(5)])
    batch = extractor.extract_batch(clips)
    assert batch.dtype == np.float32 and batch.shape == (5, 40, 51)
    for clip, features in zip(clips, batch):
        assert np.max(np.abs(features - spec_logmel(clip))) < 1e-5  # float32 rounding of the exact values


def test_other_parameters_follow_dcase_util(tmp_path):
    # power spectrum, symmetric Hann, HTK scale, band normalisation, no log: librosa is the reference here
    import librosa
    import scipy.signal

    y = noise(22050, seed=3)
    params = dict(OFFICIAL, fs=22050, spectrogram_type="power", window_type="hann_symmetric", n_mels=20,
                  n_fft=1024, fmax=8000, htk=True, normalize_mel_bands=True, logarithmic=False, win_length_seconds=0.03)
    features = LogMelExtractor(**params).extract(y)
    window = scipy.signal.windows.hann(661, sym=True)
    spectrum = np.abs(librosa.stft(y + EPS, n_fft=1024, win_length=661, hop_length=441, window=window, center=True, pad_mode="constant")) ** 2
    basis = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=20, fmin=0, fmax=8000, htk=True)
    basis /= basis.max(axis=1)[:, None]
    assert np.allclose(features, basis @ spectrum, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [dict(window_type="blackman"), dict(spectrogram_type="db"), dict(n_mels=0),
                                 dict(fmax=30000), dict(win_length_seconds=0.1), dict(htk="no"), dict(fs=44100.5)])
def test_unknown_parameters_are_rejected(bad):
    with pytest.raises(Task1aError) as caught:
        LogMelExtractor(**dict(OFFICIAL, **bad))
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("subtype, container", [("PCM_16", "WAV"), ("PCM_24", "WAV"), ("PCM_32", "WAV"), ("FLOAT", "WAV"),
                                                ("DOUBLE", "WAV"), ("PCM_U8", "WAV"), ("PCM_24", "WAVEX"), ("FLOAT", "WAVEX")])
def test_wav_samples_are_libsndfile_float64(tmp_path, subtype, container):
    data = noise(5000, channels=2)
    data[:4] = [[-1.0, 1.0], [0.999999, -0.999999], [0.5, -0.5], [0.0, 0.0]]  # the extremes of the integer range
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(str(path), data, FS, subtype=subtype, format=container)
    expected, _ = soundfile.read(str(path), dtype="float64")
    assert np.array_equal(load_audio(path, mono=False), expected.T)


def test_wav_with_extra_chunks_and_truncated_data(tmp_path):
    path = write(tmp_path / "plain.wav", noise(3001))
    raw = path.read_bytes()
    # an odd-sized LIST chunk (padded to even) between fmt and data
    data_at = raw.index(b"data")
    extra = b"LIST" + (3).to_bytes(4, "little") + b"abc\x00"
    with_chunk = raw[:data_at] + extra + raw[data_at:]
    with_chunk = with_chunk[:4] + (len(with_chunk) - 8).to_bytes(4, "little") + with_chunk[8:]
    (tmp_path / "chunked.wav").write_bytes(with_chunk)
    assert np.array_equal(load_audio(tmp_path / "chunked.wav"), soundfile.read(str(path))[0])
    # a data chunk cut short: whatever libsndfile makes of it
    (tmp_path / "cut.wav").write_bytes(raw[:-1001])
    assert np.array_equal(load_audio(tmp_path / "cut.wav"), soundfile.read(str(tmp_path / "cut.wav"))[0])


@pytest.mark.parametrize("content, fragment", [(None, "not found"), (b"", "empty"), (b"this is not audio at all" * 10, "cannot read")])
def test_bad_files_give_one_line_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(Task1aError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert str(path) in message and fragment in message and "\n" not in message


def test_non_finite_samples_are_rejected(tmp_path):
    data = noise(1000)
    data[10] = np.nan
    path = write(tmp_path / "nan.wav", data, subtype="FLOAT")
    with pytest.raises(Task1aError, match="NaN"):
        load_audio(path)


def test_segments_are_whole_and_short_clips_are_padded():
    y = np.arange(10.0)
    assert np.array_equal(segment_audio(y, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
    padded = segment_audio(np.ones(3), 5)
    assert np.array_equal(padded, [[1, 1, 1, 0, 0]])
    with pytest.raises(Task1aError):
        segment_audio(np.ones((2, 3)), 2)


# ------------------------------------------------------------------------------ normalisation
def official_int16(X):
    """The official float32_to_int16 / int16_to_float32, clip by clip."""
    out = []
    for x in np.array(X, dtype=np.float64):
        if np.max(np.abs(x)) > 1.0:
            x /= np.max(np.abs(x))
        out.append(((x * 32767.0).astype(np.int16) / 32767.0).astype(np.float32))
    return np.stack(out)


def test_max_abs_int16_is_the_official_round_trip():
    rng = np.random.default_rng(1)
    X = rng.normal(-20, 8, size=(6, 40, 51))
    X[2] *= 0.01  # max abs below 1: no scaling
    result = normalize_max_abs_int16(X)
    assert result.dtype == np.float32
    assert np.array_equal(result, official_int16(X))
    assert np.max(np.abs(result)) <= 1.0
    assert np.array_equal(normalize_max_abs_int16(X[0]), official_int16(X[:1])[0])


def test_mean_std_accumulates_in_batches():
    rng = np.random.default_rng(2)
    X = rng.normal(5, 3, size=(50, 4, 7)) + np.arange(4)[None, :, None] * 10
    normalizer = MeanStdNormalizer()
    for start in range(0, 50, 13):
        normalizer.partial_fit(X[start : start + 13])
    values = X.transpose(1, 0, 2).reshape(4, -1)
    assert np.allclose(normalizer.mean, values.mean(axis=1)) and np.allclose(normalizer.std, values.std(axis=1))
    restored = MeanStdNormalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    out = restored.transform(X)
    assert out.dtype == np.float32
    assert np.allclose(out.transpose(1, 0, 2).reshape(4, -1).mean(axis=1), 0, atol=1e-5)
    assert np.allclose(out.transpose(1, 0, 2).reshape(4, -1).std(axis=1), 1, atol=1e-5)


# ------------------------------------------------------------------------------------- store
@pytest.fixture
def audio_set(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = []
    for i in range(9):
        length = 3 * FS + 5 if i == 4 else FS  # one 3-second file: three segments
        paths.append(write(folder / f"clip{i}.wav", noise(length, seed=i)))
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    paths.insert(6, folder / "broken.wav")
    return paths


def keys_of(paths):
    return [p.name for p in paths]


def per_key(store, keys):
    return {k: store.read(store.rows_of([k])) for k in keys if k in store}


def test_store_holds_the_spec_features_and_lists_failures(tmp_path, audio_set, extractor):
    store = extract_to_store(audio_set, keys_of(audio_set), tmp_path / "store", extractor, n_jobs=2, progress=False, chunk_size=3)
    assert store.is_complete
    assert list(store.failed) == ["broken.wav"] and "broken.wav" in store.failed["broken.wav"]
    assert "broken.wav" not in store.keys and len(store.keys) == 9
    assert list(store.segment_counts(["clip4.wav", "clip0.wav"])) == [3, 1]
    assert len(store) == 11 and store.data.shape == (11, 40, 51) and store.data.dtype == np.float32
    rows = store.rows_of(["clip4.wav", "clip8.wav"])
    assert len(rows) == 4
    y = spec_load(audio_set[4])
    for segment, row in enumerate(store.read(rows[:3])):
        reference = spec_logmel(y[segment * FS : (segment + 1) * FS])
        assert np.max(np.abs(row - reference)) <= 1e-4
    assert np.max(np.abs(store.read(rows[3:])[0] - spec_logmel(spec_load(audio_set[-1])))) <= 1e-4
    with pytest.raises(Task1aError, match="broken.wav"):
        store.rows_of(["broken.wav"])
    reopened = FeatureStore(tmp_path / "store")
    assert reopened.keys == store.keys and np.array_equal(reopened.read(np.arange(11)), store.read(np.arange(11)))


def test_int16_store_is_the_official_representation(tmp_path, audio_set, extractor):
    good = [p for p in audio_set if p.name != "broken.wav"][:3]
    store = extract_to_store(good, keys_of(good), tmp_path / "store16", extractor, n_jobs=1, progress=False, storage="int16")
    assert store.data.dtype == np.int16
    reference = np.stack([spec_logmel(spec_load(p)) for p in good])
    assert np.max(np.abs(store.read(store.rows_of(keys_of(good))) - official_int16(reference))) <= 1.0 / 32767 + 1e-7


def test_interrupted_store_resumes_to_the_same_data(tmp_path, audio_set, extractor):
    keys = keys_of(audio_set)
    whole = extract_to_store(audio_set, keys, tmp_path / "whole", extractor, n_jobs=1, progress=False, chunk_size=2)
    partial = extract_to_store(audio_set, keys, tmp_path / "resumed", extractor, n_jobs=1, progress=False, chunk_size=2, max_chunks=2)
    assert not partial.is_complete and len(partial.keys) == 4 and partial.missing
    resumed = extract_to_store(audio_set, keys, tmp_path / "resumed", extractor, n_jobs=2, progress=False, chunk_size=2)
    assert resumed.is_complete and resumed.keys == whole.keys and resumed.failed.keys() == whole.failed.keys()
    expected, got = per_key(whole, keys), per_key(resumed, keys)
    assert all(np.array_equal(expected[k], got[k]) for k in expected)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    import utils.feature_store as feature_store
    from utils.features import LogMelExtractor
    calls = {{"n": 0}}
    original = feature_store.StoreWriter._append_journal

    def dying_append(self, line):
        calls["n"] += 1
        if calls["n"] == {die_at}:
            if {mid_line}:
                self._journal.write(line[: len(line) // 2]); self._journal.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, line)

    feature_store.StoreWriter._append_journal = dying_append
    feature_store.COMMIT_SECONDS = 0.0
    paths = {paths!r}
    feature_store.extract_to_store(paths, [os.path.basename(p) for p in paths], {store!r},
                                   LogMelExtractor(), n_jobs=1, progress=False, chunk_size=2)
    """
)


@pytest.mark.parametrize("mid_line", [False, True])
def test_store_survives_kill_9_and_resumes(tmp_path, audio_set, extractor, mid_line):
    keys = keys_of(audio_set)
    store_dir = tmp_path / "killed"
    script = KILLER.format(repo=str(REPO), die_at=3, mid_line=mid_line, paths=[str(p) for p in audio_set], store=str(store_dir))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    killed = FeatureStore(store_dir)  # rows written but not journaled are invisible
    assert not killed.is_complete and len(killed.keys) == 4
    assert (store_dir / "data.bin").stat().st_size > len(killed) * killed.row_bytes  # the unjournaled rows are there
    resumed = extract_to_store(audio_set, keys, store_dir, extractor, n_jobs=1, progress=False)
    whole = extract_to_store(audio_set, keys, tmp_path / "whole", extractor, n_jobs=1, progress=False)
    assert resumed.is_complete and resumed.keys == whole.keys and len(resumed) == len(whole)
    expected, got = per_key(whole, keys), per_key(resumed, keys)
    assert all(np.array_equal(expected[k], got[k]) for k in expected)
    assert (store_dir / "journal.jsonl").read_bytes().endswith(b"\n")


def test_workers_start_from_a_forkserver_when_tensorflow_is_loaded(tmp_path, audio_set):
    # a caller holding TensorFlow must not fork its threads: the store is then built by forkserver workers
    good = [str(p) for p in audio_set if p.name != "broken.wav"][:4]
    code = textwrap.dedent(f"""
        import sys, types
        sys.path.insert(0, {str(REPO)!r})
        sys.modules["tensorflow"] = types.ModuleType("tensorflow")
        import utils.feature_store as feature_store
        from utils.features import LogMelExtractor
        assert feature_store.pool_context().get_start_method() == "forkserver"
        paths = {good!r}
        store = feature_store.extract_to_store(paths, [p.rsplit("/", 1)[1] for p in paths], {str(tmp_path / "fs")!r},
                                               LogMelExtractor(), n_jobs=2, progress=False, chunk_size=1)
        print(len(store), store.is_complete)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["4", "True"]
    store = FeatureStore(tmp_path / "fs")
    assert np.max(np.abs(store.read(store.rows_of(["clip1.wav"]))[0] - spec_logmel(spec_load(good[1])))) <= 1e-4


def test_store_rejects_other_parameters_and_concurrent_writers(tmp_path, audio_set, extractor):
    good = [p for p in audio_set if p.name != "broken.wav"][:2]
    extract_to_store(good, keys_of(good), tmp_path / "s", extractor, n_jobs=1, progress=False)
    other = LogMelExtractor(**dict(OFFICIAL, n_mels=20))
    with pytest.raises(Task1aError, match="delete it or choose another folder"):
        extract_to_store(good, keys_of(good), tmp_path / "s", other, n_jobs=1, progress=False)
    with pytest.raises(Task1aError, match="not a feature store"):
        FeatureStore(tmp_path / "nowhere")
    from utils.files import lock_file

    with open(tmp_path / "s" / ".lock", "a") as held:  # another writer holds the store
        lock_file(held)
        with pytest.raises(Task1aError, match="another process"):
            extract_to_store(good, keys_of(good), tmp_path / "s", extractor, n_jobs=1, progress=False)


# --------------------------------------------------------------------------------- real audio
def test_every_real_recording_goes_through(real_audio_dir, tmp_path, extractor):
    from utils.audio import audio_files_under

    files = audio_files_under(real_audio_dir)
    assert len(files) >= 20 and any(p.suffix == ".mp3" for p in files)
    keys = [p.relative_to(real_audio_dir).as_posix() for p in files]
    store = extract_to_store(files, keys, tmp_path / "real", extractor, n_jobs=2, progress=False, chunk_size=4)
    assert store.is_complete and not store.failed
    for path, key in zip(files, keys):
        duration = soundfile.info(str(path)).duration
        assert store.segment_counts([key])[0] == max(1, int(round(duration, 3)))
    # one TAU 2022 clip, and one 48 kHz stereo TAU 2019 recording, against the reference
    tau2022 = real_audio_dir / "tau2022_soundata_fixture" / "airport-lisbon-1000-40000-0-a.wav"
    row = store.read(store.rows_of([tau2022.relative_to(real_audio_dir).as_posix()]))[0]
    assert np.max(np.abs(row - spec_logmel(spec_load(tau2022)))) <= 1e-4
    assert np.all(np.isfinite(store.read(np.arange(len(store)))))


# ----------------------------------------------------------------------------------------- CLI
def cli(*args):
    return subprocess.run([sys.executable, "-m", "utils.features", *map(str, args), "--no-progress"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_single_file_and_folder(tmp_path, audio_set):
    path = audio_set[4]
    run = cli(path, "-o", tmp_path / "out.npy")
    assert run.returncode == 0, run.stderr
    saved = np.load(tmp_path / "out.npy")
    assert saved.dtype == np.float32 and saved.shape == (40, 1 + (3 * FS + 5) // 882)
    assert np.max(np.abs(saved - spec_logmel(spec_load(path)))) <= 1e-4

    run = cli(path.parent, "-o", tmp_path / "store", "--jobs", "1")
    assert run.returncode == 1
    assert "broken.wav" in run.stderr and "skipped" in run.stderr
    assert FeatureStore(tmp_path / "store").keys == sorted(p.name for p in audio_set if p.name != "broken.wav")

    run = cli(tmp_path / "missing.wav", "-o", tmp_path / "x.npy")
    assert run.returncode == 1 and run.stderr.startswith("error: ") and "missing.wav" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_cli_reads_the_mel_parameters_through_the_container(tmp_path):
    path = clips(tmp_path, [FS])[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [1, 2\n")
    run = subprocess.run([sys.executable, "-m", "utils.features", str(path), "-o", str(tmp_path / "o.npy"), "--params", str(bad)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.startswith("error: ") and "bad.yaml" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    run = subprocess.run([sys.executable, "-m", "utils.features", str(path), "-o", str(tmp_path / "o.txt")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "must end in .npy" in run.stderr


@pytest.mark.parametrize("module", ["utils.audio", "utils.feature_store", "utils.features"])
def test_import_does_not_import_tensorflow(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------ streaming reads
@pytest.mark.parametrize(
    "rate, channels, samples, subtype",
    [
        (44100, 1, int(5.5 * FS), "PCM_24"),  # no resampling: the very samples
        (48000, 2, int(7.3 * 48000), "PCM_16"),  # down-sampled stereo (the long --predict case)
        (22050, 1, int(6.01 * 22050), "PCM_24"),  # up-sampled
        (32000, 3, int(4.2 * 32000), "FLOAT"),  # three channels, float
        (48000, 1, 47999, "PCM_16"),  # resampy gives 44099 samples, fix_length pads the 44100th with 0
        (48000, 1, 30000, "PCM_16"),  # shorter than a segment: zero-padded to one
    ],
)
def test_streamed_segments_are_the_whole_file_segments_bit_for_bit(tmp_path, rate, channels, samples, subtype):
    from utils.audio import iter_audio_segments

    rng = np.random.default_rng(rate + channels)
    data = rng.uniform(-0.5, 0.5, (samples, channels)) if channels > 1 else rng.uniform(-0.5, 0.5, samples)
    path = write(tmp_path / "long.wav", data, rate=rate, subtype=subtype)
    whole = segment_audio(load_audio(path), FS)
    for max_chunk_seconds in (1.0, 2.5, 30.0):
        blocks = list(iter_audio_segments(path, FS, FS, max_chunk_seconds))
        assert all(len(block) <= max(1, int(max_chunk_seconds)) for block in blocks)
        assert np.array_equal(np.concatenate(blocks), whole), max_chunk_seconds


def test_streamed_reads_reject_bad_files_in_one_line(tmp_path):
    from utils.audio import iter_audio_segments

    path = write(tmp_path / "cut.wav", noise(3 * FS))
    (tmp_path / "cut.wav").write_bytes(path.read_bytes()[:-5000])
    data = noise(2 * FS)
    data[FS + 7] = np.inf
    write(tmp_path / "inf.wav", data, subtype="FLOAT")
    for name, fragment, kwargs in (("cut.wav", "truncated", dict(strict=True)), ("inf.wav", "NaN or infinite", {}),
                                   ("missing.wav", "not found", {}), ("inf.wav", "max_chunk_seconds", dict(max_chunk_seconds=0))):
        with pytest.raises(Task1aError) as caught:
            list(iter_audio_segments(tmp_path / name, FS, FS, **{"max_chunk_seconds": 1.0, **kwargs}))
        assert fragment in str(caught.value) and "\n" not in str(caught.value)
