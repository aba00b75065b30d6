"""Energy per phase: codecarbon failures never stop a run, figures come from public data, offline."""

from __future__ import annotations

import math
import socket
import sys
import types

import codecarbon
import codecarbon.lock
import numpy as np
import pandas as pd
import pytest
import yaml

from utils.energy import PHASE_NAMES, EnergyMeter, energy_summary
from utils.errors import Task1aError


def fake_emissions_data(energy_kwh, cpu=None, gpu=0.0, ram=None, duration=2.0):
    """An object with the public fields of codecarbon's EmissionsData that the meter reads."""
    cpu = energy_kwh * 0.25 if cpu is None else cpu
    ram = energy_kwh - cpu - gpu if ram is None else ram
    return types.SimpleNamespace(
        energy_consumed=energy_kwh, cpu_energy=cpu, gpu_energy=gpu, ram_energy=ram, duration=duration,
        emissions=energy_kwh * 0.1, country_iso_code="FIN", tracking_mode="machine", cpu_model="Fake CPU",
        gpu_model="", codecarbon_version="fake",
    )


class FakeTracker:
    """Stands in for codecarbon.OfflineEmissionsTracker; behaviour set by class attributes."""

    instances: list["FakeTracker"] = []
    raise_in_init = raise_in_start = raise_in_stop = False
    data = None  # what final_emissions_data becomes at stop (None: codecarbon recorded nothing)

    def __init__(self, **options):
        if type(self).raise_in_init:
            raise RuntimeError("cannot read the hardware")
        self.options = options
        self.started = self.stopped = 0
        type(self).instances.append(self)

    def start(self):
        self.started += 1
        if type(self).raise_in_start:
            raise OSError("permission denied: /sys/class/powercap")

    def stop(self):
        self.stopped += 1
        if type(self).raise_in_stop:
            raise ValueError("bad reading")
        self.final_emissions_data = type(self).data
        return None  # codecarbon's stop() may return None even when data exist


@pytest.fixture
def fake_tracker(monkeypatch):
    """A fresh FakeTracker subclass installed as codecarbon.OfflineEmissionsTracker."""
    tracker_class = type("Fake", (FakeTracker,), {"instances": []})
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", tracker_class)
    return tracker_class


def run_phase(meter, name="learner"):
    """Run a phase whose body counts its executions; return (record, body runs)."""
    runs = []
    with meter.phase(name) as record:
        runs.append(sum(range(1000)))
    return record, len(runs)


@pytest.mark.parametrize("failure, reason_part", [
    ("raise_in_init", "could not be set up: RuntimeError: cannot read the hardware"),
    ("raise_in_start", "failed to start: OSError: permission denied"),
    ("raise_in_stop", "failed when stopping: ValueError: bad reading"),
])
def test_a_tracker_that_raises_does_not_stop_the_phase(fake_tracker, failure, reason_part):
    setattr(fake_tracker, failure, True)
    fake_tracker.data = fake_emissions_data(1.0)
    meter = EnergyMeter()
    record, body_runs = run_phase(meter)
    assert body_runs == 1
    assert record["measured"] is False and reason_part in record["reason"]
    assert meter.results()["learner"] == record
    if failure == "raise_in_start":  # a started-but-failed tracker is still stopped (threads, files)
        assert fake_tracker.instances[0].stopped == 1


def test_stop_returning_none_with_no_data_is_not_measured(fake_tracker):
    fake_tracker.data = None
    record, body_runs = run_phase(EnergyMeter())
    assert body_runs == 1
    assert record == {"measured": False, "reason": "codecarbon returned no data",
                      "duration_seconds": record["duration_seconds"], "runs": 1}


@pytest.mark.parametrize("bad_energy", [None, float("nan"), -1.0, "n/a"])
def test_data_without_a_valid_energy_is_not_measured(fake_tracker, bad_energy):
    fake_tracker.data = types.SimpleNamespace(energy_consumed=bad_energy)
    record, _ = run_phase(EnergyMeter())
    assert record["measured"] is False and "no valid energy figure" in record["reason"]


def test_energy_is_read_from_final_emissions_data_even_when_stop_returns_none(fake_tracker):
    fake_tracker.data = fake_emissions_data(0.004, cpu=0.001, gpu=0.002, ram=0.001, duration=3.6)
    meter = EnergyMeter(country_iso_code="fin")
    record, _ = run_phase(meter, "recognizer")
    assert record["measured"] is True
    assert record["energy_kwh"] == 0.004
    assert (record["cpu_energy_kwh"], record["gpu_energy_kwh"], record["ram_energy_kwh"]) == (0.001, 0.002, 0.001)
    # 0.001 kWh over 3.6 s = 3600 J / 3.6 s = 1000 W
    assert record["average_power_w"]["cpu"] == pytest.approx(1000.0)
    assert record["average_power_w"]["gpu"] == pytest.approx(2000.0)
    assert record["tracked_seconds"] == 3.6 and record["duration_seconds"] >= 0
    options = fake_tracker.instances[0].options
    assert options["country_iso_code"] == "FIN"
    assert options["log_level"] == "error"
    assert options["allow_multiple_runs"] is True  # no lock file to go stale
    assert options["emissions_endpoint"] is None and options["electricitymaps_api_token"] is None
    assert options["output_methods"] == []  # no file, no API
    yaml.safe_load(yaml.safe_dump(meter.results()))  # YAML-able


def test_output_dir_asks_codecarbon_for_its_csv_there(fake_tracker, tmp_path):
    fake_tracker.data = fake_emissions_data(0.5)
    run_phase(EnergyMeter(output_dir=tmp_path / "energy"))
    options = fake_tracker.instances[0].options
    assert options["output_methods"] == [codecarbon.OutputMethod.CSV]
    assert options["output_dir"] == str(tmp_path / "energy") and (tmp_path / "energy").is_dir()


def test_missing_codecarbon_is_not_measured(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # import codecarbon -> ImportError
    record, body_runs = run_phase(EnergyMeter())
    assert body_runs == 1
    assert record["measured"] is False and "codecarbon is not installed" in record["reason"]


def test_body_exception_propagates_unchanged_and_tracker_is_stopped(fake_tracker):
    fake_tracker.data = fake_emissions_data(1.0)
    meter = EnergyMeter()
    error = KeyError("the body's own error")
    runs = []
    with pytest.raises(KeyError) as caught:
        with meter.phase("learner"):
            runs.append(1)
            raise error
    assert caught.value is error and runs == [1]
    assert fake_tracker.instances[0].stopped == 1
    assert meter.results()["learner"]["measured"] is False
    assert "did not complete (KeyError)" in meter.results()["learner"]["reason"]


def test_body_exception_propagates_when_codecarbon_fails_too(fake_tracker):
    fake_tracker.raise_in_start = fake_tracker.raise_in_stop = True
    with pytest.raises(ZeroDivisionError):
        with EnergyMeter().phase("recognizer"):
            1 / 0


def test_disabled_meter_runs_the_body_without_codecarbon(fake_tracker):
    meter = EnergyMeter(enabled=False)
    record, body_runs = run_phase(meter)
    assert body_runs == 1 and fake_tracker.instances == []
    assert record["measured"] is False and "disabled" in record["reason"]


def test_a_repeated_phase_adds_up(fake_tracker):
    meter = EnergyMeter()
    fake_tracker.data = fake_emissions_data(0.003, cpu=0.001, gpu=0.0, ram=0.002, duration=1.0)
    run_phase(meter)
    fake_tracker.data = fake_emissions_data(0.001, cpu=0.0005, gpu=0.0, ram=0.0005, duration=2.0)
    record, _ = run_phase(meter)
    assert record["runs"] == 2
    assert record["energy_kwh"] == pytest.approx(0.004)
    assert record["cpu_energy_kwh"] == pytest.approx(0.0015)
    assert record["average_power_w"]["cpu"] == pytest.approx(0.0015 * 3.6e6 / 3.0)
    fake_tracker.data = None
    record, _ = run_phase(meter)
    assert record["measured"] is False and record["runs"] == 3


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(Task1aError, match="unknown energy phase 'trainig'"):
        with EnergyMeter(enabled=False).phase("trainig"):
            pass
    with pytest.raises(Task1aError, match="country_iso_code"):
        EnergyMeter(country_iso_code="Finland")
    with pytest.raises(Task1aError, match="country codecarbon knows"):
        EnergyMeter(country_iso_code="XXQ")
    with pytest.raises(Task1aError, match="general.energy"):
        EnergyMeter(enabled="yes")


def test_energy_summary_and_normalised_ratio():
    results = {
        "learner": {"measured": True, "energy_kwh": 2.0},
        "recognizer": {"measured": True, "energy_kwh": 0.4},
        "baseline_inference": {"measured": True, "energy_kwh": 1.0},
        "features": {"measured": True, "energy_kwh": 9.0},
    }
    summary = energy_summary(results)
    assert summary["energy_consumption"] == {"training": 2.0, "inference": 0.4, "baseline_inference": 1.0}
    assert summary["baseline_over_inference_energy_ratio"] == pytest.approx(1.0 / 0.4)
    assert summary["not_measured"] == {}

    results["baseline_inference"] = {"measured": False, "reason": "no official model given"}
    del results["learner"]
    summary = energy_summary(results)
    assert summary["energy_consumption"] == {"training": None, "inference": 0.4, "baseline_inference": None}
    assert summary["baseline_over_inference_energy_ratio"] is None
    assert summary["not_measured"]["baseline_inference"] == "no official model given"
    assert "no learner phase" in summary["not_measured"]["training"]
    assert energy_summary(None)["energy_consumption"] == {"training": None, "inference": None, "baseline_inference": None}


def test_real_offline_tracking_phase(monkeypatch, tmp_path):
    """codecarbon on this machine: measured, offline, and blind to a stale single-instance lock file."""
    connections = []

    def refuse_connection(self, address):
        connections.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connection)
    stale_lock = tmp_path / ".codecarbon.lock"
    stale_lock.write_text("")  # left by a killed run: codecarbon's lock would refuse to measure
    monkeypatch.setattr(codecarbon.lock, "LOCKFILE", str(stale_lock))

    meter = EnergyMeter(country_iso_code="FIN", output_dir=tmp_path / "codecarbon")
    rng = np.random.default_rng(0)
    with meter.phase("recognizer") as record:
        matrix = rng.standard_normal((200, 200))
        for _ in range(20):
            matrix = np.tanh(matrix @ matrix.T / 200)
    assert connections == []
    assert record["measured"] is True, record.get("reason")
    assert record["energy_kwh"] > 0
    parts = record["cpu_energy_kwh"] + record["gpu_energy_kwh"] + record["ram_energy_kwh"]
    assert record["energy_kwh"] == pytest.approx(parts, rel=1e-6)
    assert record["tracking_scope"] == "machine"
    assert record["cpu_energy_source"] in ("measured", "estimated")
    assert record["duration_seconds"] > 0 and record["tracked_seconds"] > 0
    assert math.isfinite(record["average_power_w"]["ram"])

    # codecarbon's own CSV, read independently, holds the same energy for this phase
    table = pd.read_csv(tmp_path / "codecarbon" / "emissions.csv")
    row = table[table["project_name"] == "task1a_recognizer"].iloc[-1]
    assert row["energy_consumed"] == pytest.approx(record["energy_kwh"], rel=1e-9)

    # the stale lock is neither honoured nor removed, and none is left for the next run
    assert stale_lock.exists()
    assert set(PHASE_NAMES) >= set(meter.results())
    yaml.safe_load(yaml.safe_dump(meter.results()))


# ------------------------------------------------------------------------- energy of a stage's output
def test_a_reused_stage_reports_the_figure_stored_when_it_ran(fake_tracker, tmp_path):
    from utils.stages import measured_stage

    folder = tmp_path / "seed_0"
    fake_tracker.data = fake_emissions_data(0.003, duration=5.0)
    first = EnergyMeter()
    assert measured_stage(first, "learner", folder, False, lambda: "model") == "model"
    stored = yaml.safe_load((folder / "energy.yaml").read_text())
    assert stored["energy_kwh"] == 0.003 and stored["parts"] == 1 and stored["resumed"] is False

    fake_tracker.data = fake_emissions_data(1e-9, duration=0.01)  # what measuring the reuse would give
    again = EnergyMeter()
    measured_stage(again, "learner", folder, True, lambda: "model")
    record = again.results()["learner"]
    assert record["energy_kwh"] == 0.003 and record["reused"] is True
    assert record["measured_at_all"] == stored["measured_at_all"]
    summary = energy_summary(again.results())
    assert summary["energy_consumption"]["training"] == 0.003
    assert summary["measured_when_the_stage_ran"]["training"] == stored["measured_at_all"]

    # a stage reused from before energy records were kept says so
    never = EnergyMeter()
    measured_stage(never, "recognizer", tmp_path / "old", True, lambda: None)
    assert "computed before energy records were kept" in never.results()["recognizer"]["reason"]


def test_a_resumed_stage_reports_the_sum_of_its_parts(fake_tracker, tmp_path):
    from utils.stages import measured_stage

    folder = tmp_path / "seed_0"
    fake_tracker.data = fake_emissions_data(0.002, duration=3.0)
    with pytest.raises(KeyboardInterrupt):  # the first run is interrupted: its part is recorded
        measured_stage(EnergyMeter(), "learner", folder, False, lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert not (folder / "energy.yaml").exists() and (folder / "energy_parts.yaml").exists()
    fake_tracker.data = fake_emissions_data(0.005, duration=4.0)
    meter = EnergyMeter()
    measured_stage(meter, "learner", folder, False, lambda: None)
    stored = yaml.safe_load((folder / "energy.yaml").read_text())
    assert stored["parts"] == 2 and stored["resumed"] is True
    assert not (folder / "energy_parts.yaml").exists()
    # the interrupted part was not measured by the meter (did not complete): said, not silently dropped
    assert stored["energy_kwh"] == pytest.approx(0.005) and "did not complete" in stored["unmeasured_parts"][0]
    assert meter.results()["learner"]["resumed"] is True


def test_energy_summary_gives_inference_over_baseline():
    summary = energy_summary({"recognizer": {"measured": True, "energy_kwh": 0.3}, "baseline_inference": {"measured": True, "energy_kwh": 0.6}})
    assert summary["inference_over_baseline_ratio"] == pytest.approx(0.5)
    assert summary["baseline_over_inference_energy_ratio"] == pytest.approx(2.0)


def test_a_stage_record_written_under_an_earlier_phase_name_is_still_read(tmp_path):
    """Stage folders made when the phases had the DCASE meta's words (training, testing, feature_extraction)
    keep their stored energy: it is read as the stage-named phase."""
    from utils.energy import stored_stage_energy

    folder = tmp_path / "seed_0"
    folder.mkdir()
    (folder / "energy.yaml").write_text(yaml.safe_dump({"phase": "training", "measured": True, "energy_kwh": 0.004, "measured_at_all": ["then"]}))
    record = stored_stage_energy(folder, "learner")
    assert record["measured"] is True and record["energy_kwh"] == 0.004 and record["reused"] is True and record["phase"] == "learner"
    assert stored_stage_energy(folder, "recognizer")["measured"] is False  # another stage's record is not taken
