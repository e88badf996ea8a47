"""The search-space base: options, Optuna sampling, PyTorch build and op graph of staged nets.

A staged net is ``stem conv -> stages of blocks -> global average pool -> linear``. A space
subclass names its Arch type, its defaults, its per-block choices and how one block is built
(PyTorch) and emitted (graph); everything else is here.

Optuna parameter names: ``resolution``, ``stem_channels``, ``stem_kernel``, and per stage i
``stage{i}_channels``, ``stage{i}_depth``; per block j < depth ``stage{i}_block{j}_<choice>``
(e.g. ``stage2_block0_kernel``), so a block's parameters exist only if the block does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Mapping, TypeVar

from mcunas.errors import ArchitectureError
from mcunas.graph.ir import Graph
from mcunas.spaces.arch import (
    CHANNELS_RANGE,
    INPUT_CHANNELS_RANGE,
    KERNEL_SIZES,
    NUM_CLASSES_RANGE,
    RESOLUTION_RANGE,
    BlockSlot,
    StagedArch,
)
from mcunas.spaces.graph_builder import GraphBuilder
from mcunas.spaces.options import OptionReader, StageOptions

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
        plus the subclass's own options (see :meth:`_read_block_options`).
    """

    name: ClassVar[str]
    arch_type: type[ArchT]
    defaults: ClassVar[Mapping[str, Any]]

    def __init__(self, **options: Any):
        reader = OptionReader(self.name, options)
        d = self.defaults
        self.input_channels = reader.integer("input_channels", d["input_channels"], INPUT_CHANNELS_RANGE)
        self.num_classes = reader.integer("num_classes", d["num_classes"], NUM_CLASSES_RANGE)
        self.resolutions = reader.integer_choices("resolutions", d["resolutions"], RESOLUTION_RANGE)
        self.stem_channels = reader.integer_choices("stem_channels", d["stem_channels"], CHANNELS_RANGE)
        self.stem_kernels = reader.integer_choices("stem_kernels", d["stem_kernels"], (1, 9), KERNEL_SIZES)
        self.stem_stride = reader.integer("stem_stride", d["stem_stride"], (1, 2))
        self.stages: tuple[StageOptions, ...] = reader.stages("stages", d["stages"])
        self.kernel_sizes = reader.integer_choices("kernel_sizes", d["kernel_sizes"], (1, 9), KERNEL_SIZES)
        self._read_block_options(reader)
        reader.finish()

    # --- subclass interface -------------------------------------------------------------

    def _read_block_options(self, reader: OptionReader) -> None:
        """Read the subclass's own options (none by default)."""

    def _block_choices(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Per-block Arch fields drawn for every block: ``field -> (parameter suffix, choices)``."""
        return {"block_kernels": ("kernel", self.kernel_sizes)}

    def _fixed_fields(self) -> dict[str, Any]:
        """Arch fields that are options, not searched (none by default)."""
        return {}

    @abstractmethod
    def _stem_activation(self, arch: ArchT) -> str:
        """Fused activation of the stem convolution (graph IR name)."""

    @abstractmethod
    def _build_block(self, arch: ArchT, slot: BlockSlot) -> "nn.Module":
        """The PyTorch module of one block."""

    @abstractmethod
    def _emit_block(self, builder: GraphBuilder, x: int, arch: ArchT, slot: BlockSlot) -> int:
        """Append one block's ops; return its output tensor."""

    # --- public API ---------------------------------------------------------------------

    def sample(self, trial: "optuna.trial.BaseTrial") -> ArchT:
        """Draw an architecture through ``trial.suggest_*`` (see the module doc for names)."""
        resolution = trial.suggest_categorical("resolution", self.resolutions)
        stem_channels = trial.suggest_categorical("stem_channels", self.stem_channels)
        stem_kernel = trial.suggest_categorical("stem_kernel", self.stem_kernels)
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
        return self.arch_type(
            input_channels=self.input_channels,
            num_classes=self.num_classes,
            resolution=resolution,
            stem_channels=stem_channels,
            stem_kernel=stem_kernel,
            stem_stride=self.stem_stride,
            stage_strides=tuple(stage.stride for stage in self.stages),
            stage_channels=tuple(stage_channels),
            **{field: tuple(rows) for field, rows in tables.items()},
            **self._fixed_fields(),
        )

    def default_teacher(self, input_channels: int, num_classes: int, resolution: int) -> ArchT:
        """The largest architecture of this space: widest stem and stages, deepest stages,
        largest per-block choices (kernel, expansion), at the given input."""
        per_block = self._block_choices()
        return self.arch_type(
            input_channels=input_channels,
            num_classes=num_classes,
            resolution=resolution,
            stem_channels=max(self.stem_channels),
            stem_kernel=max(self.stem_kernels),
            stem_stride=self.stem_stride,
            stage_strides=tuple(stage.stride for stage in self.stages),
            stage_channels=tuple(max(stage.channels) for stage in self.stages),
            **{
                field: tuple((max(choices),) * stage.depth_max for stage in self.stages)
                for field, (_, choices) in per_block.items()
            },
            **self._fixed_fields(),
        )

    def build(self, arch: ArchT) -> "nn.Module":
        """The PyTorch model (NCHW float input, logits output), freshly initialized."""
        self._check(arch)
        from mcunas.spaces.layers import ConvBnAct, StagedNet

        stem = ConvBnAct(arch.input_channels, arch.stem_channels, arch.stem_kernel, arch.stem_stride, self._stem_activation(arch))
        blocks = [self._build_block(arch, slot) for slot in arch.iter_blocks()]
        return StagedNet(stem, blocks, arch.stage_channels[-1], arch.num_classes)

    def graph(self, arch: ArchT) -> Graph:
        """The op graph of the int8 TFLite model that export produces for ``arch``."""
        self._check(arch)
        builder = GraphBuilder(arch.block_string())
        x = builder.input(arch.resolution, arch.resolution, arch.input_channels)
        x = builder.conv2d(x, arch.stem_channels, arch.stem_kernel, arch.stem_stride, self._stem_activation(arch), "stem")
        for slot in arch.iter_blocks():
            x = self._emit_block(builder, x, arch, slot)
        x = builder.global_average_pool(x, "pool")
        return builder.finish(builder.fully_connected(x, arch.num_classes, "classifier"))

    def _check(self, arch: object) -> None:
        if not isinstance(arch, self.arch_type):
            space = getattr(arch, "space", type(arch).__name__)
            raise ArchitectureError(f"an architecture of space '{space}' was given to space '{self.name}'")
