"""Template files of the DCASE2025 inference package (:mod:`utils.inference_package` copies them).

``api.py`` becomes the submission module ``<PACKAGE>/<LABEL>.py`` (the official API), ``runtime.py`` gets the
project's feature extraction appended and becomes ``<PACKAGE>/_runtime.py``, ``evaluate_submission.py`` is the
organisers' evaluation script in its official shape. None of them imports this repository; the project never
imports them.
"""
