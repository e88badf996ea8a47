"""Packing a TFLite model object (the schema's generated object API) into file bytes.

:func:`pack_model` packs a ``ModelT`` with the ``flatbuffers`` builder and the ``TFL3`` file
identifier. It lays buffers out as the TFLite converter of TensorFlow 2.21 does: each buffer's
data follows its 4-byte length, so it is 4-byte aligned (the converter does not apply the
16-byte ``force_align`` of ``schema.fbs``; TFLite Micro reads int8 weights and int32 biases
from 4-aligned data). Used to write stripped models (:mod:`mcunas.export.strip`) and to size
imported ones (:mod:`mcunas.estimators.tflite_layout`), so both lay files out alike. ``schema``
is not imported here: the caller's ``schema_py_generated`` module (TensorFlow's or the
``tflite-micro`` package's) built the model.
"""

from __future__ import annotations

from typing import Any

FILE_IDENTIFIER = b"TFL3"


def pack_model(model: Any, size_hint: int = 1024) -> bytes:
    """The file bytes of ``model`` (a ``schema_py_generated.ModelT``)."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())
