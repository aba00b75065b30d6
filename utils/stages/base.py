"""What every stage is, and the one runner that runs them.

A :class:`Stage` declares one name (its folder ``<system>/<name>/<hash>``, its timer, its log lines),
whether its work is measured for energy (the phase then carries the stage's name; the DCASE meta's
``training`` / ``inference`` words are mapped in :data:`utils.energy.SUMMARY_PHASES` only), its hash inputs (:data:`utils.parameters.STAGE_HASH_INPUTS`
under its name), its mark of completion (:meth:`Stage.finished`, the one "is this finished?" rule)
and its work (:meth:`Stage.compute`, :meth:`Stage.reuse`). A stage's work is given as a *unit*: an
object with at least a ``folder`` (a feature store, one seed's training, one model's testing...).

:class:`StageRunner` does the rest for every stage: creates the folder with its ``parameters.yaml``
(:class:`utils.workspace.Workspace`), clears it on overwrite, reuses a finished unit or runs (resumes) an
unfinished one, measures its energy (:func:`measured_stage`) and times it (:class:`StageTimer`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.parameters import STAGE_HASH_INPUTS, stage_hash, stage_parameters
from utils.stages.inputs import input_files
from utils.workspace import ParametersRecord, Workspace

log = logging.getLogger(__name__)


class Stage:
    """One stage of a run. Subclasses set :attr:`name` (and :attr:`measured` when its energy is measured) and
    implement :meth:`compute`; those whose work can be reused also :meth:`finished` and :meth:`reuse`."""

    name: str = ""
    measured: bool = False  # True: its work is an energy phase of its own, named :attr:`name`

    @property
    def energy_phase(self) -> str | None:
        """The energy phase its work counts to: its name when :attr:`measured`, else None."""
        return self.name if self.measured else None

    @property
    def hash_inputs(self) -> tuple[str, ...]:
        """The parameter key paths its own folder hash adds to the earlier stages' (none for a stage without a folder)."""
        return tuple(STAGE_HASH_INPUTS.get(self.name, ()))

    def digest(self, params: dict, root: Path, extra: Any = None) -> str:
        """The stage's folder name: :func:`utils.parameters.stage_hash` of its parameters and ``extra``, with, for the
        learner and every stage after it, the content of the files a training starts or learns from (found under
        the run's ``root``): another content under the same path is another training."""
        chain = list(STAGE_HASH_INPUTS)
        files = {}
        if self.name in chain and chain.index(self.name) >= chain.index("learner"):
            files = input_files(params, root)
        return stage_hash(params, self.name, dict(extra or {}, input_files=files) if files else extra)

    def finished(self, unit) -> bool:
        """Whether ``unit``'s work is complete in its folder (the mark of completion). Default: never (always computed)."""
        return False

    def clear(self, unit) -> None:
        """What an overwrite removes before the unit runs again (default: nothing; the work rewrites its outputs)."""

    def reuse(self, unit):
        """The result of a finished unit, read from its folder."""
        raise NotImplementedError(f"stage {self.name} has no reusable result")

    def compute(self, unit):
        """Do (or resume) the unit's work; return its result."""
        raise NotImplementedError

    def resumes_unrecorded(self, unit) -> bool:
        """Whether the unit resumes work whose energy was never recorded (a killed run)."""
        return False

    def __repr__(self) -> str:
        return f"<stage {self.name}>"


class StageTimer:
    """Wall-clock seconds per stage name, for the report; a stage run inside another counts to the outer one only."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def __call__(self, name: str):
        timer = self

        class _Timing:
            def __enter__(self):
                timer._depth += 1
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer._depth -= 1
                if timer._depth == 0:
                    timer.seconds[name] = timer.seconds.get(name, 0.0) + time.perf_counter() - self.start
                return False

        return _Timing()


def measured_stage(meter, phase: str, folder: Path, reused: bool, body, *, write: bool = True, overwrite: bool = False,
                   resumed_unrecorded: bool = False):
    """Run ``body()`` (a stage working in ``folder``) and give ``meter`` the energy of what it produced.

    A stage computed now: measured, the part recorded in the folder (also when interrupted) and, once
    the stage is complete, the sum of its parts (several when it resumed) stored as its ``energy.yaml``
    and reported. A reused stage (``reused``): not measured again; the figure stored when it ran is
    reported, marked as such. ``write`` is False on a worker that does not own the folder.
    """
    from utils.energy import clear_stage_energy, finish_stage_energy, record_stage_part, stored_stage_energy

    folder = Path(folder)
    if reused:
        result = body()
        meter.add_record(phase, stored_stage_energy(folder, phase))
        return result
    if overwrite and write:
        clear_stage_energy(folder)
    try:
        with meter.phase(phase, accumulate=False):
            result = body()
    finally:
        if write:
            folder.mkdir(parents=True, exist_ok=True)
            record_stage_part(folder, phase, meter.last_part(phase))
    total = finish_stage_energy(folder, phase, resumed_unrecorded) if write else None
    meter.add_record(phase, total if total is not None else meter.last_part(phase))
    return result


@dataclass
class StageRunner:
    """Runs any stage's units the same way: folder, reuse or resume, energy, timing.

    ``chief``: this process owns the folders (False on a multi-worker worker other than the chief: it
    neither clears nor records, and follows the chief's results).
    """

    workspace: Workspace
    root: Path                        # the run's root (--workdir): relative run paths resolve against it
    meter: Any = None                 # utils.energy.EnergyMeter, or None: nothing measured
    timer: StageTimer = field(default_factory=StageTimer)
    overwrite: bool = False
    chief: bool = True
    progress: bool = True

    def folder(self, stage: Stage, params: dict, extra: Any = None) -> Path:
        """``<system>/<stage>/<hash>``, created, with its ``parameters.yaml``."""
        record = ParametersRecord(params["set_id"], stage.name, extra, stage_parameters(params, stage.name))
        return self.workspace.create_stage_dir(record, stage.digest(params, self.root, extra))

    def run(self, stage: Stage, unit):
        """``unit``'s result: reused when finished (unless overwriting), else computed (resumed); measured and timed."""
        rewrite = self.overwrite and self.chief
        unrecorded = self.chief and not self.overwrite and stage.resumes_unrecorded(unit)
        if rewrite:
            stage.clear(unit)
        reused = stage.finished(unit) and not rewrite  # a worker that does not own the folder follows the chief's fresh result
        with self.timer(stage.name):
            body = (lambda: stage.reuse(unit)) if reused else (lambda: stage.compute(unit))
            if stage.energy_phase is None or self.meter is None:
                return body()
            return measured_stage(self.meter, stage.energy_phase, unit.folder, reused and self.chief, body, write=self.chief,
                                  overwrite=rewrite, resumed_unrecorded=unrecorded)
