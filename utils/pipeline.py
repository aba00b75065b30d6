"""The pipeline: one parameter set's stages run in order, and the run record.

:func:`resolve_sets` turns the command line's set ids into parameters (the demo fallback included);
:data:`SET_STEPS` is the list of stages a set runs (:mod:`utils.stages`, each run by the one
:class:`utils.stages.StageRunner`; the DCASE2025 device models plug in as a step of their own);
:func:`run_set` runs the steps that apply and returns what they wrote as a :class:`RunOutcome`; :func:`run_sets` runs several
and ends with the DCASE2024 per-split table when their training subsets differ; :func:`predict` classifies any recordings. Nothing here parses a command
line: :class:`RunOptions` carries what the command line decided.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from utils import device_models, editions, paths, stages, workspace
from utils.errors import Task1aError
from utils.files import file_digest
from utils.settings import build_settings, model_size_settings

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """What the command line decides for a run (everything else is in the parameters)."""

    workdir: str | None = None
    overwrite: bool = False
    progress: bool = True
    model: Path | None = None     # a given .tflite model: no training
    output: Path | None = None    # a copy of the system output
    package: str | bool | None = None    # challenge mode: the submission zip LABEL.zip (True: submission.label)


@dataclass
class RunOutcome:
    """What a run wrote: the system output, and (when evaluated) results and report."""

    system_output: Path | None = None
    results: Path | None = None
    report: Path | None = None
    package: Path | None = None
    trained: bool = True          # False on a multi-worker worker other than the chief
    params: dict | None = None
    settings: object = None       # the run's typed settings (utils.settings.Settings): what the library is handed
    model: object = None          # the (first) tested model: stages.TrainedModel
    complexity: dict | None = None
    energy: dict | None = None    # the run's energy summary
    device_models: dict = field(default_factory=dict)  # DCASE2025: device -> (TrainedModel, NeSsi figures)
    recognizer_extra: dict | None = None  # what was tested when it was not a trained model (--model's sha256)


# ------------------------------------------------------------------------------------------ sets
def resolve_sets(container, set_ids: list[str], command_line: dict, flags: dict, workdir=None, fallback: bool = False) -> list[dict]:
    """The parameters of each set in ``set_ids``, with ``command_line`` (the ``--set`` layer) and ``flags``
    (``{key.path: value}`` from the command line's own options) applied last.

    With ``fallback``, a set whose real development set is not found is replaced (one warning) by
    ``general.fallback_set`` on the demo data, keeping the set's own values and the command line's.
    """
    from utils.parameters import apply_overrides, check_structure, check_values

    resolved = []
    for set_id in set_ids:
        params = container.resolve(set_id, command_line=command_line)
        if fallback and params["general"]["fallback_to_demo"] and not stages.development_set_found(params, paths.run_root(params, workdir)):
            params = _demo_instead(container, params, set_id, command_line, workdir)
        overrides = dict(flags)
        if "iterations" in overrides:
            overrides[f"learner_method_parameters.{params['learner']['method']}.iterations"] = overrides.pop("iterations")
        params = apply_overrides(params, overrides)
        check_structure(container.defaults["general"], params["general"], "general", "command line")
        check_values(params, "command line")
        resolved.append(params)
    return resolved


def _demo_instead(container, params: dict, set_id: str, command_line: dict, workdir) -> dict:
    missing = paths.resolve_run_path(params, params["dataset"]["parameters"]["development"], workdir)
    fallback_set = params["general"]["fallback_set"]
    # The set asked for keeps its own values (batch size, training subset, mode...) on the demo data.
    params = container.resolve(fallback_set, instead_of=set_id, command_line=command_line)
    log.warning("development set not found at %s: running set '%s' with the values of set '%s' on the built-in %s instead "
                "(general.fallback_to_demo: false turns this off)", missing, fallback_set, set_id, stages.SYNTHETIC_LABEL)
    for key, source in container.provenance(set_id).items():
        if key.startswith(("dataset.method", "dataset_method_parameters")) and source.endswith(f"set {set_id}"):
            log.warning("%s of set '%s' (%s) is not used on the demo data", key, set_id, source)
    return params


def run_sets(all_params: list[dict], options: RunOptions) -> list[RunOutcome]:
    """Each set's stages in turn; when the sets' training subsets differ, the DCASE2024 per-split table;
    with ``options.package``, the submission package of the edition (``submission.edition``)."""
    if options.package:
        check_package_request(all_params, options)
    # every set's settings and network before the first set's work; on a cluster each set checks its own
    # when its workers have formed (TensorFlow must stay untouched until then)
    checked = len(all_params) > 1 and all(params["learner"]["distribute"] != "multi_worker" for params in all_params)
    if checked:
        for params in all_params:
            check_before_work(_Run(params, options, paths.run_root(params, options.workdir), None))
    outcomes = [run_set(params, options, checked) for params in all_params]
    if len({params["dataset"]["train_split"] for params in all_params}) > 1 and not options.model:
        from utils.reporting import format_split_table

        print(format_split_table(stages.split_results(all_params, options.workdir)))
    if options.package and outcomes[0].trained:
        write_package(outcomes, options)
    return outcomes


def check_package_request(all_params: list[dict], options: RunOptions) -> None:
    """Before any work: ``--package`` needs challenge mode, one edition, the sets that edition packages
    (:meth:`utils.editions.base.Edition.check_package_sets`), a valid label, the edition's meta template
    and the model size stage."""
    from utils.submission import check_label, load_meta_template

    years = {params["submission"]["edition"] for params in all_params}
    if any(params["general"]["mode"] != "eval" for params in all_params):
        raise Task1aError("--package needs challenge mode (--mode eval)")
    if len(years) > 1:
        raise Task1aError(f"--package: the sets name different submission.edition values {sorted(years)}; give sets of one edition")
    edition = editions.of(all_params[0])
    edition.check_package_sets(all_params)
    params = all_params[0]
    check_label(params["submission"]["label"] if options.package is True else options.package)
    template = paths.meta_template(params, edition.meta_template, options.workdir)
    recorded = (load_meta_template(template).get("submission") or {}).get("edition")
    if recorded is not None and recorded != edition.year:
        raise Task1aError(f"meta template {template} is for edition {recorded}, not {edition.year} (submission.edition); "
                          "set submission.meta_template to that edition's template or null")
    if not all(p["flow"]["model_size"] for p in all_params):
        raise Task1aError("--package needs the model's complexity figures; set flow.model_size: true")


# ------------------------------------------------------------------------------------------- run
@dataclass
class _Run:
    """The state one set's stages share while they run: each step reads what the earlier ones left here."""

    params: dict
    options: RunOptions
    root: Path
    group: object
    runner: stages.StageRunner | None = None
    data: object = None
    training: object = None       # the items learning trains on, as the set's edition says (asked once)
    stores: tuple = (None, None)           # the development store, the test store
    models: list = field(default_factory=list)
    recognizer_extra: dict | None = None
    recognizer_dir: Path | None = None
    complexity: dict | None = None
    device_complexity: dict = field(default_factory=dict)  # DCASE2025: device -> (its model, NeSsi figures)
    outputs: list = field(default_factory=list)
    record: workspace.RunRecord | None = None
    outcome: RunOutcome | None = None
    report_dir: Path | None = None
    recognizer: stages.Stage = stages.RECOGNIZER  # how the models are tested (a plugged-in step may change it)
    settings: object = None  # utils.parameters.Settings: the typed sections the stages hand down

    @property
    def meter(self):
        return self.runner.meter

    @property
    def tests(self):
        return stages.test_items(self.data)[0]


@dataclass(frozen=True)
class Step:
    """One stage in a set's list: its work on the run's state, and when it applies."""

    stage: stages.Stage
    work: Callable[[_Run], None]
    applies: Callable[[_Run], bool] = lambda run: True
    every_worker: bool = False  # also on a multi-worker cluster's other workers (else the chief alone)


def run_set(params: dict, options: RunOptions, checked: bool = False) -> RunOutcome:
    """The steps of :data:`SET_STEPS` that apply to the set, in order; returns what they wrote. ``checked``: the
    settings and the complexity gate were passed already (:func:`run_sets` checks every set first)."""
    from utils.distribute import WorkerGroup
    from utils.energy import EnergyMeter

    # On a multi-worker cluster the chief prepares the data and features while the others wait. The
    # cluster forms first: a multi-worker strategy needs TensorFlow untouched (Keras objects included).
    group = WorkerGroup(params["learner"]["distribute"])
    space = workspace.Workspace(paths.system_dir(params, options.workdir))
    meter = EnergyMeter(enabled=params["general"]["energy"] and group.chief, country_iso_code=params["general"]["country_iso_code"],
                        output_dir=space.energy_dir,
                        disabled_reason=("disabled in the parameters (general.energy: false)" if group.chief
                                         else "measured by the chief (worker 0) only"))
    run = _Run(params, options, paths.run_root(params, options.workdir), group)
    run.runner = stages.StageRunner(space, run.root, meter, overwrite=options.overwrite, chief=group.chief, progress=options.progress and group.chief)
    if not checked:
        check_before_work(run)
    for step in SET_STEPS:
        if not group.chief and not step.every_worker:
            log.info("multi-worker training: this worker is done; it waits for the chief (worker 0), which exports, tests and evaluates")
            group.finish()
            return RunOutcome(trained=False)
        if step.applies(run):
            step.work(run)
    group.finish()
    return run.outcome


def check_before_work(run: _Run) -> None:
    """The learner's settings (Keras configs included), then, when ``model_size.enforce`` applies, the
    complexity gate: the untrained network measured by NeSsi, stopped if over a limit."""
    from utils.complexity import enforce_limits, network_complexity

    stages.check_learner_settings(run.params, run.root, given_model=bool(run.options.model))
    device_models.check_device_settings(run.params, run.root)
    limits = model_size_settings(run.params["model_size"])
    if run.options.model or (run.group is not None and not run.group.chief) or not limits.enforced(run.params["general"]["mode"]):
        return
    set_id = run.params["set_id"]
    enforce_limits(network_complexity(build_settings(run.params, run.root), set_id), limits, f"the network of set {set_id}")


def check_complexity(all_params: list[dict], workdir=None) -> tuple[str, bool]:
    """``--check_complexity``: the NeSsi table and verdict of each set's untrained network (:func:`utils.complexity.check_complexity`),
    and whether any is over its limits."""
    from utils import complexity

    checked = [complexity.check_complexity(build_settings(params, paths.run_root(params, workdir)), params["set_id"]) for params in all_params]
    return "".join(text for text, _ in checked), any(problems for _, problems in checked)


def _prepare_data(run: _Run) -> None:
    """The datasets (the chief first: it generates the demo data once)."""
    run.data = run.group.chief_first(run.runner.run, stages.DATA, stages.DataUnit(run.params, run.root, run.runner.progress, edition=editions.of(run.params)))
    run.params = params = run.data.params
    run.settings = build_settings(params, run.root)
    log.info("set %s (%s), mode %s, data: %s", params["set_id"], params["description"], params["general"]["mode"], run.data.description)
    if params["general"]["mode"] == "eval" and run.data.evaluation is None:
        raise Task1aError("challenge mode needs the evaluation set; set dataset_method_parameters.tau2022_mobile.evaluation")
    editions.of(params).check_data(run.data)  # the edition's demands on the data (DCASE2025: device_id in the evaluation list)
    run.training = editions.of(params).training_items(run.data)


def _extract_features(run: _Run) -> None:
    """The feature stores of the development items and (challenge mode) the evaluation items."""
    def stores():
        data, params = run.data, run.params
        feature_dir = run.runner.folder(stages.FEATURES, params)
        features = run.settings.features
        units = [stages.FeatureUnit(features, stages.development_items(data), data.development.path, feature_dir / "development", run.runner.progress)]
        if params["general"]["mode"] == "eval":
            tests, test_root, _ = stages.test_items(data)
            units.append(stages.FeatureUnit(features, tests, test_root, feature_dir / "evaluation", run.runner.progress))
        return [run.runner.run(stages.FEATURES, unit) for unit in units]

    found = run.group.chief_first(stores)  # the others wait for the chief's finished stores
    run.stores = (found[0], found[-1])


def _learn(run: _Run) -> None:
    """The trained model of each trial seed, or the model given on the command line."""
    params, options = run.params, run.options
    io = params["recognizer"]["model_io"]
    if options.model:
        model = stages.given_model(params, Path(options.model))
        run.recognizer_extra = {"model_sha256": file_digest(model.tflite[io])}
        run.meter.add_record(stages.LEARNER.energy_phase, {"measured": False, "reason": f"no training in this run (--model {options.model} was given)"})
        run.models = [model]
        return
    learner_dir = run.runner.folder(stages.LEARNER, params)
    items = run.training
    run.models = [run.runner.run(stages.LEARNER, stages.LearnerUnit(params, run.settings.learner, run.root, items, run.stores[0],
                      run.runner.workspace.seed_dir(stages.LEARNER.name, learner_dir.name, seed), seed, run.group, options.overwrite, run.runner.progress))
                  for seed in stages.trial_seeds(params)]
    if run.group.chief and io not in run.models[0].tflite:
        raise Task1aError(f"recognizer.model_io '{io}' was not exported (conversion.io: {params['learner']['parameters']['conversion']['io']}); "
                          "fix task1a.yaml")


def _device_models(run: _Run) -> None:
    """DCASE2025: each trained model's device models (the general model's content names their folder); the
    recognizer then tests each clip by its device's model."""
    run.recognizer = device_models.DEVICE_RECOGNIZER
    for model in run.models:
        folder = run.runner.folder(device_models.DEVICE_MODELS, run.params, {"general_model": file_digest(model.keras)})
        unit = device_models.DeviceModelsUnit(run.params, model, run.training, run.stores[0],
                                              run.runner.workspace.seed_dir(device_models.DEVICE_MODELS.name, folder.name, model.seed), run.runner)
        model.devices = run.runner.run(device_models.DEVICE_MODELS, unit)


def _model_size(run: _Run) -> None:
    """NeSsi figures of the tested model: beside a trained model (our output), in the recognizer folder for a given one."""
    from model_size_calculation.nessi import format_nessi_table
    from utils.complexity import enforce_limits

    params, model = run.params, run.models[0]
    io, limits = run.settings.recognizer.model_io, run.settings.model_size
    enforced = limits.enforced(params["general"]["mode"])
    folder = run.recognizer_dir if run.options.model else model.folder
    run.complexity = run.runner.run(stages.MODEL_SIZE, stages.ModelSizeUnit(model.tflite[io], limits, folder))
    log.info("model size (NeSsi) of %s:\n%s", model.tflite[io], format_nessi_table(run.complexity))
    enforce_limits(run.complexity, limits, str(model.tflite[io]), enforced)
    for device, device_model in model.devices.items():  # DCASE2025: each device model within the limits too
        figures = run.runner.run(stages.MODEL_SIZE, stages.ModelSizeUnit(device_model.tflite[io], limits, device_model.folder))
        enforce_limits(figures, limits, f"the device {device} model", enforced)
        run.device_complexity[device] = (device_model, figures)


def _recognizer_folder(run: _Run) -> None:
    run.recognizer_dir = run.runner.folder(stages.RECOGNIZER, run.params, run.recognizer_extra)


def _test(run: _Run) -> None:
    """Each model's system output over the test items (with ``--output``, a copy of the first)."""
    options = run.options
    space, digest = run.runner.workspace, run.recognizer_dir.name
    devices = editions.of(run.params).test_devices(run.data, run.tests) if run.recognizer is device_models.DEVICE_RECOGNIZER else None
    run.outputs = [run.runner.run(run.recognizer, stages.TestUnit(model, run.tests, run.stores[1], space.seed_dir(stages.RECOGNIZER.name, digest, model.seed),
                                                                     run.settings.recognizer, options.overwrite, run.runner.progress, devices))
                   for model in run.models]
    if options.output:
        from utils.files import atomic_path

        with atomic_path(options.output) as tmp:
            shutil.copyfile(run.outputs[0], tmp)
        log.info("system output written to %s", options.output)


def _baseline_inference(run: _Run) -> None:
    """The official baseline model over the same test items, same batch size and threads: the
    ``baseline_inference`` figure the DCASE2023 meta normalises inference energy by."""
    stages.run_baseline_inference(run.runner, run.params, run.tests, run.stores[1], run.recognizer_dir)


def _record(run: _Run) -> None:
    """The run's record (``run.yaml``, the report's source) and outcome, once testing is done."""
    run.record = run_record(run)
    run.report_dir = run.recognizer_dir
    run.outcome = RunOutcome(system_output=run.outputs[0], params=run.params, settings=run.settings, model=run.models[0], complexity=run.complexity,
                             energy=run.record.energy_summary, device_models=run.device_complexity, recognizer_extra=run.recognizer_extra)


def run_record(run: _Run) -> workspace.RunRecord:
    """The run's record: data, hashes, complexity, energy, outputs."""
    from utils.energy import energy_summary

    energy = run.meter.results()
    data = run.data
    extra = run.recognizer_extra
    model = run.models[0]
    return workspace.RunRecord(
        dataset={"name": data.name, "synthetic": data.synthetic, "path": str(data.development.path)},
        set_id=run.params["set_id"],
        description=run.params["description"],
        mode=run.params["general"]["mode"],
        edition=run.params["submission"]["edition"],
        train_split=run.params["dataset"]["train_split"],
        reference=editions.of(run.params).official_reference(run.params["dataset"]["train_split"]),
        hashes={stage.name: stage.digest(run.params, run.root, extra if stage in (stages.RECOGNIZER, stages.EVALUATOR) else None)
                for stage in (stages.FEATURES, stages.LEARNER, stages.RECOGNIZER, stages.EVALUATOR)},
        complexity=run.complexity,
        energy=energy,
        energy_summary=energy_summary(energy),
        quantization=model.summary.quantization if model.summary else None,
        outputs={"system_output": str(run.outputs[0])},
        plots={},
        evaluation="no labels for the test items" if not stages.test_items(data)[2] else "flow.evaluation is off",
    )


def _evaluate(run: _Run) -> None:
    """Score each trial's output (one ``results.yaml`` per seed; for trials, the mean and std in ``seeds_A-B``)."""
    params, data, models, record = run.params, run.data, run.models, run.record
    evaluator_dir = run.runner.folder(stages.EVALUATOR, params, run.recognizer_extra)
    space, digest = run.runner.workspace, evaluator_dir.name
    seeds = [model.seed for model in models]
    info = {"set_id": params["set_id"], "mode": params["general"]["mode"], "parameter_hash": record.hashes["evaluator"],
            "edition": params["submission"]["edition"], "synthetic": data.synthetic, "model": str(run.options.model) if run.options.model else None,
            "seeds": seeds, "n_trials": len(seeds), "energy": workspace.plain_values(record.energy_summary),
            "complexity": stages.complexity_brief(run.complexity)}
    trials = [_evaluate_trial(run, model, output, space.seed_dir(stages.EVALUATOR.name, digest, model.seed), info)
              for model, output in zip(models, run.outputs)]
    report_dir = space.trials_dir(stages.EVALUATOR.name, digest, seeds)
    with run.runner.timer(stages.EVALUATOR.name):
        results, table = stages.trials_evaluation(trials, report_dir, data.description, info) if len(trials) > 1 else (trials[0], None)
    if table is None:
        from utils.evaluation import format_results_table

        table = format_results_table(results, data.description)
    general = results.get("general_model")
    if general:  # DCASE2025: the device-specific system's figures above, the general model's here
        table += (f"\nGeneral model alone (every device): log loss {general['overall_logloss']:.3f}, accuracy {100 * general['overall_accuracy']:.1f}%"
                  f" (the device models: log loss {results['overall_logloss']:.3f}, accuracy {100 * results['overall_accuracy']:.1f}%)")
    print(table)
    record.evaluation = {"table": table, "overall_accuracy": results.get("overall_accuracy"), "overall_logloss": results.get("overall_logloss"),
                         "n_trials": len(trials)}
    first = space.seed_dir(stages.EVALUATOR.name, digest, seeds[0])
    record.plots = {"confusion matrix": os.path.relpath(first / "confusion_matrix.png", report_dir),
                    "per-device accuracy": os.path.relpath(first / "device_accuracy.png", report_dir)}
    record.outputs["results"] = str(report_dir / workspace.RESULTS_FILE)
    run.report_dir, run.outcome.results = report_dir, report_dir / workspace.RESULTS_FILE


def _evaluate_trial(run: _Run, model, output: Path, folder: Path, info: dict) -> dict:
    """One trial's results; with device models (DCASE2025) the general model's too, kept under ``general_model``."""
    data = run.data
    groups = device_models.device_groups(model, run.training)
    info = dict(info, seed=model.seed)
    level = run.settings.evaluator.confidence_level
    if groups:
        general = run.runner.run(stages.EVALUATOR, stages.EvaluationUnit(output.parent / "general" / "output.csv", run.tests, folder / "general_model",
                                                                          data.description, level, info, groups))
        info["general_model"] = {key: value for key, value in general.items() if key not in info}
    return run.runner.run(stages.EVALUATOR, stages.EvaluationUnit(output, run.tests, folder, data.description, level, info, groups))


def _report(run: _Run) -> None:
    """``run.yaml`` (the record) and ``report.md`` rendered from it, in the report folder."""
    from utils.reporting import write_run_report

    record, report_dir, model = run.record, run.report_dir, run.models[0]
    if model.summary:
        curves = model.folder / "training_curves.png"
        if curves.exists():
            record.plots["training curves"] = os.path.relpath(curves, report_dir)
    record.timings = dict(run.runner.timer.seconds)
    record.created = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    workspace.write_run(report_dir, record)
    report_text = write_run_report(report_dir / "report.md", record.as_mapping())
    log.info("report: %s", report_dir / "report.md")
    log.debug(report_text)
    run.outcome.report = report_dir / "report.md"


def _labelled(run: _Run) -> bool:
    return stages.test_items(run.data)[2] and run.params["flow"]["evaluation"]


class _ReportStage(stages.Stage):
    """The run's record and ``report.md`` (in the evaluator's trials folder, else the recognizer folder)."""

    name = "report"


REPORT = _ReportStage()

SET_STEPS = (
    Step(stages.DATA, _prepare_data, every_worker=True),
    Step(stages.FEATURES, _extract_features, every_worker=True),
    Step(stages.LEARNER, _learn, every_worker=True),
    Step(device_models.DEVICE_MODELS, _device_models, applies=lambda run: run.params["device_models"]["enabled"] and not run.options.model),
    Step(stages.RECOGNIZER, _recognizer_folder),
    Step(stages.MODEL_SIZE, _model_size, applies=lambda run: run.params["flow"]["model_size"]),
    Step(stages.RECOGNIZER, _test),
    Step(stages.BASELINE_INFERENCE, _baseline_inference),
    Step(REPORT, _record),
    Step(stages.EVALUATOR, _evaluate, applies=_labelled),
    Step(REPORT, _report, applies=lambda run: run.params["flow"]["report"]),
)
"""The stages a set runs, in order (the chief alone after learning on a multi-worker cluster)."""


def development_results(params: dict, workdir=None, extra=None) -> dict | None:
    """The results of the set's dev-mode run (what the meta reports for the development set), or None.
    ``extra``: what the run tested when it was not a trained model (as the evaluator's folder says)."""
    from utils.parameters import apply_overrides

    results = stages.run_results(apply_overrides(params, {"general.mode": "dev"}), workdir, extra)
    if results is None:
        log.warning("no development-set results for set %s (run it with --mode dev first): its results block in the meta stays empty", params["set_id"])
        return None
    return results.content


def _meta_complexity(outcome: RunOutcome) -> dict:
    """The meta's complexity block of a run's tested model, its parameter memory counted as the edition
    counts it (:meth:`utils.editions.base.Edition.memory_bytes`); an over-limit model is refused (the challenge would)."""
    from utils.complexity import enforce_limits

    params, model = outcome.params, outcome.model
    if outcome.complexity is None:
        raise Task1aError("--package needs the model's complexity figures; set flow.model_size: true")
    enforce_limits(outcome.complexity, model_size_settings(params["model_size"]), f"the model of set {params['set_id']}")
    block = stages.meta_complexity(model.keras, model.tflite[params["recognizer"]["model_io"]], outcome.complexity)
    edition = editions.of(params)
    memory = edition.memory_bytes(block["total_model_size"], block["total_parameters"])
    if memory > edition.max_memory_bytes:
        raise Task1aError(f"the model of set {params['set_id']} has {memory:,.0f} B of parameter memory as DCASE{edition.year} counts it "
                          f"({block['total_parameters']:,} parameters x {edition.parameter_bits} bit), over its limit of {edition.max_memory_bytes:,} B; "
                          "reduce the model")
    block["total_model_size"] = block["memory_use"] = memory if edition.parameter_bits is None else int(memory)
    return block


def write_package(outcomes: list[RunOutcome], options: RunOptions) -> Path:
    """The submission zip of ``submission.edition`` from the challenge-mode runs of one command (what goes
    in it: :meth:`utils.editions.base.Edition.package_inputs`), and the edition's extra files beside it."""
    from utils.submission import build_submission_meta, build_submission_package

    params, workdir = outcomes[0].params, options.workdir
    edition = editions.of(params)
    label = params["submission"]["label"] if options.package is True else options.package
    inputs = edition.package_inputs(outcomes, _meta_complexity, lambda p, extra: development_results(p, workdir, extra))
    meta = build_submission_meta(label, paths.meta_template(params, edition.meta_template, workdir), outcomes[0].settings, inputs["complexity"],
                                 inputs["energy"], inputs["results"], edition=edition.year)
    out_zip = workspace.Workspace(paths.system_dir(params, workdir)).package_path(label)
    build_submission_package(label, inputs["outputs"], out_zip, meta)
    log.info("submission package (DCASE%d) written to %s", edition.year, out_zip)
    for extra in edition.write_extras(outcomes, label, out_zip.parent, workdir):
        log.info("DCASE%d: %s written", edition.year, extra)
    return out_zip


# --------------------------------------------------------------------------------------- predict
def predict(params: dict, recordings: list[str], output: Path, model: Path | None = None, workdir=None, progress: bool = True) -> dict:
    """Classify any recordings (files or folders) with ``model`` or the set's trained model; write ``output``.

    Returns ``{name: reason}`` of the recordings that could not be read (the others are classified).
    """
    from utils.dataset import SCENE_LABELS
    from utils.features import build_extractor, build_normalizer
    from utils.system_output import write_system_output
    from utils.testing import find_recordings, predict_recordings
    from utils.tflite import TFLiteClassifier

    trained = stages.given_model(params, model) if model else stages.trained_model(params, workdir)
    model_path = trained.tflite[params["recognizer"]["model_io"]]
    settings = build_settings(params, paths.run_root(params, workdir))
    recognizer = settings.recognizer
    classifier = TFLiteClassifier(model_path, batch_size=recognizer.batch_size, num_threads=recognizer.num_threads)
    normalizer = build_normalizer(trained.normalization["method"], trained.normalization.get("statistics"))
    found = find_recordings(recordings)
    names, probabilities, failures = predict_recordings(
        found, classifier, build_extractor(settings.features), normalizer, settings.features.segment_length_seconds,
        progress=progress, max_chunk_seconds=recognizer.max_chunk_seconds)
    if names:
        write_system_output(output, names, probabilities, SCENE_LABELS)
    log.info("classified %d recording(s) with %s -> %s", len(names), model_path, output)
    return failures
