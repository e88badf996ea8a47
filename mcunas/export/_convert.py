"""ONNX -> onnx2tf (Keras) -> TFLiteConverter: int8 and float32 ``.tflite`` files.

Internal to :mod:`mcunas.export.tflite`. It runs either in a child process
(``python -m mcunas.export._convert ONNX CALIB INT8 FLOAT``, the default: the child's working
directory is the export's temporary directory, onnx2tf's ``sys.exit`` and TensorFlow's memory
stay in the child) or in the calling process (faster for many exports; the caller switches the
working directory).

onnx2tf only builds the Keras model here (``disable_model_save=True``); the quantization is one
``TFLiteConverter`` call restricted to ``TFLITE_BUILTINS_INT8`` (no SELECT_TF_OPS, which TFLite
Micro cannot run), with int8 input and output and per-channel weights, calibrated on the given
NHWC sample. onnx2tf's own full-integer path would write seven variants (~5x slower) and allows
Flex ops.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

from mcunas.errors import ExportError

# onnx2tf runs a dummy inference of every 3-channel image model with a sample file that it
# downloads into the working directory unless it is there; this machine-independent stand-in
# (deterministic uniform [0, 1) pixels, the shape onnx2tf expects) keeps conversion offline.
ONNX2TF_SAMPLE_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_SAMPLE_SHAPE = (20, 128, 128, 3)

# Printed by the child before exiting with WORKER_ERROR_EXIT so the parent can re-raise it.
WORKER_ERROR_PREFIX = "mcunas-export-error: "
WORKER_ERROR_EXIT = 3


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up logging (set before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def place_onnx2tf_sample(directory: Path) -> None:
    """Write onnx2tf's sample-image file into ``directory`` (its working directory)."""
    sample = np.random.default_rng(0).random(ONNX2TF_SAMPLE_SHAPE, dtype=np.float32)
    np.save(directory / ONNX2TF_SAMPLE_NAME, sample)


def convert(onnx_path: Path, calibration_path: Path, int8_path: Path, float_path: Path | None) -> None:
    """Convert ``onnx_path`` to a full-integer int8 ``.tflite`` (and optionally a float32 one).

    Must run with the working directory holding :data:`ONNX2TF_SAMPLE_NAME`.

    Args:
        onnx_path: single-input NCHW model.
        calibration_path: ``.npy`` float32 array (N, H, W, C), already normalized like the
            training data (the input scale and zero point are calibrated on it).
        int8_path: where to write the int8 model.
        float_path: where to write the float32 model (same graph, for per-layer comparisons),
            or None.

    Raises:
        ExportError: stage "onnx2tf conversion" or "int8 quantization".
    """
    quiet_tensorflow()
    import tf_keras

    try:
        _convert_keras(onnx_path, calibration_path, int8_path, float_path)
    finally:
        tf_keras.backend.clear_session()  # free the Keras graph (in-process batches of exports)


def _convert_keras(onnx_path: Path, calibration_path: Path, int8_path: Path, float_path: Path | None) -> None:
    import onnx2tf
    import tensorflow as tf

    try:
        keras_model = onnx2tf.convert(
            input_onnx_file_path=str(onnx_path),
            output_folder_path=str(int8_path.parent / "onnx2tf"),
            disable_model_save=True,
            non_verbose=True,
        )
    except SystemExit as exit_:
        raise ExportError(f"onnx2tf conversion failed for {onnx_path.name} (onnx2tf exited with {exit_.code})") from None
    except Exception as error:
        raise ExportError(f"onnx2tf conversion failed for {onnx_path.name}: {type(error).__name__}: {error}") from error
    if keras_model is None:
        raise ExportError(f"onnx2tf conversion failed for {onnx_path.name}: no model returned")

    calibration = np.load(calibration_path, allow_pickle=False).astype(np.float32)

    def representative_dataset():
        for sample in calibration:
            yield [sample[np.newaxis]]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = representative_dataset
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            # Issued for int8 input without float input statistics: the range is calibrated instead.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            int8_path.write_bytes(converter.convert())
    except Exception as error:
        raise ExportError(f"int8 quantization failed for {onnx_path.name}: {type(error).__name__}: {error}") from error
    if float_path is not None:
        try:
            float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
        except Exception as error:
            raise ExportError(f"onnx2tf conversion failed (float32 model) for {onnx_path.name}: {error}") from error


def main(argv: list[str]) -> int:
    """Child-process entry: ``ONNX CALIB INT8 FLOAT|-`` in the current working directory."""
    onnx_path, calibration_path, int8_path, float_arg = (Path(a) for a in argv)
    place_onnx2tf_sample(Path.cwd())
    try:
        convert(onnx_path, calibration_path, int8_path, None if str(float_arg) == "-" else float_arg)
    except ExportError as error:
        print(WORKER_ERROR_PREFIX + str(error).replace("\n", " "), file=sys.stderr, flush=True)
        return WORKER_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
