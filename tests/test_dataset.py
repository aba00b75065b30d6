"""Reading the official layout and the location-disjoint split, on the real official metadata."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from utils.dataset import SCENE_LABELS, TAUDevelopmentSet, TAUEvaluationSet, location_disjoint_split, parse_filenames
from utils.errors import Task1aError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real(tau2022_meta_dir):
    return TAUDevelopmentSet.load(tau2022_meta_dir)


def test_real_metadata_counts_and_attributes(real):
    assert len(real.meta) == 230_350
    assert len(real.train) == 139_620 and len(real.evaluate) == 29_680 and len(real.test) == 29_680
    assert set(real.train["source_label"]) == {"a", "b", "c", "s1", "s2", "s3"}
    assert set(real.evaluate["source_label"]) == {"a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"}
    assert set(real.train["scene_label"]) == set(SCENE_LABELS)
    row = real.train.iloc[0]
    assert row["filename"] == "audio/airport-lisbon-1000-40000-0-a.wav"
    assert (row["identifier"], row["city"], row["source_label"]) == ("lisbon-1000", "lisbon", "a")
    # the test list has no labels in its file; they come from meta.csv
    assert real.test["scene_label"].notna().all()


def test_location_disjoint_split_on_real_metadata(real):
    items = real.train
    train_index, validation_index = location_disjoint_split(items, 0.3, seed=0)
    assert len(train_index) + len(validation_index) == len(items)
    assert len(np.intersect1d(train_index, validation_index)) == 0
    train, validation = items.iloc[train_index], items.iloc[validation_index]
    assert not set(train["identifier"]) & set(validation["identifier"])
    assert not (set(train["identifier"]) | set(validation["identifier"])) & set(real.evaluate["identifier"])
    assert set(train["city"]) == set(validation["city"]) == set(items["city"])
    share = len(validation) / len(items)
    assert 0.28 < share < 0.33
    per_scene = validation["scene_label"].value_counts() / items["scene_label"].value_counts()
    assert per_scene.between(0.25, 0.36).all(), per_scene
    # deterministic for a seed, different for another seed
    again = location_disjoint_split(items, 0.3, seed=0)[1]
    assert np.array_equal(again, validation_index)
    other = location_disjoint_split(items, 0.3, seed=1)[1]
    assert not np.array_equal(other, validation_index)


def test_split_rejects_bad_amount(real):
    with pytest.raises(Task1aError, match="validation_amount"):
        location_disjoint_split(real.train, 1.5)


def test_module_cli_json_on_real_metadata(tau2022_meta_dir):
    result = subprocess.run([sys.executable, "-m", "utils.dataset", str(tau2022_meta_dir), "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["meta"]["count"] == 230_350
    assert report["train"]["count"] + report["validation"]["count"] == 139_620
    assert report["test"]["count"] == 29_680
    train, validation, test = (set(report[k]["locations"]) for k in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test

    def city(locations):
        return {location.split("-")[0] for location in locations}

    assert city(train) == city(validation) and len(city(train)) == 10
    assert sum(report["test"]["devices"].values()) == 29_680
    assert sum(report["train"]["scenes"].values()) == report["train"]["count"]


def make_dataset(root: Path, newline="\r\n", sep="\t"):
    names = [f"audio/{scene}-paris-{i}-{i * 10}-0-a.wav" for i, scene in enumerate(SCENE_LABELS)]
    (root / "evaluation_setup").mkdir(parents=True)
    meta = [sep.join(["filename", "scene_label", "identifier", "source_label"])]
    meta += [sep.join([n, n.split("/")[1].split("-")[0], f"paris-{i}", "a"]) for i, n in enumerate(names)]
    (root / "meta.csv").write_bytes(newline.join(meta).encode() + newline.encode())
    fold = [sep.join(["filename", "scene_label"])] + [sep.join([n, n.split("/")[1].split("-")[0]]) for n in names[:6]]
    (root / "evaluation_setup" / "fold1_train.csv").write_bytes(newline.join(fold).encode() + newline.encode())
    fold = [sep.join(["filename", "scene_label"])] + [sep.join([n, n.split("/")[1].split("-")[0]]) for n in names[6:]]
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_bytes(newline.join(fold).encode() + newline.encode())
    fold = ["filename"] + names[6:]
    (root / "evaluation_setup" / "fold1_test.csv").write_bytes(newline.join(fold).encode() + newline.encode())
    return names


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_crlf_and_lf_parse_identically(tmp_path, newline):
    names = make_dataset(tmp_path, newline)
    dataset = TAUDevelopmentSet.load(tmp_path)
    assert dataset.train["filename"].tolist() == names[:6]
    assert not any("\r" in v for v in dataset.meta.to_numpy().ravel())
    assert dataset.evaluate["scene_label"].tolist() == list(SCENE_LABELS[6:])


def test_wrong_delimiter_duplicates_and_unknown_values(tmp_path):
    make_dataset(tmp_path / "comma", sep=",")
    with pytest.raises(Task1aError, match="comma separated"):
        TAUDevelopmentSet.load(tmp_path / "comma")
    make_dataset(tmp_path / "dup")
    path = tmp_path / "dup" / "evaluation_setup" / "fold1_train.csv"
    path.write_bytes(path.read_bytes() + path.read_bytes().split(b"\r\n")[1] + b"\r\n")
    with pytest.raises(Task1aError, match="duplicated"):
        TAUDevelopmentSet.load(tmp_path / "dup")
    make_dataset(tmp_path / "scene")
    path = tmp_path / "scene" / "meta.csv"
    path.write_bytes(path.read_bytes().replace(b"\tbus\t", b"\tboat\t"))
    with pytest.raises(Task1aError, match="unknown scene 'boat'"):
        TAUDevelopmentSet.load(tmp_path / "scene")
    make_dataset(tmp_path / "device")
    path = tmp_path / "device" / "meta.csv"
    path.write_bytes(path.read_bytes().replace(b"paris-1\ta", b"paris-1\tz9"))
    with pytest.raises(Task1aError, match="unknown device 'z9'"):
        TAUDevelopmentSet.load(tmp_path / "device")
    with pytest.raises(Task1aError, match="not found"):
        TAUDevelopmentSet.load(tmp_path / "missing")


def test_filename_parsing_and_evaluation_set(tmp_path):
    parsed = parse_filenames(["audio/street_pedestrian-lyon-1162-44650-3-s4.wav", "audio/0.wav", "bus-milan-5-6-a.wav"])
    assert parsed.iloc[0].tolist() == ["street_pedestrian", "lyon", "lyon-1162", "s4"]
    assert parsed.iloc[1].isna().all()
    assert parsed.iloc[2]["identifier"] == "milan-5"
    (tmp_path / "evaluation_setup").mkdir()
    (tmp_path / "evaluation_setup" / "fold1_test.csv").write_text("filename\r\naudio/0.wav\r\naudio/1.wav\r\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("filename\tscene_label\tidentifier\tsource_label\naudio/0.wav\tbus\tparis-1\td\naudio/1.wav\ttram\tlyon-2\ts7\n")
    unlabelled = TAUEvaluationSet.load(tmp_path)
    assert unlabelled.test["filename"].tolist() == ["audio/0.wav", "audio/1.wav"] and not unlabelled.labelled
    labelled = TAUEvaluationSet.load(tmp_path, labels)
    assert labelled.test["scene_label"].tolist() == ["bus", "tram"] and labelled.test["source_label"].tolist() == ["d", "s7"]


def test_a_fold_or_split_row_missing_from_meta_csv_is_an_error_of_the_cli(tmp_path, capsys):
    from utils import dataset as tau

    names = make_dataset(tmp_path)
    assert tau.main([str(tmp_path)]) == 0
    capsys.readouterr()
    meta = tmp_path / "meta.csv"
    lines = meta.read_bytes().split(b"\r\n")
    meta.write_bytes(b"\r\n".join(line for line in lines if not line.startswith(names[7].encode())))  # a fold1_evaluate (and test) row
    assert tau.main([str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error == (f"error: {tmp_path / 'evaluation_setup' / 'fold1_evaluate.csv'}: 1 row(s) not in meta.csv: line 3 '{names[7]}'; "
                     "restore the official metadata files\n")
    make_dataset(tmp_path / "split")
    (tmp_path / "split" / "split_setup").mkdir()
    extra = [f"audio/bus-lyon-{i}-{i}-0-a.wav" for i in range(5)]
    (tmp_path / "split" / "split_setup" / "split25.csv").write_text("filename\tscene_label\n" + "".join(f"{n}\tbus\n" for n in [names[0], *extra]))
    assert tau.main([str(tmp_path / "split")]) == 1
    error = capsys.readouterr().err
    assert "split25.csv: 5 row(s) not in meta.csv: line 3 'audio/bus-lyon-0-0-0-a.wav', line 4" in error and "and 2 more" in error


def test_the_real_fold_and_split_files_are_all_in_meta_csv(real):
    from utils.dataset import check_listed_in_meta

    check_listed_in_meta(real)  # fold1_train/evaluate/test and dcase2024_split_setup/split{5,10,25,50}.csv
