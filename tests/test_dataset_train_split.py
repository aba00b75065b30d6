"""dataset.train_split: the DCASE2024 data-efficient training subsets (split{5,10,25,50}.csv).

On the real split files (skipped when ../shared is missing): counts, nesting, the validation split
inside a subset; on small made-up folders: the errors; against a local HTTP server on 127.0.0.1:
the downloader; on the demo generator's plan: its split files.
"""

from __future__ import annotations

import collections
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_download import FakeServer
from utils import demo_dataset, download
from utils.dataset import SCENE_LABELS, TAUDevelopmentSet, check_dataset, location_disjoint_split
from utils.errors import Task1aError
from utils.parameters import ParameterContainer, apply_overrides, check_values
from utils.settings import demo_from_block

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_COUNTS = {5: 6_980, 10: 13_960, 25: 34_900, 50: 69_800, 100: 139_620}


def _recording(filenames: pd.Series) -> pd.Series:
    """scene-city-location-segment-device: the 10-s recording a 1-s clip was cut from."""
    return filenames.str.replace(r"-\d+-([a-z0-9]+)\.wav$", r"-\1", regex=True)


# ------------------------------------------------------------------------------------------
# The real split files
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_splits(tau2022_meta_dir):
    return {percent: TAUDevelopmentSet.load(tau2022_meta_dir, train_split=percent) for percent in OFFICIAL_COUNTS}


@pytest.mark.slow
def test_real_split_counts_and_nesting(real_splits):
    fold = real_splits[100].train
    assert real_splits[100].split_file is None and real_splits[100].train.equals(real_splits[100].train_fold)
    previous = set()
    for percent, count in OFFICIAL_COUNTS.items():
        dataset = real_splits[percent]
        names = set(dataset.train["filename"])
        assert len(dataset.train) == len(names) == count, percent
        assert dataset.train_split == percent and len(dataset.train_fold) == 139_620
        assert previous < names <= set(fold["filename"]), percent  # split5 < split10 < ... < fold1_train
        previous = names
        assert len(dataset.evaluate) == 29_680  # the test set stays fold1_evaluate
        # attributes come along from meta.csv, the rows keep the fold's order
        assert dataset.train["identifier"].notna().all() and dataset.train["source_label"].notna().all()
        assert dataset.train["filename"].tolist() == [name for name in fold["filename"] if name in names]
        # whole 10-s recordings; every scene, its share of the fold within a percentage point
        assert (_recording(dataset.train["filename"]).value_counts() == 10).all(), percent
        share = dataset.train["scene_label"].value_counts(normalize=True)
        assert set(share.index) == set(SCENE_LABELS)
        assert (share - fold["scene_label"].value_counts(normalize=True)).abs().max() < 0.01, percent
    assert real_splits[5].split_file.name == "split5.csv"


@pytest.mark.slow
def test_real_validation_split_is_inside_the_subset_and_location_disjoint(real_splits):
    items = real_splits[25].train
    train_index, validation_index = location_disjoint_split(items, 0.3, seed=0)
    train, validation = items.iloc[train_index], items.iloc[validation_index]
    assert len(train) + len(validation) == 34_900
    assert not set(train["identifier"]) & set(validation["identifier"])
    assert set(validation["filename"]) <= set(items["filename"])
    assert 0.25 < len(validation) / len(items) < 0.35
    assert set(validation["scene_label"]) == set(SCENE_LABELS)


def test_module_cli_train_split_25_on_real_metadata(tau2022_meta_dir):
    result = subprocess.run([sys.executable, "-m", "utils.dataset", str(tau2022_meta_dir), "--json", "--train-split", "25"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    subset = report["train_split"]
    assert subset["percent"] == 25 and subset["subset"] == 34_900 and subset["fold1_train"] == 139_620
    assert Path(subset["file"]).name == "split25.csv"
    assert report["train"]["count"] + report["validation"]["count"] == 34_900 == subset["subset"]
    assert subset["validation"] == report["validation"]["count"]
    train, validation = set(report["train"]["locations"]), set(report["validation"]["locations"])
    assert subset["shared_locations"] == 0 and not train & validation
    assert (subset["train_locations"], subset["validation_locations"]) == (len(train), len(validation))
    assert report["test"]["count"] == 29_680
    text = subprocess.run([sys.executable, "-m", "utils.dataset", str(tau2022_meta_dir), "--train_split", "25"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and "train_split 25 %: 34900 of 139620" in text.stdout and "0 on both sides" in text.stdout


# ------------------------------------------------------------------------------------------
# Errors, on a small folder in the official layout
# ------------------------------------------------------------------------------------------

def _small_dataset(root: Path, split_folder: str | None = "split_setup") -> list[str]:
    """Two training clips (one recording) and one test clip per scene; ``split50.csv`` lists every other training clip."""
    (root / "evaluation_setup").mkdir(parents=True)
    train = [f"audio/{scene}-paris-{i}-{i}-{sub}-a.wav" for i, scene in enumerate(SCENE_LABELS) for sub in range(2)]
    test = [f"audio/{scene}-lyon-{100 + i}-{100 + i}-0-b.wav" for i, scene in enumerate(SCENE_LABELS)]

    def label(name):
        return name.split("/")[1].split("-")[0]

    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    meta += [f"{n}\t{label(n)}\t{n.split('-')[1]}-{n.split('-')[2]}\t{n[:-4].split('-')[-1]}" for n in train + test]
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    (root / "evaluation_setup" / "fold1_train.csv").write_text("filename\tscene_label\n" + "".join(f"{n}\t{label(n)}\n" for n in train))
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text("filename\tscene_label\n" + "".join(f"{n}\t{label(n)}\n" for n in test))
    (root / "evaluation_setup" / "fold1_test.csv").write_text("filename\n" + "".join(f"{n}\n" for n in test))
    if split_folder:
        (root / split_folder).mkdir()
        (root / split_folder / "split50.csv").write_text("filename\tscene_label\n" + "".join(f"{n}\t{label(n)}\n" for n in train[::2]))
    return train


def test_a_small_folder_gives_the_listed_subset(tmp_path):
    train = _small_dataset(tmp_path)
    dataset = TAUDevelopmentSet.load(tmp_path, train_split=50)
    assert dataset.train["filename"].tolist() == train[::2] and dataset.train_fold["filename"].tolist() == train
    assert dataset.split_file == tmp_path / "split_setup" / "split50.csv"
    report = check_dataset(tmp_path, train_split=50)
    assert report["train_split"]["subset"] == 10 and report["train"]["count"] + report["validation"]["count"] == 10


@pytest.mark.parametrize("value", [7, 0, 100.0, "25", True, None])
def test_a_bad_train_split_is_one_line_naming_the_key(tmp_path, value):
    _small_dataset(tmp_path)
    with pytest.raises(Task1aError) as failure:
        TAUDevelopmentSet.load(tmp_path, train_split=value)
    message = str(failure.value)
    assert "\n" not in message and "dataset.train_split" in message and "5, 10, 25, 50, 100" in message


def test_the_parameter_file_checks_train_split(tmp_path):
    container = ParameterContainer()
    params = container.resolve()
    assert params["dataset"]["train_split"] == 100
    check_values(apply_overrides(params, {"dataset.train_split": 25}), "test")
    with pytest.raises(Task1aError, match=r"'dataset\.train_split' must be one of 5, 10, 25, 50, 100, got 30"):
        check_values(apply_overrides(params, {"dataset.train_split": 30}), "test")
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"defaults": {"dataset": {"train_split": 33}}}))
    with pytest.raises(Task1aError) as failure:
        ParameterContainer(override_path=user).resolve()
    assert "\n" not in str(failure.value) and "dataset.train_split" in str(failure.value)
    user.write_text(yaml.safe_dump({"defaults": {"dataset": {"train_split": "25"}}}))
    with pytest.raises(Task1aError, match=r"dataset\.train_split' must be an integer"):
        ParameterContainer(override_path=user)


def test_a_missing_split_file_names_the_path_and_the_download_command(tmp_path, capsys):
    from utils import dataset as tau_dataset

    _small_dataset(tmp_path)
    with pytest.raises(Task1aError) as failure:
        TAUDevelopmentSet.load(tmp_path, train_split=5)
    message = str(failure.value)
    assert "\n" not in message
    assert str(tmp_path / "split_setup" / "split5.csv") in message
    assert f"python -m utils.download {tmp_path} --train-splits" in message
    assert tau_dataset.main([str(tmp_path), "--train-split", "5"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: {tmp_path / 'split_setup' / 'split5.csv'} not found")


def test_the_shared_copies_folder_name_is_accepted(tmp_path):
    _small_dataset(tmp_path, split_folder="dcase2024_split_setup")
    assert TAUDevelopmentSet.load(tmp_path, train_split=50).split_file.parent.name == "dcase2024_split_setup"


@pytest.mark.parametrize("row, expected", [
    ("audio/bus-paris-99-99-0-a.wav\tbus", "1 file(s) not in fold1_train.csv, first 'audio/bus-paris-99-99-0-a.wav'"),
    ("audio/park-paris-4-4-1-a.wav\ttram", "'audio/park-paris-4-4-1-a.wav' is labelled 'tram' but fold1_train.csv says 'park'"),
    ("audio/park-paris-4-4-0-a.wav\tpark", "duplicated"),
])
def test_a_split_file_that_is_not_a_subset_of_the_fold_is_refused(tmp_path, row, expected):
    _small_dataset(tmp_path)
    path = tmp_path / "split_setup" / "split50.csv"
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(Task1aError) as failure:
        TAUDevelopmentSet.load(tmp_path, train_split=50)
    message = str(failure.value)
    assert "\n" not in message and str(path) in message and expected in message


# ------------------------------------------------------------------------------------------
# The downloader, against a local server
# ------------------------------------------------------------------------------------------

SPLIT_BODIES = {percent: ("filename\tscene_label\n" + "".join(f"audio/bus-paris-{percent}-0-{sub}-a.wav\tbus\n" for sub in range(4))).encode()
                for percent in (5, 10, 25, 50)}


def _split_manifest(path: Path, bodies=SPLIT_BODIES) -> Path:
    files = {percent: {"file": f"split{percent}.csv", "bytes": len(body), "md5": hashlib.md5(body).hexdigest()} for percent, body in bodies.items()}
    path.write_text(yaml.safe_dump({"train_splits": {"title": "test", "url": "http://127.0.0.1:9/unused", "folder": "split_setup", "files": files},
                                    "sets": {}}))
    return path


@pytest.fixture
def split_server():
    fake = FakeServer({f"files/split{percent}.csv": body for percent, body in SPLIT_BODIES.items()})
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def _fetch(dataset_dir, manifest, server, **kwargs):
    options = {"progress": False, "retry_wait_s": 0.0, "timeout_s": 10.0}
    options.update(kwargs)
    return download.download_train_splits(dataset_dir, base_url=server.url, manifest=manifest, **options)


def test_split_files_are_fetched_verified_and_kept(tmp_path, split_server):
    manifest = _split_manifest(tmp_path / "manifest.yaml")
    _small_dataset(tmp_path / "dev", split_folder=None)
    result = _fetch(tmp_path / "dev", manifest, split_server)
    for percent, body in SPLIT_BODIES.items():
        path = tmp_path / "dev" / "split_setup" / f"split{percent}.csv"
        assert path.read_bytes() == body and result[percent] == {"path": str(path), "downloaded_bytes": len(body)}
        assert split_server.requests_for(f"split{percent}.csv") == [(None, 200)]
    assert not list((tmp_path / "dev" / "split_setup").glob("*.part"))
    again = _fetch(tmp_path / "dev", manifest, split_server, splits=(25,))
    assert again == {25: {"path": str(tmp_path / "dev" / "split_setup" / "split25.csv"), "downloaded_bytes": 0}}
    assert len(split_server.log) == 4  # a verified file is not fetched again


def test_a_damaged_split_file_is_fetched_again_and_a_wrong_one_refused(tmp_path, split_server):
    manifest = _split_manifest(tmp_path / "manifest.yaml")
    _small_dataset(tmp_path / "dev", split_folder=None)
    (tmp_path / "dev" / "split_setup").mkdir()
    (tmp_path / "dev" / "split_setup" / "split5.csv").write_bytes(b"edited\n")
    _fetch(tmp_path / "dev", manifest, split_server, splits=(5,))
    assert (tmp_path / "dev" / "split_setup" / "split5.csv").read_bytes() == SPLIT_BODIES[5]

    split_server.tampered.add("files/split10.csv")  # one byte flipped (the body is longer than 100 bytes)
    with pytest.raises(Task1aError) as failure:
        _fetch(tmp_path / "dev", manifest, split_server, splits=(10,))
    message = str(failure.value)
    assert "\n" not in message and "checksum mismatch for split10.csv" in message and "rerun" in message
    assert not (tmp_path / "dev" / "split_setup" / "split10.csv").exists()
    assert not (tmp_path / "dev" / "split_setup" / "split10.csv.part").exists()


def test_split_download_errors_are_one_line(tmp_path, split_server):
    manifest = _split_manifest(tmp_path / "manifest.yaml")
    with pytest.raises(Task1aError, match="has no meta.csv; give the development-set folder"):
        _fetch(tmp_path / "nothing", manifest, split_server)
    assert not (tmp_path / "nothing").exists()
    _small_dataset(tmp_path / "dev", split_folder=None)
    with pytest.raises(Task1aError, match=r"no split file 100 to download"):
        _fetch(tmp_path / "dev", manifest, split_server, splits=(100,))
    split_server.missing.add("files/split50.csv")
    with pytest.raises(Task1aError) as failure:
        _fetch(tmp_path / "dev", manifest, split_server, splits=(50,))
    assert "\n" not in str(failure.value) and "HTTP 404" in str(failure.value) and f"{split_server.url}/split50.csv" in str(failure.value)


def test_the_command_line_fetches_the_split_files_the_loader_then_reads(tmp_path, split_server, capsys):
    bodies = {percent: body for percent, body in SPLIT_BODIES.items()}
    train = _small_dataset(tmp_path / "dev", split_folder=None)
    bodies[25] = ("filename\tscene_label\n" + "".join(f"{n}\t{n.split('/')[1].split('-')[0]}\n" for n in train[:4])).encode()
    split_server.files["files/split25.csv"] = bodies[25]
    manifest = _split_manifest(tmp_path / "manifest.yaml", bodies)
    arguments = [str(tmp_path / "dev"), "--train-splits", "25", "--base-url", split_server.url, "--manifest", str(manifest), "--no-progress"]
    assert download.main(arguments) == 0
    assert capsys.readouterr().out.strip() == f"split25: {tmp_path / 'dev' / 'split_setup' / 'split25.csv'}"
    assert TAUDevelopmentSet.load(tmp_path / "dev", train_split=25).train["filename"].tolist() == train[:4]


def test_the_shipped_manifest_lists_the_split_files_of_the_shared_copies(shared_dir):
    published = download.load_train_splits()
    assert "CPJKU/dcase2024_task1_baseline/releases/download" in published.url and published.folder == "split_setup"
    copies = shared_dir / "data" / "real" / "tau2022_meta" / "dcase2024_split_setup"
    assert sorted(published.files) == [5, 10, 25, 50]
    for percent, part in published.files.items():
        data = (copies / part.file).read_bytes()
        assert part.file == f"split{percent}.csv" and part.bytes == len(data) and part.md5 == hashlib.md5(data).hexdigest()
    assert download.load_manifest()["development"].folder  # the archive sets still read as before


def test_a_malformed_split_entry_names_the_key(tmp_path):
    manifest = _split_manifest(tmp_path / "manifest.yaml")
    data = yaml.safe_load(manifest.read_text())
    data["train_splits"]["files"][5]["md5"] = "nope"
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(Task1aError, match=r"train_splits\.files\.5 must be"):
        download.load_train_splits(manifest)


# ------------------------------------------------------------------------------------------
# The demo generator's split files
# ------------------------------------------------------------------------------------------

def test_demo_splits_are_nested_whole_recordings_in_proportion():
    settings = demo_from_block()  # the shipped demo block
    _, rows, _ = demo_dataset.plan_recordings(settings)
    train = [row for row in rows if row["fold"] == "train"]
    splits = demo_dataset.draw_train_splits(train, settings.seed)
    assert splits == demo_dataset.draw_train_splits(train, settings.seed)  # deterministic
    assert splits != demo_dataset.draw_train_splits(train, settings.seed + 1)
    fold = pd.DataFrame(train)
    fold["recording"] = _recording(fold["filename"])
    previous = set()
    for percent in (5, 10, 25, 50):
        subset = pd.DataFrame(splits[percent])
        names = set(subset["filename"])
        assert previous < names < set(fold["filename"]) and subset["filename"].is_unique
        previous = names
        chosen = fold[fold["filename"].isin(names)]
        assert chosen.groupby("recording").size().equals(fold[fold["recording"].isin(chosen["recording"])].groupby("recording").size())
        for scene in SCENE_LABELS:  # each scene: round(percent %) of its recordings, at least one
            recordings = fold.loc[fold["scene_label"] == scene, "recording"].nunique()
            assert chosen.loc[chosen["scene_label"] == scene, "recording"].nunique() == max(1, int(np.floor(percent / 100 * recordings + 0.5)))
    devices = collections.Counter(row["source_label"] for row in splits[50])
    assert set(devices) == {"a", "b", "c", "s1", "s2", "s3"}
    assert abs(devices["a"] / len(splits[50]) - (fold["source_label"] == "a").mean()) < 0.05


def test_demo_split_files_are_written_in_the_official_format(tmp_path):
    settings = demo_from_block({"locations_per_city": 1, "segments_per_location": 1, "test_locations_per_scene": 1,
                                "cities": ["lisbon", "paris"], "evaluation_locations_per_scene": 1,
                                "evaluation_files": 20, "subsegments_per_segment": 2, "train_device_fraction": 0.5})
    paths = demo_dataset.generate_demo_dataset(tmp_path / "demo", settings, progress=False, n_jobs=1)
    development = paths["development"]
    _, rows, _ = demo_dataset.plan_recordings(settings)
    expected = demo_dataset.draw_train_splits([row for row in rows if row["fold"] == "train"], settings.seed)
    for percent, subset in expected.items():
        raw = (development / "split_setup" / f"split{percent}.csv").read_bytes()
        assert b"\r" not in raw and raw.endswith(b"\n")  # LF, like the official split files
        lines = raw.decode().splitlines()
        assert lines[0] == "filename\tscene_label"
        assert lines[1:] == [f"{row['filename']}\t{row['scene_label']}" for row in subset]
        loaded = TAUDevelopmentSet.load(development, train_split=percent)
        assert loaded.train["filename"].tolist() == [row["filename"] for row in subset]
    assert demo_dataset.read_marker(tmp_path / "demo")["generator_version"] == demo_dataset.GENERATOR_VERSION == 3
