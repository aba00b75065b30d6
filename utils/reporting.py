"""The record of a run: its log file, its report a person reads, and the DCASE2023 ranking of setups.

- :func:`setup_run_logging`: every run logs to a new ``<log_dir>/task1a_<timestamp>.log`` (detailed:
  time, level, module) and to the console (concise), through the one root of the project's loggers,
  ``utils`` (every module logs to ``logging.getLogger(__name__)``: ``utils.features``, ...).
- :func:`write_run_report`: ``report.md`` in the results folder, also returned for printing, readable
  by someone who did not run the system: which data (synthetic data said at the top), which
  parameters, how long each stage took, the results, complexity against the limits, energy, figures
  and output files. A section without data says "not measured (reason)" instead of vanishing.
- :func:`rank_systems` / :func:`format_ranking_table`: the DCASE2023 Task 1 ranking of several
  evaluated setups (weighted average of the ranks by accuracy, parameter memory and MACs); a setup
  over the complexity limits is never ranked, only listed after the ranked ones. Memory and MACs are
  shown in NeSsi's units (``46.512 K`` bytes, ``29.235 M`` MACs).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from model_size_calculation.nessi import OFFICIAL_MAX_MACS, OFFICIAL_MAX_MEMORY_BYTES, nessi_macs, nessi_memory
from utils import console
from utils.cli import as_typed
from utils.complexity import limit_problems
from utils.energy import PHASE_NAMES, energy_summary, finite_float
from utils.errors import Task1aError
from utils.files import write_text_atomic
from utils.settings import ModelSizeSettings

PROJECT_LOGGER = "utils"  # the root of every module's logging.getLogger(__name__)
LOG_FILE_PREFIX = "task1a"
LOG_TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"
FILE_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-8s %(name)s [%(module)s:%(lineno)d] %(message)s"
FILE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# The DCASE2023 limits the ranking applies (the official NeSsi tool's), as ``model_size`` in task1a.yaml.
DCASE2023_LIMITS = ModelSizeSettings(max_macs=OFFICIAL_MAX_MACS, max_memory_bytes=OFFICIAL_MAX_MEMORY_BYTES)

# DCASE2023 Task 1: "ranked by weighted average rank of classification accuracy, memory usage, and MACS".
RANKING_WEIGHTS = {"accuracy": 0.5, "memory": 0.25, "macs": 0.25}
RANKING_HIGHER_IS_BETTER = {"accuracy": True, "memory": False, "macs": False}

MODE_EXPLANATIONS = {
    "dev": " (train on fold1_train, test on fold1_evaluate)",
    "eval": " (challenge mode: train on the whole development set, output for the evaluation set)",
}

_RUN_LOGGING_HANDLER_FLAG = "_task1a_run_logging"


# ------------------------------------------------------------------------------------------- logging
class _ConsoleFormatter(logging.Formatter):
    """Concise console lines: the message alone, ``warning:``/``error:`` prefixed when not INFO."""

    def format(self, record: logging.LogRecord) -> str:
        message = as_typed(record.getMessage())
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return message


def _new_log_path(log_dir: Path, name: str) -> Path:
    """Create (exclusively) and return a log file named after the current time; never reuse one."""
    stamp = dt.datetime.now().strftime(LOG_TIMESTAMP_FORMAT)
    for attempt in range(1000):
        suffix = "" if attempt == 0 else f"_{attempt}"
        path = log_dir / f"{name}_{stamp}{suffix}.log"
        try:
            with open(path, "x", encoding="utf-8"):
                return path
        except FileExistsError:
            continue
    raise Task1aError(f"cannot create a new log file in {log_dir}: 1000 logs named {name}_{stamp}*.log exist; clean the folder")


def setup_run_logging(log_dir: str | os.PathLike, name: str = LOG_FILE_PREFIX, level: int = logging.INFO) -> Path:
    """Log this run to a new file ``<log_dir>/<name>_<YYYYmmdd-HHMMSS>.log`` and to the console.

    Configures the one root of the project's loggers, ``utils`` (:data:`PROJECT_LOGGER`): every
    module's ``logging.getLogger(__name__)`` logs through it; records do not go on to the root logger.
    The file gets every record (DEBUG and up) with time, level, logger and source line; the console
    (stderr) gets records at ``level`` and up, message only. A log is append-only, so it needs no
    atomic write; each run gets its own file. Calling it again (a second run in one process) replaces
    the handlers of the previous call. Returns the log file's path.
    """
    if not isinstance(name, str) or not name:
        raise Task1aError("the log file name prefix must be a non-empty string, e.g. 'task1a'")
    if isinstance(level, bool) or not isinstance(level, int):
        raise Task1aError(f"log level must be a logging level such as logging.INFO, not {level!r}")
    log_dir = Path(log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = _new_log_path(log_dir, name)
    except OSError as exc:
        raise Task1aError(f"cannot create the log folder {log_dir}: {exc.strerror}; set path.log to a writable folder") from exc

    run_logger = logging.getLogger(PROJECT_LOGGER)
    for handler in list(run_logger.handlers):
        if getattr(handler, _RUN_LOGGING_HANDLER_FLAG, False):
            run_logger.removeHandler(handler)
            handler.close()

    file_handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(FILE_LOG_FORMAT, datefmt=FILE_DATE_FORMAT))
    console_handler = logging.StreamHandler(sys.stderr)
    console_handler.setLevel(level)
    console_handler.setFormatter(_ConsoleFormatter())
    for handler in (file_handler, console_handler):
        setattr(handler, _RUN_LOGGING_HANDLER_FLAG, True)
        run_logger.addHandler(handler)
    run_logger.setLevel(logging.DEBUG)
    run_logger.propagate = False  # the root logger would print every record a second time
    console.attach_log_file(log_path)  # a command-line run: TensorFlow's own output into this file, not the console
    run_logger.debug("log file %s; python %s; argv %s", log_path, sys.version.split()[0], " ".join(sys.argv))
    return log_path


# ------------------------------------------------------------------------------------------- report
def _not_measured(value: Any) -> str | None:
    """The "not measured (reason)" text when a section is None or a reason string, else None."""
    if value is None:
        return "not measured (no data recorded for this run)"
    if isinstance(value, str):
        return f"not measured ({value})"
    return None


def _section_start(title: str, value: Any, what: str) -> tuple[list[str], list[str] | None]:
    """A section's heading lines, and its whole text when ``value`` says "not measured (reason)" (else None)."""
    lines = [f"## {title}", ""]
    missing = _not_measured(value)
    return lines, (lines + [f"{what}: {missing}.", ""] if missing else None)


def _markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` inside cells is escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


_number = finite_float  # a finite float, or None for anything else (bools, None, NaN, text)


def _shown(value: Any, show) -> str:
    """``show(number)`` of a finite number, ``n/a`` for anything else."""
    number = _number(value)
    return "n/a" if number is None else show(number)


def _percent(fraction: Any) -> str:
    return _shown(fraction, lambda number: f"{100 * number:.2f} %")


def _fixed(value: Any, digits: int = 3) -> str:
    return _shown(value, lambda number: f"{number:.{digits}f}")


def _kwh(value: Any) -> str:
    return _shown(value, lambda number: f"{number:.4g} kWh")


def _clock(number: float) -> str:
    minutes, seconds = divmod(number, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{number:.1f} s ({hours:d}:{minutes:02d}:{seconds:04.1f})"


def _seconds(value: Any) -> str:
    return _shown(value, _clock)


def _bytes(value: Any) -> str:
    """Parameter memory as NeSsi states it: ``46,512 B (46.512 K)``."""
    return _shown(value, lambda number: f"{int(number):,} B ({nessi_memory(number)})")


def _macs(value: Any) -> str:
    """MACs as NeSsi states them: ``29,234,920 (29.235 M)``."""
    return _shown(value, lambda number: f"{int(number):,} ({nessi_macs(number)})")


def _verdict(ok: Any) -> str:
    return "within the limit" if ok is True else "OVER THE LIMIT" if ok is False else "not checked"


def _section_header(run: dict[str, Any]) -> list[str]:
    dataset = run["dataset"]
    synthetic = dataset["synthetic"]
    edition = run.get("edition")
    title = f"# DCASE{edition if edition else '2022-2025'} Task 1 run report: {run['set_id']}" + (" [SYNTHETIC DATA]" if synthetic else "")
    lines = [title, ""]
    if synthetic:
        lines += [
            "> **WARNING: SYNTHETIC DATA, NOT THE REAL DATASET.** Every figure below was computed on the",
            f"> built-in synthetic demo data ({dataset.get('name', 'demo')}). It checks that the system runs end to",
            "> end; it says nothing about performance on TAU Urban Acoustic Scenes 2022 Mobile.",
            "",
        ]
    created = run.get("created") or dt.datetime.now().astimezone().isoformat(timespec="seconds")
    kind = "synthetic demo data" if synthetic else "real data"
    lines += [
        f"- Dataset: **{dataset.get('name', 'unknown')}** ({kind}) at `{dataset.get('path', 'unknown')}`",
        f"- Parameter set: `{run['set_id']}`: {run.get('description') or 'no description'}",
        f"- Mode: `{run['mode']}`" + MODE_EXPLANATIONS.get(run["mode"], ""),
        f"- Report written: {created}",
        "",
    ]
    return lines


def _section_hashes(hashes: Any) -> list[str]:
    lines, missing = _section_start("Parameters and stage folders", hashes, "Stage hashes")
    if missing:
        return missing
    lines += ["Each stage writes to a folder named by a hash of exactly the parameters it depends on; the same",
              "hash means the same parameters (and a rerun reuses that stage's output).", ""]
    lines.append(_markdown_table(["Stage", "Parameter hash"], [(stage, f"`{value}`") for stage, value in hashes.items()]))
    return lines + [""]


def _section_timings(timings: Any) -> list[str]:
    lines, missing = _section_start("Stage timings", timings, "Stage timings")
    if missing:
        return missing
    rows = [(stage, _seconds(seconds)) for stage, seconds in timings.items()]
    total = sum(n for n in (_number(s) for s in timings.values()) if n is not None)
    rows.append(("**total**", _seconds(total)))
    return lines + [_markdown_table(["Stage", "Wall-clock time"], rows), ""]


def _section_evaluation(evaluation: Any) -> list[str]:
    lines, missing = _section_start("Results", evaluation, "Evaluation")
    if missing:
        return missing
    n_trials = evaluation.get("n_trials")
    lines += [
        f"- Overall accuracy: **{_percent(evaluation.get('overall_accuracy'))}**",
        f"- Overall log loss: **{_fixed(evaluation.get('overall_logloss'))}**",
        f"- Trials (independent trainings): {n_trials if n_trials is not None else 'n/a'}",
        "",
    ]
    table = evaluation.get("table")
    if table:
        lines += ["```text", str(table).rstrip("\n"), "```", ""]
    else:
        lines += ["Per-class and per-device table: not measured (no table given).", ""]
    return lines


def _section_reference(run: dict[str, Any]) -> list[str]:
    """The run's figures beside its edition's official ones, the latter labelled as reference."""
    edition = run.get("edition")
    reference = run.get("reference") or []  # the edition's official figures (utils.editions), put in the record by the pipeline
    lines = ["## Official figures (reference)", ""]
    if not reference:
        return lines + [f"not shown: the record names no known edition ({edition!r}); 2023, 2024 and 2025 have official figures", ""]
    evaluation = run.get("evaluation") if isinstance(run.get("evaluation"), dict) else {}
    synthetic = run["dataset"]["synthetic"]
    label = f"this run ({run['set_id']}{', SYNTHETIC data' if synthetic else ''})"
    rows = [[label, _percent(evaluation.get("overall_accuracy")), _fixed(evaluation.get("overall_logloss"))]]
    rows += [[f"reference: {name}", _percent(accuracy), _fixed(logloss) if logloss is not None else "not published"]
             for name, accuracy, logloss in reference]
    lines.append(_markdown_table(["system", "accuracy", "log loss"], rows))
    lines.append("")
    note = ("The reference rows are the official baseline's published development-set figures (real TAU data, "
            f"fold1_evaluate), DCASE{edition}.")
    if synthetic:
        note += " This run used SYNTHETIC demo data: its figures are not comparable with them."
    return lines + [note, ""]


def _section_quantization(quantization: Any) -> list[str]:
    lines, missing = _section_start("Keras model and TFLite conversion", quantization, "Accuracy after conversion")
    if missing:
        return missing
    variants = list(quantization.items())
    if not variants:
        return lines + ["Accuracy after conversion: not measured (no model variant was evaluated).", ""]
    reference_accuracy = _number(variants[0][1].get("accuracy")) if variants else None
    rows = []
    for variant, figures in variants:
        accuracy = _number(figures.get("accuracy"))
        change = ("" if accuracy is None or reference_accuracy is None or variant == variants[0][0]
                  else f"{100 * (accuracy - reference_accuracy):+.2f} points")
        rows.append((variant, _percent(accuracy), _fixed(figures.get("logloss", figures.get("log_loss"))), change))
    lines.append(_markdown_table(["Model", "Accuracy", "Log loss", f"Accuracy change vs {variants[0][0]}"], rows))
    return lines + [""]


def _section_complexity(complexity: Any) -> list[str]:
    lines, missing = _section_start("Complexity (NeSsi, as the challenge counts it)", complexity, "Model complexity")
    if missing:
        return missing
    limits = complexity.get("limits") or {}
    rows = [
        ("MACs per inference (1 s of audio)", _macs(complexity.get("total_macs")),
         _macs(limits.get("macs")) if limits.get("macs") is not None else "n/a", _verdict(complexity.get("macs_ok"))),
        ("Parameter memory (all weights)", _bytes(complexity.get("total_weight_bytes")),
         _bytes(limits.get("memory_bytes")) if limits.get("memory_bytes") is not None else "n/a",
         _verdict(complexity.get("memory_ok"))),
        ("Peak activation memory", _bytes(complexity.get("peak_memory_bytes")),
         _bytes(limits.get("peak_memory_bytes")) if limits.get("peak_memory_bytes") is not None else "no limit", ""),
    ]
    return lines + [_markdown_table(["Figure", "Value", "Limit", "Verdict"], rows), ""]


def _section_energy(energy: Any) -> list[str]:
    lines, missing = _section_start("Energy (codecarbon, offline)", energy, "Energy")
    if missing:
        return missing
    rows = []
    measured_records = []
    for phase in list(PHASE_NAMES) + [p for p in energy if p not in PHASE_NAMES]:
        record = energy.get(phase)
        if record is None:
            continue
        note = _energy_provenance(record)
        if record.get("measured"):
            measured_records.append(record)
            rows.append((phase, _kwh(record.get("energy_kwh")), _kwh(record.get("cpu_energy_kwh")),
                         _kwh(record.get("gpu_energy_kwh")), _kwh(record.get("ram_energy_kwh")),
                         _seconds(record.get("duration_seconds")), record.get("cpu_energy_source", "unknown"), note))
        else:
            rows.append((phase, f"not measured ({record.get('reason', 'no reason given')})", "", "", "",
                         _seconds(record.get("duration_seconds")), "", note))
    if not rows:
        return lines + ["Energy: not measured (no phase was tracked in this run).", ""]
    lines.append(_markdown_table(["Phase", "Energy", "CPU", "GPU", "RAM", "Duration", "CPU energy", "When measured"], rows))
    summary = energy_summary(energy)
    consumption = summary["energy_consumption"]
    lines += ["", "Submission figures (`system.energy_consumption` of the meta file):", ""]
    for key, kwh in consumption.items():
        text = _kwh(kwh) if kwh is not None else f"not measured ({summary['not_measured'][key]})"
        dates = summary.get("measured_when_the_stage_ran", {}).get(key)
        if kwh is not None and dates:
            text += f" (stored figure: measured when the stage ran, {', '.join(map(str, dates))}; this run reused it)"
        lines.append(f"- {key}: {text}")
    ratio = summary.get("inference_over_baseline_ratio")
    lines.append("- inference / baseline_inference: "
                 + (f"{ratio:.3f} (the system's inference energy in units of the official baseline's on this machine, "
                    f"same test items, batch size and threads; below 1 is less; its inverse, kWh_baseline / kWh_submission, "
                    f"is {summary['baseline_over_inference_energy_ratio']:.3f})"
                    if ratio is not None and summary.get("baseline_over_inference_energy_ratio") is not None
                    else "not computed (needs both the inference and the baseline inference energy)"))
    if measured_records:
        first = measured_records[0]
        methods = first.get("tracking_methods") or {}
        lines += [
            "",
            f"How it was measured: codecarbon {first.get('codecarbon_version', '?')}, "
            f"scope `{first.get('tracking_scope', 'machine')}` (the whole machine, so other work running at the "
            f"same time is included); CPU `{methods.get('cpu', 'unknown')}` ({first.get('cpu_energy_source', 'unknown')}), "
            f"GPU `{methods.get('gpu', 'unknown')}`, RAM `{methods.get('ram', 'unknown')}`; "
            f"CPU model {first.get('cpu_model') or 'unknown'}, country {first.get('country_iso_code', '?')}.",
        ]
        if any(r.get("cpu_energy_source") == "estimated" for r in measured_records):
            lines += ["", "The CPU energy is an **estimate** (no hardware energy counter such as RAPL was readable): "
                          "compare it only with figures estimated the same way on the same machine."]
        warnings = list(dict.fromkeys(w for r in measured_records for w in r.get("codecarbon_warnings") or []))
        if warnings:
            lines += ["", "codecarbon said:", ""] + [f"- {w}" for w in warnings]
    return lines + [""]


def _energy_provenance(record: dict[str, Any]) -> str:
    """When a phase's figure was measured: in this run, or stored by the run that computed a reused stage."""
    dates = [str(d) for d in record.get("measured_at_all") or [] if d]
    if record.get("reused"):
        return ("reused stage: measured when it ran, " + ", ".join(dates)) if dates else "reused stage: no stored figure"
    if record.get("resumed"):
        parts = record.get("parts") or len(dates)
        text = f"this run; the stage resumed: sum of {parts} part(s) ({', '.join(dates)})"
        if record.get("resume_note"):
            text += f"; {record['resume_note']}"
        return text
    return "this run"


def _section_plots(plots: Any, report_dir: Path) -> list[str]:
    lines, missing = _section_start("Figures", plots, "Figures")
    if missing:
        return missing
    if not plots:
        return lines + ["Figures: not measured (no figure was drawn in this run).", ""]
    for name, relative in plots.items():
        if (report_dir / str(relative)).is_file():
            lines += [f"### {name}", "", f"![{name}]({Path(relative).as_posix()})", ""]
        else:
            lines += [f"### {name}", "", f"not measured (file missing: `{relative}`)", ""]
    return lines


def _section_outputs(outputs: Any) -> list[str]:
    lines, missing = _section_start("Output files", outputs, "Outputs")
    if missing:
        return missing
    return lines + [f"- {name}: `{path}`" for name, path in outputs.items()] + [""]


def _check_run(run: Any) -> None:
    if not isinstance(run, dict):
        raise Task1aError("the run description for the report must be a dict (see write_run_report)")
    for key in ("dataset", "set_id", "mode"):
        if key not in run:
            raise Task1aError(f"the run description for the report lacks '{key}'; the lead's run dict must set it")
    dataset = run["dataset"]
    if not isinstance(dataset, dict) or not isinstance(dataset.get("synthetic"), bool):
        raise Task1aError("run['dataset'] must be a dict with 'synthetic': true/false (and 'name', 'path')")
    for key in ("hashes", "timings", "evaluation", "complexity", "energy", "quantization", "plots", "outputs"):
        value = run.get(key)
        if value is not None and not isinstance(value, (dict, str)):
            raise Task1aError(f"run['{key}'] must be a dict, a reason string or None, not {type(value).__name__}")


def render_run_report(run: dict[str, Any], report_dir: str | os.PathLike = ".") -> str:
    """The report's markdown text (see :func:`write_run_report`); figure links are checked in ``report_dir``."""
    _check_run(run)
    lines = _section_header(run)
    lines += _section_evaluation(run.get("evaluation"))
    lines += _section_reference(run)
    lines += _section_quantization(run.get("quantization"))
    lines += _section_complexity(run.get("complexity"))
    lines += _section_energy(run.get("energy"))
    lines += _section_timings(run.get("timings"))
    lines += _section_hashes(run.get("hashes"))
    lines += _section_plots(run.get("plots"), Path(report_dir))
    lines += _section_outputs(run.get("outputs"))
    return "\n".join(lines).rstrip("\n") + "\n"


def write_run_report(path: str | os.PathLike, run: dict[str, Any]) -> str:
    """Write the run's ``report.md`` at ``path`` (atomically) and return its text for printing.

    ``run`` (filled by the pipeline; keys other than ``dataset``, ``set_id`` and ``mode`` are
    optional; an optional section given as None or as a reason string is reported as
    "not measured (reason)")::

        dataset:      {name: str, synthetic: bool, path: str}
        set_id:       str                     parameter set
        edition:      2023 | 2024 | 2025      submission.edition: whose official figures are shown as reference
        train_split:  int                     dataset.train_split (DCASE2024: which split's figure is the run's)
        description:  str                     the set's description
        mode:         "dev" | "eval"
        created:      str                     ISO time (default: now)
        hashes:       {features: str, learner: str, recognizer: str}   stage parameter hashes
        timings:      {stage: seconds}        wall-clock time per stage, in run order
        evaluation:   {table: str (formatted by utils.evaluation), overall_accuracy: fraction in [0, 1],
                       overall_logloss: float, n_trials: int}
        complexity:   {total_macs: int, total_weight_bytes: int, peak_memory_bytes: int,
                       macs_ok: bool, memory_ok: bool, limits: {macs: int, memory_bytes: int}}
        energy:       EnergyMeter.results(): {phase: record}
        quantization: {model variant: {accuracy: fraction, logloss: float}}, the Keras model first
                      (e.g. keras, tflite_float, tflite_int8)
        plots:        {name: PNG path relative to the report's folder}
        outputs:      {name: path}
    """
    path = Path(path)
    text = render_run_report(run, path.parent)
    write_text_atomic(path, text)
    return text


# ------------------------------------------------------------------------------------------- ranking
def _checked_setups(setups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The setups to rank, each checked: a unique ``name``, ``accuracy`` in [0, 1], ``memory`` and ``macs`` >= 0."""
    if isinstance(setups, (str, bytes, dict)) or not isinstance(setups, Sequence) or not setups:
        raise Task1aError("rank_systems needs a non-empty list of setups with name, accuracy, memory and macs")
    rows = []
    for index, setup in enumerate(setups):
        if not isinstance(setup, dict):
            raise Task1aError(f"setup #{index + 1} to rank is not a dict with name, accuracy, memory and macs")
        name = setup.get("name")
        if not isinstance(name, str) or not name:
            raise Task1aError(f"setup #{index + 1} to rank has no 'name'")
        for key in RANKING_WEIGHTS:
            if _number(setup.get(key)) is None:
                raise Task1aError(f"setup '{name}' has no numeric '{key}' (got {setup.get(key)!r}); "
                                  "rank only evaluated setups with NeSsi figures")
        if not 0 <= float(setup["accuracy"]) <= 1:
            raise Task1aError(f"setup '{name}': accuracy {setup['accuracy']!r} is not a fraction in [0, 1]; "
                              "divide a percentage by 100")
        if float(setup["memory"]) < 0 or float(setup["macs"]) < 0:
            raise Task1aError(f"setup '{name}': memory and macs must not be negative")
        rows.append(setup)
    names = [row["name"] for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Task1aError(f"setup names to rank must be unique; repeated: {', '.join(duplicates)}")
    return rows


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with their ranks (see :func:`rank_systems`), best first."""
    table = pd.DataFrame({key: [float(row[key]) for row in rows] for key in RANKING_WEIGHTS})
    weighted = pd.Series(0.0, index=table.index)
    ranks = {}
    for key, weight in RANKING_WEIGHTS.items():
        ranks[key] = table[key].rank(method="min", ascending=not RANKING_HIGHER_IS_BETTER[key]).astype(int)
        weighted += weight * ranks[key]
    final = weighted.rank(method="min").astype(int)
    ranked = []
    for index, row in enumerate(rows):
        entry = dict(row)
        entry.update({f"{key}_rank": int(ranks[key][index]) for key in RANKING_WEIGHTS})
        entry["weighted_rank"] = float(weighted[index])
        entry["final_rank"] = int(final[index])
        ranked.append(entry)
    # Shared final ranks are listed by accuracy, then name, so the order is reproducible.
    ranked.sort(key=lambda e: (e["final_rank"], -float(e["accuracy"]), e["name"]))
    return ranked


def setup_limit_problems(setup: dict[str, Any], limits: ModelSizeSettings | None = None) -> list[str]:
    """:func:`utils.complexity.limit_problems` of a setup's ``memory`` and ``macs`` (DCASE2023 limits by default)."""
    figures = {"total_macs": int(float(setup["macs"])), "total_weight_bytes": int(float(setup["memory"]))}
    return limit_problems(figures, limits or DCASE2023_LIMITS)


def rank_systems(setups: Sequence[dict[str, Any]], limits: ModelSizeSettings | None = None) -> list[dict[str, Any]]:
    """Rank evaluated setups as DCASE2023 Task 1 does; best first, then the setups it does not rank.

    Each setup: ``name``, ``accuracy`` (fraction in [0, 1]), ``memory`` (parameter bytes, NeSsi) and
    ``macs`` (NeSsi); other keys are kept. A setup over the complexity ``limits`` (``model_size``'s
    ``max_macs`` and ``max_memory_bytes``, the DCASE2023 ones by default) is not ranked: it comes after the ranked ones
    (by accuracy, then name) with ``final_rank`` None and ``over_limit`` naming each figure over its
    limit (empty for the ranked ones). The others are ranked by the weighted average of three separate
    ranks: accuracy (higher is better, weight 0.5), memory and MACs (lower is better, 0.25 each).
    Equal values share the best of their ranks (1, 2, 2, 4: the usual competition ranking; the task
    description does not spell out ties), and equal weighted ranks share the final rank. Adds
    ``accuracy_rank``, ``memory_rank``, ``macs_rank``, ``weighted_rank`` and ``final_rank``.
    """
    within, over = [], []
    for row in _checked_setups(setups):
        problems = setup_limit_problems(row, limits)
        (over if problems else within).append(dict(row, over_limit=problems))
    ranked = _ranked(within) if within else []
    over.sort(key=lambda e: (-float(e["accuracy"]), e["name"]))
    not_ranked = {f"{key}_rank": None for key in RANKING_WEIGHTS}
    return ranked + [dict(entry, **not_ranked, weighted_rank=None, final_rank=None) for entry in over]


def format_ranking_table(ranked: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`rank_systems` output for the console; setups over the limits last,
    marked ``NOT RANKED``, and why below the table."""
    if not ranked:
        return "no setups to rank"
    if any(key not in ranked[0] for key in ("final_rank", "weighted_rank", "accuracy_rank")):
        raise Task1aError("format_ranking_table needs the output of rank_systems (ranks missing)")
    shown = lambda value, text: "-" if value is None else text  # noqa: E731
    frame = pd.DataFrame({
        "Rank": [shown(e["final_rank"], e["final_rank"]) for e in ranked],
        "System": [e["name"] for e in ranked],
        "Weighted rank": ["NOT RANKED" if e["final_rank"] is None else f"{e['weighted_rank']:.2f}" for e in ranked],
        "Accuracy": [f"{100 * float(e['accuracy']):.2f} %" for e in ranked],
        "Acc. rank": [shown(e["accuracy_rank"], e["accuracy_rank"]) for e in ranked],
        "Memory": [nessi_memory(float(e["memory"])) for e in ranked],
        "Mem. rank": [shown(e["memory_rank"], e["memory_rank"]) for e in ranked],
        "MACs": [nessi_macs(float(e["macs"])) for e in ranked],
        "MACs rank": [shown(e["macs_rank"], e["macs_rank"]) for e in ranked],
    })
    weights = ", ".join(f"{key} {weight:g}" for key, weight in RANKING_WEIGHTS.items())
    lines = [frame.to_string(index=False),
             f"Weighted rank = {weights} (DCASE2023 Task 1); lower is better. Memory: parameter bytes in "
             "thousands (K), MACs in millions (M), as NeSsi prints them."]
    lines += [f"NOT RANKED, over the complexity limits: {e['name']}: {'; '.join(e['over_limit'])}"
              for e in ranked if e.get("over_limit")]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- evaluated setups
def collect_results(system_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every evaluated setup (a run's results, :meth:`utils.workspace.Workspace.evaluated_results`), oldest first."""
    from utils.workspace import Workspace

    setups = []
    for path, results in Workspace(system_dir).evaluated_results():
        if results.n_trials is None:  # one trial's scores inside a run of several
            continue
        complexity = results.complexity or {}
        setups.append({
            "name": f"{results.set_id or '?'}/{path.parent.parent.name[:8]}/{path.parent.name}",
            "set_id": results.set_id,
            "mode": results.mode,
            "dataset": results.dataset,
            "synthetic": results.synthetic,
            "accuracy": _number(results.overall_accuracy),
            "logloss": _number(results.overall_logloss),
            "memory": complexity.get("total_weight_bytes"),
            "macs": complexity.get("total_macs"),
            "hash": f"{path.parent.parent.name}/{path.parent.name}",
            "n_trials": results.n_trials,
            "content": results.content,
        })
    return setups


RESULT_GROUPS = (
    (False, "dev", "Real data, development mode (fold1_evaluate)"),
    (False, "eval", "Real data, challenge mode (evaluation set)"),
    (True, "dev", "SYNTHETIC demo data, development mode (says nothing about the real task)"),
    (True, "eval", "SYNTHETIC demo data, challenge mode (says nothing about the real task)"),
)


def _result_row(setup: dict[str, Any], limits: ModelSizeSettings | None) -> tuple:
    """One row of the result tables: the setup's figures, complexity in NeSsi's units, and whether it is within the limits."""
    measured = setup["memory"] is not None and setup["macs"] is not None
    verdict = ("n/a" if not measured else "OVER" if setup_limit_problems(setup, limits) else "ok")
    return (setup["set_id"], setup["dataset"], _percent(setup["accuracy"]), _fixed(setup["logloss"]),
            nessi_memory(float(setup["memory"])) if measured else "n/a",
            nessi_macs(float(setup["macs"])) if measured else "n/a", verdict, setup["n_trials"], setup["hash"])


RESULT_HEADERS = ("set", "dataset", "accuracy", "log loss", "memory", "MACs", "limits", "trials", "hash")


EXPORT_COLUMNS = ("set", "edition", "data", "mode", "seeds", "accuracy", "log_loss", "macs", "parameter_memory_bytes",
                  "energy_training_kwh", "energy_inference_kwh", "hash")
RESULT_FORMATS = ("md", "csv", "json")


def result_rows(system_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per evaluated setup (:data:`EXPORT_COLUMNS`), oldest first: accuracy as a fraction,
    log loss, NeSsi MACs and parameter bytes, the training and inference energy (kWh), None where not measured."""
    rows = []
    for setup in collect_results(system_dir):
        details = setup["content"]
        energy = ((details.get("energy") or {}).get("energy_consumption") or {}) if isinstance(details.get("energy"), dict) else {}
        seeds = details.get("seeds") or ([details["seed"]] if details.get("seed") is not None else [])
        rows.append({
            "set": setup["set_id"], "edition": details.get("edition"), "data": "synthetic" if setup["synthetic"] else "real",
            "mode": setup["mode"], "seeds": " ".join(str(seed) for seed in seeds), "accuracy": setup["accuracy"],
            "log_loss": setup["logloss"], "macs": setup["macs"], "parameter_memory_bytes": setup["memory"],
            "energy_training_kwh": _number(energy.get("training")), "energy_inference_kwh": _number(energy.get("inference")),
            "hash": setup["hash"],
        })
    return rows


def format_result_rows(rows: Sequence[dict[str, Any]], result_format: str) -> str:
    """``rows`` (:func:`result_rows`) as a Markdown table (percent, NeSsi units), CSV or JSON (plain numbers)."""
    if result_format == "json":
        import json

        return json.dumps(list(rows), indent=2)
    if result_format == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: "" if row[key] is None else row[key] for key in EXPORT_COLUMNS} for row in rows)
        return buffer.getvalue().rstrip("\n")
    if result_format == "md":
        headers = ("set", "edition", "data", "mode", "seeds", "accuracy", "log loss", "MACs", "parameter memory",
                   "energy training (kWh)", "energy inference (kWh)", "hash")
        return _markdown_table(headers, [
            [row["set"], row["edition"] or "n/a", row["data"], row["mode"], row["seeds"] or "n/a", _percent(row["accuracy"]),
             _fixed(row["log_loss"]), nessi_macs(float(row["macs"])) if row["macs"] is not None else "n/a",
             nessi_memory(float(row["parameter_memory_bytes"])) if row["parameter_memory_bytes"] is not None else "n/a",
             _shown(row["energy_training_kwh"], lambda v: f"{v:.6f}"), _shown(row["energy_inference_kwh"], lambda v: f"{v:.6f}"),
             row["hash"]] for row in rows])
    raise Task1aError(f"unknown result format {result_format!r}; choose one of {', '.join(RESULT_FORMATS)}")


def show_results(system_dir: str | os.PathLike, limits: ModelSizeSettings | None = None, result_format: str | None = None) -> str:
    """Print (and return) the evaluated setups, one table per data kind (real, synthetic) and mode, and
    the DCASE2023 ranking among the real development-mode results (the only comparable ones).

    Memory and MACs are in NeSsi's units; ``limits`` (``model_size``'s ``max_macs`` and
    ``max_memory_bytes``, the DCASE2023 ones by default) mark each setup ``ok`` or ``OVER``, and a
    setup over them is listed after the ranked ones, never ranked. ``result_format`` (``md``, ``csv``,
    ``json``) prints instead one row per setup (:func:`result_rows`) for a paper's table or a spreadsheet.
    """
    if result_format is not None:
        text = format_result_rows(result_rows(system_dir), result_format)
        print(text)
        return text
    setups = collect_results(system_dir)
    if not setups:
        text = f"no evaluated setups under {Path(system_dir) / 'evaluator'} yet; run python task1a.py first"
        print(as_typed(text))
        return text
    known = {(synthetic, mode) for synthetic, mode, _ in RESULT_GROUPS}
    groups = [(title, [s for s in setups if (bool(s["synthetic"]), s["mode"]) == (synthetic, mode)])
              for synthetic, mode, title in RESULT_GROUPS]
    groups.append(("Other (mode unknown)", [s for s in setups if (bool(s["synthetic"]), s["mode"]) not in known]))
    blocks = [f"{title}:\n" + _plain_table(RESULT_HEADERS, [_result_row(s, limits) for s in group])
              for title, group in groups if group]
    rankable = [s for s in setups if not s["synthetic"] and s["mode"] == "dev"
                and s["accuracy"] is not None and s["memory"] is not None and s["macs"] is not None]
    if rankable:
        blocks.append("DCASE2023 ranking of the real development-mode results (0.5 accuracy, 0.25 memory, 0.25 MACs):\n"
                      + format_ranking_table(rank_systems(rankable, limits)))
    else:
        blocks.append("DCASE2023 ranking: no real development-mode results with complexity figures yet "
                      "(synthetic and challenge-mode results are never ranked)")
    text = "\n\n".join(blocks)
    print(text)
    return text


def _plain_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ------------------------------------------------------------------------------ DCASE2024 subsets
def format_split_table(split_results: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    """The DCASE2024 tables: per training subset (%) the macro accuracy overall, class-wise and
    device-wise, the log loss, and the mean over the subsets (the 2024 ranking figure is the mean accuracy)."""
    if not split_results:
        return "no results of the training subsets to compare (run them in dev mode on labelled data)"
    first = split_results[0][1]
    labels = list(first.get("scene_labels") or first["class_wise"])
    devices = list(first["device_wise"])
    synthetic = any(results.get("synthetic") for _, results in split_results)
    percent = lambda value: f"{value * 100:.1f}"  # noqa: E731

    def table(title: str, columns: Sequence[str], value, show=percent) -> str:
        figures = [[value(results, column) for column in columns] for _, results in split_results]
        rows = [[f"{split} %", *map(show, row)] for (split, _), row in zip(split_results, figures)]
        rows.append(["mean", *[show(math.fsum(column) / len(column)) for column in zip(*figures)]])
        return f"{title}:\n" + _plain_table(["split", *columns], rows)

    accuracy = table("overall macro accuracy (%)", ["accuracy"], lambda r, c: r["overall_accuracy"])
    log_loss = table("overall log loss", ["log loss"], lambda r, c: r["overall_logloss"], show=lambda v: f"{v:.3f}")
    classes = table("class-wise accuracy (%)", labels, lambda r, c: r["class_wise"].get(c, {}).get("accuracy", math.nan))
    by_device = table("device-wise accuracy (%)", devices, lambda r, c: r["device_wise"].get(c, {}).get("accuracy", math.nan))
    mean_accuracy = math.fsum(results["overall_accuracy"] for _, results in split_results) / len(split_results)
    header = "DCASE2024 training subsets" + (" on SYNTHETIC demo data (not the real TAU dataset)" if synthetic else " (real data)")
    ranking = f"mean accuracy over the {len(split_results)} subsets (the DCASE2024 ranking figure): {mean_accuracy * 100:.1f} %"
    return "\n\n".join([header, accuracy, log_loss, classes, by_device, ranking])
