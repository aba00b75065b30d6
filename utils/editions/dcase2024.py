"""DCASE2024 Task 1: data-efficient low-complexity acoustic scene classification.

Official protocol (DCASE2024 task page; the official baseline CPJKU/dcase2024_task1_baseline, README
"Data Splits"): a system is trained on the rows of one training split ``split{5,10,25,50,100}.csv`` and
nothing else (split 100 = fold1_train; never fold1_evaluate, also not in challenge mode); the baseline
trains on the whole split and keeps the LAST epoch (the development-test split only monitors). One
package holds the evaluation-set output of each of the five splits. The parameter memory is the
parameter count x 16 bits (the 2024 rules count parameters in 16-bit precision).

The project's default follows that protocol (``validation_amount: null`` -> 0, ``model_selection.rule:
null`` -> last). The location-disjoint hold-out with best-epoch selection stays available
(``validation_amount: 0.3``, ``model_selection.rule: best``): a deviation from the official protocol.
"""

from __future__ import annotations

from utils import submission as sub
from utils.editions.base import EVALUATION_FOLDER_KEY, Edition
from utils.errors import Task1aError

SPLITS = sub.TRAIN_SPLITS  # 5, 10, 25, 50, 100
RULES = sub.SubmissionRules(2024, "data-efficient low-complexity", sub.DESCRIPTION_FIELDS_2024, ("total_model_size", "total_parameters", "macs"),
                            "total_model_size", False, sub.SPLITS_2024, 135730, sub.SPLITS_2024, group_prefix="split_")


class DCASE2024(Edition):
    """The DCASE2024 edition: five training splits, one package."""

    def check_package_sets(self, all_params: list[dict]) -> None:
        splits = sorted(params["dataset"]["train_split"] for params in all_params)
        if splits != list(SPLITS):
            raise Task1aError("--package for DCASE2024 needs the five training subsets in one command "
                              f"(-s with dataset.train_split 5, 10, 25, 50, 100), got {splits}")

    def package_inputs(self, outcomes: list, meta_complexity, development_results) -> dict:
        complexity = [meta_complexity(outcome) for outcome in outcomes][0]
        return {"complexity": complexity, "energy": None,
                "results": {outcome.params["dataset"]["train_split"]: development_results(outcome.params, None) for outcome in outcomes},
                "outputs": {outcome.params["dataset"]["train_split"]: outcome.system_output for outcome in outcomes}}


EDITION = DCASE2024(
    year=2024,
    title="DCASE2024 Task 1 (data-efficient low-complexity acoustic scene classification)",
    rules=RULES,
    meta_template="meta/task1a_submission_2024.meta.yaml",
    reference=tuple((f"DCASE2024 baseline, {split} % split", accuracy, None, split)
                    for split, accuracy in ((5, 0.4240), (10, 0.4529), (25, 0.5029), (50, 0.5319), (100, 0.5699))),
    parameter_bits=16,
    protocol={"learner.parameters.validation_amount": 0, "learner.parameters.model_selection.rule": "last",
              EVALUATION_FOLDER_KEY: "datasets/TAU-urban-acoustic-scenes-2024-mobile-evaluation"},
    evaluation_set="evaluation_2024",
    readme_row=("| 2024 | split{5,10,25,50,100}.csv, whole split, last epoch | fold1_evaluate | the split alone (split 100 = fold1_train) "
                "| 2024 evaluation set | parameters x 16 bit | none |"),
)
