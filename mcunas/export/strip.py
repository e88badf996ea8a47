"""Strip a converted ``.tflite`` down to what TensorFlow Lite Micro reads.

The TFLite converter writes more than an interpreter on a microcontroller uses: a name for
every tensor (onnx2tf's Keras op paths, 20-120 characters each), the subgraph's name, the model
description, signature definitions (the Keras serving signature), metadata entries
(``min_runtime_version``, ``CONVERSION_METADATA``) and one empty buffer per activation tensor.
On a 1 k-parameter model these are most of the file. :func:`strip_tflite` removes them:

* tensor and subgraph names, the description and the signature definitions (TFLM never reads
  them; the flatbuffer's string fields are optional);
* metadata entries other than those TFLM reads (:data:`TFLM_METADATA`), and their buffers;
* empty buffers: every tensor without constant data refers to buffer 0, the schema's empty
  sentinel, as the converter's own files do for some tensors.

Everything TFLM uses is kept as it was: operator codes, operators and their options, tensor
shapes, types and quantization, constant data (laid out as the converter lays it out:
:func:`mcunas.graph.tflite_pack.pack_model`). The result is a valid model
file (``TFL3`` identifier) with the same ops and outputs, which LiteRT loads too;
:mod:`mcunas.export.tflite` strips every exported model before its TFLM checks, so the file
that is validated is the one shipped. Not done, although TFLM would accept it: one zero point
for a per-channel tensor instead of one per channel (TFLM's allocator reads ``zero_point[0]``
for every channel of a shorter array; 8 bytes per channel), because LiteRT, and with it the
per-layer int8 diagnosis of :mod:`mcunas.export.validate`, refuses such files.

The model is read and written with TFLite Micro's own generated schema (the ``tflite-micro``
package's ``schema_py_generated``, no TensorFlow import): what its object API does not know,
TFLM cannot read either.
"""

from __future__ import annotations

from mcunas.graph.tflite_pack import pack_model

# Metadata entries TFLM reads (micro_allocator.cc: offline memory plans; compressed tensors).
TFLM_METADATA: frozenset[str] = frozenset({"OfflineMemoryAllocation", "COMPRESSION_METADATA"})


def strip_tflite(data: bytes) -> bytes:
    """The model in ``data`` without what TFLite Micro does not read (see the module docstring)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    model.description = None
    model.signatureDefs = None
    model.metadataBuffer = None
    kept_metadata = [entry for entry in model.metadata or () if _text(entry.name) in TFLM_METADATA]
    model.metadata = kept_metadata or None
    for subgraph in model.subgraphs:
        subgraph.name = None
        for tensor in subgraph.tensors:
            tensor.name = None
    _drop_empty_buffers(model)
    return pack_model(model, len(data))


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def _has_data(buffer) -> bool:
    return buffer.data is not None and len(buffer.data) > 0


def _drop_empty_buffers(model) -> None:
    """Point tensors without data at buffer 0 and keep only buffer 0 and buffers with data that
    a tensor or a kept metadata entry refers to, renumbering the references."""
    buffers = model.buffers
    referenced = {entry.buffer for entry in model.metadata or ()}
    for subgraph in model.subgraphs:
        referenced.update(tensor.buffer for tensor in subgraph.tensors)
    kept = [0] + [index for index in sorted(referenced) if index > 0 and _has_data(buffers[index])]
    new_index = {old: new for new, old in enumerate(kept)}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index.get(tensor.buffer, 0)
    for entry in model.metadata or ():
        entry.buffer = new_index[entry.buffer]
    model.buffers = [buffers[index] for index in kept]
