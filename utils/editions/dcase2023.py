"""DCASE2023 Task 1 (which also serves DCASE2022): low-complexity acoustic scene classification.

Official protocol (DCASE2022/2023 task pages, the official baseline toni-heittola/dcase2022_task1_baseline):
development mode trains on fold1_train (the baseline's validation part held out of it, the best
validation epoch kept) and tests on fold1_evaluate; challenge mode trains on the whole development set
and outputs for the 2023 evaluation set (audio/0.wav ... 118799.wav). The parameter memory is the
bytes the TFLite file stores (the 2023 NeSsi counts each parameter in its stored type). The meta has
an energy block (training, inference and the baseline's inference, kWh).
"""

from __future__ import annotations

import pandas as pd

from utils import submission as sub
from utils.editions.base import EVALUATION_FOLDER_KEY, Edition

RULES = sub.SubmissionRules(2023, "low-complexity", sub.DESCRIPTION_FIELDS, sub.COMPLEXITY_FIELDS, "memory_use", True, ("",),
                            sub.OFFICIAL_EVALUATION_FILE_COUNT, ())


class DCASE2023(Edition):
    """The DCASE2022/2023 edition."""

    def challenge_training_items(self, development) -> pd.DataFrame:
        """The whole development set (fold1_train + fold1_evaluate); a training subset alone when one is chosen."""
        if development.train_split == 100:
            return pd.concat([development.train, development.evaluate], ignore_index=True)
        return development.train


EDITION = DCASE2023(
    year=2023,
    title="DCASE2023 Task 1 (low-complexity acoustic scene classification; also DCASE2022)",
    rules=RULES,
    meta_template="meta/task1a_submission.meta.yaml",
    reference=(("DCASE2023 baseline (also DCASE2022)", 0.429, 1.575, None),),
    parameter_bits=None,
    protocol={"learner.parameters.validation_amount": 0.3, "learner.parameters.model_selection.rule": "best",
              EVALUATION_FOLDER_KEY: "datasets/TAU-urban-acoustic-scenes-2023-mobile-evaluation"},
    evaluation_set="evaluation",
    readme_row=("| 2023 (2022) | fold1_train (30 % location-disjoint validation, best epoch) | fold1_evaluate | whole development set "
                "| 2023 evaluation set | stored TFLite bytes (NeSsi) | training, inference, baseline inference |"),
)
