"""PyTorch -> ONNX, the first stage of the export pipeline.

The legacy TorchScript exporter (``dynamo=False``) is used on purpose: on these models it takes
milliseconds where the ``torch.export``-based exporter takes seconds, it writes a single
self-contained file, and its node patterns (``GlobalAveragePool`` + ``Flatten`` + ``Gemm``) are
the ones onnx2tf maps to ``MEAN`` + ``RESHAPE`` + ``FULLY_CONNECTED``. BatchNorm is left in the
graph: onnx2tf folds it into the preceding convolution.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from mcunas.errors import ExportError

# ONNX opset written; onnx2tf 1.28 and onnxruntime 1.32 both support it fully.
OPSET_VERSION = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model, input_shape_nchw: tuple[int, int, int, int], out_path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (an ``nn.Module``, put in eval mode) as a single-file ONNX model.

    Args:
        model: float model taking an NCHW float32 batch and returning logits.
        input_shape_nchw: the fixed input shape, batch first (batch 1 for deployment).
        out_path: the ``.onnx`` file to write (the caller owns its directory).

    Returns:
        ``out_path`` as a Path.

    Raises:
        ExportError: stage "ONNX export", with the exporter's message.
    """
    import torch

    path = Path(out_path)
    model.eval()
    example = torch.zeros(tuple(input_shape_nchw), dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=OPSET_VERSION,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                do_constant_folding=True,
            )
    except Exception as error:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export failed for {type(model).__name__}: {type(error).__name__}: {error}") from error
    return path
