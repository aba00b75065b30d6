"""Parameter sets, merging, strict validation and stage hashes of task1a.yaml."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from utils.errors import Task1aError
from utils.parameters import ParameterContainer, apply_overrides, merge, stage_hash

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_sets_resolve_with_method_parameters():
    container = ParameterContainer()
    assert {"dcase2023_baseline", "dcase2023_baseline_eval", "demo"} <= set(container.set_ids())
    baseline = container.resolve("dcase2023_baseline")
    assert baseline["learner"]["parameters"]["fit"]["batch_size"] == 16
    assert baseline["learner"]["parameters"]["fit"]["epochs"] == 200
    assert baseline["learner"]["parameters"]["model_selection"]["initial_delay"] == 50
    assert baseline["feature_extractor"]["parameters"]["n_mels"] == 40
    assert baseline["dataset"]["method"] == "tau2022_mobile"
    assert container.resolve("dcase2023_baseline_eval")["general"]["mode"] == "eval"
    assert container.resolve("dcase2023_baseline_batch64")["learner"]["parameters"]["fit"]["batch_size"] == 64
    demo = container.resolve("demo")
    assert demo["dataset"]["method"] == "demo"
    assert demo["dataset"]["parameters"] == container.defaults["dataset_method_parameters"]["demo"]
    assert demo["learner"]["parameters"]["fit"]["epochs"] < 200
    # the set overrides one key, the rest of the section stays
    assert demo["learner"]["parameters"]["fit"]["batch_size"] == 16


def test_merge_is_deep_and_does_not_alias():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    merged = merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": [1, 2]}, "d": 3}
    merged["a"]["c"].append(3)
    assert base["a"]["c"] == [1, 2]


def test_param_file_merges_over_defaults_and_adds_sets(tmp_path):
    user = write(tmp_path, "user.yaml", {
        "active_set": "mine",
        "defaults": {"learner_method_parameters": {"cnn": {"fit": {"epochs": 7}}}},
        "sets": [{"set_id": "mine", "description": "x", "general": {"seed": 5}}],
    })
    container = ParameterContainer(override_path=user)
    params = container.resolve()
    assert params["set_id"] == "mine"
    assert params["general"]["seed"] == 5
    assert params["learner"]["parameters"]["fit"]["epochs"] == 7
    assert params["learner"]["parameters"]["fit"]["batch_size"] == 16


@pytest.mark.parametrize("data, key", [
    ({"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}}, "defaults.learner_method_parameters.cnn.fit.epohcs"),
    ({"sets": [{"set_id": "x", "genral": {"seed": 1}}]}, "sets.genral"),
    ({"defaults": {"general": {"seed": "zero"}}}, "defaults.general.seed"),
    ({"defaults": {"general": {"energy": 1}}}, "defaults.general.energy"),
    ({"defaults": {"learner_method_parameters": {"cnn": {"validation_amount": "a lot"}}}}, "defaults.learner_method_parameters.cnn.validation_amount"),
    ({"activ_set": "demo"}, "activ_set"),
])
def test_typos_and_wrong_types_are_rejected_with_the_key_path(tmp_path, data, key):
    with pytest.raises(Task1aError) as error:
        ParameterContainer(override_path=write(tmp_path, "bad.yaml", data))
    message = str(error.value)
    assert key in message and "bad.yaml" in message and "\n" not in message


def test_int_accepted_for_float_but_not_bool_for_int(tmp_path):
    ok = ParameterContainer(override_path=write(tmp_path, "ok.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"optimizer": {"config": {"learning_rate": 1}}}}}}))
    assert ok.resolve()["learner"]["parameters"]["optimizer"]["config"]["learning_rate"] == 1
    with pytest.raises(Task1aError, match="must be an integer"):
        ParameterContainer(override_path=write(tmp_path, "b.yaml", {"defaults": {"general": {"seed": True}}}))


def test_malformed_yaml_and_unknown_set_and_method(tmp_path):
    with pytest.raises(Task1aError, match=r"bad\.yaml line \d+: malformed YAML"):
        ParameterContainer(override_path=write(tmp_path, "bad.yaml", "defaults: {general: [\n"))
    with pytest.raises(Task1aError, match="unknown parameter set 'nope'"):
        ParameterContainer().resolve("nope")
    container = ParameterContainer(override_path=write(tmp_path, "m.yaml", {"defaults": {"learner": {"method": "transformer"}}}))
    with pytest.raises(Task1aError, match="learner.method 'transformer'"):
        container.resolve("dcase2023_baseline")


def test_stage_hashes_change_only_downstream():
    params = ParameterContainer().resolve("demo")
    base = {stage: stage_hash(params, stage) for stage in ("features", "learner", "recognizer", "evaluator")}
    learner_change = apply_overrides(params, {"learner_method_parameters.cnn.fit.epochs": 3})
    assert stage_hash(learner_change, "features") == base["features"]
    assert stage_hash(learner_change, "learner") != base["learner"]
    assert stage_hash(learner_change, "recognizer") != base["recognizer"]
    feature_change = apply_overrides(params, {"feature_extractor_method_parameters.mel.n_mels": 64})
    assert all(stage_hash(feature_change, s) != h for s, h in base.items())
    recognizer_change = apply_overrides(params, {"recognizer.model_io": "int8"})
    assert stage_hash(recognizer_change, "learner") == base["learner"]
    assert stage_hash(recognizer_change, "recognizer") != base["recognizer"]
    # worker count does not change outputs
    jobs = apply_overrides(params, {"feature_extractor.n_jobs": 1})
    assert stage_hash(jobs, "features") == base["features"]
    # demo and real data never share a folder
    real = ParameterContainer().resolve("dcase2023_baseline")
    assert stage_hash(real, "features") != base["features"]
    # the challenge-mode model is trained on other data
    assert stage_hash(apply_overrides(params, {"general.mode": "eval"}), "learner") != base["learner"]


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "task1a.py", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_show_sets_parameters_and_errors(tmp_path):
    shown = run_cli("--show_sets")
    assert shown.returncode == 0 and "demo" in shown.stdout and "dcase2023_baseline_eval" in shown.stdout
    params = run_cli("--show_parameters", "-s", "demo", "-r", "0")
    assert params.returncode == 0
    parsed = yaml.safe_load(params.stdout)
    assert parsed["set_id"] == "demo" and parsed["general"]["seed"] == 0
    bad = run_cli("-p", str(write(tmp_path, "typo.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}})), "--show_parameters")
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error:") and "epohcs" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = run_cli("-s", "nope", "--show_parameters")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    version = run_cli("-v")
    assert version.returncode == 0 and "task1a" in version.stdout


def test_values_outside_their_choices_are_rejected_when_resolving(tmp_path):
    container = ParameterContainer(override_path=write(tmp_path, "d.yaml", {"defaults": {"learner": {"distribute": "horovod"}}}))
    with pytest.raises(Task1aError, match="'learner.distribute' must be one of none, mirrored, multi_worker, got 'horovod'"):
        container.resolve("demo")
    container = ParameterContainer(override_path=write(tmp_path, "n.yaml", {"sets": [{"set_id": "demo", "data_processing": {"normalization": "zscore"}}]}))
    with pytest.raises(Task1aError, match="set demo: 'data_processing.normalization'"):
        container.resolve("demo")
    # threads and batch size of the interpreter do not change results, so they stay out of the hash
    params = ParameterContainer().resolve("demo")
    assert stage_hash(apply_overrides(params, {"recognizer.num_threads": 1}), "recognizer") == stage_hash(params, "recognizer")


def test_keras_configs_pass_through_while_the_application_keys_stay_strict(tmp_path):
    user = write(tmp_path, "user.yaml", {"defaults": {"learner_method_parameters": {"cnn": {
        "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9}},
        "model": {"constants": {"MY_NEW_CONSTANT": 5}},
        "fit": {"callbacks": [{"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "patience": 10}}]},
    }}}})
    learner = ParameterContainer(override_path=user).resolve("dcase2023_baseline")["learner"]["parameters"]
    assert learner["optimizer"]["config"]["momentum"] == 0.9 and learner["model"]["constants"]["MY_NEW_CONSTANT"] == 5
    assert learner["fit"]["callbacks"][0]["config"]["patience"] == 10
    typo = write(tmp_path, "typo.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}})
    with pytest.raises(Task1aError, match="unknown parameter 'defaults.learner_method_parameters.cnn.fit.epohcs'"):
        ParameterContainer(override_path=typo)


def test_learner_hash_ignores_what_never_changes_a_trained_model():
    params = ParameterContainer().resolve("dcase2023_baseline")
    key = "learner_method_parameters.cnn"
    same = [{f"{key}.iterations": 3}, {f"{key}.fit.steps_per_execution": 1}, {f"{key}.fit.tensorboard": True}]
    for overrides in same:  # --trials 3 reuses a finished seed_0; speed and logging settings reuse it too
        assert stage_hash(apply_overrides(params, overrides), "learner") == stage_hash(params, "learner"), overrides
    for overrides in ({f"{key}.validation_seed": 1}, {f"{key}.fit.batch_size": 64}, {f"{key}.optimizer.config.learning_rate": 0.01}):
        assert stage_hash(apply_overrides(params, overrides), "learner") != stage_hash(params, "learner"), overrides


def test_train_split_enters_the_learner_hash_not_the_features_hash():
    params = ParameterContainer().resolve("dcase2023_baseline")
    assert params["dataset"]["train_split"] == 100
    subset = apply_overrides(params, {"dataset.train_split": 25})
    assert stage_hash(subset, "features") == stage_hash(params, "features")  # features: the whole fold, once
    for stage in ("learner", "recognizer", "evaluator"):
        assert stage_hash(subset, stage) != stage_hash(params, stage)
    # the whole fold leaves every hash as it was before the parameter existed
    without = {key: value for key, value in params["dataset"].items() if key != "train_split"}
    assert stage_hash(dict(params, dataset=without), "learner") == stage_hash(params, "learner")


def test_what_the_user_writes_last_wins(tmp_path):
    from utils.parameters import command_line_layer

    key = ("learner_method_parameters", "cnn", "fit")
    fit = lambda params: params[key[0]][key[1]][key[2]]  # noqa: E731
    base = ParameterContainer()
    assert fit(base.resolve("demo"))["epochs"] == 20  # the set over task1a.yaml's defaults (200)
    user = write(tmp_path, "short.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epochs": 3, "batch_size": 8}}}},
                                          "sets": [{"set_id": "demo", "learner_method_parameters": {"cnn": {"fit": {"batch_size": 4}}}}]})
    container = ParameterContainer(override_path=user)
    demo = container.resolve("demo")
    assert fit(demo)["epochs"] == 3  # -p defaults over task1a.yaml's set
    assert fit(demo)["batch_size"] == 4  # the -p file's set over its own defaults
    assert fit(container.resolve("dcase2023_baseline"))["batch_size"] == 8
    command_line = command_line_layer(["learner_method_parameters.cnn.fit.epochs=5", "general.seed=7"], container.defaults)
    last = container.resolve("demo", command_line=command_line)
    assert fit(last)["epochs"] == 5 and last["general"]["seed"] == 7 and last["learner"]["parameters"]["fit"]["epochs"] == 5  # --set over everything
    sources = container.provenance("demo", command_line=command_line)
    assert sources["learner_method_parameters.cnn.fit.epochs"] == "command line"
    assert sources["learner_method_parameters.cnn.fit.batch_size"] == f"{user} set demo"
    assert sources["learner_method_parameters.cnn.model_selection.initial_delay"] == "task1a.yaml set demo"
    for bad, message in ((["learner_method_parameters.cnn.fit.epohcs=3"], "unknown parameter 'learner_method_parameters.cnn.fit.epohcs'"),
                         (["general.seed"], "write section.key=value"), (["general.seed=seven"], "'general.seed' must be an integer")):
        with pytest.raises(Task1aError, match=message):
            command_line_layer(bad, container.defaults)


def test_the_demo_fallback_keeps_the_values_of_the_set_asked_for():
    container = ParameterContainer()
    fallback = container.resolve("demo", instead_of="dcase2023_baseline_batch64")
    assert fallback["learner"]["parameters"]["fit"]["batch_size"] == 64 and fallback["dataset"]["method"] == "demo"
    assert fallback["learner"]["parameters"]["fit"]["epochs"] == 20  # the demo set's own shorter training stays
    assert container.resolve("demo", instead_of="dcase2023_baseline_eval")["general"]["mode"] == "eval"
    assert container.resolve("demo", instead_of="dcase2024_split25")["dataset"]["train_split"] == 25
