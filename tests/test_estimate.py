"""estimate() and the `mcunas estimate` CLI: Cost keys, budgets, calibration round trip, errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mcunas.cli import main
from mcunas.estimators import Cost, estimate, load_board
from mcunas.errors import ProfileError
from mcunas.estimators.calibrate import fit_profile, read_measurements
from mcunas.estimators.latency import default_profile, load_profile
from mcunas.graph.tflite import read_tflite

COST_KEYS = [
    "board", "runtime", "macs", "params", "arena_bytes", "arena_bytes_host", "activation_bytes", "param_bytes", "sram_bytes",
    "model_bytes", "flash_bytes", "latency_ms", "fits", "violations", "latency_ms_low", "latency_ms_high",
    "latency_assumed_ops", "latency_assumed_pct", "frontend_flash_bytes", "frontend_ram_bytes",
]
MODELS = ("ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")
PUBLISHED_MS = {"ad01_int8": 10.05, "kws_ref_model": 181.9, "pretrainedResnet_quant": 704.2, "vww_96_int8": 600.6}


def write_csv(folder: Path, mlperf_dir: Path, factor: float = 1.0) -> Path:
    """MEASUREMENTS.csv with paths relative to the CSV and the published latencies x factor."""
    relative = Path(os.path.relpath(mlperf_dir, folder))
    lines = ["tflite_path,measured_ms"] + [f"{relative / (m + '.tflite')},{PUBLISHED_MS[m] * factor}" for m in MODELS]
    path = folder / "measurements.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_estimate_cost_and_budgets(mlperf_dir: Path) -> None:
    vww = read_tflite(mlperf_dir / "vww_96_int8.tflite")
    cost = estimate(vww, "nucleo-l4r5zi")
    assert isinstance(cost, Cost) and list(cost.to_dict()) == COST_KEYS
    assert (cost.board, cost.runtime, cost.macs, cost.params) == ("nucleo-l4r5zi", "tflm-cmsis-nn", vww.macs, vww.params)
    board = load_board("nucleo-l4r5zi")
    assert cost.sram_bytes == cost.arena_bytes + board.sram_reserve_bytes
    assert cost.flash_bytes > cost.model_bytes > 0
    assert cost.fits and cost.violations == []
    assert cost.latency_ms == pytest.approx(600.6, rel=0.25)

    # a board without a latency model: no latency, not a violation unless a ceiling is asked for
    esp = estimate(vww, "esp32-s3-devkitc-1")
    assert esp.latency_ms is None and esp.fits
    esp_ceiling = estimate(vww, "esp32-s3-devkitc-1", max_latency_ms=100)
    assert not esp_ceiling.fits and "cannot be checked" in esp_ceiling.violations[0]


def test_budget_violations_name_figures_and_budgets(mlperf_dir: Path, tmp_path: Path) -> None:
    board_file = tmp_path / "tiny.yaml"
    board_file.write_text(
        "name: tiny\ndisplay_name: Tiny\nmcu: test\ncore: cortex-m4\nclock_mhz: 48\n"
        "sram_bytes: 65536\nflash_bytes: 262144\nsram_reserve_bytes: 4096\nflash_reserve_bytes: 131072\n",
        encoding="utf-8",
    )
    cost = estimate(read_tflite(mlperf_dir / "vww_96_int8.tflite"), board_file, max_latency_ms=50)
    assert not cost.fits
    runtime_bytes = cost.flash_bytes - cost.model_bytes
    assert cost.violations == [
        f"SRAM arena {cost.arena_bytes:,} B > budget 61,440 B (64 KB - 4 KB reserve)",
        f"flash {cost.flash_bytes:,} B (model {cost.model_bytes:,} B + runtime {runtime_bytes:,} B)"
        " > budget 131,072 B (256 KB - 128 KB reserve)",
        f"latency {cost.latency_ms:,.1f} ms > limit 50 ms",
    ]


def test_unas_budgets_count_planned_activations_and_parameter_bytes(mlperf_dir: Path) -> None:
    """μNAS's activation budget limits the arena without its persistent tail; its model-size budget
    the weights (int8) and biases (int32); both are checked by the one budget check."""
    from mcunas.estimators import memory
    from mcunas.estimators.budget import limits, overruns

    graph = read_tflite(mlperf_dir / "ad01_int8.tflite")
    cost = estimate(graph, "nucleo-f446re")
    assert cost.activation_bytes + memory.tail_bytes(graph, "cortex-m", "cmsis-nn") == cost.arena_bytes  # 32-bit target
    weights = sum(graph.tensors[op.inputs[1]].nbytes for op in graph.ops if op.macs)
    biases = sum(graph.tensors[op.inputs[2]].nbytes for op in graph.ops if op.macs)
    assert cost.param_bytes == weights + biases and biases == 4 * sum(
        graph.tensors[op.inputs[2]].num_elements for op in graph.ops if op.macs)
    tight = estimate(graph, "nucleo-f446re", max_activation_bytes=cost.activation_bytes - 1,
                     max_param_bytes=cost.param_bytes - 1)
    assert tight.violations == [
        f"activations (planned arena, no persistent tail) {cost.activation_bytes:,} B > budget {cost.activation_bytes - 1:,} B",
        f"parameters (int8 weights, int32 biases) {cost.param_bytes:,} B > budget {cost.param_bytes - 1:,} B",
    ]
    assert estimate(graph, "nucleo-f446re", max_activation_bytes=cost.activation_bytes,
                    max_param_bytes=cost.param_bytes).fits
    as_tflm = estimate(graph, "nucleo-f446re", max_arena_bytes=cost.arena_bytes - 1, max_model_bytes=cost.model_bytes)
    assert as_tflm.violations == [f"TFLM arena (32-bit) {cost.arena_bytes:,} B > budget {cost.arena_bytes - 1:,} B"]
    board_limits = limits(load_board("nucleo-f446re"), max_activation_bytes=1000, max_param_bytes=2000,
                          max_arena_bytes=3000, max_model_bytes=4000)
    assert [limit.key for limit in board_limits] == ["sram", "flash", "activations", "params", "arena", "model"]
    assert overruns(cost, board_limits)["params"] == pytest.approx(cost.param_bytes / 2000 - 1)


def test_front_end_counts_in_the_budget(tmp_path: Path) -> None:
    """An audio front end's flash and RAM are part of flash_bytes and sram_bytes and of the one check."""
    from mcunas.frontend import FrontEndConfig, frontend_memory_bytes
    from mcunas.spaces import get_space, parse_block_string

    graph = get_space("dscnn").graph(parse_block_string(
        "r49x10_in1-relu-stem_k10x4_s2x2_c64-dsc_r2_k3_s1_c64-dsc_r2_k3_s1_c64-fc12"))
    front_end = FrontEndConfig()
    frontend_flash, frontend_ram = frontend_memory_bytes(front_end)
    alone = estimate(graph, "arduino-nano-33-ble-sense")
    cost = estimate(graph, "arduino-nano-33-ble-sense", front_end=front_end)
    assert (alone.frontend_flash_bytes, alone.frontend_ram_bytes) == (0, 0)
    assert (cost.frontend_flash_bytes, cost.frontend_ram_bytes) == (frontend_flash, frontend_ram) != (0, 0)
    assert cost.sram_bytes == alone.sram_bytes + frontend_ram
    assert cost.flash_bytes == alone.flash_bytes + frontend_flash
    assert (cost.arena_bytes, cost.model_bytes, cost.latency_ms) == (alone.arena_bytes, alone.model_bytes, alone.latency_ms)

    # a board on which the model alone fits and the model with its front end does not
    board_file = tmp_path / "small.yaml"
    sram, flash, reserve = alone.sram_bytes + 1024, alone.flash_bytes + 1024, 4096
    sram_reserve = alone.sram_bytes - alone.arena_bytes
    board_file.write_text(
        f"name: small\ndisplay_name: Small\nmcu: test\ncore: cortex-m4\nclock_mhz: 64\nsram_bytes: {sram}\n"
        f"flash_bytes: {flash + reserve}\nsram_reserve_bytes: {sram_reserve}\nflash_reserve_bytes: {reserve}\n",
        encoding="utf-8")
    assert estimate(graph, board_file).fits
    small = estimate(graph, board_file, front_end=front_end)
    runtime_bytes = small.flash_bytes - small.model_bytes - frontend_flash
    assert not small.fits and small.violations == [
        f"SRAM arena {small.arena_bytes:,} B + front end {frontend_ram:,} B > budget {sram - sram_reserve:,} B "
        f"({sram / 1024:g} KB - {sram_reserve / 1024:g} KB reserve)",
        f"flash {small.flash_bytes:,} B (model {small.model_bytes:,} B + runtime {runtime_bytes:,} B + front end "
        f"{frontend_flash:,} B) > budget {flash:,} B ({(flash + reserve) / 1024:g} KB - 4 KB reserve)",
    ]


def test_estimate_cli_counts_the_experiment_front_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mcunas.frontend import FrontEndConfig, frontend_memory_bytes

    config = tmp_path / "kws.yaml"
    config.write_text("name: kws\ndataset: {name: speech_commands, data_dir: data, download: true,\n"
                      "  speech_commands: {front_end: {arithmetic: f32}}}\nspace: {name: dscnn}\n", encoding="utf-8")
    arch = "r49x10_in1-relu-stem_k10x4_s2x2_c8-dsc_r1_k3_s1_c8-fc12"
    assert main(["estimate", arch, "--board", "arduino-nano-33-ble-sense", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert main(["estimate", arch, "--board", "arduino-nano-33-ble-sense", "--config", str(config), "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    flash, ram = frontend_memory_bytes(FrontEndConfig(arithmetic="f32"))
    assert (cost["frontend_flash_bytes"], cost["frontend_ram_bytes"]) == (flash, ram)
    assert (cost["flash_bytes"] - alone["flash_bytes"], cost["sram_bytes"] - alone["sram_bytes"]) == (flash, ram)
    assert main(["estimate", arch, "--board", "arduino-nano-33-ble-sense", "--config", str(config)]) == 0
    assert re.search(rf"front end \(features\.c\) +flash {flash:,} B .*, RAM {ram:,} B", capsys.readouterr().out)


def test_estimate_cli_json_and_table(mlperf_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(mlperf_dir / "kws_ref_model.tflite")
    assert main(["estimate", model, "--board", "arduino-nano-33-ble-sense", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == COST_KEYS
    assert data["board"] == "arduino-nano-33-ble-sense" and data["latency_ms"] > 0
    assert main(["estimate", model, "--board", "nrf5340-dk", "--runtime", "tflm-reference"]) == 0
    table = capsys.readouterr().out
    assert "tflm-reference" in table and "latency" in table and "ms at 128 MHz" in table


def test_estimate_cli_arch_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mcunas.spaces import get_space

    space = get_space("mobilenetv2")
    arch = space.default_teacher(input_channels=3, num_classes=10, resolution=32)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_dict()), encoding="utf-8")
    assert main(["estimate", str(path), "--board", "nucleo-f446re", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    graph = space.graph(arch)
    assert data["macs"] == graph.macs and data["params"] == graph.params


def test_estimate_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    assert main(["estimate", str(junk), "--board", "nucleo-l4r5zi"]) == 2
    assert "junk.tflite: not a TFLite flatbuffer" in capsys.readouterr().err
    assert main(["estimate", str(junk), "--board", "arduino-uno"]) == 2
    assert "known boards: arduino-nano-33-ble-sense" in capsys.readouterr().err
    text = tmp_path / "model.txt"
    text.write_text("x", encoding="utf-8")
    assert main(["estimate", str(text), "--board", "nucleo-l4r5zi"]) == 2
    assert "expected an architecture .json or a .tflite" in capsys.readouterr().err


@pytest.mark.slow
def test_float_tflite_is_refused_by_the_importer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert main(["estimate", str(path), "--board", "nucleo-l4r5zi"]) == 2
    assert "float32 model" in capsys.readouterr().err


def test_calibrate_round_trip(mlperf_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the published latencies themselves (2020 kernels): the packaged profile predicts today's kernels and
    # was fitted to them with its kernel-vintage factor -> the calibration finds that factor again
    packaged = default_profile("cortex-m4", "tflm-cmsis-nn").provenance
    vintage = packaged["kernel_vintage_factor_2020"]
    csv_path = write_csv(tmp_path, mlperf_dir)
    out = tmp_path / "profile.json"
    assert main(["estimate", "calibrate", str(csv_path), "--board", "nucleo-l4r5zi", "--out", str(out)]) == 0
    assert "RMS error" in capsys.readouterr().out
    profile = load_profile(out)
    assert profile.provenance["scale"] == pytest.approx(vintage, rel=0.02) and profile.board == "nucleo-l4r5zi"
    errors = {r["measurement"].split("@")[0]: r["error_pct"] for r in packaged["residuals"]}
    for row in profile.provenance["measurements"]:
        assert abs(row["error_pct"]) <= abs(errors[row["model"].removesuffix(".tflite")]) + 2.0

    # a board twice as slow: scale x2, and the written profile is used by `estimate --profile`
    slow_csv = write_csv(tmp_path, mlperf_dir, factor=2.0)
    assert main(["estimate", "calibrate", str(slow_csv), "--board", "nucleo-l4r5zi", "--out", str(out)]) == 0
    capsys.readouterr()
    assert load_profile(out).provenance["scale"] == pytest.approx(2.0 * profile.provenance["scale"], rel=1e-4)
    model = str(mlperf_dir / "vww_96_int8.tflite")
    assert main(["estimate", model, "--board", "nucleo-l4r5zi", "--json"]) == 0
    default_ms = json.loads(capsys.readouterr().out)["latency_ms"]
    assert main(["estimate", model, "--board", "nucleo-l4r5zi", "--profile", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latency_ms"] == pytest.approx(
        2 * profile.provenance["scale"] * default_ms, rel=1e-4)
    # a profile of another core is refused
    assert main(["estimate", model, "--board", "nucleo-h743zi2", "--profile", str(out)]) == 2
    assert "does not match board 'nucleo-h743zi2'" in capsys.readouterr().err
    # a board without a profile for the runtime cannot be calibrated from the packaged profiles
    esp = ["estimate", "calibrate", str(csv_path), "--board", "esp32-s3-devkitc-1", "--out", str(tmp_path / "esp.json")]
    assert main(esp) == 2
    assert "no latency profile for core 'xtensa-lx7'" in capsys.readouterr().err and not (tmp_path / "esp.json").exists()


def test_calibrate_python_api_matches_cli(mlperf_dir: Path, tmp_path: Path) -> None:
    board = load_board("nucleo-l4r5zi")
    once = fit_profile(read_measurements(write_csv(tmp_path, mlperf_dir)), board, "tflm-cmsis-nn")
    measurements = read_measurements(write_csv(tmp_path, mlperf_dir, factor=1.5))
    profile = fit_profile(measurements, board, "tflm-cmsis-nn")
    assert profile.provenance["scale"] == pytest.approx(1.5 * once.provenance["scale"], rel=1e-4)
    assert (profile.core, profile.runtime) == ("cortex-m4", "tflm-cmsis-nn")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("path,ms\nx.tflite,1\n", "line 1: header must name the columns tflite_path,measured_ms"),
        ("tflite_path,measured_ms\n{model},12\n{model},abc\n", "line 3: measured_ms 'abc' is not a number"),
        ("tflite_path,measured_ms\n{model},-4\n", "line 2: measured_ms must be > 0"),
        ("tflite_path,measured_ms\n{model},5\nmissing.tflite,5\n", "line 3: model file"),
        ("tflite_path,measured_ms\n", "no measurement rows"),
    ],
)
def test_bad_measurement_rows_name_the_line(tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    path = tmp_path / "bad.csv"
    path.write_text(content.format(model="m.tflite"), encoding="utf-8")
    with pytest.raises(ProfileError, match="bad.csv: " + message if "line" in message else message):
        read_measurements(path)
    assert main(["estimate", "calibrate", str(path), "--board", "nucleo-l4r5zi", "--out", str(tmp_path / "p.json")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_measurements_file_that_is_not_text_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProfileError, match=r"binary\.csv: not UTF-8 text"):
        read_measurements(path)
