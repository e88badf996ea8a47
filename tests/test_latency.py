"""The latency model: packaged profiles reproduce the MLPerf Tiny fit and its published latencies."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mcunas.errors import BoardError, ConfigError, ProfileError
from mcunas.estimators import load_board
from mcunas.estimators.calibrate import fit_op_costs, fit_scale
from mcunas.estimators.latency import (
    CLASSES,
    TERMS,
    Profile,
    default_profile,
    latency_ms,
    load_profile,
    op_class,
    op_terms,
)
from mcunas.graph.ir import Graph, Op
from mcunas.graph.tflite import read_tflite

REPO = Path(__file__).resolve().parents[1]
MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")
# MLPerf Tiny v0.5 closed/reference, NUCLEO-L4R5ZI, TFLM + CMSIS-NN (the README of the data).
PUBLISHED_MS = {"ad01_int8": 10.05, "kws_ref_model": 181.9, "pretrainedResnet_quant": 704.2, "vww_96_int8": 600.6}


def load_fit_script():
    spec = importlib.util.spec_from_file_location("latency_fit", REPO / "benchmarks" / "latency_fit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_graph() -> Graph:
    """16x16x3 -> 3x3 conv (8) -> depthwise 5x5 -> 1x1 conv (16) -> mean -> FC 10."""
    g = Graph("tiny")
    x = g.add_tensor("x", (1, 16, 16, 3))
    w1 = g.add_tensor("w1", (8, 3, 3, 3), is_constant=True, quant_channels=8)
    y1 = g.add_tensor("y1", (1, 16, 16, 8))
    w2 = g.add_tensor("w2", (1, 5, 5, 8), is_constant=True, quant_channels=8)
    y2 = g.add_tensor("y2", (1, 16, 16, 8))
    w3 = g.add_tensor("w3", (16, 1, 1, 8), is_constant=True, quant_channels=16)
    y3 = g.add_tensor("y3", (1, 16, 16, 16))
    y4 = g.add_tensor("y4", (1, 1, 1, 16))
    w5 = g.add_tensor("w5", (10, 16), is_constant=True)
    y5 = g.add_tensor("y5", (1, 10))
    g.ops = [
        Op("CONV_2D", (x, w1, -1), (y1,), kernel=(3, 3), stride=(1, 1), padding="SAME", macs=16 * 16 * 8 * 27),
        Op("DEPTHWISE_CONV_2D", (y1, w2, -1), (y2,), kernel=(5, 5), stride=(1, 1), padding="SAME", macs=16 * 16 * 8 * 25),
        Op("CONV_2D", (y2, w3, -1), (y3,), kernel=(1, 1), stride=(1, 1), padding="VALID", macs=16 * 16 * 16 * 8),
        Op("MEAN", (y3,), (y4,)),
        Op("FULLY_CONNECTED", (y4, w5, -1), (y5,), macs=160),
    ]
    g.inputs, g.outputs = (x,), (y5,)
    return g


def test_op_classes_and_terms() -> None:
    g = tiny_graph()
    assert [op_class(op) for op in g.ops] == ["conv", "depthwise", "conv_1x1", "mean", "fully_connected"]
    # (1, MACs, taps = outputs * area, windows = pixels * area, inputs, outputs)
    assert op_terms(g, g.ops[0]) == (1, 16 * 16 * 8 * 27, 2048 * 9, 256 * 9, 768, 2048)
    assert op_terms(g, g.ops[3]) == (1, 0, 0, 0, 4096, 16)


def test_packaged_profiles_cover_every_core_with_latency() -> None:
    for core in ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"):
        for runtime in ("tflm-cmsis-nn", "tflm-reference"):
            profile = default_profile(core, runtime)
            assert set(profile.cycles) == set(CLASSES)
            assert profile.provenance["derivation"] and profile.provenance["residuals"]
    with pytest.raises(BoardError, match="no latency profile for core 'xtensa-lx7'"):
        default_profile("xtensa-lx7", "tflm-cmsis-nn")
    with pytest.raises(ConfigError, match="unknown runtime 'tflm-esp-nn'"):
        default_profile("cortex-m4", "tflm-esp-nn")


def test_physical_orderings_on_a_small_graph() -> None:
    g = tiny_graph()
    nano, pico, f746 = (load_board(n) for n in ("arduino-nano-33-ble-sense", "raspberry-pi-pico", "stm32f746g-disco"))
    for board in (nano, pico, f746):
        assert 0 < latency_ms(g, board, "tflm-cmsis-nn") < latency_ms(g, board, "tflm-reference")
    # per MHz: M7 fewer cycles than M4, M0+ more
    per_mhz = {b.core: latency_ms(g, b) * b.clock_mhz for b in (nano, pico, f746)}
    assert per_mhz["cortex-m7"] < per_mhz["cortex-m4"] < per_mhz["cortex-m0plus"]
    # a larger depthwise kernel costs more
    bigger = tiny_graph()
    bigger.ops[1] = Op("DEPTHWISE_CONV_2D", g.ops[1].inputs, g.ops[1].outputs, kernel=(7, 7), macs=16 * 16 * 8 * 49)
    assert latency_ms(bigger, nano) > latency_ms(g, nano)


def test_unsupported_board_and_mismatched_profile_raise() -> None:
    g = tiny_graph()
    with pytest.raises(BoardError, match="latency is not supported"):
        latency_ms(g, load_board("esp32-s3-devkitc-1"))
    m7 = default_profile("cortex-m7", "tflm-cmsis-nn")
    with pytest.raises(BoardError, match="does not match board 'nucleo-l4r5zi'"):
        latency_ms(g, load_board("nucleo-l4r5zi"), profile=m7)


def test_malformed_profile_file_names_file_and_key(tmp_path: Path) -> None:
    data = default_profile("cortex-m4", "tflm-cmsis-nn").to_dict()
    data["cycles"]["depthwise"]["per_mac"] = -1
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"p\.json: 'cycles\.depthwise\.per_mac' must be a number >= 0"):
        load_profile(path)
    data["cycles"]["depthwise"]["per_mac"] = 1.0
    del data["cycles"]["pad"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"missing op class 'cycles\.pad'"):
        load_profile(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"p\.json: invalid JSON at line 1"):
        load_profile(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ProfileError, match=r"p\.json: not UTF-8 text"):
        load_profile(path)


def test_fit_recovers_known_coefficients_exactly() -> None:
    g = tiny_graph()
    truth = {name: tuple(float(i + 1) for i in range(len(TERMS))) for name in CLASSES}
    profile = Profile("cortex-m4", "tflm-cmsis-nn", truth)
    counts = [profile.op_cycles(g, op) for op in g.ops]
    assert fit_scale([2.0, 4.0], [4.0, 8.0]) == pytest.approx(2.0)
    fitted = fit_op_costs([(g, counts)], "tflm-cmsis-nn")
    # one op per class: every class reproduces its op's count
    for op, count in zip(g.ops, counts):
        units = op_terms(g, op)
        assert sum(c * u for c, u in zip(fitted[op_class(op)], units)) == pytest.approx(count, rel=1e-6)


def test_published_latencies_within_reported_error(mlperf_dir: Path) -> None:
    board = load_board("nucleo-l4r5zi")
    profile = default_profile("cortex-m4", "tflm-cmsis-nn")
    reported = {row["model"]: row for row in profile.provenance["residuals"]}
    for model in MODELS:
        predicted = latency_ms(read_tflite(mlperf_dir / f"{model}.tflite"), board)
        row = reported[model]
        assert row["published_ms"] == PUBLISHED_MS[model]
        assert predicted == pytest.approx(row["predicted_ms"], rel=1e-3)
        error_pct = 100 * (predicted / PUBLISHED_MS[model] - 1)
        assert abs(error_pct) <= abs(row["error_pct"]) + 0.1
        assert abs(error_pct) < 25, f"{model}: {error_pct:+.1f}% off the published latency"


def test_packaged_profiles_equal_a_refit(mlperf_dir: Path) -> None:
    script = load_fit_script()
    graphs, counts = script.load_data(mlperf_dir)
    result = script.evaluate(graphs, counts)
    for refit in script.derived_profiles(result, graphs):
        packaged = default_profile(refit.core, refit.runtime)
        for name in CLASSES:
            assert packaged.cycles[name] == pytest.approx(refit.cycles[name], rel=1e-4, abs=1e-3), (refit.core, name)
    # the MCUNet fact the Cortex-M7 reference profile is built on: ~11x on a MobileNet
    vww = graphs["vww_96_int8"]
    h743 = load_board("nucleo-h743zi2")
    ratio = latency_ms(vww, h743, "tflm-reference") / latency_ms(vww, h743, "tflm-cmsis-nn")
    assert ratio == pytest.approx(11.0, rel=0.01)
