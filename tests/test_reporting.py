"""Run logging, the run report a person reads, and the DCASE2023 ranking of setups."""

from __future__ import annotations

import logging
import re

import pytest

from utils.errors import Task1aError
from utils.reporting import format_ranking_table, rank_systems, setup_run_logging, write_run_report


# ------------------------------------------------------------------------------------------- logging
@pytest.fixture
def clean_task1a_logger():
    """Leave the 'task1a' logger as found: handlers added by a test are closed and removed."""
    run_logger = logging.getLogger("task1a")
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

    stage_logger = logging.getLogger("task1a.features")
    stage_logger.debug("cache key 1234 reused")
    stage_logger.info("extracted 40 clips")
    stage_logger.warning("3 files missing")

    console = capsys.readouterr().err
    assert "extracted 40 clips" in console.splitlines()  # concise: the message alone
    assert "warning: 3 files missing" in console.splitlines()
    assert "cache key 1234" not in console  # details only in the file

    text = log_path.read_text(encoding="utf-8")
    assert re.search(r"DEBUG +task1a\.features \[test_reporting:\d+\] cache key 1234 reused", text)
    assert re.search(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} INFO +task1a\.features .*extracted 40 clips$", text, re.M)
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
    logging.getLogger("task1a").info("progress line")
    assert "progress line" not in capsys.readouterr().err
    assert "progress line" in log_path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- report
def demo_run(tmp_path):
    """A run dict as the pipeline fills it for the demo set (synthetic data, no baseline energy)."""
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return {
        "dataset": {"name": "task1a-demo-synthetic", "synthetic": True, "path": "datasets/task1a-demo-synthetic"},
        "set_id": "demo",
        "description": "Built-in synthetic demo data (NOT the real dataset)",
        "mode": "dev",
        "created": "2023-05-01T12:00:00+00:00",
        "hashes": {"features": "a1b2c3", "learner": "d4e5f6", "recognizer": "0718ab"},
        "timings": {"feature_extraction": 12.5, "learning": 3725.0, "testing": 4.25},
        "evaluation": {
            "table": "Scene label      | Accuracy\nairport          |  41.2 %\n",
            "overall_accuracy": 0.4321, "overall_logloss": 1.5873, "n_trials": 3,
        },
        "complexity": {
            "total_macs": 29_234_920, "total_weight_bytes": 46_512, "peak_memory_bytes": 65_280,
            "macs_ok": True, "memory_ok": False, "limits": {"macs": 30_000_000, "memory_bytes": 128_000},
        },
        "energy": {
            "training": {"measured": True, "energy_kwh": 0.002, "cpu_energy_kwh": 0.0005, "gpu_energy_kwh": 0.0,
                         "ram_energy_kwh": 0.0015, "duration_seconds": 3725.0, "cpu_energy_source": "estimated",
                         "tracking_methods": {"cpu": "cpu_load", "gpu": "none found", "ram": "RAM power estimation model"},
                         "tracking_scope": "machine", "cpu_model": "AMD EPYC", "country_iso_code": "FIN",
                         "codecarbon_version": "3.3.2", "codecarbon_warnings": ["We saw that you have a AMD EPYC but we don't know it."]},
            "testing": {"measured": True, "energy_kwh": 0.0004, "cpu_energy_kwh": 0.0001, "gpu_energy_kwh": 0.0,
                        "ram_energy_kwh": 0.0003, "duration_seconds": 4.25, "cpu_energy_source": "estimated"},
            "baseline_inference": {"measured": False, "reason": "no official model given (--model)", "duration_seconds": 0.0},
        },
        "quantization": {"keras": {"accuracy": 0.4400, "logloss": 1.55},
                         "tflite_int8": {"accuracy": 0.4321, "logloss": 1.5873}},
        "plots": {"confusion matrix": "plots/confusion_matrix.png", "training curves": "plots/training_curves.png"},
        "outputs": {"output": "system/recognizer/0718ab/output.csv"},
    }


def section(text, title):
    """The body of the ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"section {title!r} missing"
    return match.group(1)


def test_report_of_a_demo_run(tmp_path):
    run = demo_run(tmp_path)
    text = write_run_report(tmp_path / "report.md", run)
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == text

    head = text.splitlines()[:4]
    assert "SYNTHETIC DATA" in head[0]
    assert any("NOT THE REAL DATASET" in line for line in head)

    for title in ("Results", "Keras model and TFLite conversion", "Complexity", "Energy", "Stage timings",
                  "Parameters and stage folders", "Figures", "Output files"):
        section(text, title)

    results = section(text, "Results")
    assert "43.21 %" in results and "1.587" in results and "Trials (independent trainings): 3" in results
    assert "airport          |  41.2 %" in results  # the evaluation table verbatim

    quantization = section(text, "Keras model and TFLite conversion")
    assert "| tflite_int8 | 43.21 % | 1.587 | -0.79 points |" in quantization  # 43.21 - 44.00

    complexity = section(text, "Complexity")
    assert "29,234,920 (29.23 MMAC)" in complexity and "within the limit" in complexity
    assert "46,512 B (45.4 KB)" in complexity and "OVER THE LIMIT" in complexity

    energy = section(text, "Energy")
    assert "| training | 0.002 kWh |" in energy
    assert "baseline_inference | not measured (no official model given (--model))" in energy
    assert "- inference: 0.0004 kWh" in energy
    assert "- baseline_inference: not measured (no official model given (--model))" in energy
    assert "not computed" in energy  # no ratio without the baseline
    assert "**estimate**" in energy and "cpu_load" in energy and "AMD EPYC but we don't know it" in energy

    timings = section(text, "Stage timings")
    assert "3725.0 s (1:02:05.0)" in timings
    assert "3741.8 s" in timings  # total 12.5 + 3725 + 4.25

    figures = section(text, "Figures")
    assert "![confusion matrix](plots/confusion_matrix.png)" in figures
    assert "not measured (file missing: `plots/training_curves.png`)" in figures
    assert "`a1b2c3`" in section(text, "Parameters and stage folders")
    assert "system/recognizer/0718ab/output.csv" in section(text, "Output files")


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


def test_report_energy_ratio(tmp_path):
    run = demo_run(tmp_path)
    run["energy"]["baseline_inference"] = {"measured": True, "energy_kwh": 0.001, "cpu_energy_source": "estimated"}
    energy = section(write_run_report(tmp_path / "report.md", run), "Energy")
    assert "baseline inference / inference energy: 2.500" in energy  # 0.001 / 0.0004


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
    assert "60.00 %" in table and "97.7 KB" in table and "29.00 M" in table  # 100000 B / 1024
    assert "accuracy 0.5, memory 0.25, macs 0.25" in table


def test_ranking_rejects_bad_setups():
    with pytest.raises(Task1aError, match="not a fraction"):
        rank_systems([{"name": "A", "accuracy": 60.0, "memory": 1, "macs": 1}])
    with pytest.raises(Task1aError, match="repeated: A"):
        rank_systems([SETUPS[0], dict(SETUPS[1], name="A")])
    with pytest.raises(Task1aError, match="no numeric 'macs'"):
        rank_systems([{"name": "A", "accuracy": 0.5, "memory": 1}])
    with pytest.raises(Task1aError, match="non-empty list"):
        rank_systems([])
