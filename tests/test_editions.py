"""DCASE2025 end to end on the tiny demo: the device-specific models (dev mode, then the 2025 package checked
by the 2025 validator). The DCASE2024 package is tested in test_pipeline, after the five subsets' dev runs."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import filled_meta_template, link_demo_data, tiny_demo_parameters
from utils.submission import validate_submission

REPO = Path(__file__).resolve().parents[1]
LABEL = "Lastname_ORG_task1_1"


def task1a(*args):
    return subprocess.run([sys.executable, "task1a.py", "--no_progress", *args], cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp("editions")
    link_demo_data(demo_data, root)  # the shared tiny demo dataset (conftest)
    overrides = tiny_demo_parameters(root, energy=False)
    overrides["defaults"]["learner_method_parameters"]["cnn"]["conversion"]["representative_examples"] = 8  # the tiny 5 % subset has 16 clips
    overrides["defaults"]["learner_method_parameters"]["cnn"].update(fit={"epochs": 2}, model_selection={"initial_delay": 0})
    overrides["defaults"]["device_models"] = {"epochs": 1}
    param_file = root / "tiny.yaml"
    param_file.write_text(yaml.safe_dump(overrides))
    return root, param_file


@pytest.mark.slow
@pytest.mark.e2e
def test_device_specific_models_are_fine_tuned_per_training_device_and_reported_known_vs_unknown(tiny):
    root, param_file = tiny
    dev = task1a("-s", "dcase2025_device_specific", "-p", str(param_file))  # falls back to the demo data, keeping the 2025 values
    assert dev.returncode == 0, dev.stderr[-3000:]
    (results_path,) = (root / "system" / "evaluator").glob("*/seed_0/results.yaml")
    results = yaml.safe_load(results_path.read_text())
    subset = pd.read_csv(next((root / "datasets" / "demo").rglob("split_setup/split25.csv")), sep="\t")
    training_devices = {name.rsplit("-", 1)[1][:-4] for name in subset["filename"]}
    device_dirs = {p.name for p in next((root / "system" / "device_models").glob("*/seed_0")).iterdir() if p.is_dir()}
    assert device_dirs == training_devices  # a fine-tuned model per training device: no hold-out, so none keeps the general model
    assert "keeps the general model" not in dev.stderr
    for device in device_dirs:  # the official recipe: every clip of the device, no hold-out, the last epoch
        summary = yaml.safe_load(next((root / "system" / "device_models").glob(f"*/seed_0/{device}/learning.yaml")).read_text())
        assert summary["validation_segments"] == 0 and summary["model_selection"] == "last" and summary["best_epoch"] == summary["epochs_trained"]
    for device in device_dirs:
        assert next((root / "system" / "device_models").glob(f"*/seed_0/{device}/model_float.tflite")).is_file()
    groups = results["device_groups"]
    assert set(groups) >= {"known_devices", "unknown_devices"}
    assert "known devices" in dev.stdout and "unknown devices" in dev.stdout and "General model alone" in dev.stdout
    general = results["general_model"]
    assert 0 <= general["overall_accuracy"] <= 1 and general["n_items"] == results["n_items"]
    # unknown devices get the general model's output, known devices their own model's
    recognizer = next((root / "system" / "recognizer").glob("*/seed_0"))
    system, general_output = (pd.read_csv(recognizer / name, sep="\t").set_index("filename") for name in ("output.csv", "general/output.csv"))
    devices = system.index.str.extract(r"-([a-z]+\d*)\.wav$", expand=False)
    unknown = ~pd.Series(devices).isin(list(device_dirs)).to_numpy()
    assert unknown.any() and (~unknown).any()
    pd.testing.assert_frame_equal(system[unknown], general_output[unknown])
    assert not system[~unknown].equals(general_output[~unknown])

    # challenge mode: the evaluation list in the official 2025 form (filename, device_id), a scoring labels file without devices
    labels_file = root / "datasets" / "demo" / "evaluation_labels.csv"
    labels = pd.read_csv(labels_file, sep="\t")
    labels[["filename", "scene_label"]].to_csv(labels_file, sep="\t", index=False)
    listed = pd.read_csv(root / "datasets" / "demo" / "evaluation" / "evaluation_setup" / "fold1_test.csv", sep="\t")
    assert list(listed.columns) == ["filename", "device_id"]
    package = task1a("-s", "dcase2025_device_specific", "-p", str(param_file), "--mode", "eval", "--package", LABEL, "--set", filled_meta_template(root, 2025))
    assert package.returncode == 0, package.stderr[-3000:]
    routed = listed[listed["device_id"].isin(list(device_dirs))]
    counts = routed["device_id"].value_counts()
    assert len(routed) and len(routed) < len(listed)
    line = next(line for line in package.stderr.splitlines() if "routed by device" in line)
    assert all(f"{device} {count}" in line for device, count in counts.items()) and f"general model {len(listed) - len(routed)}" in line
    recognizer = max((root / "system" / "recognizer").glob("*/seed_0/routing.yaml"), key=lambda p: p.stat().st_mtime).parent
    system, general_output = (pd.read_csv(recognizer / name, sep="\t").set_index("filename") for name in ("output.csv", "general/output.csv"))
    others = listed.loc[~listed["device_id"].isin(list(device_dirs)), "filename"]
    pd.testing.assert_frame_equal(system.loc[others], general_output.loc[others])  # every other device: the general model
    for device in counts.index:  # a, b, c, s1-s3: their own model's output
        own = pd.read_csv(recognizer / device / "output.csv", sep="\t").set_index("filename")
        pd.testing.assert_frame_equal(system.loc[own.index], own)
        assert sorted(own.index) == sorted(routed.loc[routed["device_id"] == device, "filename"])
    archive = root / "system" / "submission" / f"{LABEL}.zip"
    assert validate_submission(archive, None, edition=2025) == []
    with zipfile.ZipFile(archive) as zipped:
        meta = yaml.safe_load(zipped.read(f"task1/{LABEL}/{LABEL}.meta.yaml"))
    assert set(meta["system"]["complexity"]["device_models"]) == device_dirs
    assert validate_submission(archive, None, edition=2023) != []  # another edition's rules refuse it


def test_the_device_of_a_clip_comes_from_the_metadata_else_the_file_name(tmp_path):
    from utils.dataset import TAUEvaluationSet
    from utils.device_models import item_devices

    items = pd.DataFrame({"filename": ["audio/airport-lisbon-1000-40000-0-s4.wav", "audio/0.wav", "audio/1.wav"],
                          "source_label": [None, "b", None]})
    assert item_devices(items).tolist() == ["s4", "b", "unknown"]
    assert item_devices(items.drop(columns="source_label")).tolist() == ["s4", "unknown", "unknown"]
    # DCASE2025 evaluation metadata: the list gives each file's device, no scene labels
    (tmp_path / "evaluation_setup").mkdir()
    (tmp_path / "evaluation_setup" / "fold1_test.csv").write_text("filename\tsource_label\naudio/0.wav\ta\naudio/1.wav\ts7\n")
    evaluation = TAUEvaluationSet.load(tmp_path)
    assert not evaluation.labelled
    assert item_devices(evaluation.test).tolist() == ["a", "s7"]


def test_a_package_request_is_checked_before_any_work(tmp_path):
    from utils.errors import Task1aError
    from utils.parameters import ParameterContainer, apply_overrides
    from utils.pipeline import RunOptions, check_package_request

    container = ParameterContainer()
    eval_2025 = apply_overrides(container.resolve("dcase2025_device_specific"), {"general.mode": "eval"})
    check_package_request([eval_2025], RunOptions(package=LABEL))
    problems = {
        "submission label 'my team': must be": ([eval_2025], RunOptions(package="my team")),
        "needs device-specific models": ([apply_overrides(eval_2025, {"device_models.enabled": False})], RunOptions(package=True)),
        "is for edition 2023, not 2025": ([apply_overrides(eval_2025, {"submission.meta_template": "meta/task1a_submission.meta.yaml"})],
                                          RunOptions(package=LABEL)),
        "flow.model_size: true": ([apply_overrides(eval_2025, {"flow.model_size": False})], RunOptions(package=LABEL)),
        "challenge mode": ([container.resolve("dcase2025_device_specific")], RunOptions(package=LABEL)),
    }
    for expected, (all_params, options) in problems.items():
        with pytest.raises(Task1aError) as caught:
            check_package_request(all_params, options)
        assert expected in str(caught.value) and "\n" not in str(caught.value), (expected, str(caught.value))


def test_device_models_trainable_layers_must_name_a_layer_before_any_work():
    from utils.errors import Task1aError
    from utils.parameters import ParameterContainer, apply_overrides
    from utils.stages import check_learner_settings

    params = ParameterContainer().resolve("dcase2025_device_specific")
    check_learner_settings(apply_overrides(params, {"device_models.trainable_layers": ["dense*"]}))
    with pytest.raises(Task1aError, match=r"device_models.trainable_layers: 'conv3d\*' matches no layer of the network \(layers: input_layer, conv2d"):
        check_learner_settings(apply_overrides(params, {"device_models.trainable_layers": ["conv3d*"]}))
