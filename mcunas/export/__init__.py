"""Export: PyTorch -> ONNX -> onnx2tf -> int8 TFLite -> TFLite Micro validation -> bundle.

Public API (imported lazily, so that ``import mcunas.export`` stays light):

* :func:`export_model` - trained arch -> validated export directory (:mod:`.pipeline`);
* :func:`export_tflite` - ``nn.Module`` -> int8 ``.tflite`` (:mod:`.tflite`);
* :func:`validate_tflite`, :class:`Validation` - measured vs predicted in TFLM (:mod:`.validate`);
* :func:`write_bundle` - the TFLM deployment bundle (:mod:`.bundle`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "export_model": "mcunas.export.pipeline",
    "run_dir_member": "mcunas.export.pipeline",
    "export_tflite": "mcunas.export.tflite",
    "validate_tflite": "mcunas.export.validate",
    "Validation": "mcunas.export.validate",
    "write_bundle": "mcunas.export.bundle",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mcunas.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
