"""Installs the task1a application (DCASE2022/2023 Task 1 baseline) and every run-time dependency."""

import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path(__file__).with_name("utils").joinpath("__init__.py").read_text()).group(1)

setup(
    name="dcase-task1a-baseline",
    version=version,
    description="Reference implementation of the DCASE2022/2023 Task 1 low-complexity acoustic scene classification baseline",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["utils", "utils.*", "model_size_calculation", "model_size_calculation.*"]),
    py_modules=["task1a"],
    package_data={"utils": ["*.yaml", "*.json"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16,<2.22",  # Keras 3; 2.21 is what the project is tested with
        "ai-edge-litert>=1.2",  # the maintained TFLite interpreter (tf.lite.Interpreter is deprecated)
        "numpy>=1.24",
        "scipy>=1.10",
        "soundfile>=0.12",
        "librosa>=0.10",
        "resampy>=0.4",  # librosa's res_type='kaiser_best' dispatches to resampy (not installed by librosa >= 0.10)
        "pandas>=2.0",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "codecarbon>=2.3",
        "PyYAML>=6.0",
        "tqdm>=4.60",
        "flatbuffers>=23.5",
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["task1a=task1a:main"]},
)
