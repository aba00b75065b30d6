"""The DCASE2025 inference package: built by ``--package``, installed into a fresh virtual environment, run
by an evaluation script of the organisers' shape on the demo development-test split and evaluation list,
giving the project's own system output."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import filled_meta_template, tiny_demo_parameters

REPO = Path(__file__).resolve().parents[1]
LABEL = "Lastname_ORG_task1_1"
PACKAGE = "Lastname_ORG_task1"


def run(*args, **kwargs):
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=1500, **kwargs)


def project_output(models: dict, general, recordings: list[Path], devices: list[str], params: dict) -> pd.DataFrame:
    """The project's own output for recordings and their devices: each device's model (utils.testing.predict_recordings)."""
    from utils.dataset import SCENE_LABELS
    from utils.features import build_extractor, build_normalizer
    from utils.settings import feature_settings
    from utils.testing import predict_recordings
    from utils.tflite import TFLiteClassifier

    io, features = params["recognizer"]["model_io"], feature_settings(params["feature_extractor"])
    rows = {}
    for model in {id(m): m for m in [*models.values(), general]}.values():
        chosen = [path for path, device in zip(recordings, devices) if models.get(device, general) is model]
        if not chosen:
            continue
        classifier = TFLiteClassifier(model.tflite[io], batch_size=256, num_threads=1)
        names, probabilities, failures = predict_recordings([(path, path.name) for path in chosen], classifier, build_extractor(features),
                                                            build_normalizer(model.normalization["method"], model.normalization.get("statistics")),
                                                            features.segment_length_seconds, progress=False, n_jobs=1)
        assert not failures
        rows.update(dict(zip(names, probabilities)))
    table = pd.DataFrame([rows[path.name] for path in recordings], columns=list(SCENE_LABELS))
    return table


@pytest.mark.slow
def test_the_2025_inference_package_installs_in_a_fresh_venv_and_gives_the_projects_output(tmp_path):
    overrides = tiny_demo_parameters(tmp_path, energy=False)
    overrides["defaults"]["learner_method_parameters"]["cnn"].update(fit={"epochs": 2}, model_selection={"initial_delay": 0})
    overrides["defaults"]["device_models"] = {"epochs": 1}
    param_file = tmp_path / "tiny.yaml"
    param_file.write_text(yaml.safe_dump(overrides))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    built = run(sys.executable, "task1a.py", "--no_progress", "-s", "dcase2025_device_specific", "-p", param_file, "--mode", "eval",
                "--package", LABEL, "--set", filled_meta_template(tmp_path, 2025), cwd=REPO, env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    package = tmp_path / "system" / "submission" / PACKAGE
    assert (package / "setup.py").is_file() and (package / PACKAGE / f"{LABEL}.py").is_file()
    assert not any("utils" in line or "task1a" in line for line in (package / PACKAGE / "_runtime.py").read_text().splitlines()
                   if line.startswith(("import ", "from ")))  # nothing of this repository at run time

    venv = tmp_path / "venv"
    created = run(sys.executable, "-m", "venv", venv)  # a fresh environment: no site packages of this project
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", package, "pandas")
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "evaluation_run"
    work.mkdir()
    demo = tmp_path / "datasets" / "demo"
    clean_env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    evaluated = run(python, package / "evaluate_submission.py", "--submission_name", PACKAGE, "--submission_index", 1,
                    "--dev_set_dir", demo / "development", "--eval_set_dir", demo / "evaluation", cwd=work, env=clean_env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    predictions = work / "predictions" / LABEL
    assert "Development-test accuracy" in evaluated.stdout

    # the evaluation list: the project's challenge-mode system output, file by file
    recognizer = next((tmp_path / "system" / "recognizer").glob("*/seed_0/routing.yaml")).parent
    ours, theirs = pd.read_csv(recognizer / "output.csv", sep="\t"), pd.read_csv(predictions / "output.csv", sep="\t")
    assert theirs["filename"].tolist() == ours["filename"].tolist()
    assert (theirs["scene_label"] == ours["scene_label"]).all()
    np.testing.assert_allclose(theirs.iloc[:, 2:].to_numpy(), ours.iloc[:, 2:].to_numpy(), atol=1e-6)

    # the development-test split, devices from meta.csv: the project's own models and features over the same files
    from utils import workspace
    from utils.parameters import ParameterContainer
    from utils.stages import TrainedModel

    params = ParameterContainer(override_path=param_file).resolve("demo", instead_of="dcase2025_device_specific")
    learner = next((tmp_path / "system" / "learner").glob("*/seed_0/learning.yaml")).parent
    general = TrainedModel.from_record(learner, workspace.read_learning(learner))
    device_root = next((tmp_path / "system" / "device_models").glob("*/seed_0"))
    models = {folder.name: TrainedModel.from_record(folder, workspace.read_learning(folder))
              for folder in device_root.iterdir() if (folder / "learning.yaml").is_file()}
    assert models and set(models) <= {"a", "b", "c", "s1", "s2", "s3"}
    test = pd.read_csv(predictions / "test_output.csv", sep="\t")
    meta = pd.read_csv(demo / "development" / "meta.csv", sep="\t").set_index("filename")
    expected = project_output(models, general, [demo / "development" / name for name in test["filename"]],
                              meta.loc[test["filename"], "source_label"].tolist(), params)
    np.testing.assert_allclose(test.iloc[:, 2:].to_numpy(), expected.to_numpy(), atol=1e-6)
    assert (test["scene_label"].to_numpy() == np.array(expected.columns)[expected.to_numpy().argmax(axis=1)]).all()
