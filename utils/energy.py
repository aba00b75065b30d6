"""Energy of each phase of a run, measured offline with codecarbon, and the DCASE2023 energy figures.

DCASE2023 Task 1 asks for the energy (kWh) of training, of inference, and of the official baseline
model's inference on the same machine. :class:`EnergyMeter` runs one codecarbon
``OfflineEmissionsTracker`` per phase (``with meter.phase("learner"): ...``) and records, per phase,
the kWh, the CPU/GPU/RAM split, the duration and how codecarbon obtained the figures (a hardware
counter such as RAPL, or an estimate from CPU load and TDP). :func:`energy_summary` turns those
records into the submission's ``energy_consumption`` block and the normalised ratio.

Measuring never stops a run: if codecarbon is missing, fails, or returns nothing, the phase body still
runs exactly once and the phase is recorded as ``{"measured": False, "reason": ...}``. Exceptions of
the body itself propagate unchanged.

What differs from the official baseline code, and why:

- ``OfflineEmissionsTracker`` (country from the parameters) instead of the online tracker, which
  queries a geolocation web service; no codecarbon output method that talks to the network is
  enabled, whatever codecarbon's config files or environment say.
- kWh come from the public ``tracker.final_emissions_data.energy_consumed``, not a private
  attribute; ``tracker.stop()`` returns the emissions (kg CO2eq), not energy, and may return None.
- ``allow_multiple_runs=True``: codecarbon's single-instance lock file (``<tmp>/.codecarbon.lock``)
  outlives a killed process and then makes every later tracker refuse to measure ("another instance
  running"); creating it also replaces the process's Ctrl+C handler. Phases measured at the same
  time on one machine (another run beside this one) each include the other's power: codecarbon
  measures the whole machine (``tracking_mode="machine"``), as the challenge compares whole systems
  on the same hardware.
- codecarbon's public API does not say whether the CPU energy was read from RAPL or estimated; it
  logs it (``CPU Tracking Method: ...``) when it probes the hardware. The meter listens to the
  ``codecarbon`` logger during each phase (its console output stays at ``error``), records the
  methods and codecarbon's warnings, and states "unknown" when codecarbon did not log them.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Iterator

from utils.errors import Task1aError

PHASE_NAMES = ("features", "learner", "recognizer", "baseline_inference")
"""Phases of a run: the names of the stages measured (utils.stages); ``recognizer`` is the inference phase of the DCASE energy figures."""

EARLIER_PHASE_NAMES = {"feature_extraction": "features", "training": "learner", "testing": "recognizer"}
"""The phase names stage energy records written before the phases took the stages' names carry: read as the new names."""

SUMMARY_PHASES = {"training": "learner", "inference": "recognizer", "baseline_inference": "baseline_inference"}
"""DCASE2023 ``energy_consumption`` key (the meta's vocabulary) -> phase (the stage's name): the one place the two meet."""

CODECARBON_LOGGER_NAME = "codecarbon"
CODECARBON_CSV_NAME = "emissions.csv"
JOULES_PER_KWH = 3.6e6

# codecarbon's names for its tracking methods (codecarbon.core.resource_tracker) that read a hardware
# energy/power counter; every other CPU method is an estimate (CPU load x TDP, or a constant TDP).
_MEASURED_CPU_METHODS = ("RAPL", "Power Gadget", "Windows EMI", "PowerMetrics", "raspberry")
_MEASURED_GPU_METHODS = ("pynvml", "amdsmi", "PowerMetrics")
_NO_GPU_METHOD = "Unspecified"
_OWN_CHOICE_WARNING = "Multiple instances of codecarbon are allowed"  # allow_multiple_runs=True, on purpose
_TRACKING_METHOD_PATTERN = re.compile(r"(RAM|CPU|GPU) Tracking Method:\s*(.+)")

logger = logging.getLogger(__name__)

# codecarbon probes the hardware once per process and logs the methods only then; later trackers
# reuse the probe, so the methods seen first are remembered for them.
_methods_seen_in_process: dict[str, str] = {}


class _CodecarbonLogCapture(logging.Handler):
    """Collects codecarbon's warnings/errors and its tracking-method lines during one phase."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.problems: list[str] = []
        self.methods: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            for component, method in _TRACKING_METHOD_PATTERN.findall(message):
                self.methods[component.lower()] = method.strip()
            if record.levelno >= logging.WARNING and not message.startswith(_OWN_CHOICE_WARNING):
                if record.exc_info and record.exc_info[1] is not None:
                    message = f"{message} {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
                message = " ".join(message.split())
                if message and message not in self.problems:
                    self.problems.append(message)
        except Exception:  # a logging handler must never raise into codecarbon's threads
            self.handleError(record)


@contextlib.contextmanager
def _listen_to_codecarbon(capture: _CodecarbonLogCapture) -> Iterator[_CodecarbonLogCapture]:
    """Send codecarbon's log at INFO to ``capture`` while its own console output stays at ERROR.

    A tracker's constructor replaces codecarbon's console handler and level, so construction and
    measurement are each wrapped in their own ``with``.
    """
    cc_logger = logging.getLogger(CODECARBON_LOGGER_NAME)
    saved_level, saved_propagate = cc_logger.level, cc_logger.propagate
    saved_handler_levels = [(handler, handler.level) for handler in cc_logger.handlers]
    for handler, level in saved_handler_levels:
        handler.setLevel(max(level, logging.ERROR))
    cc_logger.setLevel(logging.INFO)
    cc_logger.propagate = False
    cc_logger.addHandler(capture)
    try:
        yield capture
    finally:
        cc_logger.removeHandler(capture)
        cc_logger.setLevel(saved_level)
        cc_logger.propagate = saved_propagate
        for handler, level in saved_handler_levels:
            handler.setLevel(level)


def finite_float(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, a bool, not a number, NaN or infinite."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_country_known(country_iso_code: str) -> None:
    """Reject a country codecarbon has no energy mix for (its tracker would fail only at stop)."""
    try:
        from codecarbon.input import DataSource

        known = DataSource().get_global_energy_mix_data()
    except Exception:  # codecarbon missing or its data unreadable: the phases will say why
        return
    if country_iso_code not in known:
        raise Task1aError(
            f"general.country_iso_code {country_iso_code!r} is not a country codecarbon knows; use a 3-letter ISO code such as FIN"
        )


def _describe_exception(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _measurement_kind(methods: dict[str, str]) -> str:
    """'measured' when codecarbon read the CPU from a hardware counter, 'estimated' otherwise."""
    cpu_method = methods.get("cpu")
    if cpu_method is None:
        return "unknown"
    return "measured" if cpu_method in _MEASURED_CPU_METHODS else "estimated"


class EnergyMeter:
    """Measures the energy of each phase of a run with one codecarbon offline tracker per phase.

    Parameters
    ----------
    enabled : bool
        ``general.energy``; when False every phase is recorded as not measured (disabled).
    country_iso_code : str
        ``general.country_iso_code``, the 3-letter ISO code codecarbon uses for the carbon intensity
        (energy figures do not depend on it).
    output_dir : path or None
        Where codecarbon appends its own ``emissions.csv`` (one row per phase, an append-only log);
        None writes no file.
    disabled_reason : str
        why a phase is not measured when ``enabled`` is False (the parameters, or another worker measures).
    measure_power_secs : float
        codecarbon's power sampling interval; a phase shorter than it is still measured (codecarbon
        takes a last reading at stop).
    """

    def __init__(
        self,
        enabled: bool = True,
        country_iso_code: str = "FIN",
        output_dir: str | Path | None = None,
        measure_power_secs: float = 15.0,
        disabled_reason: str = "disabled in the parameters (general.energy: false)",
    ):
        if not isinstance(enabled, bool):
            raise Task1aError(f"general.energy must be true or false, not {enabled!r}")
        if not (isinstance(country_iso_code, str) and re.fullmatch(r"[A-Za-z]{3}", country_iso_code)):
            raise Task1aError(
                f"general.country_iso_code {country_iso_code!r} is not a 3-letter ISO country code; use e.g. FIN"
            )
        measure_power_secs = finite_float(measure_power_secs)
        if measure_power_secs is None or measure_power_secs <= 0:
            raise Task1aError("measure_power_secs must be a positive number of seconds")
        if enabled:
            _check_country_known(country_iso_code.upper())
        self.enabled = enabled
        self.disabled_reason = disabled_reason
        self.country_iso_code = country_iso_code.upper()
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.measure_power_secs = measure_power_secs
        self._results: dict[str, dict[str, Any]] = {}
        self._last_parts: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- public API
    @contextlib.contextmanager
    def phase(self, name: str, accumulate: bool = True) -> Iterator[dict[str, Any]]:
        """Measure the energy of the ``with`` body as phase ``name`` (one of :data:`PHASE_NAMES`).

        Yields the phase's record, filled when the body ends. The body runs exactly once whatever
        codecarbon does; its exceptions propagate unchanged (the phase is then recorded as not
        measured). A phase entered again adds to the same record (energy and time summed).
        ``accumulate=False`` leaves :meth:`results` alone (the part is read with :meth:`last_part`
        and added with :meth:`add_record`, e.g. as the sum of a resumed stage's parts).
        """
        if name not in PHASE_NAMES:
            raise Task1aError(f"unknown energy phase {name!r}; use one of {', '.join(PHASE_NAMES)}")
        record: dict[str, Any] = {}
        if not self.enabled:
            body_start = time.perf_counter()
            try:
                yield record
            finally:
                self._store(name, record, {"measured": False, "reason": self.disabled_reason},
                            time.perf_counter() - body_start, accumulate)
            return

        capture = _CodecarbonLogCapture()
        with _listen_to_codecarbon(capture):  # its first messages come before its log level is set
            tracker, failure = self._build_tracker(name)
        with _listen_to_codecarbon(capture):
            if tracker is not None:
                try:
                    tracker.start()
                except Exception as exc:  # measuring must never stop the run
                    failure = f"codecarbon failed to start: {_describe_exception(exc)}"
            body_start = time.perf_counter()
            try:
                yield record
            except BaseException as exc:
                duration = time.perf_counter() - body_start
                self._stop_quietly(tracker)
                self._store(name, record,
                            {"measured": False, "reason": f"the phase did not complete ({type(exc).__name__})"}, duration, accumulate)
                raise
            duration = time.perf_counter() - body_start
            outcome = self._stop_and_read(tracker, failure, capture)
        self._store(name, record, outcome, duration, accumulate)

    def results(self) -> dict[str, dict[str, Any]]:
        """Phase name -> record (plain YAML-able values), in the order the phases ran."""
        return copy.deepcopy(self._results)

    def last_part(self, name: str) -> dict[str, Any] | None:
        """The record of the last ``with phase(name)`` alone (not added to the earlier ones)."""
        part = self._last_parts.get(name)
        return copy.deepcopy(part) if part is not None else None

    def add_record(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """Add a record measured elsewhere (a reused stage's stored figure) to phase ``name``."""
        if name not in PHASE_NAMES:
            raise Task1aError(f"unknown energy phase {name!r}; use one of {', '.join(PHASE_NAMES)}")
        record = dict(copy.deepcopy(record))
        record.setdefault("duration_seconds", 0.0)
        record.setdefault("runs", 1)
        record.setdefault("codecarbon_warnings", [])
        previous = self._results.get(name)
        combined = _combine(previous, record) if previous is not None else record
        for key in ("reused", "resumed"):
            if (previous or {}).get(key) or record.get(key):
                combined[key] = True
        dates = list(dict.fromkeys(((previous or {}).get("measured_at_all") or []) + (record.get("measured_at_all") or [])))
        if dates:
            combined["measured_at_all"] = dates
        self._results[name] = combined
        return copy.deepcopy(combined)

    # ---------------------------------------------------------------- internals
    def _build_tracker(self, name: str) -> tuple[Any, str | None]:
        """Build the phase's tracker; (None, reason) when codecarbon is unusable."""
        try:
            import codecarbon
        except ImportError as exc:
            return None, f"codecarbon is not installed ({exc}); pip install codecarbon"
        except Exception as exc:  # a broken installation
            return None, f"codecarbon failed to import: {_describe_exception(exc)}"
        options: dict[str, Any] = dict(
            country_iso_code=self.country_iso_code,
            project_name=f"task1a_{name}",
            measure_power_secs=self.measure_power_secs,
            tracking_mode="machine",
            log_level="error",
            allow_multiple_runs=True,
            # Explicit values override codecarbon's config files and CODECARBON_* variables, so that no
            # output reaches the network: no API, no HTTP endpoint, no electricitymaps query.
            emissions_endpoint=None,
            electricitymaps_api_token=None,
        )
        output_method = getattr(codecarbon, "OutputMethod", None)  # codecarbon >= 3.3; save_to_file before
        writes_csv = self.output_dir is not None
        if output_method is not None:
            options["output_methods"] = [output_method.CSV] if writes_csv else []
        else:
            options["save_to_file"] = writes_csv
        try:
            if writes_csv:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                options.update(output_dir=str(self.output_dir), output_file=CODECARBON_CSV_NAME)
            return codecarbon.OfflineEmissionsTracker(**options), None
        except Exception as exc:
            return None, f"codecarbon could not be set up: {_describe_exception(exc)}"

    @staticmethod
    def _stop_quietly(tracker: Any) -> None:
        if tracker is None:
            return
        try:
            tracker.stop()
        except Exception as exc:
            logger.debug("codecarbon failed when stopping after a failed phase: %s", _describe_exception(exc))

    def _stop_and_read(self, tracker: Any, failure: str | None, capture: _CodecarbonLogCapture) -> dict[str, Any]:
        """Stop the tracker and turn its final emissions data into the phase's figures."""
        if tracker is None:
            return {"measured": False, "reason": failure}
        try:
            tracker.stop()  # returns kg CO2eq or None: the energy is read from final_emissions_data
        except Exception as exc:
            failure = failure or f"codecarbon failed when stopping: {_describe_exception(exc)}"
        problems = capture.problems
        for message in problems:
            logger.debug("codecarbon: %s", message)
        if failure:
            return {"measured": False, "reason": failure}
        data = getattr(tracker, "final_emissions_data", None)
        energy_kwh = finite_float(getattr(data, "energy_consumed", None)) if data is not None else None
        if energy_kwh is None or energy_kwh < 0:
            detail = f" ({problems[0]})" if problems else ""
            what = "no data" if data is None else f"no valid energy figure ({getattr(data, 'energy_consumed', None)!r})"
            return {"measured": False, "reason": f"codecarbon returned {what}{detail}"}

        _methods_seen_in_process.update(capture.methods)
        methods = dict(_methods_seen_in_process)
        def figure(field: str) -> float | None:
            return finite_float(getattr(data, field, None))

        gpu_method = methods.get("gpu")
        outcome = {
            "measured": True,
            "energy_kwh": energy_kwh,
            "cpu_energy_kwh": figure("cpu_energy"),
            "gpu_energy_kwh": figure("gpu_energy"),
            "ram_energy_kwh": figure("ram_energy"),
            "tracked_seconds": figure("duration"),
            "emissions_kg_co2eq": figure("emissions"),
            "country_iso_code": getattr(data, "country_iso_code", None) or self.country_iso_code,
            "cpu_energy_source": _measurement_kind(methods),
            "tracking_methods": {
                "cpu": methods.get("cpu", "unknown"),
                "gpu": "none found" if gpu_method == _NO_GPU_METHOD else gpu_method or "unknown",
                "ram": methods.get("ram", "unknown"),
            },
            "tracking_scope": getattr(data, "tracking_mode", None) or "machine",
            "cpu_model": getattr(data, "cpu_model", None),
            "gpu_model": getattr(data, "gpu_model", None) or None,
            "codecarbon_version": getattr(data, "codecarbon_version", None),
            "codecarbon_warnings": list(problems),
        }
        outcome["average_power_w"] = _average_power(outcome)
        return outcome

    def _store(self, name: str, record: dict[str, Any], outcome: dict[str, Any], duration: float, accumulate: bool = True) -> None:
        """Record (or add to) phase ``name``; the yielded ``record`` is updated in place."""
        outcome = dict(outcome, duration_seconds=float(duration), runs=1)
        self._last_parts[name] = copy.deepcopy(outcome)
        previous = self._results.get(name) if accumulate else None
        if previous is not None:
            outcome = _combine(previous, outcome)
        if accumulate:
            self._results[name] = outcome
        record.clear()
        record.update(copy.deepcopy(outcome))
        if outcome["measured"]:
            logger.info("energy %s: %.6f kWh in %.1f s (CPU %s)", name, outcome["energy_kwh"],
                        outcome["duration_seconds"], outcome["cpu_energy_source"])
        else:
            logger.info("energy %s: not measured (%s)", name, outcome["reason"])


def _average_power(figures: dict[str, Any]) -> dict[str, float | None]:
    """Mean power (W) of CPU, GPU and RAM over the tracked time: energy / time.

    codecarbon's own ``cpu_power`` is the mean of its power samples, which in its CPU-load mode is
    the TDP share at full load, not the mean over the phase; energy / time is.
    """
    seconds = figures.get("tracked_seconds")
    return {
        part: (None if not seconds or figures.get(f"{part}_energy_kwh") is None
               else figures[f"{part}_energy_kwh"] * JOULES_PER_KWH / seconds)
        for part in ("cpu", "gpu", "ram")
    }


def _combine(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Two runs of one phase: energy and time summed; one unmeasured run makes the phase unmeasured."""
    duration = previous["duration_seconds"] + current["duration_seconds"]
    runs = previous["runs"] + current["runs"]
    if not (previous["measured"] and current["measured"]):
        reason = previous.get("reason") if not previous["measured"] else current.get("reason")
        return {"measured": False, "reason": reason, "duration_seconds": duration, "runs": runs}
    combined = copy.deepcopy(current)
    for key in ("energy_kwh", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh", "tracked_seconds", "emissions_kg_co2eq"):
        a, b = previous.get(key), current.get(key)
        combined[key] = None if a is None or b is None else a + b
    combined["average_power_w"] = _average_power(combined)
    combined["codecarbon_warnings"] = list(dict.fromkeys((previous.get("codecarbon_warnings") or []) + (current.get("codecarbon_warnings") or [])))
    combined["duration_seconds"] = duration
    combined["runs"] = runs
    return combined


def energy_summary(results: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The DCASE2023 energy figures of a run from :meth:`EnergyMeter.results`.

    Returns ``{"energy_consumption": {"training", "inference", "baseline_inference"}`` (kWh, None when
    not measured), ``"inference_over_baseline_ratio"`` (kWh_inference / kWh_baseline_inference: the
    system's inference energy in units of the official baseline's on the same machine, below 1 is
    less), ``"baseline_over_inference_energy_ratio"`` (its inverse, the spec's kWh_baseline /
    kWh_submission; both None unless both were measured), ``"not_measured"`` (key -> reason) and
    ``"measured_when_the_stage_ran"`` (key -> dates, for figures a reused stage had stored)}``.
    """
    if results is not None and not isinstance(results, dict):
        raise Task1aError("energy results must be a mapping phase -> record (EnergyMeter.results())")
    results = results or {}
    consumption: dict[str, float | None] = {}
    not_measured: dict[str, str] = {}
    stored: dict[str, list[str]] = {}
    for key, phase in SUMMARY_PHASES.items():
        record = results.get(phase)
        kwh = finite_float(record.get("energy_kwh")) if record and record.get("measured") else None
        consumption[key] = kwh
        if kwh is None:
            not_measured[key] = (record or {}).get("reason") or f"no {phase} phase in this run"
        if record and record.get("reused") and record.get("measured_at_all"):
            stored[key] = list(record["measured_at_all"])
    ratio = inverse = None
    if consumption["baseline_inference"] and consumption["inference"] is not None:
        ratio = consumption["inference"] / consumption["baseline_inference"]
    if consumption["baseline_inference"] is not None and consumption["inference"]:
        inverse = consumption["baseline_inference"] / consumption["inference"]
    return {
        "energy_consumption": consumption,
        "inference_over_baseline_ratio": ratio,
        "baseline_over_inference_energy_ratio": inverse,
        "not_measured": not_measured,
        "measured_when_the_stage_ran": stored,
    }


# ------------------------------------------------------------------------------ per-stage records
STAGE_ENERGY_FILE = "energy.yaml"
"""In a stage's folder: the energy of the run(s) that computed what the folder holds."""
STAGE_ENERGY_PARTS_FILE = "energy_parts.yaml"
"""In a stage's folder while it is unfinished: one record per run that worked on it (a resumed stage)."""


def _now() -> str:
    import datetime as dt

    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Task1aError(f"energy record {path} is unreadable ({type(exc).__name__}); delete it (the stage's energy is then reported as "
                          "not measured)") from None


def clear_stage_energy(folder: str | Path) -> None:
    """Forget the energy of a stage that is computed again from scratch (``-o``)."""
    for name in (STAGE_ENERGY_FILE, STAGE_ENERGY_PARTS_FILE):
        (Path(folder) / name).unlink(missing_ok=True)


def record_stage_part(folder: str | Path, phase: str, part: dict[str, Any] | None) -> None:
    """Append this run's record of work on an unfinished stage (also when it was interrupted)."""
    from utils.files import write_yaml_atomic

    if part is None:
        return
    path = Path(folder) / STAGE_ENERGY_PARTS_FILE
    parts = _read_yaml(path) or []
    parts.append(dict(copy.deepcopy(part), phase=phase, measured_at=_now()))
    write_yaml_atomic(path, parts)


def _phase(record: dict) -> str | None:
    """A stored record's phase, an earlier name (:data:`EARLIER_PHASE_NAMES`) read as today's."""
    return EARLIER_PHASE_NAMES.get(record.get("phase"), record.get("phase"))


def finish_stage_energy(folder: str | Path, phase: str, resumed_unrecorded: bool = False) -> dict[str, Any] | None:
    """The stage is complete: its energy is the sum of its recorded parts, stored in ``energy.yaml``.

    ``resumed_unrecorded``: the stage resumed work of a run that left no record (killed), whose
    energy is then missing from the sum; the record says so.
    """
    from utils.files import write_yaml_atomic

    folder = Path(folder)
    parts = [p for p in (_read_yaml(folder / STAGE_ENERGY_PARTS_FILE) or []) if _phase(p) == phase]
    if not parts:
        return None
    measured = [p for p in parts if p.get("measured")]
    summed = measured or parts[-1:]
    total = copy.deepcopy(summed[0])
    for part in summed[1:]:
        total = _combine(total, part)
    total["duration_seconds"] = sum(float(p.get("duration_seconds") or 0.0) for p in parts)
    total.pop("measured_at", None)
    unmeasured = [p for p in parts if not p.get("measured")]
    if measured and unmeasured:
        total["unmeasured_parts"] = [f"{p.get('measured_at')}: {p.get('reason')}" for p in unmeasured]
    total["phase"] = phase
    total["parts"] = len(parts)
    total["measured_at_all"] = [p.get("measured_at") for p in parts]
    total["resumed"] = len(parts) > 1 or resumed_unrecorded
    if resumed_unrecorded:
        total["resume_note"] = "an earlier run that worked on this stage was killed before it could record its energy: not included"
    total["completed_at"] = _now()
    write_yaml_atomic(folder / STAGE_ENERGY_FILE, total)
    (folder / STAGE_ENERGY_PARTS_FILE).unlink(missing_ok=True)
    return total


def stored_stage_energy(folder: str | Path, phase: str) -> dict[str, Any]:
    """The record a reused stage reports: what the run that computed it measured, marked as stored."""
    record = _read_yaml(Path(folder) / STAGE_ENERGY_FILE)
    if not isinstance(record, dict) or _phase(record) != phase:
        return {"measured": False, "reused": True, "duration_seconds": 0.0,
                "reason": f"the {phase} stage was reused from {folder}, computed before energy records were kept; rerun with -o to measure it"}
    record = dict(record, phase=phase, reused=True)
    if not record.get("measured"):
        record["reason"] = f"not measured when the stage ran: {record.get('reason')}"
    return record
