"""The board catalog: packaged boards, user board files, errors naming file and key, `mcunas boards`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mcunas.cli import main
from mcunas.errors import BoardError
from mcunas.estimators import Board, list_boards, load_board
from mcunas.estimators.board import KNOWN_CORES

REQUIRED_BOARDS = {
    "arduino-nano-33-ble-sense": ("cortex-m4", 64, 256, 1024),
    "stm32f746g-disco": ("cortex-m7", 216, 320, 1024),
    "nucleo-f767zi": ("cortex-m7", 216, 512, 2048),
    "nucleo-h743zi2": ("cortex-m7", 480, 512, 2048),  # 1 MB total; the largest contiguous region
    "nucleo-f446re": ("cortex-m4", 180, 128, 512),
    "nucleo-l4r5zi": ("cortex-m4", 120, 640, 2048),
    "raspberry-pi-pico": ("cortex-m0plus", 133, 264, 2048),
    "nrf5340-dk": ("cortex-m33", 128, 512, 1024),
}

USER_BOARD = {
    "name": "my-board",
    "display_name": "My board",
    "mcu": "STM32F411CE",
    "core": "cortex-m4",
    "clock_mhz": 100,
    "sram_bytes": 131072,
    "flash_bytes": 524288,
    "sram_reserve_bytes": 8192,
    "flash_reserve_bytes": 32768,
    "sources": {"clock_mhz": "datasheet"},
}


def write_board(folder: Path, **changes: object) -> Path:
    data = {**USER_BOARD, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    path = folder / "board.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_catalog_has_the_documented_boards_with_datasheet_figures() -> None:
    boards = {b.name: b for b in list_boards()}
    assert list(boards) == sorted(boards)
    for name, (core, mhz, sram_kb, flash_kb) in REQUIRED_BOARDS.items():
        board = boards[name]
        assert (board.core, board.clock_mhz, board.sram_bytes // 1024, board.flash_bytes // 1024) == (
            core, mhz, sram_kb, flash_kb
        ), name
        assert board.latency_supported
        assert {"clock_mhz", "sram_bytes", "flash_bytes"} <= set(board.sources), name
        assert 0 < board.arena_budget_bytes < board.sram_bytes
        assert 0 < board.flash_budget_bytes < board.flash_bytes
    for board in boards.values():
        assert board.core in KNOWN_CORES
        assert Path(board.path).stem == board.name  # one file per board, named after it
        assert load_board(board.name) is board


def test_esp32_s3_has_latency_with_its_own_runtimes() -> None:
    board = load_board("esp32-s3-devkitc-1")
    assert board.core == "xtensa-lx7" and board.latency_supported
    assert "tflm-esp-nn" in board.latency_note


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(BoardError) as error:
        load_board("arduino-uno")
    message = str(error.value)
    assert "unknown board 'arduino-uno'" in message
    for name in REQUIRED_BOARDS:
        assert name in message


def test_user_board_file_works(tmp_path: Path) -> None:
    board = load_board(write_board(tmp_path))
    assert isinstance(board, Board)
    assert (board.name, board.core, board.clock_mhz) == ("my-board", "cortex-m4", 100.0)
    assert board.arena_budget_bytes == 131072 - 8192
    assert board.flash_budget_bytes == 524288 - 32768
    assert load_board(str(write_board(tmp_path))) == board


@pytest.mark.parametrize(
    ("changes", "key", "why"),
    [
        ({"clock_mhz": -5}, "clock_mhz", "positive number"),
        ({"clock_mhz": "fast"}, "clock_mhz", "positive number"),
        ({"sram_bytes": 0}, "sram_bytes", "positive integer"),
        ({"flash_bytes": 1.5}, "flash_bytes", "positive integer"),
        ({"sram_reserve_bytes": 200000}, "sram_reserve_bytes", "smaller than sram_bytes"),
        ({"memory": {"code_in": "rom"}}, "memory.code_in", "must be one of flash, ram"),
        ({"memory": {"flash_read_cycles": -1, "flash_read_bits": 64}}, "memory.flash_read_cycles", "integer >= 0"),
        ({"memory": {"flash_read_cycles": 6}}, "memory.flash_read_cycles", "go together"),
        ({"name": "My Board"}, "name", "slug"),
        ({"latency_supported": "yes"}, "latency_supported", "true or false"),
        ({"core": "arm7tdmi"}, "core", "must be one of"),
        ({"sources": ["datasheet"]}, "sources", "mapping"),
    ],
)
def test_malformed_board_file_names_file_and_key(tmp_path: Path, changes: dict, key: str, why: str) -> None:
    path = write_board(tmp_path, **changes)
    with pytest.raises(BoardError) as error:
        load_board(path)
    message = str(error.value)
    assert str(path) in message and f"'{key}'" in message and why in message


def test_missing_unknown_keys_and_bad_yaml_are_named(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"board\.yaml: missing key\(s\) clock_mhz"):
        load_board(write_board(tmp_path, clock_mhz=None))
    with pytest.raises(BoardError, match=r"board\.yaml: unknown key\(s\) clock_hz"):
        load_board(write_board(tmp_path, clock_hz=100))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(BoardError, match=r"broken\.yaml: invalid YAML at line"):
        load_board(broken)
    with pytest.raises(BoardError, match=r"missing\.yaml: board file not found"):
        load_board(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BoardError, match=r"binary\.yaml: not UTF-8 text"):
        load_board(binary)


def test_boards_cli_lists_catalog_with_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert set(REQUIRED_BOARDS) <= set(by_name)
    nano = by_name["arduino-nano-33-ble-sense"]
    assert nano["arena_budget_bytes"] == nano["sram_bytes"] - nano["sram_reserve_bytes"]
    assert nano["flash_budget_bytes"] == nano["flash_bytes"] - nano["flash_reserve_bytes"]
    assert by_name["esp32-s3-devkitc-1"]["latency_runtimes"] == ["tflm-reference", "tflm-esp-nn"]
    assert by_name["nucleo-l4r5zi"]["latency_runtimes"] == ["tflm-cmsis-nn", "tflm-reference"]
    assert main(["boards"]) == 0
    table = capsys.readouterr().out
    assert "nucleo-l4r5zi" in table and "tflm-esp-nn" in table
