"""Results unchanged: a fixed-seed, deterministic demo run gives the system output and results recorded
before the code was reorganised (tests/data/golden_demo_run, written by commit 2215233's task1a.py).

The figures were recorded on one machine; another CPU may round TensorFlow's float sums in another
order, so probabilities are compared within one step of the model's 8-bit output (1/256) and the
results within what such a step can move. A refactoring mistake (another order, normalisation, split
or seed) changes far more than that.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import link_demo_data

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "data" / "golden_demo_run"
STEP = 1 / 256


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp("golden")
    link_demo_data(demo_data, root)  # tiny.yaml's demo parameters are conftest.tiny_demo_parameters': the shared dataset, not generated again
    text = (GOLDEN / "tiny.yaml").read_text()
    for name, value in (("SYSTEM", root / "system"), ("LOG", root / "log"), ("DEMO", root / "datasets" / "demo")):
        text = text.replace(name, str(value))
    (root / "tiny.yaml").write_text(text)
    result = subprocess.run([sys.executable, "task1a.py", "--no_progress", "-s", "demo", "-p", str(root / "tiny.yaml"), "-o", "--output",
                             str(root / "output.csv")],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (results_path,) = (root / "system" / "evaluator").glob("*/seed_0/results.yaml")
    return root / "output.csv", yaml.safe_load(results_path.read_text())


@pytest.mark.e2e
def test_the_system_output_is_the_recorded_one(golden_run):
    output, _ = golden_run
    now, then = pd.read_csv(output, sep="\t"), pd.read_csv(GOLDEN / "output.csv", sep="\t")
    assert list(now.columns) == list(then.columns)
    assert now["filename"].tolist() == then["filename"].tolist()
    np.testing.assert_allclose(now.iloc[:, 2:].to_numpy(), then.iloc[:, 2:].to_numpy(), atol=STEP + 1e-6)
    assert (now["scene_label"] == then["scene_label"]).mean() >= 0.99


@pytest.mark.e2e
def test_the_results_are_the_recorded_ones(golden_run):
    _, results = golden_run
    recorded = yaml.safe_load((GOLDEN / "results.yaml").read_text())
    assert results["n_items"] == recorded["n_items"]
    assert results["overall_accuracy"] == pytest.approx(recorded["overall_accuracy"], abs=0.01)
    assert results["overall_logloss"] == pytest.approx(recorded["overall_logloss"], abs=0.01)
    for label, figures in recorded["class_wise"].items():
        assert results["class_wise"][label]["n"] == figures["n"]
        assert results["class_wise"][label]["accuracy"] == pytest.approx(figures["accuracy"], abs=0.03)
