"""Build hook only (the metadata is in pyproject.toml): ship the top-level run-time files in the wheel.

``task1a.yaml`` and ``meta/task1a_submission.meta.yaml`` stay where they are in the repository
(their single source); the wheel gets copies in ``utils/_data/``, read at run time with
importlib.resources (utils/paths.py). A clone or an editable install reads the top-level files.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {  # repository path -> utils/_data/ name
    "task1a.yaml": "task1a.yaml",
    "meta/task1a_submission.meta.yaml": "task1a_submission.meta.yaml",
    "meta/task1a_submission_2024.meta.yaml": "task1a_submission_2024.meta.yaml",
    "meta/task1a_submission_2025.meta.yaml": "task1a_submission_2025.meta.yaml",
}


class BuildPyWithRunTimeFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's own files
        target = Path(self.build_lib) / "utils" / "_data"
        target.mkdir(parents=True, exist_ok=True)
        for source, name in SHIPPED.items():
            shutil.copyfile(ROOT / source, target / name)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / "utils" / "_data" / name) for name in SHIPPED.values()]


setup(cmdclass={"build_py": BuildPyWithRunTimeFiles})
