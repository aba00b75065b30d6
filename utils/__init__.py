"""The DCASE2022-2025 Task 1 (low-complexity acoustic scene classification) baselines application.

One module per concept: parameters, dataset, demo_dataset, features, model, learning, tflite,
testing, evaluation, submission, energy, reporting, download; ``files`` holds the atomic-write
helpers every stage uses and ``errors`` the one exception type users see.
"""

__version__ = "1.0.0"
