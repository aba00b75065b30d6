"""Run logging, the run report a person reads, and the DCASE2023 ranking of setups."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import link_demo_data
from utils.errors import Task1aError
from utils.reporting import format_ranking_table, rank_systems, render_run_report, setup_run_logging, write_run_report
from utils.settings import ModelSizeSettings


# ------------------------------------------------------------------------------------------- logging
@pytest.fixture
def clean_task1a_logger():
    """Leave the project's root logger ('utils') as found: handlers added by a test are closed and removed."""
    run_logger = logging.getLogger("utils")
    before = list(run_logger.handlers)
    yield run_logger
    for handler in list(run_logger.handlers):
        if handler not in before:
            run_logger.removeHandler(handler)
            handler.close()


def test_run_logging_goes_to_a_new_file_and_the_console(tmp_path, capsys, clean_task1a_logger):
    log_path = setup_run_logging(tmp_path / "log")
    assert log_path.parent == tmp_path / "log"
    assert re.fullmatch(r"task1a_\d{8}-\d{6}(_\d+)?\.log", log_path.name)

    stage_logger = logging.getLogger("utils.features")
    stage_logger.debug("cache key 1234 reused")
    stage_logger.info("extracted 40 clips")
    stage_logger.warning("3 files missing")

    console = capsys.readouterr().err
    assert "extracted 40 clips" in console.splitlines()  # concise: the message alone
    assert "warning: 3 files missing" in console.splitlines()
    assert "cache key 1234" not in console  # details only in the file

    text = log_path.read_text(encoding="utf-8")
    assert re.search(r"DEBUG +utils\.features \[test_reporting:\d+\] cache key 1234 reused", text)
    assert re.search(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} INFO +utils\.features .*extracted 40 clips$", text, re.M)
    assert "WARNING" in text and "3 files missing" in text

    # a second run in the same process (same second, too) gets its own file; the first one stops growing
    second_path = setup_run_logging(tmp_path / "log")
    assert second_path != log_path and second_path.exists()
    stage_logger.info("second run message")
    assert "second run message" in second_path.read_text(encoding="utf-8")
    assert "second run message" not in log_path.read_text(encoding="utf-8")
    assert capsys.readouterr().err.count("second run message") == 1  # one console handler, not two


def test_run_logging_console_level(tmp_path, capsys, clean_task1a_logger):
    log_path = setup_run_logging(tmp_path, level=logging.WARNING)
    logging.getLogger("utils.stages").info("progress line")
    assert "progress line" not in capsys.readouterr().err
    assert "progress line" in log_path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- report
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_record(tmp_path_factory, reference_dir, demo_data):
    """The record (run.yaml) of a real tiny demo run in dev mode, energy measured, baseline model from ../shared."""
    root = tmp_path_factory.mktemp("report_run")
    link_demo_data(demo_data, root)  # the shared tiny demo dataset (conftest.tiny_demo_parameters' demo block)
    overrides = {
        "defaults": {
            "path": {"system": str(root / "system"), "log": str(root / "log")},
            "general": {"energy": True},
            "recognizer": {"baseline_model": str(reference_dir / "model_task1.tflite")},
            "dataset_method_parameters": {"demo": {
                "path": str(root / "datasets" / "demo"), "locations_per_city": 1, "segments_per_location": 1,
                "test_locations_per_scene": 2, "subsegments_per_segment": 2, "evaluation_locations_per_scene": 2, "evaluation_files": 40}},
            "learner_method_parameters": {"cnn": {"conversion": {"representative_examples": 20}}},
        },
        "sets": [{"set_id": "demo", "learner_method_parameters": {"cnn": {"fit": {"epochs": 2}, "model_selection": {"initial_delay": 0}}}}],
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(overrides))
    result = subprocess.run([sys.executable, "task1a.py", "--no_progress", "-s", "demo", "-p", str(root / "tiny.yaml")],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    records = list((root / "system" / "evaluator").glob("*/seed_0/run.yaml"))
    assert len(records) == 1
    return records[0].parent, yaml.safe_load(records[0].read_text())


def section(text, title):
    """The body of the ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"section {title!r} missing"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.e2e
def test_report_of_a_demo_run(demo_record, tmp_path):
    run_dir, run = demo_record
    text = render_run_report(run, run_dir)
    assert text == (run_dir / "report.md").read_text(encoding="utf-8")  # the run's own report, from the same record
    assert write_run_report(tmp_path / "report.md", run) == (tmp_path / "report.md").read_text(encoding="utf-8")

    head = text.splitlines()[:4]
    assert "SYNTHETIC DATA" in head[0]
    assert any("NOT THE REAL DATASET" in line for line in head)
    for title in ("Results", "Keras model and TFLite conversion", "Complexity", "Energy", "Stage timings",
                  "Parameters and stage folders", "Figures", "Output files"):
        section(text, title)

    results = yaml.safe_load((run_dir / "results.yaml").read_text())
    body = section(text, "Results")
    assert f"{100 * results['overall_accuracy']:.2f} %" in body and f"{results['overall_logloss']:.3f}" in body
    assert run["evaluation"]["table"].splitlines()[0] in body  # the evaluation table verbatim

    complexity = section(text, "Complexity")
    assert f"{run['complexity']['total_macs']:,} (" in complexity and "within the limit" in complexity

    energy = section(text, "Energy")
    for phase in ("features", "learner", "recognizer", "baseline_inference"):
        assert run["energy"][phase]["measured"] is True, run["energy"][phase].get("reason")
        assert f"| {phase} | {run['energy'][phase]['energy_kwh']:.4g} kWh |" in energy
    ratio = run["energy"]["recognizer"]["energy_kwh"] / run["energy"]["baseline_inference"]["energy_kwh"]
    assert f"- inference / baseline_inference: {ratio:.3f}" in energy
    assert "this run |" in energy

    timings = section(text, "Stage timings")
    assert "baseline_inference" in timings and "learner" in timings  # one name per stage (utils.stages)
    figures = section(text, "Figures")
    assert f"![confusion matrix]({run['plots']['confusion matrix']})" in figures  # links checked in the report's folder
    assert run["hashes"]["learner"] in section(text, "Parameters and stage folders")
    assert run["outputs"]["system_output"] in section(text, "Output files")


@pytest.mark.slow
@pytest.mark.e2e
def test_report_of_a_run_without_the_baseline_model(demo_record, tmp_path):
    _, run = demo_record
    run["energy"]["baseline_inference"] = {"measured": False, "duration_seconds": 0.0,
                                           "reason": "the official baseline model is not at models/model_task1.tflite (recognizer.baseline_model); "
                                                     "fetch it: python task1a.py --download_baseline_model models/model_task1.tflite"}
    energy = section(write_run_report(tmp_path / "report.md", run), "Energy")
    assert "- baseline_inference: not measured (the official baseline model is not at models/model_task1.tflite" in energy
    assert "--download_baseline_model" in energy
    assert "inference / baseline_inference: not computed" in energy


def test_report_sections_without_data_say_not_measured(tmp_path):
    run = {"dataset": {"name": "TAU Urban Acoustic Scenes 2022 Mobile", "synthetic": False, "path": "/data/tau"},
           "set_id": "dcase2023_baseline_eval", "mode": "eval",
           "evaluation": "challenge mode: the evaluation set has no labels",
           "energy": None,
           "quantization": {}}
    text = write_run_report(tmp_path / "out" / "report.md", run)
    assert "SYNTHETIC" not in text and "(real data)" in text
    assert "Energy: not measured (no data recorded for this run)." in text
    assert "Evaluation: not measured (challenge mode: the evaluation set has no labels)." in text
    assert "Model complexity: not measured" in text
    assert "Figures: not measured" in text and "Stage timings: not measured" in text
    assert "Accuracy after conversion: not measured (no model variant was evaluated)." in text


def test_report_rejects_a_malformed_run(tmp_path):
    with pytest.raises(Task1aError, match="lacks 'mode'"):
        write_run_report(tmp_path / "report.md", {"dataset": {"synthetic": True}, "set_id": "demo"})
    with pytest.raises(Task1aError, match="synthetic"):
        write_run_report(tmp_path / "report.md", {"dataset": {"name": "x"}, "set_id": "demo", "mode": "dev"})
    assert not (tmp_path / "report.md").exists()


# ------------------------------------------------------------------------------------------- ranking
SETUPS = [
    {"name": "A", "accuracy": 0.60, "memory": 100_000, "macs": 20_000_000},
    {"name": "B", "accuracy": 0.55, "memory": 50_000, "macs": 10_000_000},
    {"name": "C", "accuracy": 0.60, "memory": 120_000, "macs": 29_000_000, "logloss": 1.2},
    {"name": "D", "accuracy": 0.50, "memory": 50_000, "macs": 5_000_000},
]


def test_ranking_by_hand():
    # accuracy (higher better, ties share the best rank): A 1, C 1, B 3, D 4
    # memory (lower better): B 1, D 1, A 3, C 4;  MACs: D 1, B 2, A 3, C 4
    # weighted 0.5/0.25/0.25: A 0.5+0.75+0.75 = 2.0, B 1.5+0.25+0.5 = 2.25, C 0.5+1+1 = 2.5, D 2+0.25+0.25 = 2.5
    expected = {
        "A": (1, 3, 3, 2.0, 1), "B": (3, 1, 2, 2.25, 2), "C": (1, 4, 4, 2.5, 3), "D": (4, 1, 1, 2.5, 3),
    }
    ranked = rank_systems(SETUPS)
    assert [entry["name"] for entry in ranked] == ["A", "B", "C", "D"]  # C and D share rank 3; C is more accurate
    for entry in ranked:
        got = (entry["accuracy_rank"], entry["memory_rank"], entry["macs_rank"], entry["weighted_rank"], entry["final_rank"])
        assert got == expected[entry["name"]], entry["name"]
    assert ranked[2]["logloss"] == 1.2  # other keys kept

    table = format_ranking_table(ranked)
    lines = table.splitlines()
    assert [line.split()[1] for line in lines[1:5]] == ["A", "B", "C", "D"]
    assert "60.00 %" in table and "100.000 K" in table and "29.000 M" in table  # NeSsi's units: 1e3 B, 1e6 MACs
    assert "NOT RANKED" not in table
    assert "accuracy 0.5, memory 0.25, macs 0.25" in table


def test_run_logging_has_one_tree_for_every_module(tmp_path, capsys, clean_task1a_logger):
    """Every utils module's logger (and the energy module's, once 'task1a.energy') reaches the run's file and console once."""
    import utils.energy
    import utils.stages.learning
    import utils.testing

    log_path = setup_run_logging(tmp_path)
    for module in (utils.energy, utils.stages.learning, utils.testing):  # a stage module of the package too
        logger = next(value for value in vars(module).values() if isinstance(value, logging.Logger))
        assert logger.name == module.__name__
        logger.info("hello from %s", module.__name__)
    text, console = log_path.read_text(encoding="utf-8"), capsys.readouterr().err
    for name in ("utils.energy", "utils.stages.learning", "utils.testing"):
        assert re.search(rf"INFO +{re.escape(name)} .*hello from {re.escape(name)}$", text, re.M)
        assert console.count(f"hello from {name}") == 1
    assert not logging.getLogger("utils").propagate  # not printed a second time by the root logger


def test_ranking_never_ranks_a_setup_over_the_limits():
    over_macs = {"name": "BIG", "accuracy": 0.99, "memory": 46_512, "macs": 41_943_040}
    over_memory = {"name": "FAT", "accuracy": 0.70, "memory": 128_001, "macs": 1_000}
    ranked = rank_systems(SETUPS + [over_macs, over_memory])
    assert [e["name"] for e in ranked] == ["A", "B", "C", "D", "BIG", "FAT"]  # the best accuracy is not ranked first
    assert [e["final_rank"] for e in ranked] == [1, 2, 3, 3, None, None]  # the ranks of the others are unchanged
    assert ranked[4]["over_limit"] == ["MACs 41,943,040 > 30,000,000 (model_size.max_macs)"]
    assert ranked[5]["over_limit"] == ["parameter memory 128,001 B > 128,000 B (model_size.max_memory_bytes)"]
    assert all(e["over_limit"] == [] for e in ranked[:4])
    table = format_ranking_table(ranked)
    lines = table.splitlines()
    assert lines[5].split()[:3] == ["-", "BIG", "NOT"] and lines[6].split()[:3] == ["-", "FAT", "NOT"]
    assert "41.943 M" in lines[5] and "128.001 K" in lines[6]
    assert "NOT RANKED, over the complexity limits: BIG: MACs 41,943,040 > 30,000,000 (model_size.max_macs)" in table
    # tighter limits of one's own (model_size in task1a.yaml) unrank more setups; all over: nothing ranked
    assert [e["name"] for e in rank_systems(SETUPS, ModelSizeSettings(max_macs=10_000_000, max_memory_bytes=128_000))
            if e["final_rank"] is not None] == ["B", "D"]
    assert all(e["final_rank"] is None for e in rank_systems([over_macs, over_memory]))


def test_ranking_rejects_bad_setups():
    with pytest.raises(Task1aError, match="not a fraction"):
        rank_systems([{"name": "A", "accuracy": 60.0, "memory": 1, "macs": 1}])
    with pytest.raises(Task1aError, match="repeated: A"):
        rank_systems([SETUPS[0], dict(SETUPS[1], name="A")])
    with pytest.raises(Task1aError, match="no numeric 'macs'"):
        rank_systems([{"name": "A", "accuracy": 0.5, "memory": 1}])
    with pytest.raises(Task1aError, match="non-empty list"):
        rank_systems([])


def test_show_results_separates_real_synthetic_dev_eval_and_ranks_real_dev_only(tmp_path, capsys):
    from utils.reporting import show_results

    def evaluated(folder, set_id, mode, synthetic, accuracy, memory):
        path = tmp_path / "evaluator" / folder / "seed_0" / "results.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump({"set_id": set_id, "mode": mode, "synthetic": synthetic, "n_trials": 1,
                                        "dataset": "SYNTHETIC demo" if synthetic else "TAU (real data)",
                                        "overall_accuracy": accuracy, "overall_logloss": 1.5,
                                        "complexity": {"total_weight_bytes": memory, "total_macs": 29_000_000}}))

    evaluated("a" * 32, "real_a", "dev", False, 0.43, 46_512)
    evaluated("b" * 32, "real_b", "dev", False, 0.40, 40_000)
    evaluated("f" * 32, "real_big", "dev", False, 0.60, 200_000)  # best accuracy, over the memory limit
    evaluated("c" * 32, "real_eval", "eval", False, 0.45, 46_512)
    evaluated("d" * 32, "demo", "dev", True, 0.90, 1_000)
    evaluated("e" * 32, "demo_eval", "eval", True, 0.95, 1_000)
    text = show_results(tmp_path)
    assert text == capsys.readouterr().out.rstrip("\n")
    blocks = {block.splitlines()[0]: block for block in text.split("\n\n")}
    real_dev = blocks["Real data, development mode (fold1_evaluate):"]
    assert "real_a" in real_dev and "real_b" in real_dev and "demo" not in real_dev and "real_eval" not in real_dev
    assert "real_eval" in blocks["Real data, challenge mode (evaluation set):"]
    assert "demo " in blocks["SYNTHETIC demo data, development mode (says nothing about the real task):"]
    assert "demo_eval" in blocks["SYNTHETIC demo data, challenge mode (says nothing about the real task):"]
    ranking = next(block for title, block in blocks.items() if title.startswith("DCASE2023 ranking"))
    assert "real_a" in ranking and "real_b" in ranking
    assert "demo" not in ranking and "real_eval" not in ranking  # 90 % synthetic accuracy ranks nothing
    ranking_lines = ranking.splitlines()
    assert ranking_lines[2].split()[:2] == ["1", "real_a/aaaaaaaa/seed_0"]
    assert ranking_lines[4].split()[:2] == ["-", "real_big/ffffffff/seed_0"] and "NOT RANKED" in ranking_lines[4]
    assert "parameter memory 200,000 B > 128,000 B (model_size.max_memory_bytes)" in ranking
    row = next(line for line in real_dev.splitlines() if line.startswith("real_big"))
    assert "200.000 K" in row and "29.000 M" in row and " OVER " in row
    assert " ok " in next(line for line in real_dev.splitlines() if line.startswith("real_a"))
    assert "46.512 K" in real_dev  # NeSsi's unit, not 45.4 KiB
