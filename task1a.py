#!/usr/bin/env python
"""DCASE2022/2023 Task 1: low-complexity acoustic scene classification, the baseline system.

    python task1a.py -o                      all stages on the active set (overwrite)
    python task1a.py -s demo                 the built-in synthetic demo data
    python task1a.py --mode eval --output out.csv   challenge mode: system output for the evaluation set
    python task1a.py --predict DIR --model M.tflite --output out.csv   classify any recordings

This file only wires the stages of :mod:`utils.stages`; parameters live in ``task1a.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) is not for the console; errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")

from utils import __version__  # noqa: E402
from utils.errors import Task1aError  # noqa: E402

log = logging.getLogger("task1a")


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
    add("--package", metavar="LABEL", help="challenge mode: write the submission zip LABEL.zip (LABEL.output.csv + LABEL.meta.yaml)")
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


def resolve_sets(args, container, command_line: dict, fallback: bool = False) -> list[dict]:
    """The parameters of each set asked for, with ``command_line`` (the ``--set`` layer) and the flags applied.

    With ``fallback``, a set whose real development set is not found is replaced (one log line) by
    ``general.fallback_set`` on the demo data, keeping the mode and the command line's overrides.
    """
    from utils import paths, stages
    from utils.parameters import apply_overrides, check_choices, check_structure

    set_ids = [s.strip() for s in args.parameter_set.split(",")] if args.parameter_set else [container.active_set]
    resolved = []
    for set_id in set_ids:
        params = container.resolve(set_id, command_line=command_line)
        if fallback and params["general"]["fallback_to_demo"] and not stages.development_set_found(params, paths.run_root(params, args.workdir)):
            missing = paths.resolve_run_path(params, params["dataset"]["parameters"]["development"], args.workdir)
            fallback_set = params["general"]["fallback_set"]
            # The set asked for keeps its own values (batch size, training subset, mode...) on the demo data.
            params = container.resolve(fallback_set, instead_of=set_id, command_line=command_line)
            log.warning(
                "development set not found at %s: running set '%s' with the values of set '%s' on the built-in %s instead (general.fallback_to_demo: false turns this off)",
                missing, fallback_set, set_id, stages.SYNTHETIC_LABEL,
            )
            for key, source in container.provenance(set_id).items():
                if key.startswith(("dataset.method", "dataset_method_parameters")) and source.endswith(f"set {set_id}"):
                    log.warning("%s of set '%s' (%s) is not used on the demo data", key, set_id, source)
        overrides = {}
        if args.seed is not None:
            overrides["general.seed"] = args.seed
        if args.mode is not None:
            overrides["general.mode"] = args.mode
        if args.jobs is not None:
            overrides["feature_extractor.n_jobs"] = args.jobs
        if args.trials is not None:
            if args.trials < 1:
                raise Task1aError(f"--trials must be >= 1, got {args.trials}")
            overrides[f"learner_method_parameters.{params['learner']['method']}.iterations"] = args.trials
        params = apply_overrides(params, overrides)
        check_structure(container.defaults["general"], params["general"], "general", "command line")
        check_choices(params, "command line")
        resolved.append(params)
    return resolved


def show_sets(container) -> None:
    for set_id in container.set_ids():
        marker = "*" if set_id == container.active_set else " "
        print(f"{marker} {set_id:<30} {container.sets[set_id].get('description', '')}")


def run_set(params: dict, args) -> int:
    """All stages of one parameter set; returns the exit status."""
    from utils import paths, stages
    from utils.distribute import WorkerGroup
    from utils.energy import EnergyMeter, energy_summary
    from utils.files import write_yaml_atomic
    from utils.parameters import stage_hash
    from utils.reporting import write_run_report

    root = paths.run_root(params, args.workdir)
    progress = not args.no_progress
    overwrite = args.overwrite
    timer = stages.StageTimer()
    # On a multi-worker cluster the chief prepares the data and features while the others wait. The
    # cluster forms first: a multi-worker strategy needs TensorFlow untouched (Keras objects included).
    group = WorkerGroup(params["learner"]["distribute"])
    # Before any work: the Keras configs of the learner (optimizer, loss, callbacks) are valid.
    stages.check_learner_settings(params)
    with timer("dataset"):
        data = group.chief_first(stages.prepare_data, params, root, progress=progress and group.chief)
    params = data.params
    mode = params["general"]["mode"]
    flow = params["flow"]
    log.info("set %s (%s), mode %s, data: %s", params["set_id"], params["description"], mode, data.description)
    if mode == "eval" and data.evaluation is None:
        raise Task1aError("challenge mode needs the evaluation set; set dataset_method_parameters.tau2022_mobile.evaluation")
    system_dir = paths.system_dir(params, args.workdir)
    meter = EnergyMeter(enabled=params["general"]["energy"] and group.chief, country_iso_code=params["general"]["country_iso_code"], output_dir=system_dir / "energy")

    # -- features
    feature_dir = stages.stage_folder(params, root, "features")
    development_items = stages.development_items(data)
    tests, test_root, labelled = stages.test_items(data)

    def extract_features():
        rewrite = overwrite and group.chief  # the others wait for the chief's finished store
        stores = []
        for items, audio_root, folder in ((development_items, data.development.path, feature_dir / "development"),
                                          *([(tests, test_root, feature_dir / "evaluation")] if mode == "eval" else [])):
            stores.append(stages.measured_stage(
                meter, "feature_extraction", folder, group.chief and stages.feature_store_reused(folder, items, rewrite),
                lambda: stages.feature_extraction_stage(params, items, audio_root, folder, rewrite, progress),
                write=group.chief, overwrite=rewrite))
        return stores[0], stores[-1]

    with timer("feature extraction"):
        development_store, test_store = group.chief_first(extract_features)

    # -- learning (or the given model)
    learner = params["learner"]["parameters"]
    io = params["recognizer"]["model_io"]
    models = []
    if args.model:
        model_path = Path(args.model)
        if not model_path.is_file():
            raise Task1aError(f"--model {model_path} not found; give a .tflite file")
        sha = stages.file_sha256(model_path)
        recognizer_extra = {"model_sha256": sha}
        normalization = {"method": params["data_processing"]["normalization"], "statistics": None}
        models.append(stages.TrainedModel(model_path.parent, params["general"]["seed"], {io: model_path}, None, normalization))
        meter.add_record("training", {"measured": False, "reason": f"no training in this run (--model {model_path} was given)"})
    else:
        recognizer_extra = None
        learner_dir = stages.stage_folder(params, root, "learner")
        with timer("learning"):
            for seed in stages.trial_seeds(params):
                folder = learner_dir / f"seed_{seed}"
                models.append(stages.measured_stage(
                    meter, "training", folder, stages.learning_reused(folder, overwrite),
                    lambda: stages.learning_stage(params, stages.training_items(data), development_store, folder, seed, overwrite, progress, group),
                    write=group.chief, resumed_unrecorded=group.chief and stages.learning_resumes_unrecorded(folder, overwrite)))
        if not group.chief:
            log.info("multi-worker training: this worker is done; it waits for the chief (worker 0), which exports, tests and evaluates")
            group.finish()
            return 0
        if io not in models[0].tflite:
            raise Task1aError(f"recognizer.model_io '{io}' was not exported (conversion.io: {learner['conversion']['io']}); fix task1a.yaml")

    recognizer_dir = stages.stage_folder(params, root, "recognizer", recognizer_extra)
    complexity = None
    if flow["model_size"]:
        # Beside a trained model (our own output), or in the recognizer folder for a given --model: never beside an input.
        with timer("model size"):
            complexity = stages.model_size_stage(models[0].tflite[io], params["model_size"], recognizer_dir if args.model else models[0].folder, overwrite)
        from model_size_calculation.nessi import format_nessi_table

        log.info("model size (NeSsi) of %s:\n%s", models[0].tflite[io], format_nessi_table(complexity))

    # -- testing
    outputs = []
    with timer("testing"):
        for model in models:
            folder = recognizer_dir / f"seed_{model.seed}"
            folder.mkdir(parents=True, exist_ok=True)
            outputs.append(stages.measured_stage(
                meter, "testing", folder, stages.testing_reused(folder, overwrite),
                lambda: stages.testing_stage(model.tflite[io], model.normalization, tests, test_store, folder, params["recognizer"], overwrite, progress),
                overwrite=overwrite))
    # -- the official baseline model over the same test items, same batch size and threads: the
    # `baseline_inference` figure the DCASE2023 meta normalises inference energy by
    with timer("baseline inference"):
        stages.run_baseline_inference(meter, params, root, tests, test_store, recognizer_dir, overwrite, progress)
    if args.output:
        from utils.files import atomic_path

        with atomic_path(args.output) as tmp:
            shutil.copyfile(outputs[0], tmp)
        log.info("system output written to %s", args.output)

    # -- evaluation
    energy = meter.results()
    run = {
        "dataset": {"name": data.name, "synthetic": data.synthetic, "path": str(data.development.path)},
        "set_id": params["set_id"],
        "description": params["description"],
        "mode": mode,
        "hashes": {stage: stage_hash(params, stage, recognizer_extra if stage in ("recognizer", "evaluator") else None) for stage in ("features", "learner", "recognizer", "evaluator")},
        "complexity": complexity,
        "energy": energy,
        "energy_summary": energy_summary(energy),
        "quantization": models[0].summary.get("quantization") if models[0].summary else None,
        "outputs": {"system_output": str(outputs[0])},
        "plots": {},
    }
    report_dir = recognizer_dir
    run["evaluation"] = "no labels for the test items" if not labelled else "flow.evaluation is off"
    if labelled and flow["evaluation"]:
        from utils.evaluation import aggregate_trials, format_aggregated_table, format_results_table  # scipy.stats: 2 s, imported when needed

        evaluator_dir = stages.stage_folder(params, root, "evaluator", recognizer_extra)
        report_dir = evaluator_dir / stages.trials_folder_name([model.seed for model in models])
        info = {"set_id": params["set_id"], "mode": mode, "parameter_hash": run["hashes"]["evaluator"], "synthetic": data.synthetic, "model": str(args.model) if args.model else None}
        with timer("evaluation"):
            trial_results = []
            for model, output in zip(models, outputs):
                folder = evaluator_dir / f"seed_{model.seed}"
                folder.mkdir(parents=True, exist_ok=True)
                trial_results.append(stages.evaluation_stage(output, tests, folder, data.description, params["evaluator"]["confidence_level"], dict(info, seed=model.seed)))
            if len(trial_results) == 1:
                results = trial_results[0]
                table = format_results_table(results, data.description)
            else:  # mean +/- std over trials, as the official README's "averaged over 10 iterations"
                aggregated = aggregate_trials(trial_results)
                results = dict(aggregated["mean"], std=aggregated["std"])
                table = format_aggregated_table(aggregated, data.description)
            results = dict(results, **info, seeds=[model.seed for model in models], dataset=data.description, n_trials=len(trial_results),
                           energy=stages.plain_values(run["energy_summary"]), complexity=_complexity_brief(complexity))
            report_dir.mkdir(parents=True, exist_ok=True)
            write_yaml_atomic(report_dir / "results.yaml", stages.plain_values(results))
        print(table)
        run["evaluation"] = {"table": table, "overall_accuracy": results.get("overall_accuracy"), "overall_logloss": results.get("overall_logloss"), "n_trials": len(trial_results)}
        first = evaluator_dir / f"seed_{models[0].seed}"
        run["plots"] = {"confusion matrix": os.path.relpath(first / "confusion_matrix.png", report_dir), "per-device accuracy": os.path.relpath(first / "device_accuracy.png", report_dir)}
        run["outputs"]["results"] = str(report_dir / "results.yaml")
    if models[0].summary:
        curves = models[0].folder / "training_curves.png"
        if curves.exists():
            run["plots"]["training curves"] = os.path.relpath(curves, report_dir)
    run["timings"] = dict(timer.seconds)
    run["created"] = __import__("datetime").datetime.now().astimezone().isoformat(timespec="seconds")
    if flow["report"]:
        report_dir.mkdir(parents=True, exist_ok=True)
        write_yaml_atomic(report_dir / "run.yaml", stages.plain_values(run))  # the record the report is rendered from
        report_text = write_run_report(report_dir / "report.md", run)
        log.info("report: %s", report_dir / "report.md")
        log.debug(report_text)
    if args.package:
        if mode != "eval":
            raise Task1aError("--package needs challenge mode (--mode eval)")
        package = write_package(args.package, params, outputs[0], models[0], io, complexity, run["energy_summary"], args.workdir)
        log.info("submission package written to %s", package)
    group.finish()
    return 0


def _complexity_brief(complexity: dict | None) -> dict | None:
    if not complexity:
        return None
    keys = ("total_macs", "total_weight_bytes", "peak_memory_bytes", "macs_ok", "memory_ok")
    return {key: complexity.get(key) for key in keys}


def write_package(label: str, params: dict, output_csv: Path, model, io: str, complexity, energy, workdir=None) -> Path:
    """The submission zip: development-set results come from this set's dev-mode run, if there is one."""
    import yaml

    from utils import paths, stages
    from utils.parameters import apply_overrides
    from utils.submission import build_submission_meta, build_submission_package

    dev_params = apply_overrides(params, {"general.mode": "dev"})
    dev_results_path = stages.run_results_path(dev_params, workdir)
    dev_results = yaml.safe_load(dev_results_path.read_text()) if dev_results_path.exists() else None
    if dev_results is None:
        log.warning("no development-set results for this set (run it with --mode dev first): the meta's results block stays empty")
    template = paths.meta_template(params, workdir)
    meta_complexity = None
    if complexity:
        meta_complexity = stages.meta_complexity(model.keras, model.tflite[io], model.summary, complexity)
    meta_energy = (energy or {}).get("energy_consumption")
    meta = build_submission_meta(label, template, params, meta_complexity, meta_energy, dev_results)
    out_zip = paths.system_dir(params, workdir) / "submission" / f"{label}.zip"
    build_submission_package(label, output_csv, out_zip, meta)
    return out_zip


def predict(args, params: dict) -> int:
    """``--predict``: classify any recordings with ``--model`` (or the last trained model of the set)."""
    from utils import stages
    from utils.dataset import SCENE_LABELS
    from utils.system_output import write_system_output
    from utils.testing import find_recordings, predict_recordings
    from utils.tflite import TFLiteClassifier

    if not args.output:
        raise Task1aError("--predict needs --output FILE for the system output")
    normalization = {"method": params["data_processing"]["normalization"], "statistics": None}
    if args.model:
        model_path = Path(args.model)
    else:
        import yaml

        from utils.paths import system_dir

        learner_dir = system_dir(params, args.workdir) / "learner"
        candidates = sorted(learner_dir.glob("*/seed_*/learning.yaml"), key=lambda p: p.stat().st_mtime) if learner_dir.is_dir() else []
        candidates = [c for c in candidates if yaml.safe_load((c.parent.parent / "parameters.yaml").read_text()).get("set_id") == params["set_id"]]
        if not candidates:
            raise Task1aError(f"no trained model of set {params['set_id']} found; train one (python task1a.py -s {params['set_id']}) or give --model")
        summary = yaml.safe_load(candidates[-1].read_text())
        model_path = candidates[-1].parent / summary["tflite"][params["recognizer"]["model_io"]]
        normalization = summary["normalization"]
    classifier = TFLiteClassifier(model_path, batch_size=params["recognizer"]["batch_size"], num_threads=params["recognizer"]["num_threads"])
    extractor = stages.build_extractor(params)
    normalizer = stages.build_normalizer(normalization["method"], normalization.get("statistics"))
    recordings = find_recordings(args.predict)
    names, probabilities, failures = predict_recordings(
        recordings, classifier, extractor, normalizer, params["feature_extractor"]["segment_length_seconds"], progress=not args.no_progress,
        max_chunk_seconds=params["recognizer"]["max_chunk_seconds"],
    )
    if names:
        write_system_output(args.output, names, probabilities, SCENE_LABELS)
    log.info("classified %d recording(s) with %s -> %s", len(names), model_path, args.output)
    for name, reason in failures.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if failures:
        print(f"error: {len(failures)} of {len(recordings)} recording(s) could not be read (listed above)", file=sys.stderr)
        return 1
    return 0


def check_output_path(path: Path, what: str) -> None:
    """Fail before any work when an output file cannot be created: a parent that is a file, or a read-only folder."""
    for parent in (path.parent.resolve(), *path.parent.resolve().parents):
        if parent.exists():
            if not parent.is_dir():
                raise Task1aError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise Task1aError(f"{what} {path}: {parent} is not writable; choose a writable folder")
            return


def main(argv=None) -> int:
    args = parse_arguments(argv)
    try:
        from utils.parameters import ParameterContainer, command_line_layer

        container = ParameterContainer(override_path=args.param_file)
        if args.show_sets:
            show_sets(container)
            return 0
        command_line = command_line_layer(args.set or [], container.defaults)
        all_params = resolve_sets(args, container, command_line)
        if args.show_parameters:
            import yaml

            for params in all_params:
                print(yaml.safe_dump(params, sort_keys=False, default_flow_style=False), end="")
                print(f"# where the values of set {params['set_id']} come from, when not from task1a.yaml's defaults (a later source wins):")
                for key, source in container.provenance(params["set_id"], command_line=command_line).items():
                    print(f"#   {key}: {source}")
            return 0
        if args.show_results:
            from utils.reporting import show_results

            from utils.paths import system_dir

            show_results(system_dir(container.defaults, args.workdir))
            return 0
        if args.output:
            check_output_path(Path(args.output), "--output")
        from utils.reporting import setup_run_logging

        from utils.paths import log_dir

        log_path = setup_run_logging(log_dir(all_params[0], args.workdir))
        # utils.learning and utils.download log under their module names: send those records to the
        # run's console and log file too (training's "resuming from checkpoint" was lost otherwise)
        module_logger = logging.getLogger("utils")
        module_logger.handlers[:] = log.handlers
        module_logger.setLevel(logging.DEBUG)
        module_logger.propagate = False
        log.info("task1a %s, log file %s", __version__, log_path)
        if not (args.download_dataset or args.download_baseline_model or args.predict):
            all_params = resolve_sets(args, container, command_line, fallback=True)
        if args.download_baseline_model:
            from utils import paths as run_paths
            from utils.download import download_baseline_model

            target = (run_paths.resolve_run_path(all_params[0], args.download_baseline_model, args.workdir) if args.download_baseline_model is not True
                      else run_paths.resolve_run_path(all_params[0], all_params[0]["recognizer"]["baseline_model"], args.workdir))
            download_baseline_model(target, progress=not args.no_progress)
            print(f"baseline model: {target}")
            if not args.download_dataset:
                return 0
        if args.download_dataset:
            from utils.download import download_dataset

            which = ("development", "evaluation") if args.mode == "eval" else ("development",)
            download_dataset(args.download_dataset, which=which, progress=not args.no_progress)
            return 0
        if args.predict:
            return predict(args, all_params[0])
        status = 0
        for params in all_params:
            status = max(status, run_set(params, args))
        if len({params["dataset"]["train_split"] for params in all_params}) > 1 and not args.model:
            from utils import stages
            from utils.reporting import format_split_table

            print(format_split_table(stages.split_results(all_params, args.workdir)))
        return status
    except Task1aError as exc:
        if args.debug:
            raise
        logging.getLogger("task1a").debug("error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk or an unwritable folder met by a library writing its own file
        if args.debug:
            raise
        logging.getLogger("task1a").debug("error", exc_info=True)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot read or write{where}: {exc.strerror or exc}; free disk space or choose writable folders (path.system, path.log, --output), then rerun to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command (without -o) to resume where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
