"""Export one architecture with random weights and compare the result with the predictions.

The property behind the search: every architecture a space can sample exports to an int8
model that TFLite Micro runs, whose structure is ``Space.graph(arch)`` and whose arena and size
are what the estimators predicted before training. Used by the slow export tests and
``benchmarks/export_success.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcunas.errors import McunasError

CALIBRATION_SAMPLES = 16


@dataclass
class ExportCheck:
    """Outcome of exporting one architecture (bytes; seconds of the export alone)."""

    block_string: str
    exported: bool
    error: str | None = None
    export_seconds: float = 0.0
    differences: list[str] = field(default_factory=list)
    arena_bytes_measured: int | None = None
    arena_bytes_predicted: int | None = None
    model_bytes: int | None = None
    model_bytes_predicted: int | None = None

    @property
    def arena_error_bytes(self) -> int | None:
        if self.arena_bytes_measured is None or self.arena_bytes_predicted is None:
            return None
        return self.arena_bytes_predicted - self.arena_bytes_measured

    @property
    def model_error_bytes(self) -> int | None:
        if self.model_bytes is None or self.model_bytes_predicted is None:
            return None
        return self.model_bytes_predicted - self.model_bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arena_error_bytes": self.arena_error_bytes, "model_error_bytes": self.model_error_bytes}


def randomize_batchnorm(model, seed: int):
    """Random BatchNorm statistics (as after training), so that folding is exercised; eval mode."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    return model.eval()


def check_export(space: Any, arch: Any, out_path: str | Path, seed: int = 0, *, isolate: bool = False) -> ExportCheck:
    """Export ``arch`` (random weights) to ``out_path`` and compare it with the space's graph.

    Export failures are recorded in the result (``exported=False``, ``error``), not raised.
    """
    import torch

    from mcunas.estimators import memory
    from mcunas.estimators.flash import model_bytes
    from mcunas.export.structure import graph_differences
    from mcunas.export.tflite import export_tflite
    from mcunas.graph.tflite import read_tflite
    from mcunas.tflm import measure_arena_bytes

    torch.manual_seed(seed)
    model = randomize_batchnorm(space.build(arch), seed)
    shape = (1, arch.input_channels, *arch.input_size)
    calibration = np.random.default_rng(seed).standard_normal((CALIBRATION_SAMPLES, *shape[1:])).astype(np.float32)
    result = ExportCheck(arch.block_string(), exported=False)
    start = time.perf_counter()
    try:
        path = export_tflite(model, shape, calibration, out_path, isolate=isolate)
    except McunasError as error:
        result.error = str(error)
        return result
    result.export_seconds = time.perf_counter() - start
    result.exported = True
    predicted = space.graph(arch)
    result.differences = graph_differences(predicted, read_tflite(path))
    result.arena_bytes_measured = measure_arena_bytes(path)
    result.arena_bytes_predicted = memory.arena_bytes(predicted, target="host", kernels="reference")
    result.model_bytes = Path(path).stat().st_size
    result.model_bytes_predicted = model_bytes(predicted)
    return result
