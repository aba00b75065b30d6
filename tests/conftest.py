"""Shared fixtures: where the real data lives (../shared beside the repository); the tiny demo run's parameters."""

from pathlib import Path

import pytest

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
