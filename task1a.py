#!/usr/bin/env python
"""DCASE2022-2025 Task 1 baselines: low-complexity acoustic scene classification (TAU Urban Acoustic Scenes 2022 Mobile).

examples:
  python task1a.py -s demo -o                       the whole system on the built-in synthetic demo data
  python task1a.py                                  the active set (DCASE2023 baseline) on the real dataset
  python task1a.py --show_sets                      the parameter sets (DCASE2023, DCASE2024 splits, DCASE2025)
  python task1a.py -s demo --set learner_method_parameters.cnn.fit.epochs=3
  python task1a.py --check_complexity -p my.yaml    NeSsi MACs and parameter memory of your network, in seconds
  python task1a.py --mode eval --package LABEL      challenge mode: the submission zip
  python task1a.py --predict DIR --model M.tflite --output out.csv
  python task1a.py --show_results --format csv      every evaluated setup as a table for a paper or a spreadsheet

Every long flag takes either spelling (--show_sets or --show-sets). Parameters: task1a.yaml.

This file parses the command line (--help: this docstring) and calls utils.pipeline; utils.console quiets TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from utils import __version__, cli, console
from utils.errors import Task1aError, run_cli

log = logging.getLogger("utils.task1a")
TITLE, EXAMPLES = __doc__.split("\n\n")[0], __doc__[__doc__.index("examples:"):__doc__.index("\n\nThis file")]


def build_argument_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog=cli.typed_command(), description=TITLE, epilog=cli.as_typed(EXAMPLES),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("-s", "--parameter_set", help="parameter set id(s), comma separated (see --show_sets)")
    run.add_argument("-p", "--param_file", help="YAML merged over task1a.yaml (same structure); its values win over task1a.yaml's sets")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                     help="set one parameter, last of all (repeatable), e.g. --set learner_method_parameters.cnn.fit.epochs=3")
    run.add_argument("-o", dest="o", nargs="?", const=True, default=None, metavar="FILE",
                     help="alone: recompute every stage (as --overwrite); with FILE: write the system output there (as --output FILE)")
    run.add_argument("--overwrite", action="store_true", help="recompute every stage (otherwise finished stages are reused)")
    run.add_argument("-r", "--seed", "--r_seed", type=int, help="random seed (overrides general.seed; 0 is a seed)")
    run.add_argument("--trials", type=int, help="independent trainings with seeds seed, seed+1, ... (overrides learner iterations)")
    run.add_argument("--jobs", type=int, help="feature extraction processes (overrides feature_extractor.n_jobs; -1 = all cores)")
    run.add_argument("--workdir", metavar="DIR",
                     help="folder relative run-time paths (path.system, path.log, datasets) resolve against (overrides path.root; default: the current folder)")
    data = parser.add_argument_group("data")
    data.add_argument("--download_dataset", metavar="PATH",
                      help="download the TAU 2022 Mobile development set (and with --mode eval the evaluation set) into PATH")
    data.add_argument("--download_baseline_model", nargs="?", const=True, default=None, metavar="PATH", help="download the official baseline model "
                      "(sha256-verified) to recognizer.baseline_model (or PATH): its inference is the baseline_inference energy")
    data.add_argument("--predict", nargs="+", metavar="PATH", help="classify these recordings (files or folders) and write --output")
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="PATH", help="test and evaluate this .tflite model instead of the trained one (skips learning)")
    model.add_argument("--check_complexity", action="store_true",
                       help="measure the set's untrained network with NeSsi (seconds), print the table and verdict, exit 1 if over a limit")
    challenge = parser.add_argument_group("challenge")
    challenge.add_argument("-m", "--mode", choices=("dev", "eval"),
                           help="dev: development set (train fold / evaluate fold); eval: challenge mode (evaluation set output)")
    challenge.add_argument("--package", nargs="?", const=True, default=None, metavar="LABEL", help="challenge mode: write the submission zip of "
                           "submission.edition (2023, 2024, 2025) as LABEL.zip; LABEL defaults to submission.label")
    output = parser.add_argument_group("output")
    output.add_argument("--output", metavar="FILE", help="also write the system output CSV to this file")
    output.add_argument("--no_progress", action="store_true", help="no progress bars (they are off anyway when the output is not a terminal)")
    output.add_argument("--debug", action="store_true", help="show tracebacks, debug lines and every library's own output (TensorFlow, absl, the converter)")
    inspection = parser.add_argument_group("inspection")
    inspection.add_argument("--show_sets", action="store_true", help="list the parameter sets and exit")
    inspection.add_argument("--show_parameters", action="store_true", help="print the resolved parameters of the set(s) and exit")
    inspection.add_argument("--show_results", action="store_true", help="list every evaluated setup and the DCASE2023 ranking, then exit")
    inspection.add_argument("--format", choices=("md", "csv", "json"), help="with --show_results: one row per evaluated setup as a Markdown table, CSV or JSON")
    inspection.add_argument("-v", "--version", action="version", version=f"task1a {__version__}")
    return parser


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line, with ``-o`` resolved into ``overwrite`` / ``output``."""
    parser = build_argument_parser()
    args = parser.parse_args(argv)
    if args.format and not args.show_results:
        parser.error("--format chooses how --show_results prints; add --show_results")
    if args.o is True:
        args.overwrite = True
    elif args.o is not None:
        if args.output and args.output != args.o:
            parser.error(f"-o {args.o} and --output {args.output} name two output files; give one")
        args.output = args.o
    return args


def command_line_flags(args) -> dict:
    """The command line's own options as parameter overrides (``{key.path: value}``), checked."""
    given = {"general.seed": args.seed, "general.mode": args.mode, "feature_extractor.n_jobs": args.jobs}
    flags = {key: value for key, value in given.items() if value is not None}
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
    print("".join(f"skipped {name}: {reason}\n" for name, reason in failures.items()), end="", file=sys.stderr)
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
        text, over = pipeline.check_complexity(all_params, args.workdir)
        print(text, end="")
        return 1 if over else 0
    if args.show_results:
        from utils.reporting import show_results

        show_results(paths.system_dir(container.defaults, args.workdir), result_format=args.format)
        return 0
    if args.output:
        paths.check_output_path(Path(args.output), "--output")
    log_path = setup_run_logging(paths.log_dir(all_params[0], args.workdir), level=logging.DEBUG if args.debug else logging.INFO)
    log.info("task1a %s: %s; log file %s", __version__, what_runs(args, all_params), log_path)
    if args.download_dataset or args.download_baseline_model:
        return download(args, all_params[0])
    # the real dataset missing: the demo data instead (also where --predict finds the set's trained model)
    all_params = pipeline.resolve_sets(container, set_ids, command_line, flags, args.workdir, fallback=not (args.predict and args.model))
    if args.predict:
        return predict(args, all_params[0])
    options = pipeline.RunOptions(workdir=args.workdir, overwrite=args.overwrite, progress=not args.no_progress, package=args.package,
                                  model=Path(args.model) if args.model else None, output=Path(args.output) if args.output else None)
    pipeline.run_sets(all_params, options)
    return 0


def what_runs(args, all_params: list[dict]) -> str:
    """The first console line's subject: what this command is about to do."""
    if args.download_dataset or args.download_baseline_model:
        return "download " + " and ".join(what for what, asked in (("the TAU 2022 Mobile dataset", args.download_dataset),
                                                                   ("the official baseline model", args.download_baseline_model)) if asked)
    if args.predict:
        return f"classify {len(args.predict)} path(s) with {args.model or 'the trained model of set ' + all_params[0]['set_id']}"
    doing = "test and evaluate " + args.model if args.model else "train, test and evaluate"
    return (f"set{'s' if len(all_params) > 1 else ''} {', '.join(p['set_id'] for p in all_params)}, {all_params[0]['general']['mode']} mode "
            f"({doing}{', then package' if args.package else ''})")


def main(argv=None) -> int:
    args = parse_arguments(argv)
    if not args.debug:  # before TensorFlow loads: its C++ output goes to the log file, never the console
        console.divert_library_output()
    try:
        return run_cli(lambda: run(args), args.debug, resume_hint="rerun the same command (without -o) to resume where it stopped",
                       write_fix="free disk space or choose writable folders (path.system, path.log, --output), then rerun to resume")
    finally:
        console.restore()


if __name__ == "__main__":
    sys.exit(main())
