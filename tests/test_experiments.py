"""The shipped experiments: each loads, and the quick start's latency ceiling binds.

The quick start must show what makes mcunas hardware-aware: some candidates of its space break
the board's limits and are rejected before training, others fit.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from conftest import require

from mcunas.config import load_experiment, parse_experiment
from mcunas.estimators import estimate, load_board
from mcunas.estimators.budget import broken_limits, limits
from mcunas.spaces import space_for_input

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_loads(path: Path, request: pytest.FixtureRequest) -> None:
    """Every shipped experiment validates. Its data must be there: MNIST from ../shared (absent on a
    user's machine: skip; in CI: fail), the espeak-ng keyword set built by ``mcunas espeak-dataset``
    (the test builds the small preset in its place)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    dataset = data.get("dataset", {})
    folder = (path.parent / dataset["data_dir"]).resolve() if dataset.get("data_dir") else None
    if folder is not None and not folder.is_dir() and not dataset.get("download"):
        if dataset.get("name") == "speech_commands":
            dataset["data_dir"] = str(request.getfixturevalue("espeak_dataset"))
        else:
            require(f"{path.name}: its dataset folder {folder} is absent")
    experiment = parse_experiment(data, source=str(path), base_dir=path.parent)
    assert experiment.name == path.stem  # the run directory and study names follow the file


def test_quickstart_rejects_some_candidates_before_training() -> None:
    experiment = load_experiment(QUICKSTART)
    board = load_board(experiment.boards[0])
    board_limits = limits(board, experiment.constraints.max_latency_ms)
    side = experiment.dataset.resolution  # digits: one channel, ten classes
    space = space_for_input(experiment.space.name, {**experiment.space.options, "input_channels": 1, "num_classes": 10},
                            (side, side))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    broken = []
    for _ in range(60):
        arch = space.sample(study.ask())
        broken.append(bool(broken_limits(estimate(space.graph(arch), board, experiment.runtime), board_limits)))
    share = sum(broken) / len(broken)
    assert 0.15 <= share <= 0.85, f"{share:.0%} of the quick start's candidates break a limit"


UNAS = Path(__file__).resolve().parents[1] / "experiments" / "mnist_unas.yaml"


def test_unas_experiment_runs_a_tiny_version(mnist_dir: Path, tmp_path: Path) -> None:
    """experiments/mnist_unas.yaml with one trial of one epoch on 400 images: the μNAS budgets
    reach the trial as constraints, the trained model is retrained, exported (stripped) and run
    in TFLM, and it fits both budgets."""
    from mcunas.config import parse_experiment
    from mcunas.io import read_json
    from mcunas.run import run_experiment

    data = load_experiment(UNAS).to_dict()
    data["seed"] = 15  # its first (random) candidate fits the budgets; most of the space does not
    data["dataset"].update(data_dir=str(mnist_dir), max_train_samples=400, max_test_samples=100)
    data["search"]["trials"] = 1
    data["training"]["epochs"] = data["final"]["epochs"] = 1
    data["report"]["enabled"] = False
    outcome = run_experiment(parse_experiment(data), tmp_path / "run")
    (trial,) = optuna.load_study(study_name="mnist_unas:nucleo-f446re",
                                 storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    assert set(trial.constraints) == {"sram", "flash", "activations", "params"}
    estimates = trial.user_attrs["estimates"]
    assert trial.user_attrs["feasible"], trial.user_attrs["violations"]
    assert estimates["activation_bytes"] <= 2500 and estimates["param_bytes"] <= 4500
    (model,) = outcome.search.finals["nucleo-f446re"]
    validation = read_json(model.export_dir / "validation.json")
    assert validation["arena_bytes_measured"] == validation["arena_bytes_predicted"]
