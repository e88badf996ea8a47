"""The experiment schema: defaults, the documented example, and one clear error per bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mcunas.config import Experiment, load_experiment, parse_experiment
from mcunas.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_minimal_config_gets_documented_defaults(tmp_path: Path):
    experiment = load_experiment(_write(tmp_path, "name: quick\n"))
    assert experiment.dataset.name == "digits" and experiment.dataset.resolution == 16
    assert experiment.space.name == "mobilenetv2" and experiment.space.options == {}
    assert experiment.boards == ["arduino-nano-33-ble-sense"]
    assert experiment.objectives == ["accuracy", "latency_ms"]
    assert experiment.directions() == ["maximize", "minimize"]
    assert experiment.search.sampler == "auto" and experiment.search.trials == 20
    assert experiment.distillation.enabled and experiment.export.max_int8_drop_pp == 1.0


def test_documented_example_is_valid(tmp_path: Path):
    """The YAML example in docs/architecture.md is the schema's reference: it must load unchanged."""
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    example = re.search(r"## Experiment config \(YAML\)\n```yaml\n(.*?)```", doc, re.S).group(1)
    experiment = load_experiment(_write(tmp_path, example))
    documented = yaml.safe_load(example)
    dumped = experiment.to_dict()
    for section, value in documented.items():
        if isinstance(value, dict):
            for key, item in value.items():
                assert dumped[section][key] == item, f"{section}.{key}"
        else:
            assert dumped[section] == value, section


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path: Path, request: pytest.FixtureRequest):
    text = path.read_text(encoding="utf-8")
    if "shared/datasets/mnist" in text:
        request.getfixturevalue("mnist_dir")  # skips where ../shared is absent
    data = yaml.safe_load(text)
    if "espeak-dataset" in text:  # built by a command the file names: check it on the tiny preset instead
        data["dataset"]["data_dir"] = str(request.getfixturevalue("espeak_dataset"))
    experiment = parse_experiment(data, source=str(path), base_dir=path.parent)
    if experiment.dataset.data_dir is not None:
        assert experiment.dataset.data_dir.is_absolute()


def test_space_options_are_kept_and_dumped(tmp_path: Path):
    text = "name: q\nspace:\n  name: mobilenetv1\n  resolutions: [16]\n"
    experiment = load_experiment(_write(tmp_path, text))
    assert experiment.space.options == {"resolutions": [16]}
    assert yaml.safe_load(experiment.to_yaml())["space"] == {"name": "mobilenetv1", "resolutions": [16]}


def test_dump_round_trip_and_fingerprint(tmp_path: Path):
    (tmp_path / "data").mkdir()
    text = "name: q\nseed: 3\ndataset: {name: mnist, data_dir: data}\ntraining: {epochs: 2}\n"
    experiment = load_experiment(_write(tmp_path, text))
    assert experiment.dataset.data_dir == tmp_path / "data"
    (tmp_path / "run").mkdir()
    again = load_experiment(_write(tmp_path / "run", experiment.to_yaml(), "config.yaml"))
    assert again == experiment and again.fingerprint() == experiment.fingerprint()
    changed = load_experiment(_write(tmp_path, text.replace("epochs: 2", "epochs: 3"), "other.yaml"))
    assert changed != experiment and changed.fingerprint() != experiment.fingerprint()


def test_relative_paths_resolve_against_config_folder(tmp_path: Path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "mnist").mkdir()
    (tmp_path / "teacher.json").write_text("{}")
    path = _write(
        tmp_path / "cfg",
        "name: q\ndataset: {name: mnist, data_dir: ../mnist}\ndistillation: {teacher_arch: ../teacher.json}\n",
    )
    experiment = load_experiment(path)
    assert experiment.dataset.data_dir == tmp_path / "mnist"
    assert experiment.distillation.teacher_arch == tmp_path / "teacher.json"


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_experiment(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line(tmp_path: Path):
    message = _error(tmp_path, "name: q\ntraining:\n  epochs: [3\n  lr: 0.1\n")
    assert re.search(r"exp\.yaml: line 4, column \d+: invalid YAML", message), message


def test_duplicate_yaml_key_is_refused(tmp_path: Path):
    message = _error(tmp_path, "name: q\ntraining: {epochs: 2}\ntraining: {epochs: 5}\n")
    assert "line 3, column 1: invalid YAML: duplicate key 'training'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the config is empty"),
        ("- name: q\n", "the config must be a mapping of sections, got a list"),
        ("seed: 1\n", "name: required key is missing"),
        ("name: 'bad name!'\n", "name: must match pattern"),
    ],
)
def test_top_level_problems(tmp_path: Path, text: str, expected: str):
    assert expected in _error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unknown key at a nested path, with the allowed keys and a spelling hint
        ("training: {epochz: 3}", "training.epochz: unknown key, did you mean 'epochs'? (allowed: epochs, batch_size,"),
        ("searhc: {trials: 3}", "searhc: unknown key, did you mean 'search'? (allowed: name, seed, dataset,"),
        # wrong types (no silent coercion of strings to numbers)
        ("search: {trials: many}", "search.trials: must be a valid integer, got a string 'many'"),
        ("search: {trials: '3'}", "search.trials: must be a valid integer, got a string '3'"),
        ("training: 5", "training: must be a mapping, got an integer"),
        ("boards: arduino", "boards: must be a valid list, got a string 'arduino'"),
        ("export: {enabled: maybe}", "export.enabled: must be a valid boolean"),
        # out of range
        ("dataset: {val_fraction: 1.5}", "dataset.val_fraction: must be less than 1, got 1.5"),
        ("dataset: {resolution: 4}", "dataset.resolution: must be greater than or equal to 8, got 4"),
        ("training: {lr: 0}", "training.lr: must be greater than 0, got 0"),
        ("distillation: {alpha: 2}", "distillation.alpha: must be less than or equal to 1, got 2"),
        ("boards: []", "boards: List should have at least 1 item"),
        # unknown names, with what is allowed
        ("dataset: {name: imagenet}", "dataset.name: unknown name 'imagenet' (allowed: digits, mnist, cifar10, synthetic, speech_commands)"),
        ("search: {sampler: tpes}", "search.sampler: unknown name 'tpes', did you mean 'tpe'? (allowed: auto, nsga2,"),
        ("search: {pruner: asha}", "search.pruner: unknown name 'asha' (allowed: none, median, successive_halving, hyperband)"),
        ("runtime: tflm", "runtime: unknown name 'tflm'"),
        ("objectives: [accuracy, energy]", "objectives[1]: unknown name 'energy' (allowed: accuracy, latency_ms, sram_bytes, flash_bytes, macs)"),
        ("training: {device: mps}", "training.device: unknown name 'mps' (allowed: cpu, cuda, auto)"),
        # cross-field rules
        ("objectives: [accuracy, macs, accuracy]", "objectives: objective(s) listed more than once: accuracy"),
        ("boards: [a-board, a-board]", "boards: board 'a-board' is listed twice"),
        ("dataset: {name: mnist}", "dataset.data_dir: required for dataset 'mnist' (a folder with its files) or set download: true"),
        ("dataset: {name: cifar10, download: true, data_dir: /tmp}", "dataset.download: dataset 'cifar10' cannot be downloaded (allowed for: mnist, speech_commands)"),
        ("dataset: {name: mnist, data_dir: no/such/dir}", "dataset.data_dir: folder not found:"),
        ("dataset: {name: digits, channels: 3}", "dataset.channels: only the synthetic dataset takes this option"),
        ("distillation: {teacher_arch: missing.json}", "distillation.teacher_arch: file not found:"),
        ("search: {sampler: cmaes}", "search.sampler: 'cmaes' optimizes a single objective, objectives lists 2"),
        ("search: {pruner: median}", "search.pruner: 'median' needs a single objective"),
    ],
)
def test_each_bad_value_has_its_key_path(tmp_path: Path, text: str, expected: str):
    message = _error(tmp_path, f"name: q\n{text}\n")
    assert f"exp.yaml: {expected}" in message, message


def test_missing_data_dir_names_resolved_folder_and_download(tmp_path: Path):
    message = _error(tmp_path, "name: q\ndataset: {name: mnist, data_dir: ../mnist}\n")
    expected = f"dataset.data_dir: folder not found: {tmp_path.parent / 'mnist'} (or set download: true"
    assert expected in message, message


def test_all_problems_in_one_message(tmp_path: Path):
    message = _error(tmp_path, "name: q\ndataset: {resolution: 2, nmae: x}\nsearch: {trials: 0}\n")
    lines = message.splitlines()
    assert lines[0] == f"3 problems in {tmp_path / 'exp.yaml'}:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["dataset.resolution", "dataset.nmae", "search.trials"]


def test_space_name_and_options_checked_by_the_space(tmp_path: Path):
    message = _error(tmp_path, "name: q\nspace: {name: resnet}\n")
    assert "exp.yaml: space.name: unknown space 'resnet'" in message
    message = _error(tmp_path, "name: q\nspace: {name: mobilenetv2, resolutions: [16, 0]}\n")
    assert "exp.yaml: space.resolutions[1]:" in message
    message = _error(tmp_path, "name: q\nspace: {name: mobilenetv2, widht: 1}\n")
    assert "exp.yaml: space" in message and "widht" in message


def test_unknown_board_checked_against_catalog(tmp_path: Path):
    message = _error(tmp_path, "name: q\nboards: [arduino-nano-33-ble-sense, no-such-board]\n")
    assert "exp.yaml: boards[1]:" in message and "no-such-board" in message
    assert "boards[0]" not in message
    message = _error(tmp_path, "name: q\nboards: [boards/missing.yaml]\n")
    assert "exp.yaml: boards[0]:" in message and str(tmp_path / "boards" / "missing.yaml") in message


def test_parse_experiment_without_file():
    experiment = parse_experiment({"name": "api", "dataset": {"name": "synthetic", "channels": 3}})
    assert isinstance(experiment, Experiment) and experiment.dataset.channels == 3
    with pytest.raises(ConfigError, match=r"^<config>: search.search: unknown key \(allowed: sampler, trials,"):
        parse_experiment({"name": "api", "search": {"search": 1}})


def test_constraints_are_the_budget_arguments(tmp_path: Path):
    """Every constraints key is a keyword of the one budget check and of the one Cost assembly
    (cost_of, whose options estimate() and the fast path take)."""
    import inspect

    from mcunas.estimators import estimate
    from mcunas.estimators.budget import limits
    from mcunas.estimators.cost import cost_of
    from mcunas.spaces import get_space
    from mcunas.spaces.draws import uniform_archs

    experiment = parse_experiment({"name": "api", "constraints": {"max_activation_bytes": 2500, "max_param_bytes": 4500}})
    arguments = experiment.constraints.budget_arguments()
    assert arguments == {"max_latency_ms": None, "latency_bound": "point", "max_activation_bytes": 2500,
                         "max_param_bytes": 4500, "max_arena_bytes": None, "max_model_bytes": None}
    assert set(arguments) <= set(inspect.signature(limits).parameters)
    space = get_space("mobilenetv2")
    cost = estimate(space.graph(next(uniform_archs(space, 1, 0))), "arduino-nano-33-ble-sense", **arguments)
    assert any(violation.startswith("parameters") for violation in cost.violations)  # 4,500 B: broken
    message = _error(tmp_path, "name: q\nconstraints: {max_activation_bytes: 0, max_param_bytes: 4.5}\n")
    assert "constraints.max_activation_bytes" in message and "constraints.max_param_bytes" in message
