"""Calibration to a board: from whole-model latencies (CSV) and from MicroProfiler tick logs, each
reproducing the cycles it was given; log parsing; the bundle's profiling program prints that format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcunas.cli import main
from mcunas.errors import ProfileError
from mcunas.estimators import load_board
from mcunas.estimators.calibrate import fit_profile, read_tick_log
from mcunas.estimators.latency import latency_ms, load_profile
from mcunas.export.bundle import profile_main_source
from mcunas.graph.tflite import read_tflite

BOARD = "nucleo-f446re"


def instruction_counts(mlperf_dir: Path, model: str) -> list[int]:
    """Executed instructions per op of ``model`` (CMSIS-NN build): real per-op figures to use as ticks."""
    records = json.loads((mlperf_dir / "cortex-m4-instruction-counts.json").read_text())["records"]
    (record,) = [r for r in records if r["model"] == model and r["build"] == "cmsis-nn"]
    return [op["instructions"] for op in record["ops"]]


def log_csv(tags: list[str], ticks: list[int], runs: int = 2) -> str:
    """A serial capture of the bundle's profile_main.cc: chatter, then LogCsv blocks per run."""
    lines = ["boot ok", "mcunas profile: vww on board, 2 runs, arena 100000 bytes used"]
    for run in range(runs):
        lines.append('"Event","Tag","Ticks"')
        lines += [f"{i},{tag},{t + run}" for i, (tag, t) in enumerate(zip(tags, ticks))]  # runs differ a little
        lines.append(f"mcunas invoke {run}: {sum(ticks)} cycles")
    return "\n".join(lines) + "\n"


def test_csv_calibration_reproduces_the_measured_latency(mlperf_dir: Path, tmp_path: Path) -> None:
    board = load_board(BOARD)
    model = mlperf_dir / "kws_ref_model.tflite"
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(f"tflite_path,measured_ms\n{os.path.relpath(model, tmp_path)},123.4\n", encoding="utf-8")
    out = tmp_path / "p.json"
    assert main(["estimate", "calibrate", str(csv_path), "--board", BOARD, "--out", str(out)]) == 0
    profile = load_profile(out)
    assert latency_ms(read_tflite(model), board, profile=profile) == pytest.approx(123.4, rel=1e-9)
    assert profile.provenance["measurements"][0]["error_pct"] == 0.0


def test_tick_log_calibration_reproduces_class_and_model_cycles(mlperf_dir: Path, tmp_path: Path) -> None:
    board = load_board(BOARD)
    model = mlperf_dir / "vww_96_int8.tflite"
    graph = read_tflite(model)
    ticks = [int(1.7 * n) for n in instruction_counts(mlperf_dir, "vww_96_int8")]
    log = tmp_path / "ticks.txt"
    log.write_text(log_csv([op.kind for op in graph.ops], ticks), encoding="utf-8")
    out = tmp_path / "p.json"
    assert main(["estimate", "calibrate", "--ticks", str(log), "--ticks-model", str(model), "--board", BOARD,
                 "--out", str(out)]) == 0
    profile = load_profile(out)
    measured = [t + 0.5 for t in ticks]  # the average of the two runs
    per_op = profile.op_cycles(graph, board)
    assert sum(c for _, c in per_op) == pytest.approx(sum(measured), rel=1e-9)
    for name in {n for n, _ in per_op}:  # every class's total is reproduced
        predicted = sum(c for n, c in per_op if n == name)
        assert predicted == pytest.approx(sum(m for (n, _), m in zip(per_op, measured) if n == name), rel=1e-9)
    assert len(profile.provenance["tick_log"]["groups"]) == len({n for n, _ in per_op}) > 1


def test_per_tag_log_and_tick_rate(mlperf_dir: Path, tmp_path: Path) -> None:
    board = load_board(BOARD)
    model = mlperf_dir / "kws_ref_model.tflite"
    graph = read_tflite(model)
    ticks = instruction_counts(mlperf_dir, "kws_ref_model")
    totals: dict[str, int] = {}
    for op, t in zip(graph.ops, ticks):
        totals[op.kind] = totals.get(op.kind, 0) + t
    log = tmp_path / "tags.txt"
    log.write_text('"Unique Tag","Total ticks across all events with that tag."\n'
                   + "".join(f"{tag}, {t}\n" for tag, t in totals.items())
                   + f"total number of ticks, {sum(totals.values())}\n", encoding="utf-8")
    assert read_tick_log(log)[0] == "per_tag"
    # ticks of a 1 MHz timer: each tick is clock_mhz cycles
    profile = fit_profile([], board, "tflm-cmsis-nn", tick_log=log, tick_model=model, ticks_per_second=1e6)
    per_op = profile.op_cycles(graph, board)
    for kind, total in totals.items():
        predicted = sum(c for op, (_, c) in zip(graph.ops, per_op) if op.kind == kind)
        assert predicted == pytest.approx(total * board.clock_mhz, rel=1e-9), kind


def test_bad_tick_logs_are_named(mlperf_dir: Path, tmp_path: Path) -> None:
    model = mlperf_dir / "ad01_int8.tflite"
    log = tmp_path / "log.txt"
    log.write_text("nothing here\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"log\.txt: no MicroProfiler header"):
        read_tick_log(log)
    log.write_text('"Event","Tag","Ticks"\n0,CONV_2D,5\n', encoding="utf-8")
    with pytest.raises(ProfileError, match=r"1 LogCsv rows are not a whole number of invokes of the 10 ops"):
        fit_profile([], load_board(BOARD), "tflm-cmsis-nn", tick_log=log, tick_model=model)
    graph = read_tflite(model)
    log.write_text(log_csv(["CONV_2D"] * len(graph.ops), [5] * len(graph.ops), runs=1), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"row 1 is tag CONV_2D, but op 0 of .* is FULLY_CONNECTED"):
        fit_profile([], load_board(BOARD), "tflm-cmsis-nn", tick_log=log, tick_model=model)
    assert main(["estimate", "calibrate", "--ticks", str(log), "--board", BOARD, "--out", str(tmp_path / "p.json")]) == 2
    assert not (tmp_path / "p.json").exists()


def test_profile_program_prints_what_calibration_reads(tmp_path: Path) -> None:
    source = profile_main_source("m on b", runs=3)
    assert "constexpr int kProfileRuns = 3;" in source and "mcunas_profile()" in source
    header = next(line for line in source.splitlines() if "MicroPrintf(\"\\\"Event" in line)
    printed = header.split('MicroPrintf("', 1)[1].rsplit('");', 1)[0].replace('\\"', '"')
    row_format = next(line for line in source.splitlines() if 'MicroPrintf("%d,%s,%u"' in line)
    assert "%d,%s,%u" in row_format
    log = tmp_path / "out.txt"
    log.write_text(f"{printed}\n" + "0,CONV_2D,100\n1,SOFTMAX,20\n", encoding="utf-8")
    assert read_tick_log(log) == ("per_op", [("CONV_2D", 100), ("SOFTMAX", 20)])
