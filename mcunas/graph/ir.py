"""The op-graph IR shared by the search spaces, the .tflite importer and the estimators.

A :class:`Graph` describes one int8 model *as deployed* on TFLite Micro: batch 1, NHWC
activations, ops in execution order, every tensor (activations and constants) listed once.
It is plain data (no torch, no TensorFlow), cheap to build, and is all an estimator reads.

Conventions
-----------
* Shapes are the TFLite shapes: activations ``(1, H, W, C)`` for feature maps, ``(1, N)`` for
  vectors; conv weights ``(C_out, KH, KW, C_in)``; depthwise weights ``(1, KH, KW, C_out)``;
  fully-connected weights ``(N_out, N_in)``; biases ``(C_out,)``.
* ``dtype`` is the TFLite element type name in lower case: ``int8``, ``int16``, ``int32``,
  ``float32``, ...
* ``Tensor.is_constant`` marks tensors whose data lives in the flatbuffer (weights, biases,
  shape tensors): they occupy flash, not arena.
* ``Op.macs`` counts multiply-accumulates of one inference (0 for data-movement ops).

``Tensor`` and ``Op`` are named tuples: immutable, hashable, and cheap to create (the search
spaces build thousands of graphs per second; a named tuple is about 3x faster to make than a
frozen dataclass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import NamedTuple

# Element sizes in bytes of the TFLite tensor types the IR uses.
DTYPE_BYTES: dict[str, int] = {
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "int16": 2,
    "float16": 2,
    "int32": 4,
    "float32": 4,
    "int64": 8,
}

# Op kinds (TFLite builtin operator names) that mcunas spaces emit.
SPACE_OP_KINDS: frozenset[str] = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "ADD",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "RESHAPE",
        "SOFTMAX",
        "PAD",
    }
)


class Tensor(NamedTuple):
    """One tensor of the graph.

    Attributes:
        index: position in ``Graph.tensors`` (ops refer to tensors by this index).
        name: human-readable name (from the space or the .tflite file).
        shape: TFLite shape, batch first for activations.
        dtype: element type name, see :data:`DTYPE_BYTES`.
        is_constant: True when the data is stored in the model file (weights, biases, shapes).
        quant_channels: number of quantization (scale, zero-point) pairs: 1 per-tensor,
            ``C_out`` for per-channel weights, 0 for unquantized tensors.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"
    is_constant: bool = False
    quant_channels: int = 1

    @property
    def num_elements(self) -> int:
        return prod(self.shape)  # 1 for a scalar, shape ()

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes (no alignment)."""
        return self.num_elements * DTYPE_BYTES[self.dtype]


class Op(NamedTuple):
    """One operator, in execution order.

    Attributes:
        kind: TFLite builtin operator name, e.g. ``CONV_2D``.
        inputs: tensor indices read, in TFLite input order (e.g. input, weights, bias);
            -1 for an optional input that is absent.
        outputs: tensor indices written.
        kernel: (KH, KW) for convolutions (also TRANSPOSE_CONV) and pools, else None.
        stride: (SH, SW) for convolutions and pools, else None.
        padding: ``"SAME"`` or ``"VALID"`` for convolutions and pools, else None.
        activation: fused activation, ``"NONE"``, ``"RELU"``, ``"RELU6"``.
        macs: multiply-accumulates of one inference.
        dilation: (DH, DW) dilation factors of a dilated convolution; None for none (1, 1)
            and for other ops.
    """

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: str | None = None
    activation: str = "NONE"
    macs: int = 0
    dilation: tuple[int, int] | None = None


@dataclass(slots=True)
class Graph:
    """An int8 model as deployed: tensors, ops in execution order, graph inputs and outputs."""

    name: str
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference, summed over ops."""
        return sum(op.macs for op in self.ops)

    def _parameter_tensors(self) -> list[Tensor]:
        """The constant tensors that are weights or biases of ops with MACs (each once)."""
        counted: set[int] = set()
        for op in self.ops:
            if op.macs:
                counted.update(op.inputs[1:])
        tensors = self.tensors
        return [tensors[i] for i in counted if i >= 0 and tensors[i].is_constant]

    @property
    def params(self) -> int:
        """Number of elements in constant tensors that are weights or biases of ops with MACs."""
        return sum([prod(tensor.shape) for tensor in self._parameter_tensors()])

    @property
    def param_bytes(self) -> int:
        """Bytes of the tensors :attr:`params` counts, as stored: int8 weights, int32 biases
        (μNAS's "model size", which counts every parameter as one byte, is smaller by 3 bytes
        per bias)."""
        return sum([tensor.nbytes for tensor in self._parameter_tensors()])

    def op_kinds(self) -> list[str]:
        """Sorted distinct op kinds (the MicroMutableOpResolver list)."""
        return sorted({op.kind for op in self.ops})

    def add_tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: str = "int8",
        *,
        is_constant: bool = False,
        quant_channels: int = 1,
    ) -> int:
        """Append a tensor and return its index."""
        index = len(self.tensors)
        self.tensors.append(Tensor(index, name, tuple(shape), dtype, is_constant, quant_channels))
        return index

