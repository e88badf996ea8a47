"""Reading a space's options (the ``space:`` keys of an experiment config) with typed errors.

Every error is a :class:`ConfigError` whose message starts with the option's key path inside
the ``space`` mapping (``stages[2].channels[0]: ...``); the config loader prefixes ``space.``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NoReturn, Sequence

from mcunas.errors import ConfigError
from mcunas.spaces.arch import CHANNELS_RANGE, DEPTH_RANGE, STAGES_RANGE, STRIDES


@dataclass(frozen=True)
class StageOptions:
    """Choices of one stage: its fixed stride, candidate widths and depth range (inclusive)."""

    stride: int
    channels: tuple[int, ...]
    depth_min: int
    depth_max: int


def _fail(key: str, problem: str, value: Any) -> NoReturn:
    raise ConfigError(f"{key}: {problem}, got {value!r}")


def _integer(key: str, value: Any, bounds: tuple[int, int], allowed: Sequence[int] = ()) -> int:
    if type(value) is not int:
        _fail(key, "expected an integer", value)
    if allowed and value not in allowed:
        _fail(key, f"expected one of {list(allowed)}", value)
    if not bounds[0] <= value <= bounds[1]:
        _fail(key, f"expected an integer in [{bounds[0]}, {bounds[1]}]", value)
    return value


def _pair(key: str, value: Any, bounds: tuple[int, int], allowed: Sequence[int] = ()) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        _fail(key, "expected [height, width]", value)
    return (_integer(f"{key}[0]", value[0], bounds, allowed), _integer(f"{key}[1]", value[1], bounds, allowed))


def _distinct(key: str, choices: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    if len(set(choices)) != len(choices):
        _fail(key, "expected distinct choices", value)
    return choices


def _integer_choices(key: str, value: Any, bounds: tuple[int, int], allowed: Sequence[int] = ()) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        _fail(key, "expected a non-empty list of integers", value)
    return _distinct(key, tuple(_integer(f"{key}[{i}]", item, bounds, allowed) for i, item in enumerate(value)), value)


class OptionReader:
    """Takes options one key at a time (with defaults) and rejects the keys nobody asked for."""

    def __init__(self, space: str, options: Mapping[str, Any]):
        self._space = space
        self._options = dict(options)
        self._known: list[str] = []

    def _take(self, key: str, default: Any) -> Any:
        self._known.append(key)
        return self._options.pop(key, default)

    def integer(self, key: str, default: int, bounds: tuple[int, int], allowed: Sequence[int] = ()) -> int:
        return _integer(key, self._take(key, default), bounds, allowed)

    def integer_choices(
        self, key: str, default: Sequence[int], bounds: tuple[int, int], allowed: Sequence[int] = ()
    ) -> tuple[int, ...]:
        """A non-empty list of distinct ints, each within ``bounds`` (and ``allowed`` if given)."""
        return _integer_choices(key, self._take(key, default), bounds, allowed)

    def pair(self, key: str, default: Sequence[int], bounds: tuple[int, int], allowed: Sequence[int] = ()) -> tuple[int, int]:
        """A ``[height, width]`` pair of ints, each within ``bounds`` (and ``allowed`` if given)."""
        return _pair(key, self._take(key, default), bounds, allowed)

    def pair_choices(
        self, key: str, default: Sequence[Sequence[int]], bounds: tuple[int, int], allowed: Sequence[int] = ()
    ) -> tuple[tuple[int, int], ...]:
        """A non-empty list of distinct ``[height, width]`` pairs (see :meth:`pair`)."""
        value = self._take(key, default)
        if not isinstance(value, (list, tuple)) or not value:
            _fail(key, "expected a non-empty list of [height, width] pairs", value)
        return _distinct(key, tuple(_pair(f"{key}[{i}]", item, bounds, allowed) for i, item in enumerate(value)), value)

    def string(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self._take(key, default)
        if value not in allowed or not isinstance(value, str):
            _fail(key, f"expected one of {list(allowed)}", value)
        return value

    def stages(self, key: str, default: Sequence[Mapping[str, Any]]) -> tuple[StageOptions, ...]:
        """A list of ``{stride: 1|2, channels: [ints], depth: int | [min, max]}`` mappings."""
        value = self._take(key, default)
        if not isinstance(value, (list, tuple)) or not STAGES_RANGE[0] <= len(value) <= STAGES_RANGE[1]:
            _fail(key, f"expected a list of {STAGES_RANGE[0]} to {STAGES_RANGE[1]} stage mappings", value)
        return tuple(_stage(f"{key}[{i}]", item) for i, item in enumerate(value))

    def finish(self) -> None:
        """Raise on the first option that no reader asked for."""
        for key in self._options:
            raise ConfigError(
                f"{key}: unknown option of space '{self._space}'; allowed: {', '.join(self._known)}"
            )


def _stage(key: str, value: Any) -> StageOptions:
    if not isinstance(value, Mapping):
        _fail(key, "expected a mapping with keys stride, channels, depth", value)
    for name in value:
        if name not in ("stride", "channels", "depth"):
            _fail(f"{key}.{name}", "unknown stage key; allowed: stride, channels, depth", value[name])
    for name in ("stride", "channels", "depth"):
        if name not in value:
            raise ConfigError(f"{key}.{name}: missing (a stage needs stride, channels and depth)")
    stride = _integer(f"{key}.stride", value["stride"], (1, 2), STRIDES)
    channels = _integer_choices(f"{key}.channels", value["channels"], CHANNELS_RANGE)
    depth = value["depth"]
    if type(depth) is int:
        depth = [depth, depth]
    if not isinstance(depth, (list, tuple)) or len(depth) != 2:
        _fail(f"{key}.depth", "expected an integer or a [min, max] pair", depth)
    low = _integer(f"{key}.depth[0]", depth[0], DEPTH_RANGE)
    high = _integer(f"{key}.depth[1]", depth[1], DEPTH_RANGE)
    if low > high:
        _fail(f"{key}.depth", "expected min <= max", depth)
    return StageOptions(stride, channels, low, high)
