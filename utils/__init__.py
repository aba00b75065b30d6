"""The DCASE2022-2025 Task 1 (low-complexity acoustic scene classification) baselines application.

The map (docs/architecture.md has the picture, docs/outputs.md the output layout):

- ``pipeline``         the list of stages a parameter set runs (:data:`pipeline.SET_STEPS`), the run record, packages
- ``stages/``          one Stage object per stage and the one StageRunner: folder, reuse/resume, energy, timing
- ``device_models``    DCASE2025 device-specific models, plugged in as a stage and a testing strategy
- ``workspace``        the output layout ``<system>/<stage>/<hash>/seed_N`` and its records (dataclasses)
- ``parameters``       task1a.yaml, its sets and layers, the value registry (RULES), the stage hashes
- ``settings``         the typed settings (frozen dataclasses) a checked set becomes once, handed to the library
- ``editions/``        one Edition object per DCASE edition: protocol, package, rules, reference figures
- ``paths``            shipped files and the run's root (``--workdir``) that run paths resolve against
- ``dataset``          the TAU 2022 Mobile layout: metadata, folds, training subsets, the validation split
- ``demo_dataset``     the synthetic demo dataset in the TAU layout (never TAU audio)
- ``download``         fetching the TAU datasets and the official model: resumable, verified, atomic
- ``audio``            reading, down-mixing, resampling and segmenting audio as dcase_util does
- ``features``         the log-mel front end and the normalisations
- ``frontend_32k``     the DCASE2024/2025 baseline's 32 kHz log-mel front end (``logmel32k``), equal to torchaudio's
- ``feature_store``    rows for keys, journaled and resumable, filled by any extractor in worker processes
- ``model``            any Keras network from the YAML's layer list; the seeds
- ``cpmobile``         the DCASE2024/2025 baseline network (simplified CP-Mobile) as a Keras model builder
- ``augmentation``     mixup, SpecAugment masks, time roll, Freq-MixStyle on training batches
- ``distillation``     a teacher's probabilities as soft targets, the distillation loss
- ``schedules``        learning-rate schedules usable from the YAML (warm-up + cosine decay)
- ``learning``         training with one Keras fit, best-epoch selection, checkpoints and resume
- ``callbacks``        the Keras callbacks training is made of (selection, checkpoint, log, progress)
- ``distribute``       tf.distribute strategies and the workers of a cluster
- ``tflite``           TFLite export (float, int8) and the interpreter that runs it
- ``complexity``       NeSsi figures of a network and the challenge's limits
- ``tflite_graph``     the converted flatbuffer in the official graph form (reshape folded into the dense layer)
- ``inference_package``  the DCASE2025 installable inference package (load_model, predict, ...)
- ``inference_template/``  the source files the inference package is made from (copied, never imported here)
- ``testing``          running a TFLite model over a test list or any recordings
- ``system_output``    the challenge's system-output CSV: writer, reader, checker
- ``evaluation``       the metrics (accuracy, log loss, per class and device), trials, plots
- ``energy``           codecarbon energy per phase and the DCASE2023 energy figures
- ``reporting``        the run's log file, report.md, ``--show_results`` and the ranking
- ``submission``       the submission meta, package and validator, per edition
- ``files``            atomic writes, digests, locks (the ground floor, with ``errors``)
- ``errors``           the one error type a user sees, and the command-line wrapper
- ``cli``              the command-line tools' argument parsing (both flag spellings, hints as typed)
- ``console``          a quiet console: library (TensorFlow, absl, converter) output into the log file
- ``tracking``         MLflow and Weights & Biases loggers as Keras callbacks (``fit.callbacks``)
- ``parameter_reference``  docs/parameters.md generated from task1a.yaml
"""

__version__ = "1.0.0"
