"""--show_results --format md|csv|json: one row per evaluated setup; report.md's official reference figures."""

import csv
import io
import json

import yaml

from utils import editions
from utils.reporting import render_run_report, show_results


def evaluated(root, folder, seed_folder, **fields):
    path = root / "evaluator" / folder / seed_folder / "results.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"n_trials": 1, "overall_logloss": 1.5, **fields}))


def test_each_format_has_one_row_per_setup(tmp_path, capsys):
    evaluated(tmp_path, "a" * 32, "seed_0", set_id="dcase2023_baseline", mode="dev", synthetic=False, edition=2023, seeds=[0],
              overall_accuracy=0.43, complexity={"total_weight_bytes": 46_512, "total_macs": 29_234_920},
              energy={"energy_consumption": {"training": 0.5, "inference": 0.001, "baseline_inference": None}})
    evaluated(tmp_path, "b" * 32, "seeds_0-2", set_id="dcase2024_split25", mode="dev", synthetic=True, edition=2024, seeds=[0, 1, 2],
              overall_accuracy=0.61, n_trials=3)
    rows = json.loads(show_results(tmp_path, result_format="json"))
    assert capsys.readouterr().out.strip() == json.dumps(rows, indent=2)
    assert [r["set"] for r in rows] == ["dcase2023_baseline", "dcase2024_split25"]
    first, second = rows
    assert first == {"set": "dcase2023_baseline", "edition": 2023, "data": "real", "mode": "dev", "seeds": "0", "accuracy": 0.43,
                     "log_loss": 1.5, "macs": 29_234_920, "parameter_memory_bytes": 46_512, "energy_training_kwh": 0.5,
                     "energy_inference_kwh": 0.001, "hash": "a" * 32 + "/seed_0"}
    assert second["data"] == "synthetic" and second["seeds"] == "0 1 2" and second["macs"] is None and second["energy_training_kwh"] is None
    table = list(csv.DictReader(io.StringIO(show_results(tmp_path, result_format="csv"))))
    assert [r["set"] for r in table] == ["dcase2023_baseline", "dcase2024_split25"]
    assert table[0]["accuracy"] == "0.43" and table[0]["macs"] == "29234920" and table[1]["macs"] == ""
    markdown = show_results(tmp_path, result_format="md").splitlines()
    assert markdown[0].startswith("| set | edition | data |") and len(markdown) == 4
    assert "| dcase2023_baseline | 2023 | real | dev | 0 | 43.00 % | 1.500 | 29.235 M | 46.512 K | 0.500000 | 0.001000 |" in markdown[2]


def test_no_setups_gives_an_empty_table(tmp_path):
    assert json.loads(show_results(tmp_path, result_format="json")) == []
    assert show_results(tmp_path, result_format="csv").splitlines() == [
        "set,edition,data,mode,seeds,accuracy,log_loss,macs,parameter_memory_bytes,energy_training_kwh,energy_inference_kwh,hash"]


def report_of(edition, accuracy=0.55, synthetic=False, train_split=100):
    run = {"dataset": {"name": "TAU", "synthetic": synthetic, "path": "x"}, "set_id": "s", "mode": "dev", "edition": edition,
           "train_split": train_split, "reference": editions.get(edition).official_reference(train_split) if edition in editions.REGISTRY else None,
           "evaluation": {"overall_accuracy": accuracy, "overall_logloss": 1.2, "n_trials": 1, "table": "t"}}
    text = render_run_report(run)
    return text, text[text.index("## Official figures (reference)"):].split("\n## ")[0]


def test_the_report_shows_its_editions_official_figures_as_reference():
    text, reference = report_of(2023)
    assert text.startswith("# DCASE2023 Task 1 run report: s\n")
    assert "| this run (s) | 55.00 % | 1.200 |" in reference
    assert "| reference: DCASE2023 baseline (also DCASE2022) | 42.90 % | 1.575 |" in reference
    _, reference = report_of(2024, train_split=25)
    rows = [line for line in reference.splitlines() if line.startswith("| reference:")]
    assert rows[0] == "| reference: DCASE2024 baseline, 25 % split | 50.29 % | not published |"  # the run's split first
    assert [row.split("|")[2].strip() for row in rows] == ["50.29 %", "42.40 %", "45.29 %", "53.19 %", "56.99 %"]
    _, reference = report_of(2025, synthetic=True)
    assert "| reference: DCASE2025 baseline, general model | 50.72 % | not published |" in reference
    assert "| reference: DCASE2025 baseline, device-specific models | 51.89 % | not published |" in reference
    assert "this run (s, SYNTHETIC data)" in reference and "not comparable" in reference
    _, reference = report_of(None)
    assert "not shown" in reference
    assert all(editions.get(year).reference for year in (2023, 2024, 2025))
