"""The features stage: the feature store of every item a run works on (``<system>/features/<hash>/development``
and, in challenge mode, ``.../evaluation``), extracted once, resumed when interrupted."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.errors import Task1aError
from utils.settings import FeatureSettings
from utils.stages.base import Stage

log = logging.getLogger(__name__)


@dataclass
class FeatureUnit:
    """One store: ``items``' audio under ``audio_root`` into the store ``folder``, as ``features`` say."""

    features: FeatureSettings
    items: pd.DataFrame
    audio_root: Path
    folder: Path
    progress: bool = True

    @property
    def keys(self) -> list[str]:
        return self.items["filename"].tolist()


class FeaturesStage(Stage):
    name = "features"
    measured = True

    def finished(self, unit: FeatureUnit) -> bool:
        """A complete store holding every item, none failed."""
        from utils.feature_store import FeatureStore

        if not Path(unit.folder).exists():
            return False
        try:
            store = FeatureStore(unit.folder)
        except Task1aError:
            return False
        return store.is_complete and set(unit.keys) <= set(store.keys) and not store.failed

    def clear(self, unit: FeatureUnit) -> None:
        if Path(unit.folder).exists():
            shutil.rmtree(unit.folder)

    def reuse(self, unit: FeatureUnit):
        from utils.feature_store import FeatureStore

        log.info("features: reusing %s (%d files)", unit.folder, len(unit.keys))
        return FeatureStore(unit.folder)

    def compute(self, unit: FeatureUnit):
        """Extract the features of every item (resuming a store begun earlier). Files that cannot be read stop
        the run with one line naming the first of them (a result on a silently shrunk test set would be wrong)."""
        from utils.feature_store import FeatureStore, extract_to_store
        from utils.features import build_extractor

        keys = unit.keys
        if Path(unit.folder).exists():
            done = len(set(keys) & set(FeatureStore(unit.folder).keys))
            if done:
                log.info("features: resuming %s (%d of %d files already extracted)", unit.folder, done, len(keys))
        log.info("features: extracting %d files into %s", len(keys), unit.folder)
        settings = unit.features
        store = extract_to_store([Path(unit.audio_root) / key for key in keys], keys, unit.folder, build_extractor(settings),
                                 segment_length_seconds=settings.segment_length_seconds, n_jobs=settings.n_jobs, progress=unit.progress,
                                 storage=settings.storage)
        if store.failed:
            first, reason = next(iter(store.failed.items()))
            raise Task1aError(
                f"{len(store.failed)} audio file(s) of {unit.audio_root} could not be read, first {first}: {reason}; "
                "restore or remove them (python -m utils.dataset PATH --check-audio lists them), then rerun"
            )
        return store


FEATURES = FeaturesStage()


def segment_labels(store, items: pd.DataFrame, column: str) -> np.ndarray:
    """A per-item column repeated for each of the item's segments."""
    counts = np.asarray(store.segment_counts(items["filename"].tolist()))
    return np.repeat(items[column].to_numpy(), counts)
