"""The editions as objects (utils/editions): each one's protocol, a toy edition added without touching the
pipeline, the DCASE2024 split-only training, the DCASE2025 device source, the warm-up + cosine schedule."""

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tiny_demo_parameters
from utils import editions
from utils.errors import Task1aError
from utils.parameters import ParameterContainer, apply_overrides

LABEL = "Lastname_ORG_task1_1"


# ------------------------------------------------------------------------------------ schedules
def test_warmup_cosine_decay_is_the_transformers_schedule_per_step():
    from utils.schedules import WarmupCosineDecay, reference_learning_rate

    schedule = WarmupCosineDecay(0.005, 20, 100)
    for step in (0, 1, 10, 19, 20, 21, 60, 99, 100):
        assert float(schedule(step)) == pytest.approx(reference_learning_rate(step, 0.005, 20, 100), rel=1e-5, abs=1e-9)
    assert float(schedule(0)) == 0.0 and float(schedule(20)) == pytest.approx(0.005) and float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert reference_learning_rate(60, 0.005, 20, 100) == pytest.approx(0.0025)  # half way down the cosine
    assert WarmupCosineDecay.from_config(schedule.get_config()).get_config() == {"learning_rate": 0.005, "warmup_steps": 20, "total_steps": 100}


def test_a_training_with_the_schedule_in_yaml_and_the_last_epoch_rule(tmp_path):
    """A real (tiny) training: the optimizer and its schedule as YAML gives them, TRAINING_STEPS replaced by
    epochs x steps per epoch, the last epoch kept while the validation split is only monitored."""
    from utils.learning import train_model
    from utils.settings import learner_from_block

    learner = ParameterContainer().resolve("demo")["learner"]["parameters"]
    learner["optimizer"] = yaml.safe_load("""
        class_name: AdamW
        config:
          learning_rate: {class_name: WarmupCosineDecay, config: {learning_rate: 0.005, warmup_steps: 3, total_steps: TRAINING_STEPS}}
          weight_decay: 0.0001
          epsilon: 1.0e-08
    """)
    learner["fit"].update(epochs=3, batch_size=8)
    learner["model_selection"].update(rule="last", initial_delay=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 40, 51)).astype("float32"), np.arange(40) % 10
    result = train_model(learner_from_block(learner), X[:32], y[:32], X[32:], y[32:], tmp_path, seed=0, progress=False)
    optimizer = result.model.optimizer
    schedule = optimizer._learning_rate
    assert type(schedule).__name__ == "WarmupCosineDecay" and schedule.total_steps == 3 * 4  # 32 clips / batch 8 = 4 steps, 3 epochs
    assert int(optimizer.iterations) == 12
    assert float(schedule(0)) == 0.0 and float(schedule(3)) == pytest.approx(0.005)
    assert result.best_epoch == 3 and result.first_selectable_epoch == 3  # last epoch, validation monitored
    assert result.val_accuracy is not None and len(result.history) == 3


# ------------------------------------------------------------------------------ the protocol
def test_each_edition_fills_the_parameters_left_null_and_an_explicit_value_wins():
    container = ParameterContainer()
    baseline, split25, device_specific = (container.resolve(s) for s in ("dcase2023_baseline", "dcase2024_split25", "dcase2025_device_specific"))
    assert baseline["learner"]["parameters"]["validation_amount"] == 0.3 and baseline["learner"]["parameters"]["model_selection"]["rule"] == "best"
    for params in (split25, device_specific):
        assert params["learner"]["parameters"]["validation_amount"] == 0 and params["learner"]["parameters"]["model_selection"]["rule"] == "last"
    assert split25["dataset"]["parameters"]["evaluation"].endswith("TAU-urban-acoustic-scenes-2024-mobile-evaluation")
    assert device_specific["dataset"]["parameters"]["evaluation"].endswith("TAU-urban-acoustic-scenes-2025-mobile-evaluation")
    deviation = container.resolve("dcase2024_split25", command_line={"learner_method_parameters": {"cnn": {
        "validation_amount": 0.3, "model_selection": {"rule": "best"}}}})
    assert deviation["learner"]["parameters"]["validation_amount"] == 0.3 and deviation["learner"]["parameters"]["model_selection"]["rule"] == "best"
    assert editions.of(baseline).parameter_bits is None and editions.of(split25).parameter_bits == 16
    assert "| 2024 |" in editions.readme_table() and editions.readme_table().count("\n") == 1 + len(editions.REGISTRY)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from utils.demo_dataset import generate_demo_dataset

    root = tmp_path_factory.mktemp("editions_demo")
    from utils.settings import demo_settings

    block = ParameterContainer().resolve("demo")["dataset"]["parameters"]
    block.update(tiny_demo_parameters(root)["defaults"]["dataset_method_parameters"]["demo"])
    return root, generate_demo_dataset(root / "datasets" / "demo", demo_settings(block), progress=False)


def _data(params, demo_paths):
    from utils import dataset as tau
    from utils.stages import DataContext

    development = tau.TAUDevelopmentSet.load(demo_paths["development"], train_split=params["dataset"]["train_split"])
    evaluation = tau.TAUEvaluationSet.load(demo_paths["evaluation"], demo_paths["evaluation_labels"]) if params["general"]["mode"] == "eval" else None
    return DataContext(development, evaluation, True, "demo", params)


def test_dcase2024_in_challenge_mode_trains_on_exactly_its_split_files_rows(demo_data):
    _, demo_paths = demo_data
    container = ParameterContainer()
    fold = pd.read_csv(demo_paths["development"] / "evaluation_setup" / "fold1_train.csv", sep="\t")
    evaluate = pd.read_csv(demo_paths["development"] / "evaluation_setup" / "fold1_evaluate.csv", sep="\t")
    for split in (25, 100):
        params = apply_overrides(container.resolve(f"dcase2024_split{split}"), {"general.mode": "eval"})
        items = editions.of(params).training_items(_data(params, demo_paths))
        rows = fold if split == 100 else pd.read_csv(demo_paths["development"] / "split_setup" / f"split{split}.csv", sep="\t")
        assert sorted(items["filename"]) == sorted(rows["filename"])  # split 100: fold1_train alone, never fold1_evaluate
    challenge_2023 = apply_overrides(container.resolve("dcase2023_baseline"), {"general.mode": "eval"})
    whole = editions.of(challenge_2023).training_items(_data(challenge_2023, demo_paths))
    assert len(whole) == len(fold) + len(evaluate)  # DCASE2023's challenge mode: the whole development set


def test_dcase2025_takes_the_device_from_the_evaluation_list_never_from_the_labels(demo_data, tmp_path):
    from utils import dataset as tau

    _, demo_paths = demo_data
    params = apply_overrides(ParameterContainer().resolve("dcase2025_device_specific"), {"general.mode": "eval"})
    data = _data(params, demo_paths)
    listed = pd.read_csv(demo_paths["evaluation"] / "evaluation_setup" / "fold1_test.csv", sep="\t")
    assert list(listed.columns) == ["filename", "device_id"]  # the demo list in the official 2025 form
    edition = editions.of(params)
    edition.check_data(data)
    assert edition.test_devices(data, data.evaluation.test).tolist() == listed["device_id"].tolist()
    # a scoring labels file without devices changes nothing: the list gives them
    labels = pd.read_csv(demo_paths["evaluation_labels"], sep="\t")[["filename", "scene_label"]]
    labels.to_csv(tmp_path / "labels.csv", sep="\t", index=False)
    data.evaluation = tau.TAUEvaluationSet.load(demo_paths["evaluation"], tmp_path / "labels.csv")
    assert edition.test_devices(data, data.evaluation.test).tolist() == listed["device_id"].tolist()
    # a list without device_id: stopped before any work, in one line naming the list
    (tmp_path / "evaluation" / "evaluation_setup").mkdir(parents=True)
    listed[["filename"]].to_csv(tmp_path / "evaluation" / "evaluation_setup" / "fold1_test.csv", sep="\t", index=False)
    data.evaluation = tau.TAUEvaluationSet.load(tmp_path / "evaluation", tmp_path / "labels.csv")
    with pytest.raises(Task1aError, match=r"fold1_test.csv has no 'device_id' for any clip: DCASE2025") as caught:
        edition.check_data(data)
    assert "\n" not in str(caught.value)
    dev = ParameterContainer().resolve("dcase2025_device_specific")  # development data: meta.csv's source_label
    dev_data = _data(dev, demo_paths)
    assert edition.test_devices(dev_data, dev_data.development.evaluate).tolist() == dev_data.development.evaluate["source_label"].tolist()


def test_a_challenge_run_without_its_editions_evaluation_set_names_it_and_the_download(demo_data, tmp_path):
    from utils.stages import prepare_data

    _, demo_paths = demo_data
    params = ParameterContainer().resolve("dcase2024_split100", command_line={
        "general": {"mode": "eval"}, "dataset_method_parameters": {"tau2022_mobile": {"development": str(demo_paths["development"])}}})
    with pytest.raises(Task1aError) as caught:
        prepare_data(params, tmp_path, progress=False, edition=editions.of(params))
    message = str(caught.value)
    assert "TAU-urban-acoustic-scenes-2024-mobile-evaluation" in message and "python -m utils.download" in message and "--evaluation 2024" in message


def test_device_models_with_a_npy_teacher_are_refused_before_any_work_and_a_csv_one_is_kept(tmp_path):
    from utils.device_models import check_device_settings, fine_tuning_parameters

    teacher = tmp_path / "teacher.npy"
    np.save(teacher, np.full((4, 10), 0.1))
    params = ParameterContainer().resolve("dcase2025_device_specific", command_line={
        "learner_method_parameters": {"cnn": {"distillation": {"teacher_outputs": str(teacher)}}}})
    check_device_settings(params)  # official recipe: the fine-tuning learns without the teacher
    assert fine_tuning_parameters(params, None)["learner"]["parameters"]["distillation"]["teacher_outputs"] is None
    with pytest.raises(Task1aError, match=r"^device_models.distillation: the .npy teacher .* cannot be matched to a device's clips; give the teacher as a "
                                          r"system-output CSV"):
        check_device_settings(apply_overrides(params, {"device_models.distillation": True}))
    csv_teacher = ParameterContainer().resolve("dcase2025_device_specific", command_line={"device_models": {"distillation": True},
                                               "learner_method_parameters": {"cnn": {"distillation": {"teacher_outputs": str(tmp_path / "t.csv")}}}})
    assert fine_tuning_parameters(csv_teacher, None)["learner"]["parameters"]["distillation"]["teacher_outputs"] == str(tmp_path / "t.csv")


def test_the_device_fine_tunings_teacher_resolves_against_the_workdir(tmp_path, monkeypatch):
    """The fine-tuning's settings are typed as the learner's: a relative teacher inside --workdir is found from another folder."""
    from utils.device_models import check_device_settings

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (workdir / "inputs").mkdir(parents=True)
    elsewhere.mkdir()
    (workdir / "inputs" / "teacher.csv").write_text("filename\tscene_label\n")
    monkeypatch.chdir(elsewhere)
    params = ParameterContainer().resolve("dcase2025_device_specific", command_line={
        "device_models": {"distillation": True}, "learner_method_parameters": {"cnn": {"distillation": {"teacher_outputs": "inputs/teacher.csv"}}}})
    check_device_settings(params, workdir)  # found under the run's root
    with pytest.raises(Task1aError, match=r"^device_models \(the device fine-tuning's settings\): .*teacher_outputs .*teacher.csv not found"):
        check_device_settings(params, elsewhere)


def test_the_official_device_recipe_is_the_fine_tuning_default():
    from utils.device_models import fine_tuning_parameters

    learner = fine_tuning_parameters(ParameterContainer().resolve("dcase2025_device_specific"), "general.keras")["learner"]["parameters"]
    assert learner["fit"]["epochs"] == 50 and learner["fit"]["batch_size"] == 256 and learner["fit"]["label_smoothing"] == 0
    assert learner["optimizer"]["class_name"] == "AdamW" and learner["optimizer"]["config"]["weight_decay"] == 0.0001
    assert learner["optimizer"]["config"]["learning_rate"] == {"class_name": "WarmupCosineDecay",
                                                               "config": {"learning_rate": 0.0005, "warmup_steps": 200, "total_steps": "TRAINING_STEPS"}}
    assert learner["augmentation"]["freq_mixstyle"]["p"] == 0 and learner["trainable_layers"] is None
    assert learner["validation_amount"] == 0 and learner["model_selection"]["rule"] == "last" and learner["initial_weights"] == "general.keras"


# ---------------------------------------------------------------------------------- a toy edition
def test_a_toy_edition_is_added_without_touching_the_pipeline_stages_or_parameters(tmp_path):
    """A new edition: its own meta template and validator rules, registered; a set names it; the package
    request, the meta, the package and the validator all follow it."""
    from utils import submission as sub
    from utils.editions.base import Edition
    from utils.pipeline import RunOptions, check_package_request
    from utils.settings import build_settings

    template = tmp_path / "toy.meta.yaml"
    template.write_text(yaml.safe_dump({"submission": {"name": "Toy", "abbreviation": "Toy", "authors": [
        {"lastname": "L", "firstname": "F", "email": "e@x", "affiliation": {"institution": "I"}, "corresponding": True}]},
        "system": {"external_datasets": [], "source_code": "x"}}))
    rules = sub.SubmissionRules(2099, "toy task", ("input_sampling_rate",), ("macs",), "total_model_size", False, ("",), 3, ())
    editions.register(Edition(year=2099, title="DCASE2099 toy", rules=rules, meta_template=str(template), parameter_bits=8,
                              protocol={"learner.parameters.validation_amount": 0.2, "learner.parameters.model_selection.rule": "best"},
                              readme_row="| 2099 | toy |"))
    try:
        params = ParameterContainer().resolve("demo_eval", command_line={"submission": {"edition": 2099}})
        assert params["learner"]["parameters"]["validation_amount"] == 0.2  # the toy protocol
        check_package_request([params], RunOptions(package=LABEL))
        meta = sub.build_submission_meta(LABEL, template, build_settings(params), {"macs": 1000, "total_parameters": 10}, None, None, edition=2099)
        assert set(meta["system"]["description"]) == {"input_sampling_rate"} and "energy_consumption" not in meta["system"]
        output = tmp_path / "output.csv"
        output.write_text("filename\tscene_label\t" + "\t".join(sub.SCENE_LABELS) + "\n" + "".join(
            f"audio/{i}.wav\tbus\t" + "\t".join(["0.1"] * 10) + "\n" for i in range(3)))
        package = sub.build_submission_package(LABEL, output, tmp_path / "toy.zip", meta)
        assert sub.validate_submission(package, edition=2099) == []
        assert any("differs from the edition checked (2023)" in line for line in sub.validate_submission(package, edition=2023))
        assert "| 2099 | toy |" in editions.readme_table()
    finally:
        editions.unregister(2099)
    with pytest.raises(Task1aError, match="submission.edition"):
        ParameterContainer().resolve("demo_eval", command_line={"submission": {"edition": 2099}})
