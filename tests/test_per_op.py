"""The per-op view: ``mcunas estimate MODEL --per-op`` (table and JSON), the export folder's
``per_op.txt``, and its link in the report's exported-models table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcunas.cli import main
from mcunas.estimators import load_board
from mcunas.estimators.memory import live_bytes_per_op, plan_bytes
from mcunas.estimators.per_op import per_op_text, per_op_view
from mcunas.graph.tflite import read_tflite


@pytest.fixture(scope="module")
def detection(tmp_path_factory) -> Path:
    from test_memory import session_int8_models

    return session_int8_models(tmp_path_factory)["detection_head"]


def test_json_rows_mark_the_peak_memory_op(detection, capsys):
    assert main(["estimate", str(detection), "--board", "nucleo-f446re", "--per-op", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["per_op"]
    graph = read_tflite(detection)
    assert [row["kind"] for row in rows] == [op.kind for op in graph.ops]
    live = live_bytes_per_op(graph, "cortex-m", "cmsis-nn")
    assert [row["live_bytes"] for row in rows] == live
    (peak,) = [row for row in rows if row["peak"]]
    assert peak["live_bytes"] == max(live) <= plan_bytes(graph, "cmsis-nn", "cortex-m")
    assert sum(row["latency_share"] for row in rows) == pytest.approx(1.0)
    assert rows[0]["output_shape"] == list(graph.tensors[graph.ops[0].outputs[0]].shape)
    assert rows[0]["macs"] == graph.ops[0].macs > 0
    assert data["arena_bytes"] > 0  # the Cost is still there


def test_table_after_the_estimate(detection, capsys):
    assert main(["estimate", str(detection), "--board", "nucleo-f446re", "--per-op"]) == 0
    out = capsys.readouterr().out
    assert "arena (32-bit target)" in out and "per op (32-bit arena" in out
    lines = [line for line in out.splitlines() if "<- peak" in line]
    assert len(lines) == 1 and "LOGISTIC" in lines[0]  # the last op: input and output 16x12x6


def test_without_latency_profile_the_share_is_empty(detection):
    graph = read_tflite(detection)
    rows = per_op_view(graph)
    assert all(row.latency_share is None for row in rows)
    text = per_op_text(graph, None, "tflm-reference")
    assert "generic 32-bit target" in text and "<- peak" in text
    with_board = per_op_text(graph, load_board("nucleo-f446re"), "tflm-cmsis-nn")
    assert "%" in with_board and "nucleo-f446re" in with_board


def test_report_links_each_export_to_its_per_op_view(tmp_path):
    from mcunas.report.html import _with_per_op_links
    from mcunas.report.load import RunData

    export = tmp_path / "run" / "exports" / "nucleo-f446re" / "3"
    export.mkdir(parents=True)
    (export / "per_op.txt").write_text("table\n")
    run = RunData(path=tmp_path / "run", label="run", config_text="", objectives=[], boards=["nucleo-f446re"])
    rows = [{"run": "run", "board": "nucleo-f446re", "number": 3}, {"run": "run", "board": "nucleo-f446re", "number": 4}]
    linked = _with_per_op_links([run], rows)
    assert linked[0]["per_op_uri"] == (export / "per_op.txt").resolve().as_uri()
    assert linked[1]["per_op_uri"] is None  # an export written before per_op.txt existed
