"""Submission editions 2023, 2024 and 2025: each built package passes its own rules and fails the others';
the complexity limits (30e6 MACs, 128,000 B per model) give one line each."""

import copy
import functools
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
from utils.submission import (
    DEVICE_GROUPS_2025,
    MAX_MACS,
    MAX_MEMORY_BYTES,
    SPLITS_2024,
    build_submission_meta,
    build_submission_package,
    get_edition,
    main,
    validate_submission,
)
from utils.system_output import write_system_output

REPO_DIR = Path(__file__).resolve().parents[1]
TEMPLATES = {2023: REPO_DIR / "meta" / "task1a_submission.meta.yaml",
             2024: REPO_DIR / "meta" / "task1a_submission_2024.meta.yaml",
             2025: REPO_DIR / "meta" / "task1a_submission_2025.meta.yaml"}
LABEL = "Doe_TAU_task1_1"
N_FILES = 12
COMPLEXITY = {"total_model_size": 46512, "total_parameters": 46246, "total_parameters_non_zero": 46200, "memory_use": 46512, "macs": 29234920}
ENERGY = {"training": 0.302, "inference": 0.0021, "baseline_inference": 0.0019}


@pytest.fixture(scope="module")
def settings():
    """The typed settings of the 2023 baseline set (what the pipeline hands the meta builder)."""
    return build_settings(ParameterContainer(REPO_DIR / "task1a.yaml").resolve("dcase2023_baseline"))


@functools.lru_cache(maxsize=None)
def results(seed, grouped=False):
    """Real evaluation results of a small random system output over every development device (read only;
    ``grouped``: with 2025's known / unknown device groups)."""
    device_groups = DEVICE_GROUPS_2025 if grouped else None
    rng = np.random.default_rng(seed)
    n = 180
    true = rng.integers(0, 10, n)
    probabilities = rng.dirichlet(np.ones(10), n)
    probabilities[np.arange(n), true] += 0.3
    devices = np.array(DEVELOPMENT_DEVICES)[np.arange(n) % len(DEVELOPMENT_DEVICES)]
    metrics = SceneClassificationMetrics(device_groups=device_groups) if device_groups else SceneClassificationMetrics()
    return metrics.accumulate([SCENE_LABELS[c] for c in true], probabilities, devices).results()


def filled_template(tmp_path, year):
    """The edition's shipped template with every person field filled in."""
    template = yaml.safe_load(TEMPLATES[year].read_text())
    template["submission"].update(name="Baseline reimplementation", abbreviation="Base")
    template["submission"]["authors"] = [
        {"lastname": "Doe", "firstname": "Jane", "email": "jane.doe@example.org", "corresponding": True,
         "affiliation": {"abbreviation": "TAU", "institute": "Tampere University", "location": "Tampere, Finland"}},
    ]
    if year == 2024:
        template["system"]["description"].update(split_adaptations="none", system_adaptations="none")
    path = tmp_path / f"filled_{year}.meta.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def output_file(path, seed=0):
    probabilities = np.random.default_rng(seed).dirichlet(np.ones(10), N_FILES)
    return write_system_output(path, [f"{i}.wav" for i in range(N_FILES)], probabilities)


def edition_inputs(tmp_path, year):
    """What the pipeline passes for ``year``: (complexity, energy, development results, system output(s))."""
    if year == 2023:
        return COMPLEXITY, ENERGY, results(1), output_file(tmp_path / "out.csv")
    if year == 2024:
        dev = {split: results(split) for split in (5, 10, 25, 50, 100)}
        outputs = {split: output_file(tmp_path / f"out_{split}.csv", seed=split) for split in (5, 10, 25, 50, 100)}
        return {k: v for k, v in COMPLEXITY.items()}, None, dev, outputs
    complexity = {**COMPLEXITY, "device_models": {device: dict(COMPLEXITY, macs=20_000_000) for device in ("a", "b", "s1")}}
    dev = {"general_model": results(2, True), "device_specific_models": results(3, True)}
    return complexity, None, dev, output_file(tmp_path / "out.csv")


def built_package(tmp_path, settings, year):
    complexity, energy, dev, outputs = edition_inputs(tmp_path, year)
    meta = build_submission_meta(LABEL, filled_template(tmp_path, year), settings, complexity, energy, dev, edition=year)
    return build_submission_package(LABEL, outputs, tmp_path / f"{LABEL}.zip", meta), meta, dev


@pytest.mark.parametrize("year", [2023, 2024, 2025])
def test_each_editions_built_package_passes_its_own_validator(tmp_path, settings, year, capsys):
    package, meta, dev = built_package(tmp_path, settings, year)
    assert meta["submission"]["edition"] == year
    assert validate_submission(package, N_FILES, edition=year) == []
    assert validate_submission(package, N_FILES) == []  # without an edition: the one the meta records
    assert main([str(package), "--edition", str(year), "--expected-files", str(N_FILES)]) == 0
    assert capsys.readouterr().out.startswith("OK:")
    with zipfile.ZipFile(package) as archive:
        names = sorted(archive.namelist())
    if year == 2024:
        assert names == sorted([f"task1/{LABEL}/{LABEL}.meta.yaml"] + [f"task1/{LABEL}/{LABEL}.output.{s}.csv" for s in SPLITS_2024])
        assert "energy_consumption" not in meta["system"]
        assert {"split_adaptations", "system_adaptations"} <= set(meta["system"]["description"])
        block = meta["results"]["development_dataset"]["split_25"]
        assert block["overall"]["accuracy"] == round(100 * dev[25]["overall_accuracy"], 2)
    else:
        assert names == [f"task1/{LABEL}/{LABEL}.meta.yaml", f"task1/{LABEL}/{LABEL}.output.csv"]
    if year == 2025:
        block = meta["results"]["development_dataset"]["device_specific_models"]
        known = dev["device_specific_models"]["device_groups"]["known_devices"]
        assert block["known_devices"]["accuracy"] == round(100 * known["accuracy"], 2)
        assert block["unknown_devices"]["logloss"] is not None
        assert sorted(meta["system"]["complexity"]["device_models"]) == ["a", "b", "s1"]


def test_a_2024_package_missing_split_25_fails_naming_it(tmp_path, settings):
    package, meta, _ = built_package(tmp_path, settings, 2024)
    broken = copy.deepcopy(meta)
    del broken["results"]["development_dataset"]["split_25"]
    folder = tmp_path / "folder" / "task1" / LABEL
    folder.mkdir(parents=True)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path / "folder")
    (folder / f"{LABEL}.meta.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    problems = validate_submission(tmp_path / "folder", N_FILES, edition=2024)
    assert len(problems) == 1 and "results.development_dataset lacks ['split_25']" in problems[0], problems
    (folder / f"{LABEL}.meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (folder / f"{LABEL}.output.split_25.csv").unlink()
    problems = validate_submission(tmp_path / "folder", N_FILES, edition=2024)
    assert len(problems) == 1 and f"has no {LABEL}.output.split_25.csv" in problems[0], problems
    _, _, _, outputs = edition_inputs(tmp_path, 2024)
    del outputs[25]
    with pytest.raises(Task1aError, match=r"no system output for \['split_25'\]"):
        build_submission_package(LABEL, outputs, tmp_path / "p.zip", meta)


def test_a_2023_package_fails_the_2024_rules(tmp_path, settings, capsys):
    package, _, _ = built_package(tmp_path, settings, 2023)
    assert main([str(package), "--edition", "2024", "--expected-files", str(N_FILES)]) == 1
    out = capsys.readouterr().out
    assert "submission.edition 2023 differs from the edition checked (2024)" in out
    assert f"has no {LABEL}.output.split_5.csv" in out and "results.development_dataset lacks ['split_5'" in out
    assert "system.description lacks ['split_adaptations', 'system_adaptations']" in out
    assert f"{LABEL}.output.csv: not a DCASE2024 Task 1" in out


@pytest.mark.parametrize("year, path, value, figure", [
    (2023, ("macs",), MAX_MACS + 1, "system.complexity.macs 30,000,001 exceeds the challenge's limit of 30,000,000 MACs"),
    (2023, ("memory_use",), MAX_MEMORY_BYTES + 1, "system.complexity.memory_use 128,001 exceeds the challenge's limit of 128,000 B"),
    (2024, ("total_model_size",), 200_000, "system.complexity.total_model_size 200,000 exceeds the challenge's limit of 128,000 B"),
    (2025, ("device_models", "b", "macs"), 31_000_000, "system.complexity.device_models.b.macs 31,000,000 exceeds the challenge's limit of 30,000,000 MACs"),
    (2025, ("device_models", "s1", "total_model_size"), 130_000, "device_models.s1.total_model_size 130,000 exceeds the challenge's limit of 128,000 B"),
])
def test_an_over_limit_complexity_figure_gives_one_line_and_a_failure(tmp_path, settings, capsys, year, path, value, figure):
    complexity, energy, dev, outputs = edition_inputs(tmp_path, year)
    complexity = copy.deepcopy(complexity)
    node = complexity
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    meta = build_submission_meta(LABEL, filled_template(tmp_path, year), settings, complexity, energy, dev, edition=year)
    package = build_submission_package(LABEL, outputs, tmp_path / "p.zip", meta)
    problems = validate_submission(package, N_FILES)
    assert len(problems) == 1 and figure in problems[0], problems
    assert main([str(package), "--expected-files", str(N_FILES)]) == 1
    assert capsys.readouterr().out.splitlines() == problems
    # exactly at the limit passes
    node[path[-1]] = MAX_MACS if path[-1] == "macs" else MAX_MEMORY_BYTES
    meta = build_submission_meta(LABEL, filled_template(tmp_path, year), settings, complexity, energy, dev, edition=year)
    assert validate_submission(build_submission_package(LABEL, outputs, tmp_path / "q.zip", meta), N_FILES) == []


def test_the_builder_refuses_what_the_edition_does_not_have(tmp_path, settings):
    template_2024 = filled_template(tmp_path, 2024)
    with pytest.raises(Task1aError, match="has no energy_consumption block"):
        build_submission_meta(LABEL, template_2024, settings, COMPLEXITY, ENERGY, edition=2024)
    with pytest.raises(Task1aError, match="is for edition 2024, not 2023"):
        build_submission_meta(LABEL, template_2024, settings, COMPLEXITY, ENERGY, edition=2023)
    with pytest.raises(Task1aError, match="unknown key 'split_30'"):
        build_submission_meta(LABEL, template_2024, settings, COMPLEXITY, None, {"split_30": results(0)}, edition=2024)
    with pytest.raises(Task1aError, match=r"unknown device\(s\) \['d'\]"):
        build_submission_meta(LABEL, filled_template(tmp_path, 2025), settings, {"device_models": {"d": COMPLEXITY}}, edition=2025)
    with pytest.raises(Task1aError, match="unknown key"):  # device models belong to 2025 only
        build_submission_meta(LABEL, filled_template(tmp_path, 2023), settings, {"device_models": {}}, edition=2023)
    with pytest.raises(Task1aError, match="edition 2022 is unknown"):
        get_edition(2022)
    meta = build_submission_meta(LABEL, template_2024, settings, COMPLEXITY, edition=2024)
    with pytest.raises(Task1aError, match="one system output per split"):
        build_submission_package(LABEL, tmp_path / "out.csv", tmp_path / "p.zip", meta)


def test_the_unfilled_2024_and_2025_templates_list_their_placeholders(tmp_path, settings):
    for year in (2024, 2025):
        complexity, _, dev, outputs = edition_inputs(tmp_path, year)
        meta = build_submission_meta(LABEL, TEMPLATES[year], settings, complexity, None, dev, edition=year)
        problems = validate_submission(build_submission_package(LABEL, outputs, tmp_path / f"{year}.zip", meta), N_FILES)
        assert problems and all("template placeholder" in problem for problem in problems), problems
        assert any("split_adaptations" in problem for problem in problems) == (year == 2024)


def test_a_meta_recording_an_unknown_edition_is_reported_and_checked_as_2023(tmp_path, settings):
    package, meta, _ = built_package(tmp_path, settings, 2023)
    folder = tmp_path / "folder"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    for recorded in (["2024"], "2024"):
        meta["submission"]["edition"] = recorded
        (folder / "task1" / LABEL / f"{LABEL}.meta.yaml").write_text(yaml.safe_dump(meta))
        problems = validate_submission(folder, N_FILES)
        assert len(problems) == 1 and f"submission.edition {recorded!r} is not one of 2023, 2024, 2025" in problems[0], problems
