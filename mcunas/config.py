"""The experiment schema: one YAML file describes a whole search (see docs/architecture.md).

:func:`load_experiment` reads a config file with a safe YAML loader, validates it against the
pydantic models below and checks what the models cannot see on their own (dataset folders,
board names through :func:`mcunas.estimators.load_board`, space options with the dataset's
input size through :func:`mcunas.spaces.space_for_input`). Every problem found is reported in one
:class:`mcunas.errors.ConfigError`, one line per problem, as ``file: key.path: what is wrong``.

Relative paths in a config file (``dataset.data_dir``, board files, teacher files) are resolved
against the folder of that file, so the resolved :class:`Experiment` can be dumped into a run
directory (:meth:`Experiment.to_yaml`) and read back unchanged.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from mcunas.data.config import DatasetConfig, dataset_problems
from mcunas.errors import ConfigError, McunasError
from mcunas.estimators import load_board
from mcunas.estimators.budget import LATENCY_BOUNDS
from mcunas.estimators.runtime import DEFAULT_RUNTIME, RUNTIMES
from mcunas.io import read_user_text
from mcunas.schema import Section, resolve_path
from mcunas.spaces import space_for_input

# Optuna study direction of each objective: ``accuracy`` (validation accuracy) and Cost fields.
OBJECTIVE_DIRECTIONS: dict[str, str] = {
    "accuracy": "maximize",
    "latency_ms": "minimize",
    "sram_bytes": "minimize",
    "flash_bytes": "minimize",
    "macs": "minimize",
}
# The names a config may choose; mcunas.search.samplers maps SAMPLERS/PRUNERS to Optuna objects
# (``auto``: NSGA-II for several objectives, TPE for one).
SAMPLERS: tuple[str, ...] = ("auto", "nsga2", "nsga3", "tpe", "random", "qmc", "gp", "cmaes", "bruteforce")
PRUNERS: tuple[str, ...] = ("none", "median", "successive_halving", "hyperband")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")

RuntimeName = Literal[RUNTIMES]  # type: ignore[valid-type]
ObjectiveName = Literal[tuple(OBJECTIVE_DIRECTIONS)]  # type: ignore[misc]
SamplerName = Literal[SAMPLERS]  # type: ignore[valid-type]
PrunerName = Literal[PRUNERS]  # type: ignore[valid-type]
OptimizerName = Literal[OPTIMIZERS]  # type: ignore[valid-type]
DeviceName = Literal[DEVICES]  # type: ignore[valid-type]

# Samplers that optimize a single objective only.
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)

class SpaceConfig(BaseModel):
    """The search space: ``name`` plus the space's own options (extra keys)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    name: str = "mobilenetv2"

    @property
    def options(self) -> dict[str, Any]:
        """The keys besides ``name``: keyword arguments of ``mcunas.spaces.get_space``."""
        return dict(self.model_extra or {})


class ConstraintsConfig(Section):
    """Limits besides the board's SRAM and flash budgets (see :mod:`mcunas.estimators.budget`)."""

    max_latency_ms: float | None = Field(default=None, gt=0.0)
    # point: the ceiling limits the latency estimate; upper: the upper end of its interval
    latency_bound: Literal[tuple(LATENCY_BOUNDS)] = "point"  # type: ignore[valid-type]
    # μNAS's budgets: planned activation bytes of the arena (no persistent tail), parameter bytes
    max_activation_bytes: int | None = Field(default=None, gt=0)
    max_param_bytes: int | None = Field(default=None, gt=0)
    # the same as TFLM allocates them: the whole 32-bit arena, the .tflite file
    max_arena_bytes: int | None = Field(default=None, gt=0)
    max_model_bytes: int | None = Field(default=None, gt=0)

    def budget_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`mcunas.estimators.budget.limits` and
        :func:`mcunas.estimators.estimate` that this section sets (all of its keys)."""
        return self.model_dump()


class SearchConfig(Section):
    """The Optuna study and how its trials are distributed."""

    sampler: SamplerName = "auto"
    trials: int = Field(default=20, ge=1)
    pruner: PrunerName = "none"
    storage: str | None = None
    workers: int = Field(default=1, ge=1)
    ray_address: str | None = None
    cpus_per_worker: float = Field(default=1.0, gt=0.0)
    gpus_per_worker: float = Field(default=0.0, ge=0.0)
    storage_retry_s: float = Field(default=120.0, gt=0.0, description="seconds a search waits for an unreachable database server")


class TrainingConfig(Section):
    """Training of each sampled architecture during the search."""

    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=64, ge=1)
    optimizer: OptimizerName = "sgd"
    lr: float = Field(default=0.05, gt=0.0)
    weight_decay: float = Field(default=4.0e-5, ge=0.0)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    augment: bool = Field(default=True, description="shift (and flip) images; audio is augmented by its dataset")
    device: DeviceName = "cpu"


class DistillationConfig(Section):
    """Knowledge distillation from a teacher trained once per run."""

    enabled: bool = True
    teacher_arch: Path | None = Field(default=None, strict=False)
    teacher_checkpoint: Path | None = Field(default=None, strict=False)
    teacher_epochs: int = Field(default=5, ge=1)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0, description="weight of the hard-label cross-entropy")
    temperature: float = Field(default=4.0, gt=0.0)

    _resolve_paths = field_validator("teacher_arch", "teacher_checkpoint")(resolve_path)


class FinalConfig(Section):
    """Retraining of the Pareto members."""

    epochs: int = Field(default=10, ge=1)
    max_models: int = Field(default=3, ge=1, description="per board")


class ExportConfig(Section):
    """Int8 TFLite export and TFLite Micro validation of the retrained models."""

    enabled: bool = True
    calibration_samples: int = Field(default=256, ge=1)
    max_int8_drop_pp: float = Field(default=1.0, ge=0.0, description="accuracy drop float -> int8, percentage points")


class ReportConfig(Section):
    enabled: bool = True


class Experiment(Section):
    """A whole experiment, as validated from its YAML file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)
    seed: int = Field(default=0, ge=0)
    dataset: DatasetConfig = DatasetConfig()
    space: SpaceConfig = SpaceConfig()
    boards: list[str] = Field(default=["arduino-nano-33-ble-sense"], min_length=1)
    runtime: RuntimeName = DEFAULT_RUNTIME
    objectives: list[ObjectiveName] = Field(default=["accuracy", "latency_ms"], min_length=1)
    constraints: ConstraintsConfig = ConstraintsConfig()
    search: SearchConfig = SearchConfig()
    training: TrainingConfig = TrainingConfig()
    distillation: DistillationConfig = DistillationConfig()
    final: FinalConfig = FinalConfig()
    export: ExportConfig = ExportConfig()
    report: ReportConfig = ReportConfig()

    @field_validator("boards")
    @classmethod
    def _resolve_board_files(cls, boards: list[str], info: ValidationInfo) -> list[str]:
        """Board entries that look like files are resolved against the config file's folder."""
        resolved = []
        for board in boards:
            if _is_board_file(board):
                board = str(resolve_path(Path(board), info))
            if board in resolved:
                raise ValueError(f"board {board!r} is listed twice")
            resolved.append(board)
        return resolved

    @field_validator("objectives")
    @classmethod
    def _unique_objectives(cls, objectives: list[str]) -> list[str]:
        duplicates = sorted({name for name in objectives if objectives.count(name) > 1})
        if duplicates:
            raise ValueError(f"objective(s) listed more than once: {', '.join(duplicates)}")
        return objectives

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serializable values (paths as strings), in schema order."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved experiment as YAML; :func:`load_experiment` reads it back equal."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the experiment: equal iff the configs are equal."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def directions(self) -> list[str]:
        """Optuna directions ("maximize"/"minimize") of :attr:`objectives`, in order."""
        return [OBJECTIVE_DIRECTIONS[name] for name in self.objectives]


def _is_board_file(entry: str) -> bool:
    return entry.endswith((".yaml", ".yml")) or "/" in entry or os.sep in entry


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (instead of keeping the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are resolved (and may be overridden) by SafeLoader
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment config file.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML, or does not match the
            schema; the message lists every problem as ``file: key.path: what is wrong``.
    """
    path = Path(path)
    text = read_user_text(path, ConfigError, "config file")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {_describe_yaml_error(error)}") from None
    return parse_experiment(data, source=str(path), base_dir=path.resolve().parent)


def parse_experiment(data: Any, source: str = "<config>", base_dir: str | os.PathLike[str] | None = None) -> Experiment:
    """Validate an already-parsed config mapping (see :func:`load_experiment`).

    Args:
        data: the mapping, as ``yaml.safe_load`` returns it.
        source: the name used in error messages (normally the file path).
        base_dir: folder that relative paths are resolved against; None keeps them as given.
    """
    if data is None:
        raise ConfigError(f"{source}: the config is empty; expected a mapping with at least 'name'")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of sections, got {_type_name(data)}")
    try:
        experiment = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as error:
        problems = [_describe_pydantic_error(item) for item in error.errors()]
    else:
        problems = _reference_problems(experiment)
    if problems:
        raise ConfigError(_format_problems(source, problems))
    return experiment


def _format_problems(source: str, problems: list[str]) -> str:
    lines = [f"{source}: {problem}" for problem in problems]
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems in {source}:\n" + "\n".join(f"  {line}" for line in lines)


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {problem}"


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _annotation_at(loc: tuple[int | str, ...]) -> Any:
    """The type annotation of the schema element at ``loc`` (None where it cannot be followed)."""
    annotation: Any = Experiment
    for part in loc:
        annotation = _strip_optional(annotation)
        if isinstance(part, int):
            args = typing.get_args(annotation)
            if typing.get_origin(annotation) is not list or not args:
                return None
            annotation = args[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    return _strip_optional(annotation)


def _strip_optional(annotation: Any) -> Any:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _suggestion(word: Any, candidates: typing.Iterable[str]) -> str:
    """``", did you mean 'x'?"`` for a close spelling, else an empty string."""
    close = difflib.get_close_matches(str(word), list(candidates), n=1)
    return f", did you mean {close[0]!r}?" if close else ""


def _describe_pydantic_error(item: dict[str, Any]) -> str:
    """One ``key.path: what is wrong (allowed: ...)`` line from a pydantic error."""
    loc = tuple(item["loc"])
    kind = item["type"]
    value = item.get("input")
    if kind == "extra_forbidden":
        parent = _annotation_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else ""
        return f"{_key_path(loc)}: unknown key{_suggestion(loc[-1], parent.model_fields if allowed else ())}" + (
            f" (allowed: {allowed})" if allowed else ""
        )
    if kind == "missing":
        return f"{_key_path(loc)}: required key is missing"
    if kind == "literal_error":
        names = [str(arg) for arg in typing.get_args(_annotation_at(loc))]
        return f"{_key_path(loc)}: unknown name {value!r}{_suggestion(value, names)} (allowed: {', '.join(names)})"
    if kind == "model_type":
        return f"{_key_path(loc)}: must be a mapping, got {_type_name(value)}"
    if kind == "value_error":
        message = str(item.get("ctx", {}).get("error", item["msg"]))
        return f"{_key_path(loc)}: {message}"
    message = item["msg"].replace("Input should be", "must be").replace("String should", "must")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{_key_path(loc)}: {message}, got {_type_name(value)} {value!r}"
    return f"{_key_path(loc)}: {message}, got {value!r}"


def _reference_problems(experiment: Experiment) -> list[str]:
    """Checks across fields and against the file system, the board catalog and the spaces."""
    problems = dataset_problems(experiment.dataset) + _search_problems(experiment)
    for key in ("teacher_arch", "teacher_checkpoint"):
        file = getattr(experiment.distillation, key)
        if file is not None and not file.is_file():
            problems.append(f"distillation.{key}: file not found: {file}")
    problems += _board_problems(experiment.boards)
    problems += _space_problems(experiment.space, experiment.dataset.input_size)
    return problems


def _search_problems(experiment: Experiment) -> list[str]:
    search, n_objectives = experiment.search, len(experiment.objectives)
    problems = []
    if search.sampler in SINGLE_OBJECTIVE_SAMPLERS and n_objectives > 1:
        problems.append(
            f"search.sampler: {search.sampler!r} optimizes a single objective, objectives lists {n_objectives}"
        )
    if search.pruner != "none" and n_objectives > 1:
        problems.append(
            f"search.pruner: {search.pruner!r} needs a single objective (Optuna prunes single-objective studies "
            f"only); use objectives: [accuracy] or pruner: none"
        )
    return problems


def _board_problems(boards: list[str]) -> list[str]:
    """Check each board with :func:`mcunas.estimators.load_board`."""
    problems = []
    for index, board in enumerate(boards):
        try:
            load_board(board)
        except McunasError as error:
            problems.append(f"boards[{index}]: {error}")
    return problems


def _space_problems(space: SpaceConfig, input_size: tuple[int, int]) -> list[str]:
    """Check the space name and options, with the dataset's input (height, width), as the search
    makes the space (:func:`mcunas.spaces.space_for_input`)."""
    try:
        space_for_input(space.name, space.options, input_size)
    except McunasError as error:
        message = str(error)
        option = re.split(r"[.\[:]", message, maxsplit=1)[0].strip()
        if option in space.options or option == "name":
            return [f"space.{message}"]
        return [f"space: {message}"]
    return []
