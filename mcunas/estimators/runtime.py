"""Runtimes: TensorFlow Lite Micro with one kernel library. The one list of runtime names.

A runtime name selects the kernels whose scratch buffers and persistent data the arena model
counts (:mod:`mcunas.estimators.memory`), whose code the flash model counts
(:mod:`mcunas.estimators.flash`) and whose cycle profile the latency model uses
(:mod:`mcunas.estimators.latency`, ``profiles/<core>-<runtime>.json``). Config, CLI and code take
the names from :data:`RUNTIMES`.

``tflm-esp-nn`` is Espressif's esp-tflite-micro with the ESP-NN kernels (ESP32-S3). The memory
and flash models count TFLM's reference kernels for it: ESP-NN's scratch buffers and code are
not modelled.
"""

from __future__ import annotations

from mcunas.errors import ConfigError

# The kernel libraries the memory and flash models know, and runtime name -> its library.
KERNEL_LIBRARIES: tuple[str, ...] = ("cmsis-nn", "reference")
RUNTIME_KERNELS: dict[str, str] = {"tflm-cmsis-nn": "cmsis-nn", "tflm-reference": "reference", "tflm-esp-nn": "reference"}
RUNTIMES: tuple[str, ...] = tuple(RUNTIME_KERNELS)
DEFAULT_RUNTIME = "tflm-cmsis-nn"


def check_runtime(runtime: str) -> str:
    """Return ``runtime`` if known, else raise :class:`ConfigError` listing the known ones."""
    if runtime not in RUNTIME_KERNELS:
        raise ConfigError(f"runtime: unknown runtime '{runtime}'; known: {', '.join(RUNTIMES)}")
    return runtime


def kernels_of(runtime: str) -> str:
    """The kernel library (``cmsis-nn`` | ``reference``) of a runtime; ConfigError if unknown."""
    return RUNTIME_KERNELS[check_runtime(runtime)]
