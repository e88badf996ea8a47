"""`mcunas space sample` / `mcunas space show` through the real CLI entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mcunas.cli import main
from mcunas.spaces import arch_from_dict, get_space

REPO_ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).with_name("mcunas")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_sample_is_deterministic_json_lines(capsys) -> None:
    argv = ("space", "sample", "mobilenetv2", "--n", "4", "--seed", "11", "--input-channels", "1", "--num-classes", "5")
    first = run_cli(capsys, *argv)
    second = run_cli(capsys, *argv)
    assert first[0] == 0 and first == second
    lines = first[1].splitlines()
    assert len(lines) == 4
    archs = [arch_from_dict(json.loads(line)) for line in lines]
    assert all((a.space, a.input_channels, a.num_classes) == ("mobilenetv2", 1, 5) for a in archs)
    other = run_cli(capsys, "space", "sample", "mobilenetv2", "--n", "4", "--seed", "12", "--input-channels", "1", "--num-classes", "5")
    assert other[1] != first[1]


def test_console_script_prints_the_same_lines(capsys) -> None:
    argv = ["space", "sample", "mobilenetv1", "--n", "3", "--seed", "2"]
    status, out, _ = run_cli(capsys, *argv)
    result = subprocess.run([str(CONSOLE_SCRIPT), *argv], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert status == 0 and result.returncode == 0, result.stderr
    assert result.stdout == out


def test_show_table_and_json_totals(capsys, tmp_path) -> None:
    space = get_space("mobilenetv2")
    arch = space.default_teacher(3, 10, 32)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_dict()))
    graph = space.graph(arch)

    status, out, _ = run_cli(capsys, "space", "show", str(path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == arch.block_string()
    assert lines[-2:] == [f"macs: {graph.macs:,}", f"params: {graph.params:,}"]
    assert len(lines) == 2 + len(graph.ops) + 2  # block string, header, one row per op, totals
    assert "PAD" in lines[2] and "1x32x32x3 -> 1x34x34x3" in lines[2]

    status, out, _ = run_cli(capsys, "space", "show", str(path), "--json")
    shown = json.loads(out)
    assert status == 0 and (shown["macs"], shown["params"]) == (graph.macs, graph.params)
    assert arch_from_dict(shown["arch"]) == arch
    assert [row["kind"] for row in shown["ops"]] == [op.kind for op in graph.ops]
    assert sum(row["params"] for row in shown["ops"]) == graph.params


def test_user_errors_exit_2_with_a_message(capsys, tmp_path) -> None:
    status, out, err = run_cli(capsys, "space", "sample", "resnet")
    assert (status, out) == (2, "") and "space.name: unknown space 'resnet'" in err
    status, _, err = run_cli(capsys, "space", "sample", "mobilenetv1", "--num-classes", "1")
    assert status == 2 and "space.num_classes" in err
    status, _, err = run_cli(capsys, "space", "show", str(tmp_path / "absent.json"))
    assert status == 2 and "absent.json: architecture file not found" in err


def test_importing_spaces_and_its_command_stays_light() -> None:
    code = "import sys, mcunas.spaces, mcunas.spaces.command; print(sorted({'torch', 'optuna', 'tensorflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_show_and_estimate_accept_a_block_string(capsys, tmp_path) -> None:
    space = get_space("dscnn")
    arch = space.default_teacher(1, 12, (49, 10))
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_dict()))
    text = arch.block_string()
    assert text.startswith("r49x10_in1-relu-stem_k10x4_s2x2_c")
    for command in (["space", "show"], ["estimate"]):
        extra = ["--board", "arduino-nano-33-ble-sense", "--json"] if command == ["estimate"] else ["--json"]
        from_string = run_cli(capsys, *command, text, *extra)
        from_file = run_cli(capsys, *command, str(path), *extra)
        assert from_string[0] == 0 and from_string == from_file
    cost = json.loads(from_string[1])
    assert cost["macs"] == space.graph(arch).macs

    status, out, err = run_cli(capsys, "estimate", text.replace("_k5_", "_k5.3.5.3_"), "--board", "arduino-nano-33-ble-sense")
    assert (status, out) == (2, "") and "token 4" in err and "4 values for 2 blocks" in err
    status, _, err = run_cli(capsys, "space", "show", "model.onnx")
    assert status == 2 and "model.onnx: expected an architecture file (a name ending in .json) or a block string" in err


def test_sample_dscnn_lines_parse_back(capsys) -> None:
    status, out, _ = run_cli(capsys, "space", "sample", "dscnn", "--n", "3", "--seed", "1")
    archs = [arch_from_dict(json.loads(line)) for line in out.splitlines()]
    assert status == 0 and len(archs) == 3
    assert all(a.space == "dscnn" and a.input_size == (49, 10) and len(a.stem_kernel) == 2 for a in archs)
