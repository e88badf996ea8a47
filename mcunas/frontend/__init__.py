"""The audio front end: MFCC / log-mel features computed by CMSIS-DSP, in Python and as C.

The same :class:`FrontEndConfig` drives the Python feature extraction (``cmsisdsp``, the
package wrapping the C functions a Cortex-M runs: :func:`compute_features`), the device's
``features.c`` (:func:`write_frontend_sources`), its memory figures
(:func:`frontend_memory_bytes`) and the feature cache key. :func:`quantize_features` maps raw
features to the model's int8 input exactly as ``features.c`` does. ``mcunas.frontend.host_build``
compiles a generated ``features.c`` on the host with gcc against CMSIS-DSP's C sources.
"""

from mcunas.frontend.c_source import frontend_c_sources, write_frontend_sources
from mcunas.frontend.config import FrontEndConfig
from mcunas.frontend.features import (
    InputQuantization,
    compute_features,
    features_to_float,
    quantize_features,
)
from mcunas.frontend.memory import FrontEndMemory, frontend_memory, frontend_memory_bytes
from mcunas.frontend.tables import FrontEndTables, frontend_tables

__all__ = [
    "FrontEndConfig",
    "FrontEndMemory",
    "FrontEndTables",
    "InputQuantization",
    "compute_features",
    "features_to_float",
    "frontend_c_sources",
    "frontend_memory",
    "frontend_memory_bytes",
    "frontend_tables",
    "quantize_features",
    "write_frontend_sources",
]
