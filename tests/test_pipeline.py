"""The whole application end to end on a tiny synthetic demo dataset: dev mode, rerun, eval mode, predict."""

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import link_demo_data, tiny_demo_parameters
from utils.dataset import SCENE_LABELS
from utils.submission import validate_submission

REPO = Path(__file__).resolve().parents[1]
HEADER = ["filename", "scene_label", *SCENE_LABELS]


@pytest.fixture(scope="module")
def workspace(demo_workspace):
    """The shared tiny demo run's (root, parameter file) (conftest.demo_workspace)."""
    return demo_workspace


def task1a(*args, timeout=900):
    return subprocess.run([sys.executable, "task1a.py", "--no_progress", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def read_output(path):
    table = pd.read_csv(path, sep="\t")
    assert list(table.columns) == HEADER
    probabilities = table[list(SCENE_LABELS)].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert (table["scene_label"].to_numpy() == np.array(SCENE_LABELS)[probabilities.argmax(axis=1)]).all()
    return table


@pytest.fixture(scope="module")
def dev_run(demo_run):
    """The shared trained run: -s demo -o --output dev_output.csv in the workspace (conftest.demo_run)."""
    return demo_run


@pytest.mark.e2e
def test_dev_mode_runs_every_stage_on_demo_data(workspace, dev_run):
    root, _ = workspace
    assert "SYNTHETIC" in dev_run.stdout  # the evaluation table says where its figures come from
    results_files = list((root / "system" / "evaluator").glob("*/seed_0/results.yaml"))
    assert len(results_files) == 1
    results = yaml.safe_load(results_files[0].read_text())
    for key in ("overall_accuracy", "overall_logloss", "class_wise", "device_wise", "set_id", "parameter_hash", "dataset"):
        assert key in results
    assert results["set_id"] == "demo" and results["synthetic"] is True and "SYNTHETIC" in results["dataset"]
    assert set(results["class_wise"]) == set(SCENE_LABELS)
    assert 0.0 <= results["overall_accuracy"] <= 1.0
    output = read_output(root / "dev_output.csv")
    evaluate = pd.read_csv(next((root / "datasets" / "demo").rglob("fold1_evaluate.csv")), sep="\t")
    assert sorted(output["filename"]) == sorted(evaluate["filename"])
    report = (results_files[0].parent / "report.md").read_text()
    assert "SYNTHETIC" in report.split("\n\n")[0] + report[:500]
    learner = list((root / "system" / "learner").glob("*/seed_0"))[0]
    for name in ("model.keras", "model_float.tflite", "model_int8.tflite", "learning.yaml", "model_float.nessi.txt"):
        assert (learner / name).exists(), name
    logs = list((root / "log").glob("task1a_*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "epoch 1/2: " in text and "epoch 2/2: " in text and "model summary:" in text  # every epoch in the log file


@pytest.mark.slow
@pytest.mark.e2e
def test_rerun_reuses_finished_stages_and_show_results(workspace, dev_run):
    root, param_file = workspace
    learner = list((root / "system" / "learner").glob("*/seed_0"))[0]
    stamp = (learner / "model_float.tflite").stat().st_mtime_ns
    again = task1a("-s", "demo", "-p", str(param_file))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing" in again.stderr
    assert (learner / "model_float.tflite").stat().st_mtime_ns == stamp
    shown = task1a("-p", str(param_file), "--show_results")
    assert shown.returncode == 0 and "demo" in shown.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_eval_mode_writes_output_for_every_evaluation_file(workspace, dev_run):
    root, param_file = workspace
    out = root / "eval_output.csv"
    # the official baseline's command form: -m eval -o FILE
    result = task1a("-s", "demo", "-p", str(param_file), "-m", "eval", "-o", str(out), "--package", "Doe_Demo_task1_1")
    assert result.returncode == 0, result.stderr[-3000:]
    table = read_output(out)
    listed = pd.read_csv(next((root / "datasets" / "demo").rglob("evaluation/evaluation_setup/fold1_test.csv")), sep="\t")
    assert sorted(table["filename"]) == sorted(listed["filename"])
    assert all(Path(name).stem.isdigit() for name in table["filename"])
    # the package holds this output and a meta filled from the run; only the person fields are left
    package = root / "system" / "submission" / "Doe_Demo_task1_1.zip"
    problems = validate_submission(package, expected_file_count=len(listed))
    assert problems and all("FILL IN" in problem for problem in problems), problems
    with zipfile.ZipFile(package) as archive:
        meta = yaml.safe_load(archive.read("task1/Doe_Demo_task1_1/Doe_Demo_task1_1.meta.yaml"))
        packaged = archive.read("task1/Doe_Demo_task1_1/Doe_Demo_task1_1.output.csv")
    assert packaged == out.read_bytes()
    assert meta["system"]["complexity"]["macs"] > 29_000_000
    # development-set results come from the dev-mode run of the same parameters
    assert meta["results"]["development_dataset"]["overall"]["accuracy"] is not None


@pytest.mark.slow
def test_predict_real_recordings_with_the_official_model(workspace, real_audio_dir, reference_dir):
    root, param_file = workspace
    out = root / "predict.csv"
    result = task1a("-p", str(param_file), "-s", "demo", "--predict", str(real_audio_dir), "--model", str(reference_dir / "model_task1.tflite"), "--output",
                    str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    table = read_output(out)
    labels = pd.read_csv(real_audio_dir / "labels.csv")
    assert sorted(table["filename"]) == sorted(labels["filename"])
    truth = labels.set_index("filename")["scene_label"]
    tau = table[table["filename"].map(lambda n: truth[n] in SCENE_LABELS)]
    correct = (tau["scene_label"].to_numpy() == tau["filename"].map(truth).to_numpy()).mean()
    assert correct > 0.2  # a weak baseline, but far above chance (0.1) on real TAU recordings


@pytest.mark.slow
@pytest.mark.e2e
def test_a_given_model_in_a_read_only_folder_gets_nothing_written_beside_it(workspace, dev_run, reference_dir):
    import shutil
    import stat

    root, param_file = workspace
    folder = root / "read_only_model"
    folder.mkdir()
    model = folder / "model_task1.tflite"
    shutil.copyfile(reference_dir / "model_task1.tflite", model)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = task1a("-s", "demo", "-p", str(param_file), "--model", str(model))
        assert result.returncode == 0, result.stderr[-3000:]
        assert sorted(p.name for p in folder.iterdir()) == ["model_task1.tflite"]  # (root may write anywhere: the listing tells)
        tables = list((root / "system" / "recognizer").glob("*/model_task1.nessi.txt"))
        assert len(tables) == 1 and "29,234,920" in tables[0].read_text()
    finally:
        folder.chmod(stat.S_IRWXU)


@pytest.mark.slow
@pytest.mark.e2e
def test_eval_package_gives_all_three_energy_figures_and_a_rerun_reports_the_stored_training(tmp_path, reference_dir, demo_data):
    link_demo_data(demo_data, tmp_path)
    overrides = tiny_demo_parameters(tmp_path, energy=True)
    overrides["defaults"]["recognizer"] = {"baseline_model": str(reference_dir / "model_task1.tflite")}
    param_file = tmp_path / "energy.yaml"
    param_file.write_text(yaml.safe_dump(overrides))
    args = ("-s", "demo", "-p", str(param_file), "--mode", "eval", "--package", "Lastname_ORG_task1_1")
    first = task1a(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    with zipfile.ZipFile(tmp_path / "system" / "submission" / "Lastname_ORG_task1_1.zip") as archive:
        meta = yaml.safe_load(archive.read("task1/Lastname_ORG_task1_1/Lastname_ORG_task1_1.meta.yaml"))
    energy = meta["system"]["energy_consumption"]
    assert energy["training"] > 0 and energy["inference"] > 0 and energy["baseline_inference"] > 0
    assert meta["system"]["complexity"]["total_parameters"] == 46_246  # the Keras model's count_params()
    assert meta["system"]["complexity"]["memory_use"] == meta["system"]["complexity"]["total_model_size"]
    reports = list((tmp_path / "system" / "evaluator").glob("*/seed_0/report.md"))
    assert len(reports) == 1
    report = reports[0].read_text()
    ratio = energy["inference"] / energy["baseline_inference"]
    assert f"- inference / baseline_inference: {ratio:.3f}" in report
    results = yaml.safe_load((reports[0].parent / "results.yaml").read_text())
    assert results["energy"]["inference_over_baseline_ratio"] == pytest.approx(ratio)
    baseline_output = read_output(next((tmp_path / "system" / "recognizer").glob("*/baseline_inference/output.csv")))
    assert len(baseline_output) == 40  # the official model over the same 40 test items

    again = task1a(*args)  # no -o: every stage reused
    assert again.returncode == 0, again.stderr[-3000:]
    stored = yaml.safe_load(next((tmp_path / "system" / "learner").glob("*/seed_0/energy.yaml")).read_text())
    report = reports[0].read_text()
    line = next(text for text in report.splitlines() if text.startswith("- training: "))
    assert f"{energy['training']:.4g} kWh" in line
    assert f"measured when the stage ran, {stored['measured_at_all'][0]}" in line
    with zipfile.ZipFile(tmp_path / "system" / "submission" / "Lastname_ORG_task1_1.zip") as archive:
        meta = yaml.safe_load(archive.read("task1/Lastname_ORG_task1_1/Lastname_ORG_task1_1.meta.yaml"))
    assert meta["system"]["energy_consumption"] == energy  # the stored figures, not the seconds of the reuse


@pytest.mark.slow
@pytest.mark.e2e
def test_a_dcase2024_training_subset_reuses_the_features_and_learns_from_the_subset(workspace, dev_run):
    root, param_file = workspace
    overrides = yaml.safe_load(param_file.read_text())
    overrides["defaults"]["dataset"] = {"train_split": 25}
    subset_file = root / "tiny_split25.yaml"
    subset_file.write_text(yaml.safe_dump(overrides))
    result = task1a("-s", "demo", "-p", str(subset_file))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "features: reusing" in result.stderr  # extracted once for the whole fold
    splits = {yaml.safe_load(p.read_text())["train_split"]: yaml.safe_load(p.read_text()) for p in (root / "system" / "learner").glob("*/seed_0/split.yaml")}
    assert set(splits) == {100, 25}
    subset = pd.read_csv(next((root / "datasets" / "demo").rglob("split_setup/split25.csv")), sep="\t")
    assert splits[25]["train_count"] + splits[25]["validation_count"] == len(subset) < splits[100]["train_count"] + splits[100]["validation_count"]
    assert not set(splits[25]["train_locations"]) & set(splits[25]["validation_locations"])


@pytest.mark.slow
@pytest.mark.e2e
def test_the_five_dcase2024_subsets_end_with_one_table_and_the_mean(workspace, dev_run):
    root, param_file = workspace
    overrides = yaml.safe_load(param_file.read_text())
    overrides["defaults"]["learner_method_parameters"]["cnn"]["conversion"]["representative_examples"] = 8  # the tiny 5 % subset has 16 clips
    small = root / "tiny_subsets.yaml"
    small.write_text(yaml.safe_dump(overrides))
    sets = ",".join(f"dcase2024_split{n}" for n in (5, 10, 25, 50, 100))
    result = task1a("-s", sets, "-p", str(small))  # no real dataset here: each falls back to the demo data, keeping its subset
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("features: reusing") >= 5  # one store for every subset
    text = result.stdout[result.stdout.index("DCASE2024 training subsets"):]
    assert "SYNTHETIC" in text.splitlines()[0]
    accuracy_table = text.split("overall macro accuracy (%):\n")[1].split("\n\n")[0].splitlines()[2:]
    rows = {line.split()[0]: float(line.split()[-1]) for line in accuracy_table}
    assert set(rows) == {"5", "10", "25", "50", "100", "mean"}
    assert rows["mean"] == pytest.approx(sum(rows[k] for k in ("5", "10", "25", "50", "100")) / 5, abs=0.06)
    assert "class-wise accuracy (%)" in text and "device-wise accuracy (%)" in text and "DCASE2024 ranking figure" in text


@pytest.mark.slow
@pytest.mark.e2e
def test_the_2024_package_holds_the_five_subsets_and_their_dev_results(workspace, dev_run):
    """After the five subsets' dev runs (the test above), their challenge-mode runs make one DCASE2024 package."""
    from conftest import filled_meta_template

    root, _ = workspace
    small = root / "tiny_subsets.yaml"  # written by the test above
    if not small.exists():
        pytest.skip("needs test_the_five_dcase2024_subsets_end_with_one_table_and_the_mean first")
    label = "Lastname_ORG_task1_1"
    refused = task1a("-s", "dcase2024_split5,dcase2024_split10", "-p", str(small), "--mode", "eval", "--package", label)
    assert refused.returncode == 1 and "five training subsets" in refused.stderr and "Traceback" not in refused.stderr
    sets = ",".join(f"dcase2024_split{n}" for n in (5, 10, 25, 50, 100))
    # the workspace is shared: earlier tests' trainings (DCASE2023's challenge mode, split 100 too) are not this command's
    earlier = set((root / "system" / "learner").glob("*/seed_0"))
    result = task1a("-s", sets, "-p", str(small), "--mode", "eval", "--package", label, "--set", filled_meta_template(root, 2024))
    assert result.returncode == 0, result.stderr[-3000:]
    archive = root / "system" / "submission" / f"{label}.zip"
    assert validate_submission(archive, None, edition=2024) == []
    assert validate_submission(archive, None, edition=2023) != []  # another edition's rules refuse it
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        meta = yaml.safe_load(zipped.read(f"task1/{label}/{label}.meta.yaml"))
    assert {f"task1/{label}/{label}.output.split_{n}.csv" for n in (5, 10, 25, 50, 100)} <= names
    assert "energy_consumption" not in meta["system"]
    results = meta["results"]["development_dataset"]
    assert all(results[f"split_{n}"]["overall"]["accuracy"] is not None for n in (5, 10, 25, 50, 100))  # the dev runs' figures
    # DCASE2024's protocol in challenge mode: each set trained on exactly its split file's rows (split 100: fold1_train
    # alone, never fold1_evaluate), no hold-out, the last epoch
    development = next((root / "datasets" / "demo").rglob("evaluation_setup/fold1_train.csv")).parent.parent
    trained = {}
    for folder in set((root / "system" / "learner").glob("*/seed_0")) - earlier:
        if yaml.safe_load((folder.parent / "parameters.yaml").read_text())["parameters"]["general"]["mode"] == "eval" and (folder / "split.yaml").is_file():
            split = yaml.safe_load((folder / "split.yaml").read_text())
            trained[split["train_split"]] = (split, yaml.safe_load((folder / "learning.yaml").read_text()))
    assert set(trained) == {5, 10, 25, 50, 100}
    for n, (split, summary) in trained.items():
        listed = development / ("evaluation_setup/fold1_train.csv" if n == 100 else f"split_setup/split{n}.csv")
        assert split["train_count"] == len(pd.read_csv(listed, sep="\t")) and split["validation_count"] == 0
        assert summary["model_selection"] == "last" and summary["best_epoch"] == summary["epochs_trained"]


@pytest.mark.slow
@pytest.mark.e2e
def test_early_stopping_from_the_yaml_survives_a_kill_9(workspace, dev_run):
    """kill -9 after epoch 2's checkpoint, rerun: the YAML's EarlyStopping (it must stop after epoch 3) keeps its
    patience across the kill, and the final model is bit-identical to an uninterrupted run's."""
    import os
    import signal
    import time

    root, param_file = workspace
    runs = {}
    for name in ("whole", "killed"):
        overrides = yaml.safe_load(param_file.read_text())
        overrides["defaults"]["path"].update(system=str(root / f"early_{name}" / "system"), log=str(root / f"early_{name}" / "log"))
        overrides["defaults"]["general"]["deterministic"] = True
        overrides["sets"][0]["learner_method_parameters"]["cnn"]["fit"].update(
            epochs=30, callbacks=[{"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "patience": 2, "min_delta": 10.0}}])
        runs[name] = root / f"early_{name}.yaml"
        runs[name].write_text(yaml.safe_dump(overrides))
    whole = task1a("-s", "demo", "-p", str(runs["whole"]))
    assert whole.returncode == 0, whole.stderr[-3000:]

    marker = root / "early_killed" / "after_epoch_2"
    hold = (
        "import time\n"
        "from utils.callbacks import TrainingCheckpoint\n"
        "original = TrainingCheckpoint.on_epoch_end\n"
        "def held(self, epoch, logs=None):\n"
        "    original(self, epoch, logs)\n"
        "    if epoch + 1 == 2:\n"
        f"        open({str(marker)!r}, 'w').close()\n"
        "        time.sleep(600)\n"
        "TrainingCheckpoint.on_epoch_end = held\n"
        "import runpy, sys\n"
        f"sys.argv = ['task1a.py', '--no_progress', '-s', 'demo', '-p', {str(runs['killed'])!r}]\n"
        "runpy.run_path('task1a.py', run_name='__main__')\n"
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", hold], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert process.poll() is None, "the run ended before epoch 2"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    resumed = task1a("-s", "demo", "-p", str(runs["killed"]))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "after epoch 2" in resumed.stderr
    assert "epoch 3/30:" in resumed.stderr and "epoch 4/30:" not in resumed.stderr  # the patience survived the kill

    def learned(name):
        folder = next((root / f"early_{name}" / "system" / "learner").glob("*/seed_0"))
        return yaml.safe_load((folder / "learning.yaml").read_text()), (folder / "model_float.tflite").read_bytes(), folder

    (summary_whole, tflite_whole, whole_dir), (summary_killed, tflite_killed, killed_dir) = learned("whole"), learned("killed")
    assert summary_whole["stopped_early"] and summary_whole["epochs_trained"] == 3
    assert summary_killed["epochs_trained"] == 3 and summary_killed["best_epoch"] == summary_whole["best_epoch"]
    assert tflite_killed == tflite_whole
    import keras

    for a, b in zip(keras.models.load_model(killed_dir / "model.keras").get_weights(), keras.models.load_model(whole_dir / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)
