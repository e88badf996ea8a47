"""Validate an int8 ``.tflite`` in the real TFLite Micro interpreter: measured vs predicted.

:func:`validate_tflite` runs the model in the TFLM Python interpreter (host build, 64-bit,
reference kernels) and reports

* int8 top-1 accuracy on the test split, float top-1 accuracy of the float model if one is
  given, and their top-1 agreement. The int8 inputs are the normalized test samples quantized
  with the model's input scale and zero point; for an audio dataset
  (:class:`mcunas.data.AudioDatasetSplits`) they are what the device computes: the test split's
  raw front-end features mapped to int8 by :func:`mcunas.frontend.quantize_features`, the
  arithmetic of the bundle's ``features.c`` (``int8_input_source``: ``normalized`` |
  ``front_end``);
* the arena TFLM uses after allocation (``arena_bytes_measured``, what
  ``arena_used_bytes()`` reports; ``arena_bytes_min_measured`` is the smallest arena in which
  allocation succeeds, larger by the allocator's temporary lists) next to the memory model's prediction for
  the same host build (``arena_bytes_predicted``) and for the 32-bit target
  (``arena_bytes_predicted_target``, what a microcontroller allocates);
* the file size (``model_bytes``) next to the flash model's ``model_bytes_predicted``.

When int8 accuracy drops by more than ``max_int8_drop_pp`` percentage points and a float32
``.tflite`` of the same graph is known, the layers with the largest quantization error are
named: both models run in LiteRT with the reference kernels and all intermediate tensors kept,
and each op's dequantized int8 output is compared with the float output (relative RMSE, over a
few test samples; errors accumulate, so the first layers where it jumps are the culprits).

The result is written atomically to ``validation.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcunas.errors import ModelFormatError
from mcunas.estimators.runtime import DEFAULT_RUNTIME
from mcunas.graph.ir import Graph
from mcunas.io import write_json

if TYPE_CHECKING:
    from mcunas.estimators import Board

# Name of the float32 model beside an exported model.tflite (see mcunas.export.pipeline).
FLOAT_MODEL_NAME = "model_float32.tflite"
# Test samples run through both models for the per-layer comparison, and layers named.
LAYER_SAMPLES = 16
WORST_LAYERS = 5


@dataclass(frozen=True)
class LayerError:
    """Quantization error of one op output: ``rmse(int8 dequantized - float) / rms(float)``."""

    op_index: int
    kind: str
    tensor: str
    shape: tuple[int, ...]
    relative_rmse: float


@dataclass
class Validation:
    """Measured vs predicted facts of one int8 model (bytes, accuracies in 0..1, pp = 0..100)."""

    tflite_path: str
    board: str | None
    runtime: str
    arena_bytes_measured: int
    arena_bytes_min_measured: int
    arena_bytes_predicted: int | None
    arena_bytes_predicted_target: int | None
    model_bytes: int
    model_bytes_predicted: int | None
    test_samples: int = 0
    accuracy_int8: float | None = None
    accuracy_float: float | None = None
    top1_agreement: float | None = None
    int8_drop_pp: float | None = None
    max_int8_drop_pp: float = 1.0
    int8_drop_exceeded: bool = False
    worst_layers: list[LayerError] = field(default_factory=list)
    input_scale: float = 0.0
    input_zero_point: int = 0
    output_scale: float = 0.0
    output_zero_point: int = 0
    int8_input_source: str = "normalized"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A measured-vs-predicted text table (bytes; accuracies in %)."""
        rows = [("quantity", "measured", "predicted", "diff")]

        def add(name: str, measured: float | None, predicted: float | None, fmt: str = "{:,}") -> None:
            def show(value: float | None) -> str:
                return "-" if value is None else fmt.format(value)

            diff = None if measured is None or predicted is None else measured - predicted
            rows.append((name, show(measured), show(predicted), show(diff)))

        def percent(fraction: float | None) -> float | None:
            return None if fraction is None else 100 * fraction

        add("arena bytes (host, 64-bit)", self.arena_bytes_measured, self.arena_bytes_predicted)
        add("smallest arena that allocates (host)", self.arena_bytes_min_measured, None)
        add("arena bytes (target, 32-bit)", None, self.arena_bytes_predicted_target)
        add("model bytes (.tflite)", self.model_bytes, self.model_bytes_predicted)
        add("accuracy int8 (%)", percent(self.accuracy_int8), None, "{:.2f}")
        add("accuracy float (%)", percent(self.accuracy_float), None, "{:.2f}")
        add("top-1 agreement (%)", percent(self.top1_agreement), None, "{:.2f}")
        add("int8 drop (pp)", self.int8_drop_pp, self.max_int8_drop_pp, "{:.2f}")
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.int8_drop_exceeded:
            lines.append(
                f"int8 accuracy drop {self.int8_drop_pp:.2f} pp exceeds {self.max_int8_drop_pp:.2f} pp"
                + ("; largest quantization error:" if self.worst_layers else " (no float32 .tflite to locate it)")
            )
            for layer in self.worst_layers:
                lines.append(
                    f"  op {layer.op_index:3d} {layer.kind:<18} {layer.tensor} {layer.shape}: "
                    f"relative RMSE {layer.relative_rmse:.3f}"
                )
        return "\n".join(lines)


def validate_tflite(
    tflite_path: str | os.PathLike[str],
    splits=None,
    graph: Graph | None = None,
    board: Board | str | os.PathLike[str] | None = None,
    runtime: str = DEFAULT_RUNTIME,
    float_model=None,
    max_int8_drop_pp: float = 1.0,
    *,
    max_test_samples: int | None = None,
    json_path: str | os.PathLike[str] | None = None,
    write: bool = True,
) -> Validation:
    """Run ``tflite_path`` in TFLite Micro and compare it with the estimators and the float model.

    Args:
        tflite_path: full-integer int8 model (int8 input and output).
        splits: :class:`mcunas.data.DatasetSplits`; without it no accuracy is measured.
        graph: the graph the predictions are made from (``Space.graph(arch)``, the pre-training
            prediction); default: the model file's own graph (``read_tflite``).
        board: board name, board file or ``Board`` for the 32-bit prediction; default: the
            memory model's generic 32-bit target.
        runtime: ``tflm-cmsis-nn`` or ``tflm-reference`` (kernel library on the target).
        float_model: the float model: an ``nn.Module`` (NCHW) or a float32 ``.tflite`` path;
            default: ``model_float32.tflite`` beside ``tflite_path`` if it exists. The per-layer
            comparison uses the float32 ``.tflite`` (given, or beside the model).
        max_int8_drop_pp: allowed float -> int8 top-1 drop, percentage points.
        max_test_samples: evaluate on the first N test samples only (TFLM runs ~1 sample/ms for
            small models in Python).
        json_path: where to write the result; default ``validation.json`` beside the model.
        write: False to write no file (e.g. for a model in a read-only folder).

    Raises:
        ModelFormatError: missing or unsupported model file, or a model TFLM cannot run.
    """
    from mcunas.export.tflite import load_tflm
    from mcunas.graph.tflite import read_tflite
    from mcunas.tflm import measure_arena_bytes, smallest_arena_bytes

    path = Path(tflite_path)
    model_graph = read_tflite(path)
    if board is not None:
        from mcunas.estimators import load_board

        board = load_board(board)
    predictions = _predictions(graph if graph is not None else model_graph, board, runtime)
    tflm = load_tflm(path)
    float_tflite = path.parent / FLOAT_MODEL_NAME
    if float_model is not None and not _is_module(float_model):
        float_tflite = Path(float_model)
    if float_model is None and float_tflite.is_file():
        float_model = float_tflite
    result = Validation(
        tflite_path=str(path),
        board=board.name if board is not None else None,
        runtime=runtime,
        arena_bytes_measured=measure_arena_bytes(path),
        arena_bytes_min_measured=smallest_arena_bytes(path),
        model_bytes=path.stat().st_size,
        max_int8_drop_pp=float(max_int8_drop_pp),
        input_scale=tflm.input_details.scale,
        input_zero_point=tflm.input_details.zero_point,
        output_scale=tflm.output_details.scale,
        output_zero_point=tflm.output_details.zero_point,
        **predictions,
    )
    if splits is not None:
        x = splits.test.x[:max_test_samples] if max_test_samples else splits.test.x
        y = splits.test.y[: len(x)]
        _check_input_shape(path, tflm.input_details.shape, x.shape)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        result.int8_input_source, x_int8 = _int8_inputs(splits, tflm, x_nhwc)
        int8_top1 = np.argmax(tflm.predict_int8(x_int8), axis=-1)
        result.test_samples = int(len(x))
        result.accuracy_int8 = float(np.mean(int8_top1 == y))
        if float_model is not None:
            float_top1 = np.argmax(float_logits(float_model, x), axis=-1)
            result.accuracy_float = float(np.mean(float_top1 == y))
            result.top1_agreement = float(np.mean(float_top1 == int8_top1))
            result.int8_drop_pp = 100.0 * (result.accuracy_float - result.accuracy_int8)
            result.int8_drop_exceeded = result.int8_drop_pp > max_int8_drop_pp
            if result.int8_drop_exceeded and float_tflite.is_file():
                result.worst_layers = layer_errors(path, float_tflite, x_nhwc[:LAYER_SAMPLES])[:WORST_LAYERS]
    if write:
        write_json(json_path if json_path is not None else path.with_name("validation.json"), result.to_dict())
    return result


def _int8_inputs(splits: Any, tflm: Any, x_nhwc: np.ndarray) -> tuple[str, np.ndarray]:
    """The int8 NHWC test inputs and where they come from (see the module docstring)."""
    from mcunas.data import AudioDatasetSplits

    if not isinstance(splits, AudioDatasetSplits):
        return "normalized", tflm.quantize_input(x_nhwc)
    from mcunas.frontend import InputQuantization, quantize_features

    quant = InputQuantization(splits.mean[0], splits.std[0], tflm.input_details.scale, tflm.input_details.zero_point)
    return "front_end", quantize_features(splits.test_raw[: len(x_nhwc)], splits.front_end, quant)[..., np.newaxis]


def _check_input_shape(path: Path, model_shape: tuple[int, ...], data_shape_nchw: tuple[int, ...]) -> None:
    _, c, h, w = data_shape_nchw
    if tuple(model_shape[1:]) != (h, w, c):
        raise ModelFormatError(
            f"{path}: model input {model_shape} (NHWC) does not fit the dataset's {(h, w, c)} samples "
            f"(check the config's dataset resolution)"
        )


def _predictions(graph: Graph, board: Board | str | os.PathLike[str] | None, runtime: str) -> dict[str, int | None]:
    """The estimators' host arena, 32-bit target arena and model size for ``graph``.

    The host prediction uses the reference kernels, as the ``tflite-micro`` package does; the
    target prediction uses the runtime's kernels (CMSIS-NN adds scratch buffers).
    """
    from mcunas.estimators import estimate, memory
    from mcunas.estimators.runtime import kernels_of

    if board is not None:
        cost = estimate(graph, board, runtime)
        target_arena, model_bytes = cost.arena_bytes, cost.model_bytes
    else:
        from mcunas.estimators.flash import model_bytes as flash_model_bytes

        target_arena = memory.arena_bytes(graph, target="cortex-m", kernels=kernels_of(runtime))
        model_bytes = flash_model_bytes(graph)
    return {
        "arena_bytes_predicted": memory.arena_bytes(graph, target="host", kernels="reference"),
        "arena_bytes_predicted_target": target_arena,
        "model_bytes_predicted": model_bytes,
    }


def _is_module(model: Any) -> bool:
    return hasattr(model, "forward") and hasattr(model, "eval")


def float_logits(float_model, x_nchw: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits of the float model on normalized NCHW samples (``nn.Module`` or float ``.tflite``)."""
    if _is_module(float_model):
        import torch

        float_model.eval()
        with torch.no_grad():
            return np.concatenate(
                [float_model(torch.from_numpy(x_nchw[i : i + batch_size])).numpy() for i in range(0, len(x_nchw), batch_size)]
            )
    interpreter = _litert(Path(float_model), keep_tensors=False)
    x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1), dtype=np.float32)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in x_nhwc:
        interpreter.set_tensor(input_index, sample[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index).reshape(-1))
    return np.stack(outputs)


def _litert(path: Path, keep_tensors: bool):
    """A LiteRT interpreter with the reference kernels (bit-close to TFLM, see toolchain notes)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not path.is_file():
        raise ModelFormatError(f"{path}: no such float .tflite file")
    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=keep_tensors,
    )
    interpreter.allocate_tensors()
    return interpreter


def layer_errors(int8_path: Path, float_path: Path, x_nhwc: np.ndarray) -> list[LayerError]:
    """Per-op quantization error of the int8 model against the float model, worst first.

    The two files must come from the same converted graph (same op kinds in the same order, as
    :func:`mcunas.export.tflite.export_tflite` writes them); otherwise the list is empty.
    Each op's output is compared over the given normalized NHWC samples.
    """
    int8_model = _litert(int8_path, keep_tensors=True)
    float_model = _litert(float_path, keep_tensors=True)
    int8_ops = int8_model._get_ops_details()
    float_ops = float_model._get_ops_details()
    if [op["op_name"] for op in int8_ops] != [op["op_name"] for op in float_ops]:
        return []
    int8_tensors = {t["index"]: t for t in int8_model.get_tensor_details()}
    in_detail = int8_model.get_input_details()[0]
    in_scale, in_zero = in_detail["quantization"]
    squared_error = np.zeros(len(int8_ops))
    squared_reference = np.zeros(len(int8_ops))
    for sample in x_nhwc.astype(np.float32):
        q = np.clip(np.round(sample / in_scale) + in_zero, -128, 127).astype(np.int8)
        int8_model.set_tensor(in_detail["index"], q[np.newaxis])
        int8_model.invoke()
        float_model.set_tensor(float_model.get_input_details()[0]["index"], sample[np.newaxis])
        float_model.invoke()
        for i, (op_q, op_f) in enumerate(zip(int8_ops, float_ops)):
            detail = int8_tensors[op_q["outputs"][0]]
            scale, zero = detail["quantization"]
            deq = scale * (int8_model.get_tensor(detail["index"]).astype(np.float64) - zero)
            ref = float_model.get_tensor(op_f["outputs"][0]).astype(np.float64)
            squared_error[i] += float(np.sum((deq.reshape(ref.shape) - ref) ** 2))
            squared_reference[i] += float(np.sum(ref**2))
    # Names from the float model: the int8 file is stripped of tensor names (mcunas.export.strip).
    float_names = {t["index"]: t["name"] for t in float_model.get_tensor_details()}
    errors = [
        LayerError(
            op_index=i,
            kind=op["op_name"],
            tensor=float_names[op_f["outputs"][0]],
            shape=tuple(int(d) for d in int8_tensors[op["outputs"][0]]["shape"]),
            relative_rmse=float(np.sqrt(squared_error[i] / max(squared_reference[i], 1e-30))),
        )
        for i, (op, op_f) in enumerate(zip(int8_ops, float_ops))
    ]
    return sorted(errors, key=lambda e: e.relative_rmse, reverse=True)
