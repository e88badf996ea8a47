"""Architecture values shared by the staged spaces (stem, stages of blocks, classifier head).

An Arch is a frozen dataclass of ints, strings and (nested) tuples. It is self-contained: it
holds everything needed to build the network and its op graph (strides included), so a saved
``arch.json`` can be built without the space options it was sampled under. Every field is
validated on construction; a bad value raises :class:`ArchFieldError` (an
:class:`ArchitectureError`) naming the field.

Geometry: the input size (``resolution``), ``stem_kernel`` and ``stem_stride`` are ints in the
square spaces (``rectangular = False``: an int ``n`` means ``n x n``) and ``(height, width)``
pairs in the rectangular ones (dscnn); :attr:`StagedArch.input_size` and friends give pairs for
both. Block kernels and stage strides are square (ints) everywhere.

JSON form (``to_dict``): ``{"space": NAME, <field>: <value>, ...}`` with tuples as lists.

Limits below are the intrinsic ranges of a valid architecture; the space options (the choices
a search draws from) must stay inside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterator, NamedTuple, NoReturn, Union

from mcunas.errors import ArchitectureError

KERNEL_SIZES: tuple[int, ...] = (1, 3, 5, 7, 9)
STRIDES: tuple[int, ...] = (1, 2)
INPUT_CHANNELS_RANGE = (1, 64)
NUM_CLASSES_RANGE = (2, 100_000)
RESOLUTION_RANGE = (4, 1024)  # square input side, pixels
INPUT_SIDE_RANGE = (1, 1024)  # rectangular input: height or width (frames, coefficients)
STEM_KERNEL_SIDE_RANGE = (1, 16)  # rectangular stem kernel: height or width, odd or even
CHANNELS_RANGE = (1, 4096)
STAGES_RANGE = (1, 12)
DEPTH_RANGE = (1, 16)  # blocks per stage
EXPANSION_RANGE = (1, 16)

# An int n (n x n) in the square spaces, a (height, width) pair in the rectangular ones.
Size = Union[int, tuple[int, int]]


class ArchFieldError(ArchitectureError):
    """A field of an Arch is invalid; ``field`` is its path, e.g. ``block_kernels[1][0]``."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


class BlockSlot(NamedTuple):
    """Position and shape of one block: ``stage``/``index`` address the per-block fields."""

    stage: int
    index: int
    in_channels: int
    out_channels: int
    stride: int

    @property
    def name(self) -> str:
        return f"stage{self.stage}.block{self.index}"

    @property
    def residual(self) -> bool:
        """Whether the block adds its input to its output (stride 1, equal channels)."""
        return self.stride == 1 and self.in_channels == self.out_channels


def _fail(space: str, field: str, problem: str, value: Any) -> NoReturn:
    raise ArchFieldError(f"{space} arch field '{field}': {problem}, got {value!r}", field)


def check_int(space: str, field: str, value: Any, bounds: tuple[int, int], allowed: tuple[int, ...] = ()) -> None:
    """Raise unless ``value`` is an int (not bool) within ``bounds`` and, if given, in ``allowed``."""
    if type(value) is not int:
        _fail(space, field, "expected an integer", value)
    if allowed and value not in allowed:
        _fail(space, field, f"expected one of {list(allowed)}", value)
    if not bounds[0] <= value <= bounds[1]:
        _fail(space, field, f"expected an integer in [{bounds[0]}, {bounds[1]}]", value)


def check_int_tuple(
    space: str, field: str, value: Any, length: int, bounds: tuple[int, int], allowed: tuple[int, ...] = ()
) -> None:
    """Raise unless ``value`` is a tuple of ``length`` valid ints (see :func:`check_int`)."""
    if type(value) is not tuple:
        _fail(space, field, f"expected a list of {length} integers", value)
    if len(value) != length:
        _fail(space, field, f"expected {length} entries (one per stage or block)", value)
    low, high = bounds
    for position, item in enumerate(value):
        # the entry's name is formatted only for an entry check_int will refuse
        if type(item) is not int or not low <= item <= high or (allowed and item not in allowed):
            check_int(space, f"{field}[{position}]", item, bounds, allowed)


def check_pair(space: str, field: str, value: Any, bounds: tuple[int, int], allowed: tuple[int, ...] = ()) -> None:
    """Raise unless ``value`` is a ``(height, width)`` tuple of valid ints (see :func:`check_int`)."""
    if type(value) is not tuple or len(value) != 2:
        _fail(space, field, "expected [height, width]", value)
    for position, item in enumerate(value):
        check_int(space, f"{field}[{position}]", item, bounds, allowed)


def check_block_table(
    space: str, field: str, value: Any, depths: tuple[int, ...], bounds: tuple[int, int], allowed: tuple[int, ...] = ()
) -> None:
    """Raise unless ``value`` holds one tuple per stage with one valid int per block."""
    if type(value) is not tuple or len(value) != len(depths):
        _fail(space, field, f"expected a list of {len(depths)} lists (one per stage)", value)
    for stage, (row, depth) in enumerate(zip(value, depths)):
        check_int_tuple(space, f"{field}[{stage}]", row, depth, bounds, allowed)


def as_pair(size: Size) -> tuple[int, int]:
    """``(n, n)`` for an int ``n``, the pair itself otherwise."""
    return (size, size) if isinstance(size, int) else size


def _to_tuples(value: Any) -> Any:
    """JSON lists -> tuples, recursively; everything else unchanged (validation judges it)."""
    if isinstance(value, list):
        return tuple(_to_tuples(item) for item in value)
    return value


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_lists(item) for item in value]
    return value


@dataclass(frozen=True)
class StagedArch:
    """A stem convolution, stages of blocks, global average pool and a linear classifier.

    Attributes:
        input_channels: channels of the input (1 for spectrograms/MFCCs/MNIST, 3 for RGB).
        num_classes: classifier outputs (logits).
        resolution: the input size: square side in pixels, or (height, width) in the
            rectangular spaces (dscnn: frames, coefficients).
        stem_channels, stem_kernel, stem_stride: the first (full) convolution; kernel and
            stride are ints, or (height, width) pairs in the rectangular spaces.
        stage_strides: stride of the first block of each stage (the other blocks have stride 1).
        stage_channels: output channels of every block of each stage.
        block_kernels: per stage, the depthwise kernel size of each block; the number of
            entries of a stage is its depth.

    Class attributes (the notation of :mod:`mcunas.spaces.notation` reads them):
        space: the space name; block_prefix: the first field of its stage tokens.
        rectangular: whether the geometry fields are pairs.
        block_fields: per-block fields as ``(block string key, field name)``.
    """

    space: ClassVar[str] = ""
    block_prefix: ClassVar[str] = ""
    rectangular: ClassVar[bool] = False
    block_fields: ClassVar[tuple[tuple[str, str], ...]] = (("k", "block_kernels"),)

    input_channels: int
    num_classes: int
    resolution: Size
    stem_channels: int
    stem_kernel: Size
    stem_stride: Size
    stage_strides: tuple[int, ...]
    stage_channels: tuple[int, ...]
    block_kernels: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        space = self.space
        check_int(space, "input_channels", self.input_channels, INPUT_CHANNELS_RANGE)
        check_int(space, "num_classes", self.num_classes, NUM_CLASSES_RANGE)
        self._validate_geometry()
        check_int(space, "stem_channels", self.stem_channels, CHANNELS_RANGE)
        if type(self.stage_strides) is not tuple or not STAGES_RANGE[0] <= len(self.stage_strides) <= STAGES_RANGE[1]:
            _fail(space, "stage_strides", f"expected a list of {STAGES_RANGE[0]} to {STAGES_RANGE[1]} strides", self.stage_strides)
        num_stages = len(self.stage_strides)
        check_int_tuple(space, "stage_strides", self.stage_strides, num_stages, (1, 2), STRIDES)
        check_int_tuple(space, "stage_channels", self.stage_channels, num_stages, CHANNELS_RANGE)
        if type(self.block_kernels) is not tuple or len(self.block_kernels) != num_stages:
            _fail(space, "block_kernels", f"expected a list of {num_stages} lists (one per stage)", self.block_kernels)
        for stage, row in enumerate(self.block_kernels):
            if type(row) is not tuple or not DEPTH_RANGE[0] <= len(row) <= DEPTH_RANGE[1]:
                _fail(space, f"block_kernels[{stage}]", f"expected a list of {DEPTH_RANGE[0]} to {DEPTH_RANGE[1]} kernel sizes (one per block)", row)
        check_block_table(space, "block_kernels", self.block_kernels, self.depths, (1, 9), KERNEL_SIZES)

    def _validate_geometry(self) -> None:
        space = self.space
        if not self.rectangular:
            check_int(space, "resolution", self.resolution, RESOLUTION_RANGE)
            check_int(space, "stem_kernel", self.stem_kernel, (1, 9), KERNEL_SIZES)
            check_int(space, "stem_stride", self.stem_stride, (1, 2), STRIDES)
            return
        check_pair(space, "resolution", self.resolution, INPUT_SIDE_RANGE)
        check_pair(space, "stem_kernel", self.stem_kernel, STEM_KERNEL_SIDE_RANGE)
        check_pair(space, "stem_stride", self.stem_stride, (1, 2), STRIDES)
        for axis, (kernel, side) in enumerate(zip(self.stem_kernel, self.resolution)):
            if kernel > side:
                _fail(space, f"stem_kernel[{axis}]", f"expected at most the input size {side}", kernel)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the input, pixels (dscnn: frames, coefficients)."""
        return as_pair(self.resolution)

    @property
    def stem_kernel_size(self) -> tuple[int, int]:
        """(height, width) of the stem kernel."""
        return as_pair(self.stem_kernel)

    @property
    def stem_stride_size(self) -> tuple[int, int]:
        """(height, width) stride of the stem."""
        return as_pair(self.stem_stride)

    @property
    def depths(self) -> tuple[int, ...]:
        """Number of blocks of each stage."""
        return tuple(map(len, self.block_kernels))

    def iter_blocks(self) -> Iterator[BlockSlot]:
        """Blocks in execution order with their input/output channels and stride."""
        in_channels = self.stem_channels
        for stage, (stride, channels, depth) in enumerate(zip(self.stage_strides, self.stage_channels, self.depths)):
            for index in range(depth):
                yield BlockSlot(stage, index, in_channels, channels, stride if index == 0 else 1)
                in_channels = channels

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``space`` first, then the fields in declaration order, tuples as lists."""
        return {"space": self.space, **{f.name: _to_lists(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The dataclass fields, in declaration order (the keys of ``to_dict`` after ``space``)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StagedArch":
        """Inverse of :meth:`to_dict`; every key must be present and known."""
        names = cls.field_names()
        for key in data:
            if key != "space" and key not in names:
                raise ArchitectureError(f"{cls.space} arch: unknown field '{key}'; allowed: {', '.join(names)}")
        for name in names:
            if name not in data:
                raise ArchitectureError(f"{cls.space} arch: missing field '{name}'")
        return cls(**{name: _to_tuples(data[name]) for name in names})

    def to_json(self) -> str:
        """One-line JSON (the format of ``mcunas space sample``)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def block_string(self) -> str:
        """The architecture in the block-string notation of :func:`mcunas.spaces.parse_block_string`
        (its docstring is the notation's manual), e.g.
        ``r32_in3-stem_k3_s2_c16-ir_r1_k3_e1_s1_c8-ir_r2_k5.7_e6.4_s2_c16-fc10``."""
        from mcunas.spaces.notation import format_block_string

        return format_block_string(self)
