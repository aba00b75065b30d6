"""Run-time paths resolve against the run's folder (--workdir, path.root, the working folder), never the code's;
shipped files come from the package (a wheel) or the clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils import editions, paths
from utils.errors import Task1aError
from utils.parameters import DEFAULT_PARAMETER_FILE, ParameterContainer

REPO_DIR = Path(__file__).resolve().parents[1]


def test_the_default_root_is_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = ParameterContainer().defaults
    assert defaults["path"]["root"] == "."
    assert paths.run_root(defaults) == tmp_path
    assert paths.system_dir(defaults) == tmp_path / "system"
    assert paths.log_dir(defaults) == tmp_path / "log"
    assert paths.resolve_run_path(defaults, "datasets/x") == tmp_path / "datasets" / "x"
    assert paths.run_root(None) == tmp_path and paths.run_root({}) == tmp_path


def test_a_clone_run_from_its_folder_resolves_as_before(monkeypatch):
    monkeypatch.chdir(REPO_DIR)
    params = ParameterContainer().resolve("demo")
    assert paths.system_dir(params) == REPO_DIR / "system"
    assert paths.resolve_run_path(params, params["dataset"]["parameters"]["path"]) == REPO_DIR / "datasets" / "task1a-demo-synthetic"
    assert paths.meta_template(params, editions.of(params).meta_template) == REPO_DIR / "meta" / "task1a_submission.meta.yaml"


def test_workdir_beats_path_root_which_beats_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = {"path": {"root": "runs", "system": "out", "log": "/abs/log"}}
    assert paths.run_root(params) == tmp_path / "runs"
    assert paths.system_dir(params) == tmp_path / "runs" / "out"
    assert paths.log_dir(params) == Path("/abs/log")  # absolute paths stay as they are
    assert paths.run_root(params, workdir=tmp_path / "w") == tmp_path / "w"
    assert paths.system_dir(params, workdir="w2") == tmp_path / "w2" / "out"
    assert paths.run_root({"path": {"root": str(tmp_path / "a" / ".." / "b")}}) == tmp_path / "b"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.run_root({"path": {"root": "~/r"}}) == tmp_path / "home" / "r"
    assert paths.resolve_run_path(params, None) is None


def test_a_root_that_is_a_file_or_not_a_path_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(Task1aError, match=r"^--workdir .*f is a file, not a folder; choose a folder") as info:
        paths.run_root({}, workdir="f")
    assert "\n" not in str(info.value)
    with pytest.raises(Task1aError, match=r"^path.root .* is a file, not a folder"):
        paths.system_dir({"path": {"root": "f"}})
    with pytest.raises(Task1aError, match=r"path.root must be a folder path, got 3"):
        paths.run_root({"path": {"root": 3}})
    with pytest.raises(Task1aError, match=r"'path' must be a mapping"):
        paths.run_root({"path": "somewhere"})
    assert paths.run_root({"path": {"root": ""}}) == tmp_path  # empty means the working folder


def test_path_root_is_a_checked_parameter(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("defaults:\n  path:\n    root: /data/runs\n")
    assert ParameterContainer(override_path=user).resolve("demo")["path"]["root"] == "/data/runs"
    user.write_text("defaults:\n  path:\n    root: [a]\n")
    with pytest.raises(Task1aError, match="'defaults.path.root' must be a string"):
        ParameterContainer(override_path=user)


def test_a_clone_reads_its_own_top_level_files():
    assert DEFAULT_PARAMETER_FILE == REPO_DIR / "task1a.yaml"
    assert paths.packaged_file("task1a.yaml") == REPO_DIR / "task1a.yaml"
    assert paths.packaged_file("task1a_submission.meta.yaml") == REPO_DIR / "meta" / "task1a_submission.meta.yaml"
    assert paths.packaged_file("tau2022_manifest.yaml") == REPO_DIR / "utils" / "tau2022_manifest.yaml"
    with pytest.raises(ValueError, match="unknown shipped file"):
        paths.packaged_file("nothing.yaml")


def test_a_null_meta_template_is_the_editions_own_copy_or_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: no meta/ here
    from utils import editions

    for edition, name in ((year, Path(edition.meta_template).name) for year, edition in editions.REGISTRY.items()):
        params = {"path": {"root": "."}, "submission": {"meta_template": None, "edition": edition}}
        assert paths.meta_template(params, editions.of(params).meta_template) == paths.packaged_file(name)
        assert paths.meta_template(params, editions.of(params).meta_template).is_file()
        (tmp_path / "meta").mkdir(exist_ok=True)
        (tmp_path / "meta" / name).write_text("submission: {}\n")
        assert paths.meta_template(params, editions.of(params).meta_template) == tmp_path / "meta" / name  # the user's own copy wins
    params["submission"]["meta_template"] = "mine.yaml"
    assert paths.meta_template(params, editions.of(params).meta_template) == tmp_path / "mine.yaml"  # not there: the submission code says so


def test_a_missing_shipped_file_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CHECKOUT_DIR", tmp_path)
    with pytest.raises(Task1aError, match=r"task1a.yaml is missing from this installation .*; reinstall dcase-task1a-baseline"):
        paths.packaged_file("task1a.yaml")
    assert paths.default_parameter_file() == tmp_path / "task1a.yaml"  # the container's error then names it


def test_the_learners_files_resolve_against_the_workdir_not_the_working_folder(tmp_path, monkeypatch):
    """initial_weights and distillation.teacher_outputs are run paths like the others: a relative one inside
    --workdir is found (checked before work, hashed by content, trained from) when the command runs elsewhere."""
    from utils import pipeline, stages
    from utils.files import file_digest

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (workdir / "inputs").mkdir(parents=True)
    elsewhere.mkdir()
    (workdir / "inputs" / "start.weights.h5").write_bytes(b"weights")
    (workdir / "inputs" / "teacher.csv").write_text("filename\tscene_label\n")
    monkeypatch.chdir(elsewhere)
    container = ParameterContainer()
    command_line = {"learner_method_parameters": {"cnn": {"initial_weights": "inputs/start.weights.h5",
                                                          "distillation": {"teacher_outputs": "inputs/teacher.csv"}}}}
    (params,) = pipeline.resolve_sets(container, ["demo"], command_line, {}, str(workdir))
    root = paths.run_root(params, str(workdir))
    learner = stages.check_learner_settings(params, root)  # found: no error; the typed settings hold the resolved paths
    assert learner.initial_weights == workdir / "inputs" / "start.weights.h5"
    assert learner.distillation.teacher_outputs == workdir / "inputs" / "teacher.csv"
    files = stages.input_files(params, root)  # the hash names the content, under the path as written
    assert files["initial_weights"] == {"path": "inputs/start.weights.h5", "sha256": file_digest(workdir / "inputs" / "start.weights.h5")}
    assert files["distillation"]["sha256"] == file_digest(workdir / "inputs" / "teacher.csv")
    # the working folder is not where a run's relative paths point
    with pytest.raises(Task1aError, match="not found"):
        stages.check_learner_settings(params, elsewhere)
