"""What stripping saves: the converter's ``.tflite`` against the stripped file mcunas ships.

Exports tiny architectures (μNAS-sized ``cnn`` models and a small mobilenetv1, random weights)
with ``export_tflite(..., strip=False)``, strips the converter's file with
:func:`mcunas.export.strip.strip_tflite` (what the pipeline does), and prints per model: the
parameters and their bytes (int8 weights + int32 biases), the converter's file, the stripped
file, the flash model's prediction for it from ``Space.graph`` (``model_bytes``), and whether
both files allocate the same TFLM arena and give the same int8 outputs in TFLite Micro.

    .venv/bin/python benchmarks/strip_size.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

ARCHS = (
    "r28_in1-relu-stem_k3_s2_c4-cnn_r1_k5_d1_p0_s1_c4-cnn_r1_k5_d1_p1_s1_c8-cnn_r1_k3_d1_p1_s2_c12-fc10",
    "r28_in1-relu-stem_k3_s2_c4-cnn_r2_k3.5_d1.0_p0.1_s1_c4-cnn_r2_k5.3_d1_p1_s1_c4-cnn_r1_k3_d0_p0_s2_c12-fc10",
    "r16_in1-relu-stem_k3_s2_c4-ds_r1_k3_s2_c8-ds_r1_k3_s2_c16-fc10",
    "r14_in1-relu-stem_k3_s2_c4-cnn_r1_k3_d1_p1_s1_c8-fc10",
    "r28_in1-relu-stem_k5_s2_c8-cnn_r2_k5.3_d0.1_p1.0_s1_c8-cnn_r2_k3_d1_p0.1_s1_c12-cnn_r1_k3_d0_p0_s2_c24-fc10",
)


def main() -> None:
    import torch

    from mcunas.estimators.flash import model_bytes
    from mcunas.export.selfcheck import CALIBRATION_SAMPLES, randomize_batchnorm
    from mcunas.export.strip import strip_tflite
    from mcunas.export.tflite import export_tflite, load_tflm
    from mcunas.spaces import get_space, parse_block_string
    from mcunas.tflm import measure_arena_bytes

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for number, text in enumerate(ARCHS):
            arch = parse_block_string(text)
            space = get_space(arch.space)
            graph = space.graph(arch)
            torch.manual_seed(number)
            model = randomize_batchnorm(space.build(arch), number)
            shape = (1, arch.input_channels, *arch.input_size)
            calibration = np.random.default_rng(number).standard_normal((CALIBRATION_SAMPLES, *shape[1:])).astype(np.float32)
            full = export_tflite(model, shape, calibration, Path(folder) / f"{number}.tflite", isolate=False, strip=False)
            stripped = Path(folder) / f"{number}_stripped.tflite"
            stripped.write_bytes(strip_tflite(full.read_bytes()))
            x = np.random.default_rng(number).integers(-128, 128, (16, *shape[2:], shape[1])).astype(np.int8)
            same = (measure_arena_bytes(full) == measure_arena_bytes(stripped)
                    and np.array_equal(load_tflm(full).predict_int8(x), load_tflm(stripped).predict_int8(x)))
            rows.append((text, graph.params, graph.param_bytes, full.stat().st_size, stripped.stat().st_size,
                         model_bytes(graph), same))
    print("| architecture | params | param bytes | converter .tflite | stripped .tflite | predicted | saved | "
          "same arena and outputs in TFLM |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for text, params, param_bytes, full, stripped, predicted, same in rows:
        print(f"| `{text}` | {params:,} | {param_bytes:,} B | {full:,} B | {stripped:,} B | {predicted:,} B "
              f"({100 * (predicted - stripped) / stripped:+.2f} %) | {100 * (full - stripped) / full:.0f} % | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
