"""PyTorch model -> full-integer int8 ``.tflite`` that TFLite Micro runs.

Pipeline (each failure is an :class:`~mcunas.errors.ExportError` naming its stage):

1. "ONNX export": ``torch.onnx.export`` (:mod:`mcunas.export.onnx`).
2. "onnx2tf conversion": onnx2tf builds an NHWC Keras model (BatchNorm folded, stride-2
   'same' convolutions get an explicit ``PAD``).
3. "int8 quantization": ``TFLiteConverter`` with int8 builtins only, int8 input/output,
   per-channel weights, calibrated on a sample of the training split; the file is stripped of
   what TFLite Micro does not read (:mod:`mcunas.export.strip`); then every op must be a
   TFLite Micro int8 kernel and every activation tensor int8.
4. "TFLM load": the model is allocated and invoked once in the TFLite Micro interpreter.

Everything is written in a private temporary directory; only a model that passed all four stages
is copied to ``out_path`` (atomically), so a failure leaves nothing behind.

Input quantization: the calibration sample is the *normalized* training data
(``(pixel / 255 - mean) / std``), so the int8 input is ``q = round(((pixel / 255 - mean) / std)
/ scale) + zero_point`` with the model's input ``scale`` and ``zero_point``.

Conversion runs by default in a child process (``isolate=True``): onnx2tf needs its own working
directory and may ``sys.exit``; the child also returns TensorFlow's memory (~0.9 GB) to the
system. Its cost is the TensorFlow import (~5-7 s on a loaded 2-core machine) per export;
``isolate=False`` converts in this process (working directory switched under a lock) and is the
faster choice for batches of exports in a single-threaded script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from mcunas.errors import ExportError, McunasError
from mcunas.export import _convert
from mcunas.export.onnx import export_onnx
from mcunas.export.strip import strip_tflite
from mcunas.io import atomic_write_bytes

# Op kinds TFLite Micro runs with int8 tensors that the exported models may contain.
TFLM_INT8_OPS: frozenset[str] = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "HARD_SWISH",
        "LOGISTIC",
        "MAX_POOL_2D",
        "MEAN",
        "MUL",
        "PAD",
        "QUANTIZE",
        "RELU",
        "RELU6",
        "RESHAPE",
        "SOFTMAX",
    }
)
# Wall-clock limit of one child conversion, seconds.
CONVERT_TIMEOUT_S = 900
_CWD_LOCK = threading.Lock()


def export_tflite(
    model,
    input_shape_nchw: tuple[int, int, int, int],
    calibration_nchw: np.ndarray,
    out_path: str | os.PathLike[str],
    *,
    float_out_path: str | os.PathLike[str] | None = None,
    isolate: bool = True,
    strip: bool = True,
) -> Path:
    """Export ``model`` to a full-integer int8 ``.tflite`` at ``out_path``.

    Args:
        model: float ``nn.Module``, NCHW float32 input (normalized), logits output.
        input_shape_nchw: fixed input shape, batch first, e.g. ``(1, 3, 32, 32)``.
        calibration_nchw: float32 array (N, C, H, W) of *normalized* training samples
            (a few hundred is plenty); the activation ranges are calibrated on it.
        out_path: the int8 model file to write.
        float_out_path: optionally also write the float32 ``.tflite`` of the same graph
            (used for float accuracy and per-layer quantization error).
        isolate: convert in a child process (see the module docstring).
        strip: strip the int8 model of what TFLite Micro does not read (:mod:`mcunas.export.strip`);
            False keeps the converter's file as it is (names, signatures, metadata).

    Returns:
        ``out_path`` as a Path.

    Raises:
        ExportError: the message starts with the failing stage.
    """
    shape = tuple(int(d) for d in input_shape_nchw)
    calibration = np.asarray(calibration_nchw, dtype=np.float32)
    if len(shape) != 4 or calibration.ndim != 4 or calibration.shape[1:] != shape[1:] or not len(calibration):
        raise ExportError(
            f"int8 quantization: calibration data of shape {calibration.shape} does not match the "
            f"input shape {shape} (expected (N, {', '.join(map(str, shape[1:]))}) with N >= 1)"
        )
    with tempfile.TemporaryDirectory(prefix="mcunas-export-") as tmp_name:
        work = Path(tmp_name)
        onnx_path = export_onnx(model, shape, work / "model.onnx")
        calibration_path = work / "calibration_nhwc.npy"
        np.save(calibration_path, np.ascontiguousarray(calibration.transpose(0, 2, 3, 1)))
        int8_path = work / "model_int8.tflite"
        float_path = work / "model_float32.tflite" if float_out_path is not None else None
        if isolate:
            _convert_in_child(work, onnx_path, calibration_path, int8_path, float_path)
        else:
            _convert_in_process(work, onnx_path, calibration_path, int8_path, float_path)
        if strip:
            int8_path.write_bytes(strip_tflite(int8_path.read_bytes()))
        check_tflm_int8(int8_path)
        check_tflm_load(int8_path)
        atomic_write_bytes(out_path, int8_path.read_bytes())
        if float_path is not None:
            atomic_write_bytes(float_out_path, float_path.read_bytes())
    return Path(out_path)


def _convert_in_child(work: Path, onnx_path: Path, calibration_path: Path, int8_path: Path, float_path: Path | None) -> None:
    command = [
        sys.executable,
        "-m",
        "mcunas.export._convert",
        str(onnx_path),
        str(calibration_path),
        str(int8_path),
        str(float_path) if float_path is not None else "-",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    # The child imports mcunas from wherever this process did (also when not installed).
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        result = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"onnx2tf conversion: no result after {CONVERT_TIMEOUT_S} s") from None
    if result.returncode == 0 and int8_path.is_file():
        return
    for line in reversed(result.stderr.splitlines()):
        if line.startswith(_convert.WORKER_ERROR_PREFIX):
            raise ExportError(line[len(_convert.WORKER_ERROR_PREFIX) :])
    tail = " | ".join(result.stderr.strip().splitlines()[-5:])
    raise ExportError(f"onnx2tf conversion: the converter process exited with status {result.returncode}: {tail}")


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(previous)


def _convert_in_process(work: Path, onnx_path: Path, calibration_path: Path, int8_path: Path, float_path: Path | None) -> None:
    _convert.place_onnx2tf_sample(work)
    with _working_directory(work):
        _convert.convert(onnx_path, calibration_path, int8_path, float_path)


def check_tflm_int8(path: Path) -> None:
    """Every op a TFLite Micro int8 kernel, every activation tensor int8 ("int8 quantization")."""
    from mcunas.graph.tflite import read_tflite

    try:
        graph = read_tflite(path)
    except McunasError as error:
        raise ExportError(f"int8 quantization: the converted model is not a supported int8 model: {error}") from error
    unsupported = sorted({op.kind for op in graph.ops} - TFLM_INT8_OPS)
    if unsupported:
        raise ExportError(f"int8 quantization: ops without a TFLite Micro int8 kernel: {', '.join(unsupported)}")
    for op in graph.ops:
        for index in (*op.inputs, *op.outputs):
            tensor = graph.tensors[index] if index >= 0 else None
            if tensor is not None and not tensor.is_constant and tensor.dtype != "int8":
                raise ExportError(
                    f"int8 quantization: {op.kind} uses the {tensor.dtype} activation tensor "
                    f"'{tensor.name}' (only int8 activations run in the int8 kernels)"
                )


def load_tflm(path: Path):
    """The model in the TFLite Micro interpreter, with an arena of twice the measured need.

    TFLM's memory planner takes its working space from the arena's free part while
    allocating, so an arena of exactly ``measure_arena_bytes`` can fail to allocate a model with
    many tensors ("Too many buffers"); twice the need plus 16 KiB always sufficed.
    """
    from mcunas.tflm import TflmModel, measure_arena_bytes

    return TflmModel(path, arena_size=2 * measure_arena_bytes(path) + (16 << 10))


def check_tflm_load(path: Path) -> None:
    """Allocate and invoke the model once in TFLite Micro ("TFLM load")."""
    try:
        model = load_tflm(path)
        model.invoke(np.zeros(model.input_details.shape, dtype=model.input_details.dtype))
    except (McunasError, RuntimeError, ValueError) as error:
        raise ExportError(f"TFLM load: the TFLite Micro interpreter cannot run the model: {error}") from error
