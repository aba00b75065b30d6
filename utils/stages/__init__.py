"""The stages of a run, one object each, all run by one runner (:class:`StageRunner`).

Each stage has one name, used for its folder ``<system>/<name>/<hash>``, its timer and its log lines;
its hash inputs (:data:`utils.parameters.STAGE_HASH_INPUTS`), its mark of completion
(:meth:`Stage.finished`) and its work (:meth:`Stage.compute`). The runner creates the folder with its
``parameters.yaml``, reuses a finished unit or resumes an unfinished one, and measures and times it.

=====================  ==========================  =====================  ===========================
stage (name)           module                      energy measured        mark of completion
=====================  ==========================  =====================  ===========================
``dataset``            :mod:`.data`                --                     (the demo generator's own)
``features``           :mod:`.features`            yes                    a complete feature store
``learner``            :mod:`.learning`            yes                    ``learning.yaml``
``device_models``      :mod:`utils.device_models`  as ``learner``         each device's ``learning.yaml``
``model_size``         :mod:`.model_size`          --                     ``<model>.nessi.json``
``recognizer``         :mod:`.testing`             yes                    ``output.csv``
``baseline_inference`` :mod:`.baseline_inference`  yes                    ``output.csv``
``evaluator``          :mod:`.evaluation`          --                     (always scored anew)
=====================  ==========================  =====================  ===========================

A measured stage's energy phase is its name; the DCASE meta's ``energy_consumption`` words
(``training``, ``inference``, ``baseline_inference``) are mapped onto them in one place,
:data:`utils.energy.SUMMARY_PHASES`. Which stages a set runs, in which order, is
:data:`utils.pipeline.SET_STEPS`.
"""

from utils.stages.base import Stage, StageRunner, StageTimer, measured_stage
from utils.stages.baseline_inference import (
    BASELINE_INFERENCE,
    OFFICIAL_MODEL_NORMALIZATION,
    baseline_model_path,
    baseline_model_problem,
    run_baseline_inference,
)
from utils.stages.data import (
    DATA,
    SYNTHETIC_LABEL,
    DataContext,
    DataUnit,
    development_items,
    development_set_found,
    prepare_data,
    test_items,
)
from utils.stages.evaluation import EVALUATOR, EvaluationUnit, run_results, split_results, trials_evaluation
from utils.stages.features import FEATURES, FeatureUnit, segment_labels
from utils.stages.inputs import input_files, resolve_path
from utils.stages.learning import (
    LEARNER,
    LearnerUnit,
    TrainedModel,
    check_learner_settings,
    given_model,
    trained_model,
    trial_seeds,
)
from utils.stages.model_size import (
    MODEL_SIZE,
    OFFICIAL_MODEL_SHA256,
    ModelSizeUnit,
    complexity_brief,
    meta_complexity,
)
from utils.stages.testing import RECOGNIZER, RecognizerStage, TestUnit, testing_stage

__all__ = [
    "BASELINE_INFERENCE", "DATA", "EVALUATOR", "FEATURES", "LEARNER", "MODEL_SIZE", "OFFICIAL_MODEL_NORMALIZATION", "OFFICIAL_MODEL_SHA256",
    "RECOGNIZER", "SYNTHETIC_LABEL", "RecognizerStage", "DataContext", "DataUnit", "EvaluationUnit", "FeatureUnit", "LearnerUnit", "ModelSizeUnit", "Stage",
    "StageRunner", "StageTimer", "TestUnit", "TrainedModel", "baseline_model_path", "baseline_model_problem", "check_learner_settings",
    "complexity_brief", "development_items", "development_set_found", "given_model", "input_files", "measured_stage", "meta_complexity",
    "prepare_data", "resolve_path", "run_baseline_inference", "run_results", "segment_labels", "split_results", "test_items", "testing_stage",
    "trained_model", "trial_seeds", "trials_evaluation",
]
