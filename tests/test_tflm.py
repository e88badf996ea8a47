"""The TFLite Micro runner: arena measurement, int8 inference, quantization helpers, errors."""

from __future__ import annotations

import numpy as np
import pytest

from mcunas.errors import ModelFormatError
from mcunas.tflm import TflmModel, measure_arena_bytes, smallest_arena_bytes


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from test_memory import session_int8_models

    return session_int8_models(tmp_path_factory)


def test_reported_arena_agrees_with_smallest_arena(models):
    """The recording allocator's total against a binary search of the smallest arena.

    Allocation needs at least the reported bytes (less at most the 16-byte alignment slack of
    the arena start) and at most the planner's temporary working memory more (a few dozen
    bytes per tensor while the plan is made).
    """
    for name in ("conv", "residual", "mobilenet_like"):
        reported = measure_arena_bytes(models[name])
        smallest = smallest_arena_bytes(models[name])
        assert reported - 16 <= smallest <= reported + 2048, (name, reported, smallest)


def test_invoke_matches_litert_reference_kernels(models):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = models["mobilenet_like"]
    model = TflmModel(path)
    assert model.input_details.shape == (1, 16, 16, 3)
    assert model.input_details.dtype == np.int8 and model.output_details.shape == (1, 10)
    batch = model.quantize_input(np.random.default_rng(0).standard_normal((4, 16, 16, 3)))
    outputs = model.predict_int8(batch)
    assert outputs.shape == (4, 10) and outputs.dtype == np.int8

    reference = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    reference.allocate_tensors()
    for sample, output in zip(batch, outputs):
        reference.set_tensor(reference.get_input_details()[0]["index"], sample[None])
        reference.invoke()
        expected = reference.get_tensor(reference.get_output_details()[0]["index"])[0]
        assert np.abs(expected.astype(int) - output.astype(int)).max() <= 1
    probabilities = model.dequantize_output(outputs)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=0.05)


def test_quantize_input_saturates_and_rounds(models):
    model = TflmModel(models["conv"])
    scale, zero_point = model.input_details.scale, model.input_details.zero_point
    x = np.array([0.0, scale * 10.4, 1e9, -1e9], dtype=np.float32)
    assert model.quantize_input(x).tolist() == [zero_point, zero_point + 10, 127, -128]


def test_arena_too_small_is_a_typed_error(models):
    # below the floor (refused before the interpreter is built) and above it (the interpreter
    # itself reports the failure, quoted in the message)
    with pytest.raises(ModelFormatError, match=r"cannot allocate this model in a 256-byte arena"):
        TflmModel(models["conv"], arena_size=256)
    with pytest.raises(ModelFormatError, match=r"600-byte arena .*interpreter log: .*[Ff]ailed"):
        TflmModel(models["conv"], arena_size=600)


def test_bad_files_are_typed_errors(tmp_path):
    with pytest.raises(ModelFormatError, match="no such"):
        measure_arena_bytes(tmp_path / "missing.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="not a TFLite flatbuffer"):
        TflmModel(garbage)


def test_input_shape_is_checked(models):
    model = TflmModel(models["conv"])
    with pytest.raises(ValueError, match="input shape"):
        model.invoke(np.zeros((3, 3), dtype=np.int8))
