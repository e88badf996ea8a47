"""Run an int8 ``.tflite`` in the real TensorFlow Lite Micro interpreter and measure its arena.

Uses the host build of TFLM shipped by the ``tflite-micro`` package (``from tflite_micro import
runtime``). That build is 64-bit with the portable *reference* kernels, so the arena it reports
is the "host" arena of :func:`mcunas.estimators.memory.arena_bytes` (``target="host",
kernels="reference"``); a 32-bit microcontroller needs fewer bytes for the same model.

The Python wrapper has no ``arena_used_bytes()``; the interpreter's recording allocator prints
``Arena allocation total N bytes`` from ``print_allocations()`` to the C-level stderr, which
:func:`measure_arena_bytes` captures by redirecting file descriptor 2.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mcunas.errors import ModelFormatError

# Arena sizes tried, in order, when measuring: the model is constructed once with an arena large
# enough for it and the used part is read back. 8 MiB covers every microcontroller-sized model.
_PROBE_ARENA_BYTES: tuple[int, ...] = (8 << 20, 64 << 20, 512 << 20)
_TOTAL_RE = re.compile(rb"Arena allocation total (\d+) bytes")
# Below about 464 bytes the host interpreter crashes (segmentation fault) while placing its own
# allocator objects in the arena instead of reporting an error; every model needs more than
# this floor, so smaller arenas are refused before the interpreter is built.
MIN_ARENA_BYTES = 512


@dataclass(frozen=True, slots=True)
class TensorDetails:
    """Shape, element type and affine quantization of one model input or output.

    ``real_value = scale * (int_value - zero_point)``; ``scale``/``zero_point`` are the first
    (per-tensor) pair, which is the only one for activations.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


def _check_tflite_file(path: Path) -> bytes:
    """Read ``path`` and check the TFLite flatbuffer file identifier ("TFL3" at byte 4)."""
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such .tflite file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFormatError(f"{path}: not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    return data


@contextmanager
def _captured_stderr() -> Iterator[list[bytes]]:
    """Redirect the process's file descriptor 2 (C-level stderr) into a buffer.

    Yields a list that holds the captured bytes once the block exits.
    """
    captured: list[bytes] = []
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            captured.append(sink.read())


def _construct(path: Path, data: bytes, arena_size: int) -> Any:
    """Build a TFLM interpreter (allocates tensors); translate failures to ModelFormatError."""
    from tflite_micro import runtime

    if arena_size < MIN_ARENA_BYTES:
        raise ModelFormatError(
            f"{path}: TFLite Micro cannot allocate this model in a {arena_size}-byte arena "
            f"(less than the {MIN_ARENA_BYTES} bytes any model needs)"
        )

    with _captured_stderr() as log:
        try:
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            error = None
        except RuntimeError as exc:
            interpreter, error = None, exc
    if interpreter is None:
        messages = log[0].decode(errors="replace").strip().replace("\n", "; ")
        raise ModelFormatError(
            f"{path}: TFLite Micro cannot allocate this model in a {arena_size}-byte arena "
            f"({error}; interpreter log: {messages or 'empty'})"
        )
    return interpreter


def _allocated_total_bytes(interpreter: Any) -> int:
    with _captured_stderr() as log:
        interpreter.print_allocations()
    match = _TOTAL_RE.search(log[0])
    if match is None:
        raise RuntimeError("TFLM print_allocations() did not report 'Arena allocation total'")
    return int(match.group(1))


def measure_arena_bytes(tflite_path: str | os.PathLike[str]) -> int:
    """Arena bytes the host (64-bit, reference kernels) TFLM interpreter uses for a model.

    This is what ``MicroInterpreter::arena_used_bytes()`` reports after tensor allocation:
    head (planned activations and scratch buffers) plus tail (persistent structures).

    Raises:
        ModelFormatError: missing file, not a TFLite flatbuffer, or a model TFLM cannot
            allocate (unsupported op, malformed tensors) even in a 512 MiB arena.
    """
    path = Path(tflite_path)
    data = _check_tflite_file(path)
    for arena_size in _PROBE_ARENA_BYTES[:-1]:
        try:
            return _allocated_total_bytes(_construct(path, data, arena_size))
        except ModelFormatError:
            continue
    return _allocated_total_bytes(_construct(path, data, _PROBE_ARENA_BYTES[-1]))


def smallest_arena_bytes(tflite_path: str | os.PathLike[str], high: int | None = None) -> int:
    """Smallest ``arena_size`` with which the interpreter constructs, by binary search.

    An independent check of :func:`measure_arena_bytes` (slower: ~20 constructions). It can be
    up to 15 bytes below the reported total (alignment slack of the arena start) and above it
    by the planner's temporary working memory (allocation records of every tensor, freed once
    the plan is made), which small-activation models such as ad01 need more of than their plan.
    """
    path = Path(tflite_path)
    data = _check_tflite_file(path)
    high = high or measure_arena_bytes(path) * 2 + 64
    low = MIN_ARENA_BYTES - 1  # invariant: low fails, high constructs
    _construct(path, data, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _constructs_in_child(data, middle):
            high = middle
        else:
            low = middle
    return high


def _constructs_in_child(data: bytes, arena_size: int) -> bool:
    """Whether the interpreter constructs with ``arena_size``, tried in a forked child process.

    The host interpreter does not always fail cleanly on an arena that is too small: for some
    models and sizes it crashes with a segmentation fault while allocating (seen on a quickstart
    export at 8,000 of its 14,272 bytes). A crash of the child counts as "does not fit".
    """
    from tflite_micro import runtime

    pid = os.fork()
    if pid == 0:  # the child: construct, report through the exit status, never return
        status = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            status = 0
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    return os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == 0


class TflmModel:
    """One ``.tflite`` model loaded in the TFLM interpreter, for int8 inference one sample at a time.

    Args:
        path: the ``.tflite`` file (single input, single output, int8 or uint8 I/O expected).
        arena_size: tensor arena in bytes; ``None`` measures the model's need and adds 1 KiB.

    Raises:
        ModelFormatError: missing file, not a TFLite flatbuffer, or the arena is too small.
    """

    def __init__(self, path: str | os.PathLike[str], arena_size: int | None = None) -> None:
        self.path = Path(path)
        data = _check_tflite_file(self.path)
        if arena_size is None:
            arena_size = measure_arena_bytes(self.path) + 1024
        self.arena_size = arena_size
        self._interpreter = _construct(self.path, data, arena_size)
        self.input_details = self._details(self._interpreter.get_input_details(0))
        self.output_details = self._details(self._interpreter.get_output_details(0))

    @staticmethod
    def _details(raw: dict[str, Any]) -> TensorDetails:
        quant = raw.get("quantization_parameters", {})
        scales = quant.get("scales", ())
        zero_points = quant.get("zero_points", ())
        return TensorDetails(
            shape=tuple(int(d) for d in raw["shape"]),
            dtype=np.dtype(raw["dtype"]),
            scale=float(scales[0]) if len(scales) else 0.0,
            zero_point=int(zero_points[0]) if len(zero_points) else 0,
        )

    def arena_used_bytes(self) -> int:
        """Arena bytes this interpreter allocated (see :func:`measure_arena_bytes`)."""
        return _allocated_total_bytes(self._interpreter)

    def invoke(self, x_int8: np.ndarray) -> np.ndarray:
        """Run one sample; ``x_int8`` has the input shape with or without its batch-1 axis.

        Returns the raw (quantized) output with the output tensor's full shape.
        """
        expected = self.input_details.shape
        x = np.asarray(x_int8)
        if x.shape != expected:
            if (1, *x.shape) != expected:
                raise ValueError(f"{self.path}: input shape {x.shape}, model expects {expected}")
            x = x.reshape(expected)
        self._interpreter.set_input(np.ascontiguousarray(x, dtype=self.input_details.dtype), 0)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_output(0), copy=True)

    def predict_int8(self, batch: np.ndarray) -> np.ndarray:
        """Run each sample of ``batch`` (leading axis = samples); outputs stacked, batch axis kept."""
        outputs = [self.invoke(sample) for sample in np.asarray(batch)]
        return np.stack(outputs).reshape((len(outputs), *self.output_details.shape[1:]))

    def quantize_input(self, x_float_nhwc: np.ndarray) -> np.ndarray:
        """Quantize real-valued input (any batch) with the input's scale and zero point, saturating."""
        details = self.input_details
        info = np.iinfo(details.dtype)
        q = np.round(np.asarray(x_float_nhwc, dtype=np.float64) / details.scale) + details.zero_point
        return np.clip(q, info.min, info.max).astype(details.dtype)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        """Real values (float32) of quantized outputs: ``scale * (y - zero_point)``."""
        details = self.output_details
        return (details.scale * (np.asarray(y, dtype=np.float32) - details.zero_point)).astype(np.float32)
