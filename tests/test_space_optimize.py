"""Search-space optimization (``mcunas space optimize``): a small real grid, the chosen cell, the
written folder (result, table, narrowed configs, figures, report) and a search from the narrowed
config. Real estimators, real datasets (synthetic, digits), real training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from mcunas.cli import main
from mcunas.config import load_experiment, parse_experiment
from mcunas.errors import ConfigError, RunDirError
from mcunas.rundir.spacedir import RESULT_FILE, read_space_result
from mcunas.search.space_optimize import choose_cell, optimize_space
from mcunas.spaces import get_space
from mcunas.spaces.draws import uniform_archs

BOARD = "arduino-nano-33-ble-sense"
TINY = {
    "name": "tiny_space",
    "seed": 0,
    "dataset": {"name": "synthetic", "resolution": 12, "max_train_samples": 200, "max_test_samples": 50},
    "space": {"name": "mobilenetv2", "resolutions": [12, 16],
              "stem_channels": [8, 16], "kernel_sizes": [3, 5], "expand_ratios": [1, 3, 6],
              "stages": [{"stride": 1, "channels": [8, 16], "depth": 1},
                         {"stride": 2, "channels": [16, 24], "depth": [1, 2]},
                         {"stride": 2, "channels": [24, 32, 48], "depth": [1, 3]}]},
    "boards": [BOARD, "raspberry-pi-pico"],
    "objectives": ["accuracy"],
    # the ceiling binds: wider and larger cells fit less often
    "constraints": {"max_latency_ms": 12.0},
    "search": {"trials": 1},
    "training": {"epochs": 1, "batch_size": 32},
    "distillation": {"enabled": False},
    "final": {"epochs": 1, "max_models": 1},
    "export": {"enabled": False},
    "report": {"enabled": False},
}


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_optimize_grid_statistics_choice_and_folder(tmp_path: Path) -> None:
    experiment = parse_experiment(TINY)
    result = optimize_space(experiment, tmp_path / "opt", samples=40, widths=[0.5, 1.0, 1.5], progress=False)
    assert result.resolutions == [12, 16] and result.widths == [0.5, 1.0, 1.5]
    assert result.estimates == 40 * 6 * 2 and result.boards == [BOARD, "raspberry-pi-pico"]
    for board in result.boards:
        cells = result.board_cells(board)
        assert [(c.resolution, c.width) for c in cells] == [(r, w) for r in (12, 16) for w in (0.5, 1.0, 1.5)]
        assert all(c.samples == 40 and 0 <= c.feasible <= 40 for c in cells)
        # the ceiling makes feasibility fall with width at each resolution (more MACs, more latency)
        assert cells[0].feasible > cells[2].feasible
        chosen = result.chosen[board]
        eligible = [c for c in cells if c.feasible and c.feasible_fraction >= 0.05]
        assert chosen.macs_mean == max(c.macs_mean for c in eligible)
        assert chosen.macs_quantiles == sorted(chosen.macs_quantiles) and len(chosen.macs_quantiles) == 101

    # the statistics are those of the cell's space, estimated again here
    chosen = result.chosen[BOARD]
    space = get_space("mobilenetv2", **chosen.space_options, input_channels=1, num_classes=10)
    from mcunas.estimators import estimate

    macs = sorted(cost.macs for cost in (estimate(space.graph(a), BOARD, max_latency_ms=12.0)
                                          for a in uniform_archs(space, 40, 0)) if cost.fits)
    assert len(macs) == chosen.feasible and chosen.macs_quantiles[0] == macs[0] and chosen.macs_quantiles[-1] == macs[-1]
    assert chosen.macs_mean == pytest.approx(sum(macs) / len(macs))
    edges = result.grid_edges(BOARD)  # resolutions 12, 16: both are edges; widths 0.5, 1, 1.5
    assert f"{'largest' if chosen.resolution == 16 else 'smallest'} resolution" in edges
    assert any("width" in edge for edge in edges) == (chosen.width != 1.0)

    # the folder: result (read back equal), table, narrowed configs that load
    assert read_space_result(tmp_path / "opt").to_dict() == result.to_dict()
    rows = list(csv.DictReader((tmp_path / "opt" / "cells.csv").open()))
    assert len(rows) == 12 and sum(row["chosen"] == "True" for row in rows) == 2
    narrowed = load_experiment(tmp_path / "opt" / result.narrowed[BOARD])
    assert narrowed.boards == [BOARD] and narrowed.dataset.resolution == chosen.resolution
    assert narrowed.space.options["resolutions"] == [chosen.resolution]
    assert narrowed.space.options["stem_channels"] == chosen.space_options["stem_channels"]
    assert narrowed.search == experiment.search and narrowed.constraints == experiment.constraints


def test_width_multiplier_scales_every_choice_to_the_divisor() -> None:
    space = get_space("mobilenetv2", stem_channels=[8, 16], stages=[{"stride": 1, "channels": [8, 12, 16], "depth": 1}])
    assert space.width_options(0.5, 4) == {"stem_channels": [4, 8],
                                           "stages": [{"stride": 1, "channels": [4, 8], "depth": [1, 1]}]}
    assert space.width_options(1.5, 8)["stages"][0]["channels"] == [16, 24]  # 12, 18, 24 -> 16, 16, 24
    with pytest.raises(ConfigError, match="width multiplier"):
        space.width_options(0.0, 4)


def test_rule_tie_breakers() -> None:
    from mcunas.rundir.spacedir import CellStats

    def cell(resolution, width, feasible, mean):
        return CellStats(BOARD, resolution, width, 100, feasible, mean)

    cells = [cell(16, 1.0, 50, 2e6), cell(12, 1.0, 60, 2e6), cell(12, 0.5, 60, 2e6), cell(20, 2.0, 2, 9e6)]
    # 9e6 has 2% feasible (< 5%): not eligible; then feasible fraction, then smaller resolution, width
    assert choose_cell(cells, 0.05) is cells[2]
    assert choose_cell(cells, 0.0) is cells[3]
    assert choose_cell([cell(12, 1.0, 0, None)], 0.05) is None


def test_cli_writes_report_figures_and_a_narrowed_config_that_searches(tmp_path: Path, capsys) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "boards": [BOARD]}))
    out = tmp_path / "opt"
    assert main(["space", "optimize", str(config), "--samples", "30", "--resolutions", "12", "16",
                 "--widths", "0.5", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{BOARD}: r" in printed and "report:" in printed
    figure = out / "figures" / f"space_cdf_{BOARD}.svg"
    assert figure.read_bytes().startswith(b"<?xml") and (out / "figures" / f"space_cdf_{BOARD}.png").stat().st_size > 0
    page = (out / "report.html").read_text()
    assert 'id="space-0"' in page and f'id="fig-space-0-{BOARD}"' in page and f'id="table-space-0-{BOARD}"' in page
    data = json.loads((out / RESULT_FILE).read_text())
    assert data["kind"] == "space_optimize" and data["chosen"][BOARD]["resolution"] in (12, 16)

    # `mcunas report` renders the folder on its own and beside a search run of its narrowed config
    narrowed = out / data["narrowed"][BOARD]
    run_dir = tmp_path / "run"
    assert main(["search", str(narrowed), "--out", str(run_dir), "--no-finalize"]) == 0
    assert main(["report", str(run_dir), str(out), "--out", str(tmp_path / "both" / "report.html")]) == 0
    both = (tmp_path / "both" / "report.html").read_text()
    assert 'id="space-0"' in both and 'id="table-trials"' in both
    assert main(["report", str(out)]) == 0 and "report:" in capsys.readouterr().out


def test_bad_grids_and_folders_are_named(tmp_path: Path) -> None:
    experiment = parse_experiment(TINY)
    with pytest.raises(ConfigError, match="widths: expected positive"):
        optimize_space(experiment, tmp_path / "a", samples=5, widths=[0.0], progress=False)
    with pytest.raises(ConfigError, match="samples: expected a positive"):
        optimize_space(experiment, tmp_path / "a", samples=0, progress=False)
    with pytest.raises(ConfigError, match=r"grid cell resolution 12, width 1000: space\.stem_channels"):
        optimize_space(experiment, tmp_path / "a", samples=5, resolutions=[12], widths=[1000.0], progress=False)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    with pytest.raises(RunDirError, match="a search run directory"):
        optimize_space(experiment, tmp_path / "run", samples=5, progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RESULT_FILE).write_text('{"kind": "other"}')
    with pytest.raises(RunDirError, match="not a space optimization result"):
        read_space_result(tmp_path / "bad")
