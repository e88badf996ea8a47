"""The Pareto report: CSVs, Pareto sets, errors on bad run directories, the page in headless Chromium."""

from __future__ import annotations

import base64
import csv
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from browser import headless_chromium
from mcunas.cli import main
from mcunas.errors import RunDirError
from mcunas.report import write_report
from mcunas.report.figures import Series, progress_figure
from mcunas.report.load import load_run
from mcunas.rundir.records import TrialRecord
from mcunas.report.pareto import pareto_front
from mcunas.report.write import CHART_METRICS

REPO_ROOT = Path(__file__).resolve().parents[1]
BOARD = "arduino-nano-33-ble-sense"
CONFIG = f"""# studies are named <name>:<board>
name: unit
seed: 0
dataset: {{name: synthetic, resolution: 8}}
space: {{name: mobilenetv2}}
boards: [{BOARD}]
objectives: [accuracy, latency_ms]
constraints: {{max_latency_ms: null}}
search: {{trials: 6}}
"""


def _cost(sram_kb: float, flash_kb: float, latency_ms: float) -> dict:
    """An estimator Cost dict with the given SRAM (KiB), flash (KiB) and latency."""
    sram = int(sram_kb * 1024)
    return {
        "board": BOARD,
        "runtime": "tflm-cmsis-nn",
        "macs": int(latency_ms * 1e5),
        "params": int(flash_kb * 900),
        "arena_bytes": sram - 4096,
        "arena_bytes_host": sram - 2048,
        "sram_bytes": sram,
        "model_bytes": int(flash_kb * 1024) - 60000,
        "flash_bytes": int(flash_kb * 1024),
        "latency_ms": latency_ms,
        "fits": sram_kb <= 256 and flash_kb <= 1024,
        "violations": [] if sram_kb <= 256 else [f"sram {sram} > 262144 bytes"],
    }


def make_run(
    run_dir: Path,
    specs: list[tuple[float, float, float, float]],
    exported: tuple[int, ...] = (),
    journal: bool = False,
) -> Path:
    """A run directory with a real Optuna storage: one trial per (accuracy, SRAM KiB, flash KiB, ms).

    The storage is SQLite (``study.db``), or a JournalStorage file (``journal.log``) as
    multi-worker searches write.
    Trials over the 256 KiB SRAM budget are infeasible, completed with accuracy 0 and
    ``accuracy_val`` absent, as the search records them. ``exported`` trial numbers get a
    ``validation.json``.
    """
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(CONFIG, encoding="utf-8")
    study_name = f"unit:{BOARD}"
    if journal:
        storage_url = f"journal:{run_dir / 'journal.log'}"
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run_dir / "journal.log")))
    else:
        storage_url = storage = f"sqlite:///{run_dir / 'study.db'}"
    (run_dir / "run.json").write_text(
        json.dumps({"storage": storage_url, "studies": {BOARD: study_name}, "objectives": ["accuracy", "latency_ms"]}),
        encoding="utf-8",
    )
    study = optuna.create_study(storage=storage, study_name=study_name, directions=["maximize", "minimize"])
    width = optuna.distributions.IntDistribution(1, 64)
    for number, (accuracy, sram_kb, flash_kb, latency_ms) in enumerate(specs):
        cost = _cost(sram_kb, flash_kb, latency_ms)
        feasible = bool(cost["fits"])
        attrs = {
            "arch": {"space": "mobilenetv2", "width": number + 1},
            "block_string": f"r8_c{number + 1}_fc10",
            "arch_key": f"width{number + 1}",
            "board": BOARD,
            "estimates": cost,
            "feasible": feasible,
            "violations": cost["violations"],
            "epochs": 1,
            "distilled": False,
        }
        if feasible:
            attrs |= {"accuracy_val": accuracy, "train_seconds": 0.5}
        study.add_trial(
            optuna.trial.create_trial(
                params={"width": number + 1},
                distributions={"width": width},
                values=[accuracy if feasible else 0.0, latency_ms],
                user_attrs=attrs,
            )
        )
        if number in exported:
            validation = {
                "arena_bytes_measured": cost["arena_bytes_host"] + 96,
                "arena_bytes_predicted": cost["arena_bytes_host"],
                "arena_bytes_predicted_target": cost["arena_bytes"],
                "model_bytes": cost["model_bytes"] - 40,
                "model_bytes_predicted": cost["model_bytes"],
                "accuracy_int8": accuracy - 0.004,
                "accuracy_float": accuracy,
                "top1_agreement": 0.99,
                "int8_drop_pp": 0.4,
            }
            final = {"trial": number, "accuracy_val": accuracy, "accuracy_test": accuracy - 0.01}
            for stage, name, contents in (("exports", "validation.json", validation), ("final", "metrics.json", final)):
                path = run_dir / stage / BOARD / str(number) / name
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(contents), encoding="utf-8")
    return run_dir


# (accuracy, SRAM KiB, flash KiB, latency ms); 300 KiB SRAM is over the 256 KiB budget.
SPECS = [
    (0.62, 120, 300, 20.0),  # 0 front
    (0.70, 180, 420, 35.0),  # 1 front
    (0.58, 130, 310, 25.0),  # 2 dominated by 0
    (0.90, 300, 800, 90.0),  # 3 infeasible
    (0.75, 200, 500, 60.0),  # 4 front
    (0.70, 190, 430, 40.0),  # 5 dominated by 1
]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csvs_and_figures(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", SPECS, exported=(1, 4))
    out = write_report([run_dir], tmp_path / "out" / "report.html")

    trials = _read_csv(out.parent / "trials.csv")
    assert [int(r["number"]) for r in trials] == list(range(len(SPECS)))
    assert [r["feasible"] for r in trials] == ["True", "True", "True", "False", "True", "True"]
    assert trials[3]["violations"].startswith("sram ")
    assert float(trials[4]["latency_ms"]) == 60.0

    pareto = _read_csv(out.parent / "pareto.csv")
    assert [int(r["number"]) for r in pareto] == [0, 1, 4]
    assert [r["exported"] for r in pareto] == ["False", "True", "True"]
    assert float(pareto[2]["accuracy_int8"]) == pytest.approx(0.746)
    assert float(pareto[2]["accuracy_test"]) == pytest.approx(0.74)

    for metric in CHART_METRICS:
        for suffix in ("png", "svg"):
            assert (out.parent / "figures" / f"pareto_{BOARD}_{metric}.{suffix}").stat().st_size > 1000
    assert (out.parent / "figures" / "progress.svg").stat().st_size > 1000

    page = out.read_text(encoding="utf-8")
    # Self-contained: every reference is an inline data URI, and the figures refer to nothing outside.
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(references) == len(CHART_METRICS) + 1
    assert all(ref.startswith("data:image/svg+xml;base64,") for ref in references)
    for ref in references:
        svg = base64.b64decode(ref.split(",", 1)[1]).decode("utf-8")
        assert not re.search(r'(?:src|href)="(?!#|data:)', svg)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "# studies are named &lt;name&gt;:&lt;board&gt;" in page and "r8_c5_fc10" in page

    # Same trials, same bytes: the SVG figures are deterministic.
    series = [Series("run", BOARD, load_run(run_dir).trials, "#1f77b4")]
    assert progress_figure(series, label_runs=False).svg == (out.parent / "figures" / "progress.svg").read_bytes()


@pytest.mark.parametrize("journal", [False, True], ids=["sqlite", "journal"])
def test_pareto_front_known_set(tmp_path: Path, journal: bool) -> None:
    run = load_run(make_run(tmp_path / "run", SPECS, journal=journal))
    assert [t.number for t in run.trials] == list(range(len(SPECS)))
    assert run.limit(BOARD, "sram_bytes") == 256 * 1024
    front = pareto_front(run.trials, ["accuracy", "latency_ms"])
    assert [t.number for t in front] == [0, 1, 4]
    # Accuracy against SRAM alone: same members (the infeasible 0.90 never enters).
    assert [t.number for t in pareto_front(run.trials, ["accuracy", "sram_bytes"])] == [0, 1, 4]


def _record(
    number: int, accuracy: float, latency_ms: float, sram: float, feasible: bool, arch_key: str | None = None
) -> TrialRecord:
    return TrialRecord(
        run="r", board=BOARD, number=number, state="COMPLETE", feasible=feasible, violations=(),
        block_string="", arch_key=arch_key or str(number), estimates={"latency_ms": latency_ms, "sram_bytes": sram}, accuracy_val=accuracy,
        estimate_seconds=None, train_seconds=None, epochs=None, distilled=None, duration_s=None,
    )


def test_pareto_front_counts_an_arch_once() -> None:
    same = [_record(0, 0.8, 5.0, 1024, True, "a"), _record(1, 0.8, 5.0, 1024, True, "a")]
    other = _record(2, 0.8, 5.0, 1024, True, "b")
    assert [t.number for t in pareto_front([*same, other], ["accuracy", "latency_ms"])] == [0, 2]


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """All minimized: ``a`` no worse anywhere, better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and a != b


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_property(seed: int) -> None:
    rng = random.Random(seed)
    # Coarse grids make ties and duplicates likely.
    trials = [
        _record(i, rng.randint(0, 10) / 10, rng.randint(1, 8), rng.randint(1, 8) * 1024, rng.random() < 0.8)
        for i in range(40)
    ]
    metrics = ["accuracy", "latency_ms", "sram_bytes"]
    front = pareto_front(trials, metrics)
    key = {t.number: (-t.accuracy_val, t.metric("latency_ms"), t.metric("sram_bytes")) for t in trials}
    feasible = [t for t in trials if t.feasible]
    members = {t.number for t in front}
    assert front and all(t.feasible for t in front)
    for member in front:
        assert not any(_dominates(key[other.number], key[member.number]) for other in feasible)
    for other in feasible:
        if other.number not in members:
            assert any(_dominates(key[m], key[other.number]) for m in members)


def test_bad_run_dirs(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(RunDirError, match=f"{missing}.*does not exist"):
        write_report([missing], tmp_path / "r.html")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirError, match=f"{empty}.*run.json is missing"):
        write_report([empty], tmp_path / "r.html")

    no_storage = make_run(tmp_path / "no_storage", SPECS[:1])
    (no_storage / "study.db").unlink()
    with pytest.raises(RunDirError, match=f"{no_storage}.*storage.*does not exist"):
        write_report([no_storage], tmp_path / "r.html")
    assert not (no_storage / "study.db").exists()  # reading never creates a storage

    corrupt = make_run(tmp_path / "corrupt", SPECS[:1])
    (corrupt / "study.db").write_bytes(b"not a database")
    with pytest.raises(RunDirError, match=f"{corrupt}.*cannot read the Optuna storage"):
        write_report([corrupt], tmp_path / "r.html")

    no_trials = make_run(tmp_path / "no_trials", [])
    with pytest.raises(RunDirError, match=f"{no_trials}.*no trials"):
        write_report([no_trials], tmp_path / "r.html")

    # The CLI prints the message and exits 2, leaving no report behind.
    assert main(["report", str(empty)]) == 2
    assert not (empty / "report").exists()


def test_command_module_is_light() -> None:
    """``mcunas --help`` loads mcunas.report.command: it must not import the heavy libraries."""
    code = (
        "import sys, mcunas.report.command; "
        "print(sorted(m for m in ('matplotlib', 'optuna', 'torch', 'tensorflow', 'ray') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_cli_default_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = make_run(tmp_path / "run", SPECS)
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report" / "report.html").is_file()
    assert main(["report", str(run_dir), str(run_dir)]) == 2
    assert "--out" in capsys.readouterr().err


# A real search, small enough for one core: 8x8 synthetic images, one epoch per trial, one board.
SEARCH_TRIALS = 5
SEARCH_CONFIG = {
    "name": "report",
    "seed": 0,
    "dataset": {"name": "synthetic", "resolution": 8, "max_train_samples": 300, "max_test_samples": 60},
    "space": {
        "name": "mobilenetv2",
        "stem_channels": [4, 8],
        "stages": [{"stride": 2, "channels": [8], "depth": [1, 1]}, {"stride": 2, "channels": [8, 16], "depth": [1, 2]}],
        "kernel_sizes": [3],
        "expand_ratios": [1, 3],
    },
    "boards": [BOARD],
    "objectives": ["accuracy", "latency_ms"],
    "search": {"sampler": "random", "trials": SEARCH_TRIALS},
    "training": {"epochs": 2, "batch_size": 32, "lr": 0.05},
    "distillation": {"enabled": False},
    "final": {"epochs": 1, "max_models": 1},
    "export": {"enabled": True, "calibration_samples": 32},
    "report": {"enabled": True},
}


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of a real search that exported one Pareto member and wrote its report."""
    from mcunas.config import parse_experiment
    from mcunas.run import run_experiment

    run_dir = tmp_path_factory.mktemp("search") / "run"
    run_experiment(parse_experiment(SEARCH_CONFIG), run_dir)
    return run_dir


def test_report_of_a_real_search(searched_run: Path) -> None:
    out = searched_run / "report"
    assert (out / "report.html").is_file()  # written by run_experiment after the search
    study = optuna.load_study(study_name=f"report:{BOARD}", storage=f"sqlite:///{searched_run / 'study.db'}")
    trials = _read_csv(out / "trials.csv")
    assert len(trials) == len(study.trials) >= SEARCH_TRIALS
    assert {r["board"] for r in trials} == {BOARD}
    by_number = {t.number: t for t in study.trials}
    for row in trials:
        trial = by_number[int(row["number"])]
        assert row["state"] == trial.state.name
        assert row["block_string"] == trial.user_attrs["block_string"]
        assert float(row["sram_bytes"]) == trial.user_attrs["estimates"]["sram_bytes"]
    pareto = _read_csv(out / "pareto.csv")
    assert pareto and all(trials[int(r["number"])]["feasible"] == "True" for r in pareto)
    assert sum(r["exported"] == "True" for r in pareto) == 1


def test_report_in_headless_chromium(searched_run: Path, tmp_path: Path) -> None:
    synthetic = make_run(tmp_path / "synthetic" / "run", SPECS, exported=(1, 4))
    out = write_report([searched_run, synthetic], tmp_path / "report" / "report.html")
    pareto_rows = len(_read_csv(out.parent / "pareto.csv"))
    exported = len(list(searched_run.glob("exports/*/*/validation.json"))) + 2

    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(out.resolve().as_uri())
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []
        ids = [f"fig-pareto-{BOARD}-{metric}" for metric in CHART_METRICS] + ["fig-progress"]
        assert len(driver.find_elements("css selector", "figure img")) == len(ids)
        for element_id in ids:
            image = driver.find_element("id", element_id)
            assert int(image.get_attribute("naturalWidth")) > 100, element_id
        for element_id, rows in (("table-pareto", pareto_rows), ("table-validation", exported)):
            table = driver.find_element("id", element_id)
            assert len(table.find_elements("css selector", "tbody tr")) == rows, element_id
        # Sorting by the latency header puts the fastest Pareto member first.
        table = driver.find_element("id", "table-pareto")
        headers = table.find_elements("css selector", "th")
        column = next(i for i, th in enumerate(headers) if th.text.startswith("latency"))
        headers[column].click()
        cells = [row.find_elements("css selector", "td")[column].text for row in table.find_elements("css selector", "tbody tr")]
        latencies = [float(text.replace(",", "")) for text in cells]
        assert latencies == sorted(latencies)
        all_trials = driver.find_element("id", "table-trials").find_elements("css selector", "tbody tr")
        assert len(all_trials) == len(_read_csv(out.parent / "trials.csv"))
        summary = driver.find_element("id", "summary")
        assert len(summary.find_elements("css selector", ".card")) == 2 and "%" in summary.text
        assert "objectives:" in driver.find_element("id", "config-0").get_attribute("textContent")
        # The whole page in one image: grow the window to the document's height.
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 120, 8000))
        screenshot = driver.get_screenshot_as_png()
    for path in (tmp_path / "report.png", REPO_ROOT / "test-output" / "report.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(screenshot)
