"""Submission meta and package (the DCASE2023 edition), and the validator catching each defect."""

import copy
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from utils.dataset import DEVELOPMENT_DEVICES, SCENE_LABELS
from utils.errors import Task1aError
from utils.evaluation import SceneClassificationMetrics
from utils.parameters import ParameterContainer
from utils.settings import build_settings
from utils.submission import build_submission_meta, build_submission_package, main, validate_submission
from utils.system_output import write_system_output

REPO_DIR = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_DIR / "meta" / "task1a_submission.meta.yaml"
LABEL = "Doe_TAU_task1_1"
N_FILES = 20
HEADER = "filename\tscene_label\t" + "\t".join(SCENE_LABELS)


def probabilities_for(n, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(len(SCENE_LABELS)), n)


# ---------------------------------------------------------------- meta and package


@pytest.fixture(scope="module")
def settings():
    """The typed settings of the 2023 baseline set (what the pipeline hands the meta builder)."""
    return build_settings(ParameterContainer(REPO_DIR / "task1a.yaml").resolve("dcase2023_baseline"))


@pytest.fixture(scope="module")
def development_results():
    rng = np.random.default_rng(1)
    n = 180
    true = rng.integers(0, 10, n)
    devices = np.array(DEVELOPMENT_DEVICES)[np.arange(n) % len(DEVELOPMENT_DEVICES)]
    probabilities = probabilities_for(n, seed=2)
    probabilities[np.arange(n), true] += 0.3
    return SceneClassificationMetrics().accumulate([SCENE_LABELS[c] for c in true], probabilities, devices).results()


@pytest.fixture()
def filled_template(tmp_path):
    """The repository's template with the person fields filled in."""
    template = yaml.safe_load(TEMPLATE.read_text())
    template["submission"].update(name="Baseline reimplementation", abbreviation="Base")
    template["submission"]["authors"] = [
        {"lastname": "Doe", "firstname": "Jane", "email": "jane.doe@example.org", "corresponding": True,
         "affiliation": {"abbreviation": "TAU", "institute": "Tampere University", "location": "Tampere, Finland"}},
        {"lastname": "Roe", "firstname": "Rick", "email": "rick.roe@example.org",
         "affiliation": {"abbreviation": "TAU", "institute": "Tampere University", "location": "Tampere, Finland"}},
    ]
    template["system"]["description"]["data_augmentation"] = "mixup"
    path = tmp_path / "filled.meta.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


COMPLEXITY = {"total_model_size": 46512, "total_parameters": 46512, "total_parameters_non_zero": 46512, "memory_use": 29056, "macs": 29234920}
ENERGY = {"training": 0.302, "inference": 0.0021, "baseline_inference": 0.0019}


@pytest.fixture()
def valid_meta(filled_template, settings, development_results):
    return build_submission_meta(LABEL, filled_template, settings, COMPLEXITY, ENERGY, development_results)


def test_meta_is_filled_from_the_run(valid_meta, development_results):
    meta = valid_meta
    assert meta["submission"]["label"] == LABEL and meta["submission"]["abbreviation"] == "Base"
    description = meta["system"]["description"]
    assert description["input_sampling_rate"] == "44.1kHz"
    assert description["acoustic_features"] == "log-mel energies"
    assert description["machine_learning_method"] == "CNN"
    assert description["data_augmentation"] == "mixup"  # the template's value wins
    assert meta["system"]["complexity"] == COMPLEXITY and meta["system"]["energy_consumption"] == ENERGY
    development = meta["results"]["development_dataset"]
    assert development["overall"]["accuracy"] == round(100 * development_results["overall_accuracy"], 2)
    assert development["overall"]["logloss"] == round(development_results["overall_logloss"], 3)
    assert list(development["class_wise"]) == list(SCENE_LABELS)
    assert list(development["device_wise"]) == list(DEVELOPMENT_DEVICES)
    assert development["device_wise"]["s5"]["accuracy"] == round(100 * development_results["device_wise"]["s5"]["accuracy"], 2)


def test_meta_rejects_bad_label_and_unknown_measurements(filled_template, settings):
    with pytest.raises(Task1aError, match="Last name of corresponding author"):
        build_submission_meta("Doe-TAU-task1-1", filled_template, settings)
    with pytest.raises(Task1aError, match="unknown key"):
        build_submission_meta(LABEL, filled_template, settings, complexity={"params": 1})
    with pytest.raises(Task1aError, match="not found"):
        build_submission_meta(LABEL, filled_template.parent / "missing.yaml", settings)


def output_text(n=N_FILES):
    rows = [HEADER]
    for i, row in enumerate(probabilities_for(n)):
        rows.append("\t".join([f"{i}.wav", SCENE_LABELS[int(row.argmax())]] + [f"{p:.6f}" for p in row]))
    return "\n".join(rows) + "\n"


def write_package(path, output, meta, label=LABEL, layout=None):
    """A zip holding ``output`` (text) and ``meta`` (dict or raw text) under task1/LABEL/ (or ``layout``)."""
    folder = f"task1/{label}/" if layout is None else layout
    with zipfile.ZipFile(path, "w") as archive:
        if output is not None:
            archive.writestr(f"{folder}{label}.output.csv", output)
        if meta is not None:
            archive.writestr(f"{folder}{label}.meta.yaml", meta if isinstance(meta, str) else yaml.safe_dump(meta, sort_keys=False))
    return path


def test_built_package_is_valid(tmp_path, valid_meta, capsys):
    output = write_system_output(tmp_path / "out.csv", [f"audio/{i}.wav" for i in range(N_FILES)], probabilities_for(N_FILES))
    package = build_submission_package(LABEL, output, tmp_path / "package.zip", valid_meta)
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == [f"task1/{LABEL}/{LABEL}.meta.yaml", f"task1/{LABEL}/{LABEL}.output.csv"]
        assert yaml.safe_load(archive.read(f"task1/{LABEL}/{LABEL}.meta.yaml")) == valid_meta
    assert validate_submission(package, expected_file_count=N_FILES) == []
    assert main([str(package), "--expected-files", str(N_FILES)]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    # the official evaluation set has 118,800 files: this output is far from complete
    assert main([str(package)]) == 1
    assert "20 distinct files, the evaluation set has 118800" in capsys.readouterr().out


def test_package_with_the_unfilled_template_lists_every_placeholder(tmp_path, settings, development_results):
    meta = build_submission_meta(LABEL, TEMPLATE, settings, COMPLEXITY, ENERGY, development_results)
    problems = validate_submission(write_package(tmp_path / "p.zip", output_text(), meta), N_FILES)
    assert len(problems) == 8 and all("template placeholder" in problem for problem in problems)


def test_package_label_must_match_meta(tmp_path, valid_meta):
    with pytest.raises(Task1aError, match="differs"):
        build_submission_package("Doe_TAU_task1_2", write_system_output(tmp_path / "o.csv", ["0.wav"], probabilities_for(1)), tmp_path / "p.zip", valid_meta)


# ---------------------------------------------------------------- the validator: one defect at a time


def replace_row(text, line, new_row):
    lines = text.split("\n")
    lines[line - 1] = new_row
    return "\n".join(lines)


def row_with(fields):
    return "\t".join(fields)


OK_PROBABILITIES = ["0.1"] * 10

OUTPUT_DEFECTS = {
    "no header": (lambda t: t.split("\n", 1)[1], "no header row"),
    "wrong header field": (lambda t: t.replace("street_traffic", "street_trafic", 1), "wrong header fields"),
    "field count": (lambda t: replace_row(t, 3, row_with(["1.wav", "bus"] + OK_PROBABILITIES[:9])), "line 3: 11 fields, expected 12"),
    "non-integer stem": (lambda t: replace_row(t, 3, row_with(["one.wav", "bus"] + OK_PROBABILITIES)), "'one.wav' is not an evaluation file name"),
    "extension": (lambda t: replace_row(t, 3, row_with(["1.mp3", "bus"] + OK_PROBABILITIES)), "'1.mp3' must end in .wav"),
    "index too large": (lambda t: replace_row(t, 3, row_with([f"{N_FILES}.wav", "bus"] + OK_PROBABILITIES)), f"index above {N_FILES - 1}"),
    "duplicate": (lambda t: replace_row(t, 3, row_with(["0.wav", "bus"] + OK_PROBABILITIES)), "duplicate file '0.wav' (first on line 2)"),
    "scene label": (lambda t: replace_row(t, 3, row_with(["1.wav", "boat"] + OK_PROBABILITIES)), "unknown scene label 'boat'"),
    "probability": (lambda t: replace_row(t, 3, row_with(["1.wav", "bus"] + OK_PROBABILITIES[:9] + ["high"])), "tram = 'high' is not a number"),
    "missing files": (lambda t: "\n".join(t.split("\n")[:-3]) + "\n", f"{N_FILES - 2} distinct files, the evaluation set has {N_FILES}"),
}


@pytest.mark.parametrize("defect", OUTPUT_DEFECTS)
def test_validator_catches_output_defect(tmp_path, valid_meta, defect):
    change, expected = OUTPUT_DEFECTS[defect]
    problems = validate_submission(write_package(tmp_path / "p.zip", change(output_text()), valid_meta), N_FILES)
    extra = ["19 distinct files"] if defect == "duplicate" else []  # a duplicate also leaves a file out
    assert any(expected in problem for problem in problems), problems
    assert all(expected in problem or any(e in problem for e in extra) for problem in problems), problems


def drop(path):
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        del node[last]
    return change


def setter(path, value):
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return change


def all_corresponding(meta):
    for author in meta["submission"]["authors"]:
        author["corresponding"] = True


def no_corresponding(meta):
    for author in meta["submission"]["authors"]:
        author.pop("corresponding", None)


META_DEFECTS = {
    "submission block": (drop("submission"), "'submission' block missing"),
    "system block": (drop("system"), "'system' block missing"),
    "results block": (drop("results"), "'results' block missing"),
    "submission field": (drop("submission.name"), "'submission' lacks ['name']"),
    "author field": (lambda m: m["submission"]["authors"][1].pop("email"), "submission.authors[1] lacks ['email']"),
    "no corresponding author": (no_corresponding, "0 corresponding authors"),
    "two corresponding authors": (all_corresponding, "2 corresponding authors"),
    "label format": (setter("submission.label", "Doe_TAU_task1a_1"), "must be [Last name"),
    "label index": (setter("submission.label", "Doe_TAU_task1_5"), "must be 1-4"),
    "abbreviation": (setter("submission.abbreviation", "BaselineCNN"), "longer than 10 characters"),
    "description field": (drop("system.description.framework"), "system.description lacks ['framework']"),
    "complexity field": (drop("system.complexity.macs"), "system.complexity lacks ['macs']"),
    "total parameters": (setter("system.complexity.total_parameters", "about 46k"), "total_parameters 'about 46k' is not an integer"),
    "energy field": (drop("system.energy_consumption.baseline_inference"), "energy_consumption lacks ['baseline_inference']"),
    "external dataset": (setter("system.external_datasets", [{"name": "AudioSet", "total_audio_length": 1}]), "external_datasets[0] lacks ['url']"),
    "class-wise scene": (drop("results.development_dataset.class_wise.tram"), "class_wise lacks ['tram']"),
    "device-wise device": (drop("results.development_dataset.device_wise.s6"), "device_wise lacks ['s6']"),
    "result value": (setter("results.development_dataset.overall.accuracy", "high"), "overall.accuracy 'high' is not a number"),
    "placeholder": (setter("submission.authors.0.email", "FILL IN: contact email"), "authors[0].email still holds the template placeholder"),
}


@pytest.mark.parametrize("defect", META_DEFECTS)
def test_validator_catches_meta_defect(tmp_path, valid_meta, defect):
    change, expected = META_DEFECTS[defect]
    meta = copy.deepcopy(valid_meta)
    change(meta)
    problems = validate_submission(write_package(tmp_path / "p.zip", output_text(), meta), N_FILES)
    also = ["differs from the file and folder name"] if defect.startswith("label") else []
    assert any(expected in problem for problem in problems), problems
    assert all(expected in problem or any(a in problem for a in also) for problem in problems), problems


def test_validator_catches_broken_yaml(tmp_path):
    problems = validate_submission(write_package(tmp_path / "p.zip", output_text(), "submission: [unclosed\n"), N_FILES)
    assert len(problems) == 1 and "not valid YAML" in problems[0]


def test_validator_catches_wrong_layout_and_missing_files(tmp_path, valid_meta):
    problems = validate_submission(write_package(tmp_path / "p.zip", output_text(), valid_meta, layout=""), N_FILES)
    assert len(problems) == 2 and all(f"must be at task1/{LABEL}/" in problem for problem in problems)
    problems = validate_submission(write_package(tmp_path / "q.zip", output_text(), None), N_FILES)
    assert problems == [f"{tmp_path / 'q.zip'}: submission {LABEL} has no {LABEL}.meta.yaml"]
    (tmp_path / "r.zip").write_text("not a zip")
    assert "not a zip file" in validate_submission(tmp_path / "r.zip")[0]


def test_validator_reports_every_problem_not_just_the_first(tmp_path, valid_meta, capsys):
    meta = copy.deepcopy(valid_meta)
    all_corresponding(meta)
    setter("submission.abbreviation", "BaselineCNN")(meta)
    text = output_text()
    for line in range(2, 17):  # 15 rows with an unknown label: 10 shown, then a count
        text = replace_row(text, line, row_with([f"{line - 2}.wav", "boat"] + OK_PROBABILITIES))
    package = write_package(tmp_path / "p.zip", text, meta)
    problems = validate_submission(package, N_FILES)
    assert sum("unknown scene label 'boat'" in p for p in problems) == 10
    assert any("... and 5 more rows with: unknown scene label" in p for p in problems)
    assert any("corresponding authors" in p for p in problems) and any("longer than 10" in p for p in problems)
    assert len(problems) == 13
    assert main([str(package), "--expected-files", str(N_FILES)]) == 1
    assert capsys.readouterr().out.count("\n") == 13


def test_validator_accepts_a_folder_and_bare_file_names(tmp_path, valid_meta):
    folder = tmp_path / "package" / "task1" / LABEL
    folder.mkdir(parents=True)
    (folder / f"{LABEL}.output.csv").write_text(output_text())
    (folder / f"{LABEL}.meta.yaml").write_text(yaml.safe_dump(valid_meta))
    assert validate_submission(tmp_path / "package", N_FILES) == []
    assert validate_submission(tmp_path / "package", expected_file_count=None) == []


def test_cli_reports_a_missing_package(tmp_path, capsys):
    assert main([str(tmp_path / "missing.zip")]) == 1
    assert capsys.readouterr().err.startswith("error: submission package")
