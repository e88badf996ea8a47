"""Op-graph IR (:mod:`mcunas.graph.ir`) and the .tflite importer (:mod:`mcunas.graph.tflite`)."""

from mcunas.graph.ir import DTYPE_BYTES, SPACE_OP_KINDS, Graph, Op, Tensor

__all__ = ["DTYPE_BYTES", "SPACE_OP_KINDS", "Graph", "Op", "Tensor"]
