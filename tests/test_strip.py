"""Stripping a converted .tflite to what TFLite Micro reads: the real converter's files before and
after, run in the real TFLM interpreter (and LiteRT), and an export of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from mcunas.estimators.flash import model_bytes
from mcunas.export.strip import strip_tflite
from mcunas.export.structure import graph_differences
from mcunas.graph.tflite import read_tflite
from mcunas.export.tflite import load_tflm
from mcunas.tflm import measure_arena_bytes


def _buffer_data_offsets(data: bytes) -> list[int]:
    """File offsets of every non-empty Buffer.data vector."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    offsets = []
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if buffer.DataLength():
            offsets.append(buffer._tab.Vector(buffer._tab.Offset(4)))
    return offsets


def test_stripped_converter_files_run_identically_in_tflm(tmp_path_factory, tmp_path):
    """Keras -> TFLiteConverter int8 files: stripped, they keep ops, tensors, quantization and data,
    lose names, signatures and metadata, and give bit-identical outputs in TFLM and LiteRT."""
    from ai_edge_litert.interpreter import Interpreter
    from test_memory import session_int8_models

    rng = np.random.default_rng(0)
    models = session_int8_models(tmp_path_factory)
    invoked = 0
    for name, path in models.items():
        original = path.read_bytes()
        stripped_path = tmp_path / f"{name}.tflite"
        stripped_path.write_bytes(strip_tflite(original))
        before, after = read_tflite(path), read_tflite(stripped_path)
        assert graph_differences(before, after) == [], name
        assert before.signatures and before.metadata  # what the converter writes ...
        assert after.signatures == [] and after.metadata == {} and after.description == ""  # ... and TFLM ignores
        assert all(tensor.name == "" for tensor in after.tensors)
        assert after.buffer_bytes == before.buffer_bytes  # constant data kept
        assert after.file_bytes < before.file_bytes
        # the layout replay sizes stripped files too; what it guesses (option fields the IR does
        # not keep) weighs more without the names: within 2 % on these 1-3 KB files
        assert abs(model_bytes(after) - after.file_bytes) <= 0.02 * after.file_bytes, name
        # buffer data 4-byte aligned (int32 biases), as the converter writes it
        assert all(offset % 4 == 0 for offset in _buffer_data_offsets(stripped_path.read_bytes()))
        assert measure_arena_bytes(stripped_path) == measure_arena_bytes(path)
        tflm_before, tflm_after = load_tflm(path), load_tflm(stripped_path)
        x = rng.integers(-128, 128, (8, *tflm_before.input_details.shape[1:])).astype(np.int8)
        try:
            expected = tflm_before.predict_int8(x)
        except RuntimeError:  # an op the host build allocates but cannot run (int16 RESIZE_BILINEAR)
            with pytest.raises(RuntimeError):
                tflm_after.predict_int8(x)
        else:
            assert np.array_equal(tflm_after.predict_int8(x), expected), name
            invoked += 1
        outputs = []
        for model_path in (path, stripped_path):
            litert = Interpreter(model_path=str(model_path))
            litert.allocate_tensors()
            detail = litert.get_input_details()[0]
            litert.set_tensor(detail["index"], x[:1].astype(detail["dtype"]))
            litert.invoke()
            outputs.append(litert.get_tensor(litert.get_output_details()[0]["index"]))
        assert np.array_equal(outputs[0], outputs[1]), name
    assert invoked >= len(models) - 2


@pytest.mark.parametrize("space_name", ["mobilenetv1", "cnn"])
def test_exported_models_are_stripped_and_validated(space_name, tmp_path):
    """The pipeline writes the stripped file, and that is the file TFLM loaded and ran."""
    import optuna
    import torch

    from mcunas.export.selfcheck import randomize_batchnorm
    from mcunas.export.tflite import export_tflite
    from mcunas.spaces import get_space

    space = get_space(space_name, resolutions=[16], stem_channels=[4],
                      stages=[{"stride": 2, "channels": [8], "depth": 1}, {"stride": 2, "channels": [16], "depth": 1}])
    arch = space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    torch.manual_seed(0)
    model = randomize_batchnorm(space.build(arch), 0)
    calibration = np.random.default_rng(0).standard_normal((16, 1, 16, 16)).astype(np.float32)
    path = export_tflite(model, (1, 1, 16, 16), calibration, tmp_path / "model.tflite", isolate=False)
    graph = read_tflite(path)
    assert graph_differences(space.graph(arch), graph) == []
    assert graph.signatures == [] and graph.metadata == {} and all(t.name == "" for t in graph.tensors)
