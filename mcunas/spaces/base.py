"""The search-space base: options, Optuna sampling, layer specs, PyTorch build and op graph.

A staged net is ``stem conv -> stages of blocks -> global average pool -> linear``. A space
subclass names its Arch type, its defaults, its per-block choices and the layers of one block
(``_block_layers``, a :class:`~mcunas.spaces.spec.BlockSpec`); :meth:`StagedSpace.spec` lists
the layers of a whole architecture once, and both the PyTorch model (``build``) and the op
graph (``graph``) are made from that list.

Optuna parameter names: ``resolution``, ``stem_channels``, ``stem_kernel``, and per stage i
``stage{i}_channels``, ``stage{i}_depth``; per block j < depth ``stage{i}_block{j}_<choice>``
(e.g. ``stage2_block0_kernel``), so a block's parameters exist only if the block does.
dscnn draws no ``resolution`` (its input size is an option) and draws ``stem_kernel`` and
``stem_stride`` as labels such as ``"10x4"`` (see its module).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Mapping, TypeVar

from mcunas.errors import ArchitectureError, ConfigError
from mcunas.graph.ir import Graph
from mcunas.spaces.arch import (
    CHANNELS_RANGE,
    INPUT_CHANNELS_RANGE,
    KERNEL_SIZES,
    NUM_CLASSES_RANGE,
    RESOLUTION_RANGE,
    BlockSlot,
    Size,
    StagedArch,
    as_pair,
)
from mcunas.spaces.graph_builder import build_graph
from mcunas.spaces.options import OptionReader, StageOptions
from mcunas.spaces.spec import BlockSpec, LayerSpec, NetSpec

if TYPE_CHECKING:
    import optuna
    from torch import nn

ArchT = TypeVar("ArchT", bound=StagedArch)


class StagedSpace(ABC, Generic[ArchT]):
    """A search space of staged nets.

    Options (all optional; ``defaults`` of the subclass apply):
        input_channels, num_classes: set from the dataset by the search.
        resolutions: candidate square input sides, pixels.
        stem_channels, stem_kernels: candidate stem widths and kernel sizes; stem_stride: 1 or 2.
        stages: list of ``{stride, channels: [choices], depth: int | [min, max]}``.
        kernel_sizes: candidate depthwise kernel sizes of every block.
        plus the subclass's own options (see :meth:`_read_block_options`); rectangular spaces
        replace ``resolutions``, ``stem_kernels`` and ``stem_stride`` (:meth:`_read_geometry`).
    """

    name: ClassVar[str]
    arch_type: type[ArchT]
    defaults: ClassVar[Mapping[str, Any]]

    def __init__(self, **options: Any):
        reader = OptionReader(self.name, options)
        d = self.defaults
        self.input_channels = reader.integer("input_channels", d["input_channels"], INPUT_CHANNELS_RANGE)
        self.num_classes = reader.integer("num_classes", d["num_classes"], NUM_CLASSES_RANGE)
        self.stem_channels = reader.integer_choices("stem_channels", d["stem_channels"], CHANNELS_RANGE)
        self._read_geometry(reader)
        self.stages: tuple[StageOptions, ...] = reader.stages("stages", d["stages"])
        self.kernel_sizes = reader.integer_choices("kernel_sizes", d["kernel_sizes"], (1, 9), KERNEL_SIZES)
        self._read_block_options(reader)
        reader.finish()

    @classmethod
    def options_for_input(cls, options: Mapping[str, Any], input_size: tuple[int, int]) -> dict[str, Any]:
        """``options`` with the input fixed to the data's ``(height, width)`` unless they choose it:
        the only candidate of ``resolutions`` is the data's side (the data is resized to the
        resolutions listed). Rectangular spaces set ``input_size`` instead.

        Raises:
            ConfigError: the data's input is not square.
        """
        height, width = input_size
        if height != width:
            raise ConfigError(f"name: space '{cls.name}' takes square inputs, the dataset's are {height}x{width} "
                              f"(a rectangular space takes them: dscnn)")
        return {"resolutions": [height], **options}

    # --- subclass interface -------------------------------------------------------------

    def _read_geometry(self, reader: OptionReader) -> None:
        """Read the input and stem geometry options (square: ``resolutions``, ``stem_kernels``,
        ``stem_stride``)."""
        d = self.defaults
        self.resolutions = reader.integer_choices("resolutions", d["resolutions"], RESOLUTION_RANGE)
        self.stem_kernels = reader.integer_choices("stem_kernels", d["stem_kernels"], (1, 9), KERNEL_SIZES)
        self.stem_stride = reader.integer("stem_stride", d["stem_stride"], (1, 2))

    def _sample_input(self, trial: "optuna.trial.BaseTrial") -> Size:
        """The Arch's ``resolution``, drawn first."""
        return trial.suggest_categorical("resolution", self.resolutions)

    def _sample_stem(self, trial: "optuna.trial.BaseTrial") -> dict[str, Size]:
        """The Arch's ``stem_kernel`` and ``stem_stride``, drawn after ``stem_channels``."""
        return {"stem_kernel": trial.suggest_categorical("stem_kernel", self.stem_kernels), "stem_stride": self.stem_stride}

    def _largest_stem(self) -> dict[str, Size]:
        """``stem_kernel`` and ``stem_stride`` of the default teacher."""
        return {"stem_kernel": max(self.stem_kernels), "stem_stride": self.stem_stride}

    def _read_block_options(self, reader: OptionReader) -> None:
        """Read the subclass's own options (none by default)."""

    def _block_choices(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Per-block Arch fields drawn for every block: ``field -> (parameter suffix, choices)``."""
        return {"block_kernels": ("kernel", self.kernel_sizes)}

    def _fixed_fields(self) -> dict[str, Any]:
        """Arch fields that are options, not searched (none by default)."""
        return {}

    def _teacher_choice(self, field: str, choices: tuple[int, ...]) -> int:
        """The default teacher's value of a per-block field: the largest choice (kernel, expansion)."""
        return max(choices)

    def _make_arch(self, **fields: Any) -> ArchT:
        """The Arch of sampled (or teacher) fields; a space may adjust draws the Arch would refuse."""
        return self.arch_type(**fields)

    @abstractmethod
    def _stem_activation(self, arch: ArchT) -> str:
        """Fused activation of the stem convolution (graph IR name)."""

    @abstractmethod
    def _block_layers(self, arch: ArchT, slot: BlockSlot) -> BlockSpec:
        """The layers of one block (a block type of :mod:`mcunas.spaces.blocks`)."""

    # --- public API ---------------------------------------------------------------------

    def sample(self, trial: "optuna.trial.BaseTrial") -> ArchT:
        """Draw an architecture through ``trial.suggest_*`` (see the module doc for names)."""
        resolution = self._sample_input(trial)
        stem_channels = trial.suggest_categorical("stem_channels", self.stem_channels)
        stem = self._sample_stem(trial)
        per_block = self._block_choices()
        tables: dict[str, list[tuple[int, ...]]] = {field: [] for field in per_block}
        stage_channels = []
        for i, stage in enumerate(self.stages):
            stage_channels.append(trial.suggest_categorical(f"stage{i}_channels", stage.channels))
            depth = trial.suggest_int(f"stage{i}_depth", stage.depth_min, stage.depth_max)
            rows: dict[str, list[int]] = {field: [] for field in per_block}
            for j in range(depth):
                for field, (suffix, choices) in per_block.items():
                    rows[field].append(trial.suggest_categorical(f"stage{i}_block{j}_{suffix}", choices))
            for field, row in rows.items():
                tables[field].append(tuple(row))
        return self._make_arch(
            input_channels=self.input_channels,
            num_classes=self.num_classes,
            resolution=resolution,
            stem_channels=stem_channels,
            **stem,
            stage_strides=tuple(stage.stride for stage in self.stages),
            stage_channels=tuple(stage_channels),
            **{field: tuple(rows) for field, rows in tables.items()},
            **self._fixed_fields(),
        )

    def default_teacher(self, input_channels: int, num_classes: int, resolution: Size) -> ArchT:
        """The largest architecture of this space: widest stem and stages, deepest stages,
        largest per-block choices (:meth:`_teacher_choice`: kernel, expansion), at the given
        input size (an int ``n``: ``n x n``, or a ``(height, width)`` pair; square for the square
        spaces)."""
        per_block = self._block_choices()
        return self._make_arch(
            input_channels=input_channels,
            num_classes=num_classes,
            resolution=self._arch_resolution(resolution),
            stem_channels=max(self.stem_channels),
            **self._largest_stem(),
            stage_strides=tuple(stage.stride for stage in self.stages),
            stage_channels=tuple(max(stage.channels) for stage in self.stages),
            **{
                field: tuple((self._teacher_choice(field, choices),) * stage.depth_max for stage in self.stages)
                for field, (_, choices) in per_block.items()
            },
            **self._fixed_fields(),
        )

    def _arch_resolution(self, size: Size) -> Size:
        """The Arch's ``resolution`` for an input size: a pair in the rectangular spaces, an int
        in the square ones (a square pair ``(n, n)`` is ``n``; another pair is left for the Arch
        to reject, naming the field)."""
        if self.arch_type.rectangular:
            return as_pair(size)
        if isinstance(size, tuple) and len(size) == 2 and size[0] == size[1]:
            return size[0]
        return size

    def spec(self, arch: ArchT, name: str | None = None) -> NetSpec:
        """The layers of ``arch``, listed once: what :meth:`build` and :meth:`graph` are made from.

        ``name``: the NetSpec's (and its graph's) name; default the arch's block string (which
        takes longer to make than the layers: the fast estimator passes ``""``).
        """
        self._check(arch)
        stem = LayerSpec("conv", "stem", arch.stem_channels, arch.stem_kernel_size, arch.stem_stride_size, self._stem_activation(arch))
        blocks = tuple([self._block_layers(arch, slot) for slot in arch.iter_blocks()])
        return NetSpec(arch.block_string() if name is None else name, arch.input_size, arch.input_channels, stem, blocks,
                       arch.num_classes)

    def build(self, arch: ArchT) -> "nn.Module":
        """The PyTorch model (NCHW float input of ``arch.input_size``, logits output), freshly initialized."""
        from mcunas.spaces.layers import build_module

        return build_module(self.spec(arch))

    def graph(self, arch: ArchT) -> Graph:
        """The op graph of the int8 TFLite model that export produces for ``arch``."""
        return build_graph(self.spec(arch))

    def width_options(self, multiplier: float, divisor: int) -> dict[str, Any]:
        """The ``stem_channels`` and ``stages`` options of this space with every channel choice
        scaled by ``multiplier`` (the width multiplier of MobileNet and MCUNet).

        A scaled choice is ``c * multiplier`` rounded to the nearest multiple of ``divisor``
        (halves up), at least ``divisor``; choices that become equal are merged (order kept).
        Strides and depths are unchanged. The result is valid space options (plain lists) for
        :func:`mcunas.spaces.get_space`, or for an experiment config's ``space:`` section.
        """
        if not multiplier > 0:
            raise ConfigError(f"width multiplier: expected a positive number, got {multiplier!r}")
        if type(divisor) is not int or divisor < 1:
            raise ConfigError(f"width divisor: expected a positive integer, got {divisor!r}")

        def scaled(choices: tuple[int, ...]) -> list[int]:
            values = [max(divisor, int(c * multiplier / divisor + 0.5) * divisor) for c in choices]
            return list(dict.fromkeys(values))

        return {
            "stem_channels": scaled(self.stem_channels),
            "stages": [
                {"stride": stage.stride, "channels": scaled(stage.channels), "depth": [stage.depth_min, stage.depth_max]}
                for stage in self.stages
            ],
        }

    def _check(self, arch: object) -> None:
        if not isinstance(arch, self.arch_type):
            space = getattr(arch, "space", type(arch).__name__)
            raise ArchitectureError(f"an architecture of space '{space}' was given to space '{self.name}'")
