"""The DCASE2024/2025 baseline front end (utils/frontend_32k.py) against torchaudio's, through the registry and the store.

The reference numbers are torchaudio's (tests/data/reference/frontend_32k.npz, written by
tools/reference/frontend.py with the ``reference`` extra; torch is not needed here).
"""

import json

import numpy as np
import pytest
import soundfile
import yaml

from conftest import REPO_DIR
from utils.errors import Task1aError
from utils.frontend_32k import LogMel32kExtractor, htk_mel_filterbank, resampled_length

FIXTURE = REPO_DIR / "tests" / "data" / "reference" / "frontend_32k.npz"
#: the issue's tolerance, log domain, max abs difference
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return np.load(FIXTURE, allow_pickle=False)


@pytest.fixture(scope="module")
def extractor():
    return LogMel32kExtractor()


def fixture_filterbank(fixture, label):
    matrix = np.zeros(tuple(fixture[f"filterbank_{label}/shape"]))
    matrix[fixture[f"filterbank_{label}/rows"], fixture[f"filterbank_{label}/cols"]] = fixture[f"filterbank_{label}/values"]
    return matrix


def test_the_shipped_parameters_are_the_facts_the_fixture_was_made_with(fixture, extractor):
    from utils.parameters import ParameterContainer

    shipped = ParameterContainer().defaults["feature_extractor_method_parameters"]["logmel32k"]
    assert LogMel32kExtractor(**shipped).params == extractor.params
    assert int(fixture["fs"]) == shipped["fs"]
    for name in ("resample_fs", "n_fft", "win_length", "hop_length", "n_mels", "fmin", "fmax", "log_offset"):
        assert float(fixture[f"fact_{name}"]) == shipped[name], name


def test_a_one_second_clip_at_44k1_gives_256_by_65(extractor):
    y = np.random.default_rng(0).standard_normal(44100) * 0.1
    assert extractor.row_shape(44100) == (256, 65)
    assert extractor.resample(y).shape == (32000,)
    out = extractor.extract(y)
    assert out.shape == (256, 65) and out.dtype == np.float64 and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", ["real_tau2022_airport_lisbon", "real_tau2020_metro_station_paris", "synthetic_tone_1khz",
                                  "synthetic_chirp", "synthetic_noise", "synthetic_clicks", "synthetic_silence"])
def test_equals_torchaudio_within_1e4_in_the_log_domain(fixture, extractor, name):
    assert name in fixture["names"]
    signal = fixture[f"input/{name}"]
    ours = extractor.extract(signal)
    reference = fixture[f"reference_float64/{name}"]  # torchaudio in float64, stored as float32
    assert ours.shape == reference.shape == extractor.row_shape(len(signal))
    assert np.max(np.abs(ours - reference)) <= TOLERANCE
    # torchaudio in float32, as the baseline runs it: every difference is that run's own float32
    # rounding (its distance from the float64 run), never more
    float32_run = fixture[f"reference_float32/{name}"]
    assert np.all(np.abs(ours - float32_run) <= np.abs(reference - float32_run) + TOLERANCE)


def test_silence_sits_on_the_log_offset_floor(fixture, extractor):
    out = extractor.extract(fixture["input/synthetic_silence"])
    assert np.all(out == np.log(1e-5))


def test_mel_filterbank_equals_torchaudio_melscale_fbanks(fixture, extractor):
    assert extractor.filterbank.shape == (256, 2049)
    exact = fixture_filterbank(fixture, "float64")
    assert np.max(np.abs(extractor.filterbank - exact)) < 1e-12
    assert np.array_equal(extractor.filterbank > 0, exact > 0)  # the same bins in every band, DC included
    # torchaudio's default float32 matrix: its mel points are rounded to float32 (about 1.6e-5 here)
    assert np.max(np.abs(extractor.filterbank - fixture_filterbank(fixture, "float32"))) < 1e-4
    # no area normalisation: each triangle peaks at (nearly) 1 and the DC bin is in the first band
    assert np.all(extractor.filterbank.max(axis=1) > 0.5) and extractor.filterbank.max() <= 1.0
    assert extractor.filterbank[0, 0] == 0.0 and extractor.filterbank[0, 1] > 0


def test_filterbank_edges_are_htk_mel_points():
    bank = htk_mel_filterbank(32000, 4096, 256, 0.0, 16000.0)
    mel_top = 2595.0 * np.log10(1.0 + 16000.0 / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, mel_top, 258) / 2595.0) - 1.0)
    bins = np.arange(2049) * 16000.0 / 2048
    for band in (0, 100, 255):
        inside = (bins > edges[band]) & (bins < edges[band + 2])
        assert np.array_equal(bank[band] > 0, inside)


def test_resampling_keeps_a_tone_and_removes_what_is_above_the_new_nyquist(extractor):
    t = np.arange(44100) / 44100
    kept = extractor.resample(np.sin(2 * np.pi * 1000 * t))
    expected = np.sin(2 * np.pi * 1000 * np.arange(32000) / 32000)
    assert np.max(np.abs(kept[1000:-1000] - expected[1000:-1000])) < 1e-3
    removed = extractor.resample(np.sin(2 * np.pi * 20000 * t))  # a short (6 zero crossings) filter: about -43 dB
    assert np.max(np.abs(removed[1000:-1000])) < 0.01
    assert resampled_length(44101, 44100, 32000) == 32001 and resampled_length(441, 44100, 32000) == 320
    y = np.random.default_rng(3).standard_normal(1000)
    assert np.array_equal(LogMel32kExtractor(fs=32000).resample(y), y)  # equal rates: no filtering, as torchaudio


def test_frames_follow_the_centred_stft(extractor):
    for n_samples in (8820, 44100, 2 * 44100 + 7):
        m = extractor.resampled_samples(n_samples)
        assert extractor.extract(np.ones(n_samples) * 0.01).shape == (256, 1 + m // 500)
    with pytest.raises(Task1aError, match="too short for reflect padding"):
        extractor.extract(np.zeros(2000))


def test_a_batch_is_each_clip_alone_and_the_complexity_gate_sees_256_by_65(extractor):
    from utils.complexity import network_input_shape
    from utils.parameters import ParameterContainer, apply_overrides
    from utils.settings import feature_settings

    clips = np.random.default_rng(4).standard_normal((3, 44100)) * 0.1
    batch = extractor.extract_batch(clips)
    assert batch.dtype == np.float32 and batch.shape == (3, 256, 65)
    assert all(np.array_equal(row, extractor.extract(clip).astype(np.float32)) for row, clip in zip(batch, clips))
    params = ParameterContainer().resolve("dcase2023_baseline")
    params = apply_overrides(params, {"feature_extractor.method": "logmel32k"})
    assert network_input_shape(feature_settings(params["feature_extractor"])) == (256, 65, 1)


def test_pickled_extractor_gives_the_same_features(extractor):
    import pickle

    y = np.random.default_rng(1).standard_normal(44100)
    again = pickle.loads(pickle.dumps(extractor))
    assert again.params == extractor.params and np.array_equal(again.extract(y), extractor.extract(y))


@pytest.mark.parametrize("storage, tolerance", [("float32", TOLERANCE), ("float16", 0.004)])
def test_method_selected_in_yaml_extracts_into_the_feature_store(tmp_path, fixture, storage, tolerance):
    """task1a.yaml + a -p file choosing logmel32k: the feature stage stores the torchaudio numbers."""
    import pandas as pd

    from utils import stages
    from utils.feature_store import FeatureStore
    from utils.parameters import DEFAULT_PARAMETER_FILE, ParameterContainer
    from utils.settings import feature_settings

    names = ["real_tau2022_airport_lisbon", "real_tau2020_metro_station_paris"]
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in names:  # float32 WAV: the fixture's samples exactly
        soundfile.write(audio / f"{name}.wav", fixture[f"input/{name}"], 44100, subtype="FLOAT")
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"defaults": {"feature_extractor": {"method": "logmel32k", "n_jobs": 1, "storage": storage,
                                                                       "segment_length_seconds": 0.5}}}))
    params = ParameterContainer(DEFAULT_PARAMETER_FILE, user).resolve("dcase2023_baseline")
    items = pd.DataFrame({"filename": [f"{name}.wav" for name in names]})
    store = stages.FEATURES.compute(stages.FeatureUnit(feature_settings(params["feature_extractor"]), items, audio, tmp_path / "store", progress=False))

    reopened = FeatureStore(tmp_path / "store")
    assert reopened.storage == storage and reopened.data.dtype == np.dtype(storage)
    assert reopened.row_shape == (256, 33)  # 0.5 s segments: 16,000 samples at 32 kHz
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["extractor"] == LogMel32kExtractor().params
    assert list(store.segment_counts(items["filename"])) == [2, 1]
    rows = reopened.read(reopened.rows_of(items["filename"]))
    assert rows.dtype == np.float32
    extractor = LogMel32kExtractor()
    lisbon = fixture["input/real_tau2022_airport_lisbon"]
    expected = [extractor.extract(lisbon[:22050]), extractor.extract(lisbon[22050:]), None]
    expected[2] = fixture["reference_float64/real_tau2020_metro_station_paris"]  # that clip is 0.5 s: one segment, the reference itself
    for row, want in zip(rows, expected):
        assert np.max(np.abs(row - want)) <= tolerance


def test_store_size_halves_with_float16(tmp_path):
    from utils.feature_store import FeatureStore, extract_to_store

    path = tmp_path / "clip.wav"
    soundfile.write(path, np.random.default_rng(2).standard_normal(44100) * 0.1, 44100, subtype="FLOAT")
    sizes = {}
    for storage in ("float32", "float16"):
        store = extract_to_store([path], ["clip"], tmp_path / storage, LogMel32kExtractor(), n_jobs=1, progress=False, storage=storage)
        sizes[storage] = (tmp_path / storage / "data.bin").stat().st_size
        assert isinstance(FeatureStore(tmp_path / storage).data, np.memmap)
        assert store.read([0]).shape == (1, 256, 65)
    assert sizes == {"float32": 256 * 65 * 4, "float16": 256 * 65 * 2}


@pytest.mark.parametrize("name, value, fragment", [
    ("n_fft", 0, "n_fft must be an integer > 1"),
    ("win_length", 5000, "win_length (5000) is longer than n_fft"),
    ("hop_length", 1.5, "hop_length must be an integer"),
    ("rolloff", 1.5, "rolloff must be a number > 0 and <= 1"),
    ("fmax", 20000, "fmax <= resample_fs / 2"),
    ("log_offset", 0, "log_offset must be a number > 0"),
    ("n_mels", True, "n_mels must be an integer"),
    ("fs", float("nan"), "fs must be an integer"),
])
def test_bad_parameter_values_are_refused_in_one_line(name, value, fragment):
    with pytest.raises(Task1aError) as error:
        LogMel32kExtractor(**{name: value})
    message = str(error.value)
    assert fragment in message and "\n" not in message and "task1a.yaml" in message


@pytest.mark.parametrize("key, value", [
    ("feature_extractor_method_parameters.logmel32k.rolloff", 0),
    ("feature_extractor_method_parameters.logmel32k.n_mels", -256),
    ("feature_extractor_method_parameters.logmel32k.log_offset", "1e-5"),
    ("feature_extractor.storage", "float64"),
    ("feature_extractor.method", "logmel"),
])
def test_bad_yaml_values_are_refused_before_any_work(tmp_path, key, value):
    from utils.parameters import DEFAULT_PARAMETER_FILE, ParameterContainer

    tree = value
    for part in reversed(key.split(".")):
        tree = {part: tree}
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"defaults": tree}))
    with pytest.raises(Task1aError) as error:
        ParameterContainer(DEFAULT_PARAMETER_FILE, user).resolve("dcase2023_baseline")
    assert key in str(error.value) and "\n" not in str(error.value)


def test_the_real_clip_in_the_fixture_is_the_tau_recording(fixture, real_audio_dir):
    from utils.audio import load_audio

    clip = load_audio(real_audio_dir / "tau2022_soundata_fixture" / "airport-lisbon-1000-40000-0-a.wav", fs=44100, mono=True)
    assert np.array_equal(clip.astype(np.float32), fixture["input/real_tau2022_airport_lisbon"])


def test_command_line_extracts_a_file_and_a_folder(tmp_path, fixture):
    from utils.feature_store import FeatureStore
    from utils.features import main

    audio = tmp_path / "audio"
    audio.mkdir()
    clip = fixture["input/real_tau2022_airport_lisbon"]
    soundfile.write(audio / "lisbon.wav", clip, 44100, subtype="FLOAT")
    assert main([str(audio / "lisbon.wav"), "-o", str(tmp_path / "lisbon.npy"), "--method", "logmel32k"]) == 0
    single = np.load(tmp_path / "lisbon.npy")
    assert single.shape == (256, 65) and np.max(np.abs(single - fixture["reference_float64/real_tau2022_airport_lisbon"])) <= TOLERANCE
    assert main([str(audio), "-o", str(tmp_path / "store"), "--method", "logmel32k", "--storage", "float16", "--jobs", "1", "--no-progress"]) == 0
    store = FeatureStore(tmp_path / "store")
    assert store.storage == "float16" and np.max(np.abs(store.read([0])[0] - single)) <= 0.004


@pytest.mark.slow
def test_a_demo_run_with_the_32k_front_end_goes_end_to_end(tmp_path):
    """task1a.py -s demo with logmel32k, float16 rows and no normalisation: features, learning, testing, evaluation."""
    import subprocess
    import sys

    from conftest import tiny_demo_parameters
    from utils.feature_store import FeatureStore

    overrides = tiny_demo_parameters(tmp_path, energy=False)
    overrides["defaults"].update({"feature_extractor": {"method": "logmel32k", "storage": "float16"},
                                  "data_processing": {"normalization": "none"}, "flow": {"model_size": False}})
    param_file = tmp_path / "logmel32k.yaml"
    param_file.write_text(yaml.safe_dump(overrides))
    output = tmp_path / "dev_output.csv"
    run = subprocess.run([sys.executable, "task1a.py", "--no_progress", "-s", "demo", "-p", str(param_file), "--output", str(output)],
                         cwd=REPO_DIR, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    stores = list((tmp_path / "system" / "features").glob("*/development/manifest.json"))
    assert len(stores) == 1
    store = FeatureStore(stores[0].parent)
    assert store.extractor_params == LogMel32kExtractor().params and store.storage == "float16" and store.row_shape == (256, 65)
    results = yaml.safe_load(next((tmp_path / "system" / "evaluator").glob("*/seed_0/results.yaml")).read_text())
    assert results["synthetic"] is True and 0.0 <= results["overall_accuracy"] <= 1.0
    evaluate = next((tmp_path / "datasets" / "demo").rglob("fold1_evaluate.csv")).read_text().splitlines()
    assert len(output.read_text().splitlines()) == len(evaluate)  # a header and one row per test clip
