"""Shared fixtures: where the real data lives (../shared beside the repository)."""

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
