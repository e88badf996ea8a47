"""Generic behaviour of the `mcunas` command: help everywhere, fast start, user errors exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcunas.cli import SUBCOMMANDS, main

HEAVY_MODULES = ("torch", "tensorflow", "optuna", "ray", "onnx", "onnxruntime", "sklearn", "matplotlib", "scipy")
MCUNAS = Path(sys.executable).parent / "mcunas"  # the console script of the installed package


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RAY_USAGE_STATS_ENABLED="0")
    return subprocess.run([str(MCUNAS), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_top_level_help_lists_every_subcommand():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mcunas")
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_parser_imports_nothing_heavy():
    """`mcunas --help` stays fast: building the parser imports no ML framework."""
    code = (
        "import sys; from mcunas.cli import build_parser; build_parser(); "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported at parser build: {result.stdout.strip()}"


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mcunas {name}")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_user_error_exits_2_with_one_message_and_no_traceback(tmp_path: Path):
    missing = tmp_path / "missing.yaml"
    result = _run("search", str(missing), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"mcunas search: error: {missing}: config file not found" in result.stderr
    assert not (tmp_path / "run").exists()


def test_invalid_config_error_names_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "bad.yaml"
    config.write_text("name: demo\ntraining: {epochs: 0, optimiser: sgd}\n", encoding="utf-8")
    assert main(["search", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mcunas search: error: 2 problems in {config}:")
    assert f"{config}: training.epochs: must be greater than or equal to 1, got 0" in err
    assert f"{config}: training.optimiser: unknown key, did you mean 'optimizer'?" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["report", "{tmp}/no-run"], "no-run"),
        (["space", "show", "{tmp}/arch.json"], "arch.json"),
    ],
)
def test_missing_input_files_exit_2(argv: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mcunas {argv[0]}: error:") and names in err


def test_closed_stdout_pipe_is_not_a_crash():
    """`mcunas boards | head -1` must not end in a BrokenPipeError traceback."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([str(MCUNAS), "boards"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the reader goes away before the command writes
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err.decode() and "BrokenPipeError" not in err.decode()
