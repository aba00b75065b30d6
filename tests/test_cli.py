"""The command lines: --help in groups with examples, both flag spellings (centrally, utils/cli.py),
hints in the form the user typed, the module tools as installed commands working from any folder."""

import importlib
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from utils import cli

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_help_is_grouped_with_examples(capsys):
    import task1a

    with pytest.raises(SystemExit) as stop:
        task1a.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for group in ("run:", "data:", "model:", "challenge:", "output:", "inspection:"):
        assert f"\n{group}\n" in text
    assert "examples:" in text and "DCASE2022-2025" in text
    body = text[text.index("\nrun:"):]
    assert body.index("--parameter_set") < body.index("\ndata:") < body.index("--download_dataset") < body.index("\ninspection:") < body.index("--show_results")


def test_both_spellings_reach_the_same_option():
    parser = cli.ArgumentParser(prog="x")
    parser.add_argument("--check-audio", action="store_true")
    parser.add_argument("--train_split", type=int, default=100)
    parser.add_argument("path")
    for argv in (["p", "--check_audio", "--train-split", "25"], ["p", "--check-audio", "--train_split=25"]):
        args = parser.parse_args(argv)
        assert args.check_audio is True and args.train_split == 25 and args.path == "p"
    assert parser.parse_args(["--", "--check_audio"]).path == "--check_audio"  # after --, a value
    with pytest.raises(SystemExit):
        parser.parse_args(["p", "--check_audoi"])


@pytest.mark.parametrize("argv0, typed", [("/venv/bin/task1a", "task1a"), ("task1a.py", "python task1a.py"), ("../repo/task1a.py", "python ../repo/task1a.py")])
def test_hints_name_the_command_as_typed(monkeypatch, argv0, typed):
    monkeypatch.setattr(sys, "argv", [argv0, "-s", "x"])
    assert cli.typed_command() == typed
    assert cli.as_typed("download it (python task1a.py --download_dataset PATH)") == f"download it ({typed} --download_dataset PATH)"


def test_an_error_hint_uses_the_installed_command(tmp_path):
    launcher = tmp_path / "bin" / "task1a"
    launcher.parent.mkdir()
    launcher.write_text(f"#!{sys.executable}\nimport sys\nsys.path.append({str(REPO)!r})\nfrom task1a import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    result = subprocess.run([str(launcher), "-s", "no_such_set", "--no_progress"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    usage = subprocess.run([str(launcher), "--bogus"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: task1a ")


def test_every_script_entry_point_exists():
    assert set(cli.TOOL_COMMANDS.values()) | {"task1a", "task1a-nessi"} == set(SCRIPTS)
    for script, target in SCRIPTS.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), script
        if module in cli.TOOL_COMMANDS:
            assert cli.TOOL_COMMANDS[module] == script


def launcher(folder: Path, script: str) -> Path:
    """The script pip writes for a [project.scripts] entry (sys.path[0] is its bin folder, not the working folder)."""
    module, _, function = SCRIPTS[script].partition(":")
    path = folder / script
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.path.append({str(REPO)!r})  # the installed package (an editable install's finder)
        from {module} import {function}
        sys.exit({function}())
    """))
    path.chmod(0o755)
    return path


@pytest.mark.slow
def test_the_tools_run_as_commands_from_a_folder_with_its_own_utils(tmp_path):
    """The official baselines' layout has a utils.py of its own in the working folder."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    (work / "utils.py").write_text("raise SystemExit('the working folder utils.py was imported')\n")
    for script in cli.TOOL_COMMANDS.values():
        result = subprocess.run([str(launcher(bin_dir, script)), "--help"], cwd=work, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (script, result.stderr[-1000:])
        assert result.stdout.startswith(f"usage: {script} ")


def test_a_tool_takes_both_spellings_of_its_flags(tmp_path):
    """task1a-dataset declares --check-audio; --check_audio is the same option (both parsed, the same one-line error)."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    (work / "utils.py").write_text("raise SystemExit('the working folder utils.py was imported')\n")
    dataset = launcher(bin_dir, "task1a-dataset")
    runs = [subprocess.run([str(dataset), "missing_folder", flag], cwd=work, capture_output=True, text=True, timeout=120)
            for flag in ("--check_audio", "--check-audio")]
    assert [run.returncode for run in runs] == [1, 1]  # parsed; the folder is missing: one error line
    assert runs[0].stderr == runs[1].stderr and runs[0].stderr.startswith("error: ") and len(runs[0].stderr.splitlines()) == 1
    assert "missing_folder" in runs[0].stderr
    wrong = subprocess.run([str(dataset), "missing_folder", "--check_audoi"], cwd=work, capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "unrecognized arguments: --check_audoi" in wrong.stderr
