"""Shared fixtures: where the real data lives (../shared beside the repository); the tiny demo run's
parameters; one generated tiny demo dataset and one trained tiny demo run for the whole session.

The end-to-end tests (``task1a.py`` in a subprocess) share what they only read:

- :func:`demo_data`: the tiny demo dataset (the parameters of :func:`tiny_demo_parameters`), generated
  once; :func:`link_demo_data` gives a test its own hard-linked copy at ``<root>/datasets/demo`` (the
  folder :func:`tiny_demo_parameters` names), which the run finds complete and does not generate again;
- :func:`demo_workspace` / :func:`demo_run`: one dev-mode run of the ``demo`` set on that copy (2 epochs,
  energy off), the run every test of the trained application starts from.

A test that needs another variant (energy on, another set, deterministic, killed) keeps its own run but
links the shared demo data. See docs/testing.md for the markers (``slow``, ``e2e``) and the layout.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_DIR.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} (the team's shared data) is not beside the repository")
    return SHARED_DIR


@pytest.fixture(scope="session")
def real_audio_dir(shared_dir) -> Path:
    return shared_dir / "data" / "real" / "audio"


@pytest.fixture(scope="session")
def tau2022_meta_dir(shared_dir) -> Path:
    return shared_dir / "data" / "real" / "tau2022_meta"


@pytest.fixture(scope="session")
def reference_dir(shared_dir) -> Path:
    return shared_dir / "reference"


def tiny_demo_parameters(root: Path, **general) -> dict:
    """A ``-p`` dictionary for a tiny demo run in ``root``: few clips, 2 epochs, outputs under ``root``."""
    return {
        "defaults": {
            "path": {"system": str(root / "system"), "log": str(root / "log")},
            "general": general,
            "dataset_method_parameters": {"demo": {
                "path": str(root / "datasets" / "demo"), "locations_per_city": 1, "segments_per_location": 1,
                "test_locations_per_scene": 2, "subsegments_per_segment": 2, "evaluation_locations_per_scene": 2, "evaluation_files": 40}},
            "learner_method_parameters": {"cnn": {"conversion": {"representative_examples": 20}}},
        },
        # a set's own overrides win over defaults: shorten the demo set itself
        "sets": [{"set_id": "demo", "learner_method_parameters": {"cnn": {"fit": {"epochs": 2}, "model_selection": {"initial_delay": 0}}}}],
    }


def filled_meta_template(root: Path, edition: int) -> str:
    """A ``--set`` pointing ``submission.meta_template`` at the edition's shipped template with its person
    fields filled in (written into ``root``), as a participant would."""
    from utils import editions
    from utils.paths import packaged_file

    path = root / f"filled_{edition}.meta.yaml"
    path.write_text(packaged_file(Path(editions.get(edition).meta_template).name).read_text().replace("FILL IN", "Test"))
    return f"submission.meta_template={path}"


def task1a_run(*args, timeout=900) -> subprocess.CompletedProcess:
    """``python task1a.py --no_progress ARGS`` in the repository, output captured."""
    return subprocess.run([sys.executable, "task1a.py", "--no_progress", *map(str, args)], cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------ the shared demo data
@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The tiny demo dataset of :func:`tiny_demo_parameters`, generated once per session (read only:
    tests use :func:`link_demo_data`). The settings are resolved as a run resolves them, so its marker
    hash is the one every run with these parameters expects."""
    from utils.demo_dataset import generate_demo_dataset
    from utils.parameters import ParameterContainer
    from utils.settings import demo_settings

    root = tmp_path_factory.mktemp("demo_data")
    param_file = root / "tiny.yaml"
    param_file.write_text(yaml.safe_dump(tiny_demo_parameters(root)))
    settings = demo_settings(ParameterContainer(override_path=param_file).resolve("demo")["dataset"]["parameters"])
    generate_demo_dataset(root / "datasets" / "demo", settings, progress=False)
    return root / "datasets" / "demo"


def link_demo_data(demo_data: Path, root: Path) -> Path:
    """A copy of the shared demo dataset at ``root/datasets/demo`` (where :func:`tiny_demo_parameters`
    points) whose files are hard links: free, and a run finds it complete. Nothing writes into a
    dataset; a test that damages files must replace them (unlink first), not edit them in place."""
    target = root / "datasets" / "demo"
    if not target.exists():
        shutil.copytree(demo_data, target, copy_function=os.link)
    return target


# ------------------------------------------------------------------------------ the shared trained run
@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory, demo_data) -> tuple:
    """``(root, parameter file)`` of the shared tiny demo run (energy off); tests may add runs beside it."""
    root = tmp_path_factory.mktemp("pipeline")
    link_demo_data(demo_data, root)
    param_file = root / "tiny.yaml"
    param_file.write_text(yaml.safe_dump(tiny_demo_parameters(root, energy=False)))
    return root, param_file


@pytest.fixture(scope="session")
def demo_run(demo_workspace) -> subprocess.CompletedProcess:
    """The shared trained run: ``-s demo`` in dev mode with ``-o --output dev_output.csv`` (every stage:
    data, features, learning, conversion, model size, testing, evaluation, report)."""
    root, param_file = demo_workspace
    result = task1a_run("-s", "demo", "-p", param_file, "-o", "--output", root / "dev_output.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    return result
