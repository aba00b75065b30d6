"""The wheel: what it carries (the run-time files, the licence, the commands), its metadata, and that an
installed copy reads its packaged defaults through importlib.resources, not from a clone."""

from __future__ import annotations

import ast
import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import utils

REPO_DIR = Path(__file__).resolve().parents[1]
# What the wheel is built from (everything else in the repository stays out of it).
SOURCES = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "task1a.py", "task1a.yaml", "meta", "utils", "model_size_calculation"]
# Top-level import name -> distribution, for the third-party modules the code imports.
DISTRIBUTIONS = {
    "ai_edge_litert": "ai-edge-litert", "codecarbon": "codecarbon", "keras": "keras", "librosa": "librosa",
    "matplotlib": "matplotlib", "numpy": "numpy", "pandas": "pandas", "resampy": "resampy", "scipy": "scipy", "sklearn": "scikit-learn",
    "soundfile": "soundfile", "tensorflow": "tensorflow", "threadpoolctl": "threadpoolctl", "tqdm": "tqdm", "yaml": "PyYAML",
    "flatbuffers": "flatbuffers",  # utils/tflite_graph.py writes the rewritten model
    "mlflow": "mlflow-skinny", "wandb": "wandb",  # the tracking extra (utils/tracking.py imports them when used)
}


def _setuptools_version() -> tuple:
    try:
        import setuptools
    except ImportError:
        return (0,)
    return tuple(int(part) for part in re.findall(r"\d+", setuptools.__version__)[:2])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (no network: the test extra brings setuptools)."""
    if _setuptools_version() < (77,):
        pytest.skip("building the wheel needs setuptools >= 77 (pip install -e '.[test]' installs it)")
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO_DIR / name).is_dir():
            shutil.copytree(REPO_DIR / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_data"))
        else:
            shutil.copy2(REPO_DIR / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("dcase_task1a_baseline-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def test_the_wheel_carries_every_file_read_at_run_time(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"task1a.py", "utils/__init__.py", "utils/paths.py", "utils/workspace.py", "utils/stages/__init__.py", "utils/stages/base.py",
                "model_size_calculation/nessi.py", "utils/tau2022_manifest.yaml",
                "utils/_data/task1a.yaml", "utils/_data/task1a_submission.meta.yaml"} <= names
        # the packaged copies are the repository's files, byte for byte (the top-level ones are the source)
        assert archive.read("utils/_data/task1a.yaml") == (REPO_DIR / "task1a.yaml").read_bytes()
        assert archive.read("utils/_data/task1a_submission.meta.yaml") == (REPO_DIR / "meta" / "task1a_submission.meta.yaml").read_bytes()
        assert archive.read("utils/tau2022_manifest.yaml") == (REPO_DIR / "utils" / "tau2022_manifest.yaml").read_bytes()
        license_name = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(license_name) == (REPO_DIR / "LICENSE").read_bytes()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert not any(n.startswith(("tests/", "bench/", "meta/")) or n in ("setup.py", "task1a.yaml") for n in names)
    assert "task1a = task1a:main" in entry_points
    assert "task1a-nessi = model_size_calculation.nessi:main" in entry_points


def test_metadata_has_one_version_the_licence_and_every_imported_dependency(metadata):
    assert metadata["Version"] == utils.__version__
    assert metadata["License-Expression"] == "MIT"
    requirements = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r}
    requirements |= {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in metadata.get_all("Requires-Dist") if 'extra == "tracking"' in r}
    imported = set()
    for path in [REPO_DIR / "task1a.py", *(REPO_DIR / "utils").rglob("*.py"), *(REPO_DIR / "model_size_calculation").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"utils", "model_size_calculation", "task1a"}
    assert third_party <= set(DISTRIBUTIONS), f"map these imports to their distributions: {third_party - set(DISTRIBUTIONS)}"
    declared = {DISTRIBUTIONS[name].lower() for name in third_party}
    assert declared <= set(requirements), f"imported but not declared: {declared - set(requirements)}"
    nessi_imports = {alias.name.split(".")[0] for path in (REPO_DIR / "model_size_calculation").glob("*.py")
                     for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Import) for alias in node.names}
    assert "flatbuffers" not in nessi_imports  # model_size_calculation reads flatbuffers with its own reader
    # the floors the code needs (see the comments in pyproject.toml)
    for floor in ("numpy>=2.0", "codecarbon>=3.3", "scikit-learn>=1.5", "keras>=3.15", "threadpoolctl>=3.1"):
        name, version = floor.split(">=")
        assert f">={version}" in requirements[name.lower()], requirements[name.lower()]


def test_an_unpacked_wheel_reads_its_packaged_defaults_with_importlib_resources(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    code = (
        "import importlib.resources, utils, utils.paths as p, utils.parameters as q, utils.download as d\n"
        "assert utils.__file__.startswith(SITE), utils.__file__\n"
        "assert str(p.packaged_file('task1a.yaml')) == str(importlib.resources.files('utils') / '_data' / 'task1a.yaml')\n"
        "assert str(q.DEFAULT_PARAMETER_FILE).startswith(SITE)\n"
        "container = q.ParameterContainer()\n"
        "assert 'demo' in container.set_ids() and container.active_set in container.set_ids()\n"
        "assert str(p.meta_template(container.resolve('demo'), 'meta/task1a_submission.meta.yaml')).startswith(SITE)\n"
        "assert 'development' in d.load_manifest()\n"
        "assert p.run_root(container.defaults) == p.Path.cwd()\n"
        "assert p.system_dir(container.defaults) == p.Path.cwd() / 'system'\n"
        "print('ok')\n"
    ).replace("SITE", repr(str(site)))
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
    assert list(empty.iterdir()) == []  # reading the defaults writes nothing anywhere


def test_the_repository_ships_a_licence_and_no_built_copies():
    assert "MIT License" in (REPO_DIR / "LICENSE").read_text(encoding="utf-8")
    assert not (REPO_DIR / "utils" / "_data").exists()  # build output only: the top-level files are the single source
