"""What a researcher sees first: a quiet console (TensorFlow's output in the log file, everything with
--debug), TensorBoard checked before work and its scalars readable by TensorBoard's own reader."""

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_demo_parameters

REPO = Path(__file__).resolve().parents[1]

# A console line written by TensorFlow, XLA, absl, oneDNN, the CUDA probe, LiteRT or the TFLite converter.
LIBRARY_LINE = re.compile(
    r"^(WARNING: All log messages before absl|[IWEF]\d{4} \d\d:\d\d:\d\d|[IWEF]0000 |INFO: Created TensorFlow Lite"
    r"|fully_quantize:|W tensorflow)|oneDNN|cuInit|cuda_|cudart|TF_ENABLE_ONEDNN_OPTS|absl::|tensorflow/|"
    r"Could not find cuda|computation placer|TensorFlow binary is optimized")


def library_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if LIBRARY_LINE.search(line)]


def task1a(*args, cwd=REPO, timeout=900):
    return subprocess.run([sys.executable, str(REPO / "task1a.py"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny demo training (2 epochs) with fit.tensorboard on, as a user runs it."""
    root = tmp_path_factory.mktemp("quiet")
    parameters = tiny_demo_parameters(root, energy=False)
    parameters["defaults"]["learner_method_parameters"]["cnn"]["fit"] = {"tensorboard": True}
    (root / "tiny.yaml").write_text(yaml.safe_dump(parameters))
    result = task1a("-s", "demo", "-p", root / "tiny.yaml", "-o", "--no_progress", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


@pytest.mark.slow
def test_a_demo_training_prints_no_library_line(tiny_run):
    root, result = tiny_run
    console = result.stdout + result.stderr
    assert library_lines(console) == []
    first = result.stderr.splitlines()[0]
    assert first.startswith("task1a ") and "set demo, dev mode (train, test and evaluate)" in first and "log file" in first
    (log,) = (root / "log").glob("task1a_*.log")
    text = log.read_text()
    assert "epoch 2/2" in text  # the application's own lines are in the log as before
    assert "epoch 2/2" in result.stderr


@pytest.mark.slow
def test_tensorboard_scalars_are_readable_by_tensorboard(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    root, _ = tiny_run
    (model_dir,) = (root / "system" / "learner").glob("*/seed_0")
    with open(model_dir / "training_log.csv", newline="") as handle:
        logged = list(csv.DictReader(handle))
    assert len(logged) == 2
    for run, prefix in (("train", ""), ("validation", "val_")):
        accumulator = EventAccumulator(str(model_dir / "tensorboard" / run), size_guidance={"tensors": 0, "scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        if "epoch_loss" in tags["tensors"]:
            events = accumulator.Tensors("epoch_loss")
            values = [float(make_ndarray(event.tensor_proto)) for event in events]
        else:
            events = accumulator.Scalars("epoch_loss")
            values = [event.value for event in events]
        assert [event.step for event in events] == [0, 1]
        assert all(math.isfinite(value) for value in values)
        assert values == pytest.approx([float(row[f"{prefix}loss"]) for row in logged], rel=1e-5)


def test_tensorboard_missing_stops_before_any_work(tmp_path):
    parameters = tiny_demo_parameters(tmp_path)
    parameters["defaults"]["learner_method_parameters"]["cnn"]["fit"] = {"tensorboard": True}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(parameters))
    hide = "import sys, runpy; sys.modules['tensorboard'] = None; sys.argv = ['task1a.py', *sys.argv[1:]]; runpy.run_path('task1a.py', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", hide, "-s", "demo", "-p", str(tmp_path / "tiny.yaml"), "--no_progress"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "fit.tensorboard" in errors[0] and "pip install tensorboard" in errors[0]
    assert not (tmp_path / "datasets").exists() and not (tmp_path / "system").exists()  # nothing generated or extracted


@pytest.mark.slow
def test_debug_shows_what_the_quiet_console_keeps_in_the_log(tmp_path):
    quiet = task1a("--check_complexity", "-s", "demo", "--workdir", tmp_path)
    loud = task1a("--check_complexity", "-s", "demo", "--workdir", tmp_path, "--debug")
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr[-2000:] + loud.stderr[-2000:]
    assert library_lines(quiet.stdout + quiet.stderr) == []
    assert "Total MACs:" in quiet.stdout
    assert library_lines(loud.stdout + loud.stderr) != []  # TensorFlow / converter output, shown as it comes


@pytest.mark.slow
def test_the_run_is_exported_and_its_report_shows_the_official_figures(tiny_run):
    import json

    root, _ = tiny_run
    (results_path,) = (root / "system" / "evaluator").glob("*/seed_0/results.yaml")
    results = yaml.safe_load(results_path.read_text())
    exported = task1a("--show_results", "--format", "json", "-p", root / "tiny.yaml", cwd=root)
    assert exported.returncode == 0, exported.stderr[-2000:]
    (row,) = json.loads(exported.stdout)
    assert row["set"] == "demo" and row["edition"] == 2023 and row["data"] == "synthetic" and row["seeds"] == "0"
    assert row["accuracy"] == results["overall_accuracy"] and row["log_loss"] == results["overall_logloss"]
    assert row["macs"] == results["complexity"]["total_macs"] and row["parameter_memory_bytes"] == results["complexity"]["total_weight_bytes"]
    assert row["hash"] == f"{results_path.parent.parent.name}/seed_0"
    report = (results_path.parent / "report.md").read_text()
    assert report.startswith("# DCASE2023 Task 1 run report: demo [SYNTHETIC DATA]")
    reference = report[report.index("## Official figures (reference)"):].split("\n## ")[0]
    assert "| reference: DCASE2023 baseline (also DCASE2022) | 42.90 % | 1.575 |" in reference
    assert f"{results['overall_accuracy'] * 100:.2f} %" in reference and "not comparable" in reference


def test_library_output_goes_to_the_log_file_and_the_application_to_the_console(tmp_path):
    """The mechanism alone (no TensorFlow): descriptor 2, another library's logger and warnings go to the
    log file, from before it is known too; sys.stderr and the project's own logger reach the console."""
    script = f"""
import logging, os, sys, warnings
from utils import console
from utils.reporting import setup_run_logging
console.divert_library_output()
os.write(2, b"I0000 native line before the log\\n")
logging.getLogger("tensorflow").warning("a library record")
warnings.warn("a library warning")
print("application line", file=sys.stderr)
setup_run_logging({str(tmp_path / 'log')!r})
os.write(2, b"E0000 native line after\\n")
logging.getLogger("utils.x").info("project line")
console.restore()
os.write(2, b"restored\\n")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["application line", "project line", "restored"]
    (log,) = (tmp_path / "log").glob("task1a_*.log")
    text = log.read_text()
    for line in ("I0000 native line before the log", "tensorflow (library): a library record", "a library warning", "E0000 native line after", "project line"):
        assert line in text
    assert "application line" not in text and "restored" not in text
