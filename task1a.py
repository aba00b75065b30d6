#!/usr/bin/env python
"""DCASE2022/2023 Task 1: low-complexity acoustic scene classification, the baseline system.

    python task1a.py -o                      all stages on the active set (overwrite)
    python task1a.py -s demo                 the built-in synthetic demo data
    python task1a.py --mode eval --output out.csv   challenge mode: system output for the evaluation set
    python task1a.py --predict DIR --model M.tflite --output out.csv   classify any recordings

This file parses the command line and calls :mod:`utils.pipeline`; parameters live in ``task1a.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) is not for the console; errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")

from utils import __version__  # noqa: E402
from utils.errors import Task1aError, run_cli  # noqa: E402

log = logging.getLogger("utils.task1a")


def _both_spellings(*flags: str) -> list[str]:
    """Each long flag as written and in the other convention (``--no_progress`` and ``--no-progress``)."""
    names = []
    for flag in flags:
        names.append(flag)
        if flag.startswith("--"):
            other = "--" + (flag[2:].replace("_", "-") if "_" in flag else flag[2:].replace("-", "_"))
            if other != flag:
                names.append(other)
    return names


def build_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(  # prog: the command actually used (task1a.py from a clone, task1a installed)
        description="DCASE2022/2023 Task 1 baseline: low-complexity acoustic scene classification (TAU Urban Acoustic Scenes 2022 Mobile).",
    )

    def add(*flags, **options):
        parser.add_argument(*_both_spellings(*flags), **options)

    add("-m", "--mode", choices=("dev", "eval"), help="dev: development set (train fold / evaluate fold); eval: challenge mode (evaluation set output)")
    add("-s", "--parameter_set", help="parameter set id(s), comma separated (see --show_sets)")
    add("-p", "--param_file", help="YAML merged over task1a.yaml (same structure); its values win over task1a.yaml's sets")
    add("--set", action="append", metavar="SECTION.KEY=VALUE", help="set one parameter, last of all (repeatable), e.g. --set learner_method_parameters.cnn.fit.epochs=3")
    # The official baseline's `-o FILE` writes the system output; a bare `-o` (ours) recomputes everything.
    add("-o", dest="o", nargs="?", const=True, default=None, metavar="FILE",
        help="alone: recompute every stage (as --overwrite); with FILE: write the system output there (as --output FILE)")
    add("--overwrite", action="store_true", help="recompute every stage (otherwise finished stages are reused)")
    add("--output", metavar="FILE", help="also write the system output CSV to this file")
    add("--show_parameters", action="store_true", help="print the resolved parameters of the set(s) and exit")
    add("--show_sets", action="store_true", help="list the parameter sets and exit")
    add("--show_results", action="store_true", help="list every evaluated setup and the DCASE2023 ranking, then exit")
    add("-v", "--version", action="version", version=f"task1a {__version__}")
    add("-r", "--seed", "--r_seed", type=int, help="random seed (overrides general.seed; 0 is a seed)")
    add("--trials", type=int, help="independent trainings with seeds seed, seed+1, ... (overrides learner iterations)")
    add("--jobs", type=int, help="feature extraction processes (overrides feature_extractor.n_jobs; -1 = all cores)")
    add("--download_dataset", metavar="PATH", help="download the TAU 2022 Mobile development set (and with --mode eval the evaluation set) into PATH")
    add("--download_baseline_model", nargs="?", const=True, default=None, metavar="PATH",
        help="download the official baseline model (sha256-verified) to recognizer.baseline_model (or PATH): its inference is the baseline_inference energy")
    add("--model", metavar="PATH", help="test and evaluate this .tflite model instead of the trained one (skips learning)")
    add("--predict", nargs="+", metavar="PATH", help="classify these recordings (files or folders) and write --output")
    add("--package", nargs="?", const=True, default=None, metavar="LABEL",
        help="challenge mode: write the submission zip LABEL.zip (LABEL.output.csv + LABEL.meta.yaml); LABEL defaults to submission.label")
    add("--check_complexity", action="store_true", help="measure the set's untrained network with NeSsi (seconds), print the table and verdict, exit 1 if over a limit")
    add("--workdir", metavar="DIR", help="folder relative run-time paths (path.system, path.log, datasets) resolve against (overrides path.root; default: the current folder)")
    add("--no_progress", action="store_true", help="no progress bars (they are off anyway when the output is not a terminal)")
    add("--debug", action="store_true", help="show tracebacks")
    return parser


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line, with ``-o`` resolved into ``overwrite`` / ``output``."""
    parser = build_argument_parser()
    args = parser.parse_args(argv)
    if args.o is True:
        args.overwrite = True
    elif args.o is not None:
        if args.output and args.output != args.o:
            parser.error(f"-o {args.o} and --output {args.output} name two output files; give one")
        args.output = args.o
    return args


def command_line_flags(args) -> dict:
    """The command line's own options as parameter overrides (``{key.path: value}``), checked."""
    flags = {}
    if args.seed is not None:
        flags["general.seed"] = args.seed
    if args.mode is not None:
        flags["general.mode"] = args.mode
    if args.jobs is not None:
        flags["feature_extractor.n_jobs"] = args.jobs
    if args.trials is not None:
        if args.trials < 1:
            raise Task1aError(f"--trials must be >= 1, got {args.trials}")
        flags["iterations"] = args.trials  # the learner method's, resolved per set
    return flags


def download(args, params: dict) -> int:
    """``--download_baseline_model`` and/or ``--download_dataset``."""
    from utils.download import download_baseline_model, download_dataset
    from utils.paths import resolve_run_path

    if args.download_baseline_model:
        given = args.download_baseline_model
        target = resolve_run_path(params, params["recognizer"]["baseline_model"] if given is True else given, args.workdir)
        download_baseline_model(target, progress=not args.no_progress)
        print(f"baseline model: {target}")
    if args.download_dataset:
        which = ("development", "evaluation") if args.mode == "eval" else ("development",)
        download_dataset(args.download_dataset, which=which, progress=not args.no_progress)
    return 0


def predict(args, params: dict) -> int:
    from utils.pipeline import predict as predict_recordings

    if not args.output:
        raise Task1aError("--predict needs --output FILE for the system output")
    failures = predict_recordings(params, args.predict, Path(args.output), Path(args.model) if args.model else None, args.workdir, not args.no_progress)
    for name, reason in failures.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if failures:
        raise Task1aError(f"{len(failures)} recording(s) could not be read (listed above); the others are in {args.output}")
    return 0


def run(args) -> int:
    from utils import paths, pipeline
    from utils.parameters import ParameterContainer, command_line_layer
    from utils.reporting import setup_run_logging

    container = ParameterContainer(override_path=args.param_file)
    if args.show_sets:
        for set_id in container.set_ids():
            print(f"{'*' if set_id == container.active_set else ' '} {set_id:<30} {container.sets[set_id].get('description', '')}")
        return 0
    command_line = command_line_layer(args.set or [], container.defaults)
    set_ids = [s.strip() for s in args.parameter_set.split(",")] if args.parameter_set else [container.active_set]
    flags = command_line_flags(args)
    all_params = pipeline.resolve_sets(container, set_ids, command_line, flags, args.workdir)
    if args.show_parameters:
        print("".join(container.describe(params, command_line) for params in all_params), end="")
        return 0
    if args.check_complexity:
        from utils.complexity import check_complexity

        checked = [check_complexity(params) for params in all_params]
        for text, _ in checked:
            print(text, end="")
        return 1 if any(problems for _, problems in checked) else 0
    if args.show_results:
        from utils.reporting import show_results

        show_results(paths.system_dir(container.defaults, args.workdir))
        return 0
    if args.output:
        paths.check_output_path(Path(args.output), "--output")
    log_path = setup_run_logging(paths.log_dir(all_params[0], args.workdir))
    log.info("task1a %s, log file %s", __version__, log_path)
    if args.download_dataset or args.download_baseline_model:
        return download(args, all_params[0])
    # the real dataset missing: the demo data instead (also where --predict finds the set's trained model)
    all_params = pipeline.resolve_sets(container, set_ids, command_line, flags, args.workdir, fallback=not (args.predict and args.model))
    if args.predict:
        return predict(args, all_params[0])
    options = pipeline.RunOptions(workdir=args.workdir, overwrite=args.overwrite, progress=not args.no_progress,
                                  model=Path(args.model) if args.model else None, output=Path(args.output) if args.output else None,
                                  package=args.package)
    pipeline.run_sets(all_params, options)
    return 0


def main(argv=None) -> int:
    args = parse_arguments(argv)
    return run_cli(lambda: run(args), args.debug, resume_hint="rerun the same command (without -o) to resume where it stopped",
                   write_fix="free disk space or choose writable folders (path.system, path.log, --output), then rerun to resume")


if __name__ == "__main__":
    sys.exit(main())
