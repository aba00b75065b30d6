"""The synthetic demo dataset: official TAU 2022 layout, formats, folds, determinism, acoustics."""

import dataclasses
import hashlib
import re
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile

from utils import demo_dataset
from utils.demo_dataset import generate_demo_dataset
from utils.errors import Task1aError
from utils.settings import demo_from_block

SCENES = ["airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall", "street_pedestrian", "street_traffic", "tram"]
TRAIN_DEVICES = {"a", "b", "c", "s1", "s2", "s3"}
TEST_DEVICES = TRAIN_DEVICES | {"s4", "s5", "s6"}
EVALUATION_DEVICES = TEST_DEVICES | {"d", "s7", "s8", "s9", "s10", "s11"}
# Written from the task description, independently of the generator's own pattern.
OFFICIAL_NAME = re.compile(r"^audio/(?P<scene>[a-z_]+)-(?P<city>[a-z]+)-(?P<location>\d+)-(?P<segment>\d+)-(?P<sub>\d)-(?P<device>a|b|c|s[1-6])\.wav$")

TINY_BLOCK = {
    "path": "unused",
    "seed": 7,
    "cities": ["lisbon", "milan", "paris"],
    "locations_per_city": 1,
    "segments_per_location": 1,
    "test_locations_per_scene": 1,
    "test_segments_per_location": 1,
    "subsegments_per_segment": 3,
    "train_device_fraction": 0.5,
    "evaluation_locations_per_scene": 1,
    "evaluation_files": 30,
    "location_variation": 0.3,
    "sample_rate": 44100,
}
TINY = demo_from_block(TINY_BLOCK)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "task1a-demo-synthetic"
    paths = generate_demo_dataset(root, TINY, progress=False, n_jobs=1)
    return root, paths


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def file_digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def log_mel(path: Path) -> np.ndarray:
    """Log magnitude mel energies (40, 51) of a clip, the baseline's front end (librosa, not the generator)."""
    y, sr = soundfile.read(path)
    spectrum = np.abs(librosa.stft(y, n_fft=2048, win_length=1764, hop_length=882, window="hamming"))
    return np.log(librosa.filters.mel(sr=sr, n_fft=2048, n_mels=40) @ spectrum + 1e-10)


def test_returns_the_paths_and_marks_synthetic(generated):
    root, paths = generated
    assert paths == {"development": root / "development", "evaluation": root / "evaluation", "evaluation_labels": root / "evaluation_labels.csv"}
    assert paths["evaluation_labels"].parent == root and paths["evaluation"] not in paths["evaluation_labels"].parents
    for folder in (root, paths["development"], paths["evaluation"]):
        readme = (folder / "README.txt").read_text()
        assert "SYNTHETIC" in readme and "NOT TAU" in readme
    assert demo_dataset.read_marker(root)["hash"] == demo_dataset.parameters_hash(TINY)


def test_csv_files_are_official_format(generated):
    root, paths = generated
    development, evaluation = paths["development"], paths["evaluation"]
    expected_headers = {
        development / "meta.csv": "filename\tscene_label\tidentifier\tsource_label",
        development / "evaluation_setup" / "fold1_train.csv": "filename\tscene_label",
        development / "evaluation_setup" / "fold1_evaluate.csv": "filename\tscene_label",
        development / "evaluation_setup" / "fold1_test.csv": "filename",
        evaluation / "meta.csv": "filename",
        evaluation / "evaluation_setup" / "fold1_test.csv": "filename\tdevice_id",  # the official DCASE2025 form
        paths["evaluation_labels"]: "filename\tscene_label\tidentifier\tsource_label",
    }
    for path, header in expected_headers.items():
        raw = path.read_bytes()
        assert raw.endswith(b"\r\n"), path
        lines = raw[:-2].split(b"\r\n")
        assert b"\n" not in raw.replace(b"\r\n", b""), f"{path}: a bare LF"
        assert lines[0].decode() == header
        n_columns = header.count("\t") + 1
        assert len(lines) > 1 and all(line.count(b"\t") == n_columns - 1 for line in lines), path


def test_development_names_meta_and_folds_agree(generated):
    _, paths = generated
    development = paths["development"]
    meta = read_tsv(development / "meta.csv")
    train = read_tsv(development / "evaluation_setup" / "fold1_train.csv")
    evaluate = read_tsv(development / "evaluation_setup" / "fold1_evaluate.csv")
    test = read_tsv(development / "evaluation_setup" / "fold1_test.csv")

    parsed = meta["filename"].str.extract(OFFICIAL_NAME)
    assert parsed.notna().all().all(), meta["filename"][parsed.isna().any(axis=1)].tolist()[:3]
    assert (parsed["scene"] == meta["scene_label"]).all()
    assert (parsed["city"] + "-" + parsed["location"] == meta["identifier"]).all()
    assert (parsed["device"] == meta["source_label"]).all()
    assert set(parsed["city"]) == set(TINY_BLOCK["cities"]) and set(meta["scene_label"]) == set(SCENES)
    assert set(parsed["sub"].astype(int)) == set(range(TINY_BLOCK["subsegments_per_segment"]))
    # a location id means one place: one scene and one city
    assert (meta.groupby("identifier")["scene_label"].nunique() == 1).all()

    # every file is listed once, exists, and the audio folder holds nothing else
    assert meta["filename"].is_unique
    assert sorted(p.name for p in (development / "audio").iterdir()) == sorted(Path(f).name for f in meta["filename"])

    # folds: train + evaluate = meta, labels as in meta, test = evaluate without labels
    assert set(train["filename"]).isdisjoint(evaluate["filename"])
    assert set(train["filename"]) | set(evaluate["filename"]) == set(meta["filename"])
    labels = dict(zip(meta["filename"], meta["scene_label"]))
    assert all(labels[f] == s for f, s in zip(train["filename"], train["scene_label"]))
    assert all(labels[f] == s for f, s in zip(evaluate["filename"], evaluate["scene_label"]))
    assert list(test.columns) == ["filename"] and test["filename"].tolist() == evaluate["filename"].tolist()


def test_folds_are_location_disjoint_with_official_devices(generated):
    _, paths = generated
    development = paths["development"]
    meta = read_tsv(development / "meta.csv").set_index("filename")
    train = read_tsv(development / "evaluation_setup" / "fold1_train.csv").join(meta[["identifier", "source_label"]], on="filename")
    evaluate = read_tsv(development / "evaluation_setup" / "fold1_evaluate.csv").join(meta[["identifier", "source_label"]], on="filename")
    assert set(train["identifier"]).isdisjoint(evaluate["identifier"])
    assert set(train["source_label"]) == TRAIN_DEVICES
    assert set(evaluate["source_label"]) == TEST_DEVICES
    counts = train["source_label"].value_counts()
    assert counts["a"] == counts.max() and all(counts["a"] > counts[d] for d in TRAIN_DEVICES - {"a"})
    # every test segment and sub-segment was recorded by all nine devices, like the official fold
    recording = evaluate["filename"].str.replace(r"-[a-z0-9]+\.wav$", "", regex=True)
    assert (evaluate.groupby(recording)["source_label"].apply(set) == TEST_DEVICES).all()
    # every training segment exists on device a (the reference records everything)
    train_recordings = train["filename"].str.replace(r"-[a-z0-9]+\.wav$", "", regex=True)
    assert set(train_recordings) == set(train_recordings[train["source_label"] == "a"])
    # sizes follow the parameters
    n_sub = TINY_BLOCK["subsegments_per_segment"]
    assert len(evaluate) == len(SCENES) * TINY_BLOCK["test_locations_per_scene"] * TINY_BLOCK["test_segments_per_location"] * n_sub * len(TEST_DEVICES)
    assert counts["a"] == len(SCENES) * len(TINY_BLOCK["cities"]) * TINY_BLOCK["locations_per_city"] * TINY_BLOCK["segments_per_location"] * n_sub


def test_evaluation_set_layout_and_separate_labels(generated):
    _, paths = generated
    evaluation = paths["evaluation"]
    fold = read_tsv(evaluation / "evaluation_setup" / "fold1_test.csv")
    meta = read_tsv(evaluation / "meta.csv")
    n = TINY_BLOCK["evaluation_files"]
    assert list(fold.columns) == ["filename", "device_id"] and list(meta.columns) == ["filename"]  # DCASE2025: the list gives the device
    assert fold["filename"].tolist() == [f"audio/{i}.wav" for i in range(n)] == meta["filename"].tolist()
    assert sorted(p.name for p in (evaluation / "audio").iterdir()) == sorted(f"{i}.wav" for i in range(n))
    assert not any("label" in p.name for p in evaluation.rglob("*"))
    labels = read_tsv(paths["evaluation_labels"])
    assert labels["filename"].tolist() == fold["filename"].tolist()
    assert fold["device_id"].tolist() == labels["source_label"].tolist()
    assert set(labels["scene_label"]) <= set(SCENES) and labels["scene_label"].nunique() == len(SCENES)
    assert set(labels["source_label"]) == EVALUATION_DEVICES  # 30 files, 15 devices in turn
    assert labels["identifier"].str.fullmatch(r"(lisbon|milan|paris)-\d+").all()
    development_locations = set(read_tsv(paths["development"] / "meta.csv")["identifier"])
    assert development_locations.isdisjoint(labels["identifier"])


def test_audio_format(generated):
    root, _ = generated
    files = sorted(root.rglob("*.wav"))
    assert len(files) > 100
    for path in files[:: max(1, len(files) // 40)]:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype, info.format) == (44100, 1, 44100, "PCM_24", "WAV"), path
        y, _ = soundfile.read(path)
        assert 1e-4 < np.sqrt(np.mean(y**2)) < 0.5 and np.abs(y).max() <= 1.0


def test_same_seed_gives_identical_bytes_whatever_the_workers(generated, tmp_path):
    root, _ = generated
    again = tmp_path / "again"
    generate_demo_dataset(again, TINY, progress=False, n_jobs=2)  # worker processes must not change a byte
    assert file_digests(again) == file_digests(root)


def test_different_seed_gives_different_audio(generated, tmp_path):
    root, _ = generated
    other = tmp_path / "other"
    generate_demo_dataset(other, demo_from_block({**TINY_BLOCK, "seed": 8}), progress=False, n_jobs=1)
    assert demo_dataset.read_marker(other)["hash"] != demo_dataset.read_marker(root)["hash"]
    ours, theirs = file_digests(root), file_digests(other)
    assert ours["evaluation/audio/0.wav"] != theirs["evaluation/audio/0.wav"]
    assert set(ours) != set(theirs)  # other location and segment ids


def test_generated_once_regenerated_when_parameters_change(tmp_path):
    small = demo_from_block({**TINY_BLOCK, "cities": ["lyon"], "subsegments_per_segment": 1, "evaluation_files": 15})
    root = tmp_path / "demo"
    generate_demo_dataset(root, small, progress=False, n_jobs=1)
    clip = next((root / "development" / "audio").iterdir())
    stamp = clip.stat().st_mtime_ns
    generate_demo_dataset(root, dataclasses.replace(small, path="elsewhere"), progress=False, n_jobs=1)  # the path is not content
    assert clip.stat().st_mtime_ns == stamp
    generate_demo_dataset(root, dataclasses.replace(small, evaluation_files=16), progress=False, n_jobs=1)
    assert len(read_tsv(root / "evaluation_labels.csv")) == 16
    (root / ".complete").unlink()  # e.g. deleted by hand: regenerate
    generate_demo_dataset(root, small, progress=False, n_jobs=1)
    assert len(read_tsv(root / "evaluation_labels.csv")) == 15
    assert demo_dataset.read_marker(root)["hash"] == demo_dataset.parameters_hash(small)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no build or stale folders left


def test_interrupted_generation_never_looks_complete(tmp_path, monkeypatch):
    small = demo_from_block({**TINY_BLOCK, "cities": ["lyon"], "subsegments_per_segment": 1, "evaluation_files": 15})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_dataset, "_write_tables", killed)
    with pytest.raises(KeyboardInterrupt):
        generate_demo_dataset(tmp_path / "demo", small, progress=False, n_jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(Task1aError, match="not a demo dataset"):
        generate_demo_dataset(foreign, TINY, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a dataset")
    assert demo_dataset.main([str(tmp_path), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1


@pytest.mark.parametrize(
    "change, key",
    [
        ({"epohcs": 3}, "demo.epohcs"),
        ({"seed": "7"}, "demo.seed"),
        ({"seed": True}, "demo.seed"),
        ({"cities": ["New York"]}, "demo.cities"),
        ({"cities": ["lyon", "lyon"]}, "demo.cities"),
        ({"subsegments_per_segment": 11}, "demo.subsegments_per_segment"),
        ({"train_device_fraction": 0.0}, "demo.train_device_fraction"),
        ({"evaluation_files": 10_000}, "demo.evaluation_files"),
        ({"locations_per_city": 0}, "demo.locations_per_city"),
    ],
)
def test_bad_parameters_are_named(change, key):
    """The registry refuses a bad value, one key at a time; the settings builder the one rule over two keys."""
    with pytest.raises(Task1aError, match=re.escape(key)):
        demo_from_block({**TINY_BLOCK, **change})


def test_a_set_with_bad_demo_parameters_stops_before_any_data(tmp_path):
    """The same bad values in a set: refused when the files are read (the registry) or when the data stage
    types them (the one rule over two keys), before anything is generated."""
    from utils.parameters import ParameterContainer
    from utils.stages.data import prepare_data

    user = tmp_path / "bad.yaml"
    user.write_text("defaults:\n  dataset_method_parameters:\n    demo:\n      locations_per_city: 0\n")
    with pytest.raises(Task1aError, match=re.escape("'dataset_method_parameters.demo.locations_per_city' must be an integer >= 1, got 0")):
        ParameterContainer(override_path=user)
    user.write_text(f"defaults:\n  dataset_method_parameters:\n    demo:\n      path: {tmp_path / 'demo'}\n      evaluation_files: 10000\n")
    params = ParameterContainer(override_path=user).resolve("demo")
    with pytest.raises(Task1aError, match=re.escape("dataset_method_parameters.demo.evaluation_files = 10000 exceeds")):
        prepare_data(params, tmp_path, progress=False)
    assert not (tmp_path / "demo").exists()


def test_yaml_block_is_valid():
    assert demo_from_block() == demo_from_block({})  # the shipped block passes the registry and the builder


def test_same_recording_on_two_devices_differs_in_spectrum_but_correlates(generated):
    _, paths = generated
    evaluate = read_tsv(paths["development"] / "evaluation_setup" / "fold1_evaluate.csv")
    stems = sorted({f[: -len("-a.wav")] for f in evaluate["filename"] if f.endswith("-a.wav")})
    audio = paths["development"]

    def envelope(features):  # frame loudness over time
        return np.log(np.exp(features).sum(axis=0))

    same, other, spectral_gap = [], [], []
    for first, second in zip(stems, stems[1:] + stems[:1]):
        reference = log_mel(audio / f"{first}-a.wav")
        for device in ("b", "s4"):
            recorded = log_mel(audio / f"{first}-{device}.wav")
            same.append(np.corrcoef(envelope(reference), envelope(recorded))[0, 1])
            other.append(np.corrcoef(envelope(reference), envelope(log_mel(audio / f"{second}-{device}.wav")))[0, 1])
            difference = recorded.mean(axis=1) - reference.mean(axis=1)  # per band, log units
            spectral_gap.append(difference.max() - difference.min())
    assert np.median(same) > 0.5 and np.median(same) > np.median(other) + 0.3
    # not just a level change: the band-wise difference varies by more than 4 dB across bands
    assert np.min(spectral_gap) > np.log(10 ** (4 / 20))


def test_scenes_differ_measurably(generated):
    """A nearest-centroid classifier on mean log-mel beats chance (10 %) widely on new locations.

    Fitted on the device-a clips of the training fold, scored on the device-a clips of the test
    fold (locations it has never seen).
    """
    _, paths = generated
    development = paths["development"]

    def features(fold):
        table = read_tsv(development / "evaluation_setup" / fold)
        table = table[table["filename"].str.endswith("-a.wav")]
        return np.stack([log_mel(development / f).mean(axis=1) for f in table["filename"]]), table["scene_label"].to_numpy()

    x_train, y_train = features("fold1_train.csv")
    x_test, y_test = features("fold1_evaluate.csv")
    centroids = np.stack([x_train[y_train == scene].mean(axis=0) for scene in SCENES])
    predicted = np.array(SCENES)[np.argmin(((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1), axis=1)]
    assert len(y_test) == 30 and np.mean(predicted == y_test) > 0.4


def test_the_cli_reads_task1a_yaml_through_the_parameter_container(monkeypatch, tmp_path):
    import utils.parameters

    class Container:  # stands for ParameterContainer(path): the one reader of task1a.yaml (utils.parameters.checked_defaults)
        defaults = {"dataset_method_parameters": {"demo": {**TINY_BLOCK, "seed": 11}}}

        def __init__(self, *args):
            pass

    monkeypatch.setattr(utils.parameters, "ParameterContainer", Container)
    generated = []
    monkeypatch.setattr(demo_dataset, "generate_demo_dataset", lambda root, settings, **kwargs: generated.append(settings) or {})
    assert demo_dataset.main([str(tmp_path / "demo"), "--quiet"]) == 0
    assert [(settings.seed, settings.cities) for settings in generated] == [(11, tuple(TINY_BLOCK["cities"]))]  # not the shipped block's


def test_cli_refuses_a_bad_seed_in_one_line(tmp_path, capsys):
    assert demo_dataset.main([str(tmp_path / "demo"), "--seed", "-1", "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error == "error: demo dataset: 'dataset_method_parameters.demo.seed' must be an integer >= 0, got -1; fix the value\n"
    assert not (tmp_path / "demo").exists()
