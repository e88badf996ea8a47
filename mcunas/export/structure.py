"""Compare the graph a space predicts (``Space.graph(arch)``) with the exported ``.tflite``.

Used by the export tests and ``benchmarks/export_success.py`` to check the contract of
docs/architecture.md: same op kinds in the same order, same tensors (shape, type, constant or
not, quantization channels), same convolution attributes (kernel, stride, padding, fused
activation) and MACs, and the same number of stored tensors. The converter stores equal
constants once, so PADs adding the same padding share one paddings tensor in the file; a graph
may give each PAD its own, and such duplicates are not counted (the estimators' convention,
:func:`mcunas.estimators.memory.duplicate_constant_indices`).
"""

from __future__ import annotations

from mcunas.estimators.memory import duplicate_constant_indices
from mcunas.graph.ir import Graph


def _tensor_signature(graph: Graph, index: int) -> tuple | None:
    """(shape, dtype, constant?, quantization channels) of a tensor; None for an absent input."""
    if index < 0:
        return None
    tensor = graph.tensors[index]
    return (tensor.shape, tensor.dtype, tensor.is_constant, tensor.quant_channels)


def _op_signature(graph: Graph, position: int) -> dict[str, object]:
    op = graph.ops[position]
    return {
        "kind": op.kind,
        "inputs": [_tensor_signature(graph, i) for i in op.inputs],
        "outputs": [_tensor_signature(graph, i) for i in op.outputs],
        "kernel": op.kernel,
        "stride": op.stride,
        "padding": op.padding,
        "activation": op.activation,
        "macs": op.macs,
    }


def graph_differences(expected: Graph, actual: Graph) -> list[str]:
    """Human-readable differences between two graphs (empty when they describe the same model)."""
    differences = []
    expected_kinds = [op.kind for op in expected.ops]
    actual_kinds = [op.kind for op in actual.ops]
    if expected_kinds != actual_kinds:
        differences.append(f"op kinds differ:\n  expected {expected_kinds}\n  exported {actual_kinds}")
        return differences
    expected_count = len(expected.tensors) - len(duplicate_constant_indices(expected))
    actual_count = len(actual.tensors) - len(duplicate_constant_indices(actual))
    if expected_count != actual_count:
        differences.append(f"stored tensor count: expected {expected_count}, exported {actual_count}")
    for position in range(len(expected.ops)):
        want, got = _op_signature(expected, position), _op_signature(actual, position)
        for key in want:
            if want[key] != got[key]:
                differences.append(f"op {position} {want['kind']}: {key} expected {want[key]}, exported {got[key]}")
    return differences
