"""What every DCASE Task 1 edition owns, as one object: :class:`Edition`.

An edition (``submission.edition`` in ``task1a.yaml``) is the official protocol of one challenge year:

- its protocol defaults (:attr:`Edition.protocol`): the values of the parameters left ``null`` in
  ``task1a.yaml`` that the official system of that year fixes (the validation hold-out, the model
  selection rule, the evaluation set's folder); filled in when a set is resolved, before any hash;
- which items train in each mode (:meth:`Edition.training_items`), what a run's data must hold before
  any work (:meth:`Edition.check_data`), and where the recording device of each test clip comes from
  (:meth:`Edition.test_devices`: never from a scoring labels file);
- the submission: the validator's rules (:attr:`Edition.rules`, a :class:`utils.submission.SubmissionRules`),
  the meta template, the sets one package takes (:meth:`Edition.check_package_sets`), what goes into
  the meta (:meth:`Edition.package_inputs`), the energy block, and extra package members
  (:meth:`Edition.write_extras`);
- the complexity limits and the precision the parameter memory is counted in (:attr:`Edition.parameter_bits`:
  None = the bytes the TFLite file stores, as the 2023 NeSsi counts; 16 = parameter count x 2 bytes);
- its README table row (:attr:`Edition.readme_row`).

The pipeline and the stages ask the edition (``utils.editions.of(params)``); they never test its year.
A new edition is a subclass registered with :func:`utils.editions.register`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from utils.errors import Task1aError

log = logging.getLogger(__name__)

# Protocol keys: dotted paths inside the resolved parameters; "<section>.parameters.<key>" also fills
# "<section>_method_parameters.<method>.<key>" (the block it was copied from), so both say the same.
EVALUATION_FOLDER_KEY = "dataset.parameters.evaluation"


@dataclass
class Edition:
    """One DCASE Task 1 edition's official protocol (see the module docstring)."""

    year: int
    title: str                     # e.g. "DCASE2024 Task 1: data-efficient low-complexity acoustic scene classification"
    rules: object                  # utils.submission.SubmissionRules: what the validator checks
    meta_template: str             # the shipped template, relative to the repository root
    parameter_bits: int | None     # None: bytes as stored in the TFLite file; else parameters x bits / 8
    max_macs: int = 30_000_000
    max_memory_bytes: int = 128_000
    protocol: dict = field(default_factory=dict)  # parameter left null -> this edition's official value
    evaluation_set: str = "evaluation"            # the download manifest's set of this edition's evaluation data
    readme_row: str = ""
    device_models: bool = False    # the submission needs device-specific models (device_models.enabled)
    # The official baseline's published development-set figures (real TAU data, fold1_evaluate): rows of
    # (system, macro accuracy, log loss or None where not published, the training split it is for or None).
    reference: tuple = ()

    def official_reference(self, train_split=None) -> list[list]:
        """The official figures ``[system, accuracy, log loss]`` beside which report.md puts a run's own; the
        run's ``train_split`` first when a row is for it."""
        rows = [[name, accuracy, logloss] for name, accuracy, logloss, _ in self.reference]
        mine = [row for row, (*_, split) in zip(rows, self.reference) if split is not None and split == train_split]
        return mine + [row for row in rows if row not in mine]

    # ------------------------------------------------------------------------------ parameters
    def apply_protocol(self, params: dict) -> dict:
        """Fill every protocol parameter left ``null`` with this edition's value (in place; returned)."""
        for key, value in self.protocol.items():
            for path in _paths(params, key):
                node, last = _parent(params, path)
                if node is not None and node.get(last, value) is None:
                    node[last] = value
        sizes = params.get("model_size")
        if isinstance(sizes, dict) and sizes.get("parameter_bits") is None:  # the precision this edition counts parameter memory in
            sizes["parameter_bits"] = self.parameter_bits
        return params

    # -------------------------------------------------------------------------------- the data
    def training_items(self, data) -> pd.DataFrame:
        """Items to learn from (``data``: utils.stages.DataContext): in dev mode fold1_train or its
        ``dataset.train_split`` % subset; in challenge mode :meth:`challenge_training_items`."""
        if data.params["general"]["mode"] == "eval":
            return self.challenge_training_items(data.development)
        return data.development.train

    def challenge_training_items(self, development) -> pd.DataFrame:
        """Challenge mode: exactly the rows of the training split (``split{N}.csv``; 100: fold1_train)."""
        return development.train

    def check_data(self, data) -> None:
        """Stop before any work when the run's data cannot serve this edition (default: nothing to check)."""

    def test_devices(self, data, items: pd.DataFrame) -> pd.Series | None:
        """The recording device of each test item as the system may use it at inference, or None (this
        edition gives the system no device)."""
        return None

    def missing_evaluation_set(self, folder) -> str:
        """The one-line error of a challenge run whose evaluation set is not at ``folder``."""
        return (f"challenge mode ({self.title}) needs its evaluation set at {folder}; download it "
                f"(python -m utils.download {folder.parent} --evaluation {self.year}) or set dataset_method_parameters.tau2022_mobile.evaluation")

    # ------------------------------------------------------------------------------ submission
    def check_package_sets(self, all_params: list[dict]) -> None:
        """The sets one ``--package`` command must give (default: one set)."""
        if len(all_params) > 1:
            raise Task1aError(f"--package for DCASE{self.year} takes one set, got {len(all_params)}; give one -s set")
        if self.device_models and not all_params[0]["device_models"]["enabled"]:
            raise Task1aError(f"--package for DCASE{self.year} needs device-specific models; set device_models.enabled: true")

    def package_inputs(self, outcomes: list, meta_complexity, development_results) -> dict:
        """What the meta and the package take from the runs: ``complexity``, ``energy``, ``results`` and
        ``outputs`` (one system output, or ``{key: path}``). ``meta_complexity(outcome)``: the complexity
        block of a run's tested model (over-limit models refused); ``development_results(params, extra)``:
        the dev-mode results of a set, or None."""
        first = outcomes[0]
        return {"complexity": meta_complexity(first), "energy": self.energy(first), "outputs": first.system_output,
                "results": development_results(first.params, first.recognizer_extra)}

    def energy(self, outcome) -> dict | None:
        """The meta's energy block (None: the edition's meta has none)."""
        return (outcome.energy or {}).get("energy_consumption") if self.rules.energy else None

    def write_extras(self, outcomes: list, label: str, folder, workdir=None) -> list:
        """Files this edition's submission has beside the zip (2025: the inference package); their paths."""
        return []

    def memory_bytes(self, weight_bytes: float, parameters: int | None) -> float:
        """The parameter memory the challenge limits: the stored bytes (``parameter_bits`` None) or
        ``parameters x parameter_bits / 8``."""
        if self.parameter_bits is None or parameters is None:
            return weight_bytes
        return parameters * self.parameter_bits / 8


def _paths(params: dict, key: str) -> list[str]:
    """The dotted paths a protocol key stands for in resolved parameters."""
    section, _, rest = key.partition(".parameters.")
    method = (params.get(section) or {}).get("method") if rest else None
    return [key] + ([f"{section}_method_parameters.{method}.{rest}"] if method else [])


def _parent(tree: dict, path: str):
    """(the mapping holding the last key of ``path``, that key), or (None, key) when a parent is missing."""
    *parents, last = path.split(".")
    node = tree
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None, last
    return (node if isinstance(node, dict) else None), last
