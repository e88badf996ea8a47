"""How many SOFTMAX inputs reach the exponential: the data dependence of the softmax counts.

    .venv/bin/python benchmarks/softmax_inputs.py [--data DIR]

Both kernel builds (CMSIS-NN ``arm_softmax_s8``, TFLM's reference ``Softmax``) evaluate the
fixed-point exponential -- twice, in the sum pass and in the output pass -- only for the inputs
``x`` of a row with ``x - max(row) >= diff_min``; the others cost a compare and a store.
``diff_min`` follows from the input scale alone (TFLM ``softmax_common.cc``: the input radius of
5 integer bits, ``PreprocessSoftmaxScaling`` then ``CalculateInputRadius``); how many inputs pass
depends on the logits, i.e. on the input data. For the MLPerf Tiny models with a SOFTMAX this prints
the element count, the measured Cortex-M4 instructions of both builds
(``mlperf-tiny/cortex-m4-instruction-counts.json``), ``diff_min``, and the number of inputs that
pass for a few int8 inputs: the LCG fill of the instruction-count firmware
(``latency/space-instruction-counts.json``, ``how``: x = 1664525 x + 1013904223, top byte) from
several seeds, and all zeros. Logits from LiteRT's reference kernels (``BUILTIN_REF``). Then, per
input and build, the three counts solved exactly for ``I = a + b * elements + c * reached`` (per
op, per element, per input that reaches the exponential): an input whose counts make one of them
negative cannot be the one the counts were measured with.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("kws_ref_model", "pretrainedResnet_quant", "vww_96_int8")
SEEDS = (12345, 1, 2, 3)
SCALED_DIFF_INTEGER_BITS = 5  # TFLM softmax_common.cc, int8 inputs


def diff_min(input_scale: float, beta: float = 1.0) -> int:
    """TFLM's ``diff_min`` of an int8 softmax input of scale ``input_scale``."""
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), 2.0**31 - 1)
    fraction, left_shift = math.frexp(real)
    if round(fraction * 2**31) == 2**31:  # QuantizeMultiplier rounds up to the next power of two
        left_shift += 1
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift)
    return -math.floor(radius)


def lcg_int8(count: int, seed: int) -> np.ndarray:
    """``count`` int8 values: the top byte of each LCG state after a step."""
    state, values = seed, np.empty(count, dtype=np.uint8)
    for i in range(count):
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        values[i] = state >> 24
    return values.view(np.int8)


def model_inputs(count: int) -> list[np.ndarray]:
    """The int8 model inputs of :data:`SEEDS` (LCG fills), then all zeros."""
    return [lcg_int8(count, seed) for seed in SEEDS] + [np.zeros(count, dtype=np.int8)]


def softmax_logits(path: Path) -> tuple[float, list[np.ndarray]]:
    """(input scale of the model's SOFTMAX, its int8 input row for each of :func:`model_inputs`)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    (softmax,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    logits_index = int(softmax["inputs"][0])
    (logits_detail,) = [d for d in interpreter.get_tensor_details() if d["index"] == logits_index]
    model_input = interpreter.get_input_details()[0]
    rows = []
    for values in model_inputs(int(np.prod(model_input["shape"]))):
        interpreter.set_tensor(model_input["index"], values.reshape(model_input["shape"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(logits_index).astype(np.int32).ravel())
    return float(logits_detail["quantization"][0]), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "reference-models")
    args = parser.parse_args(argv)
    records = json.loads((args.data / "mlperf-tiny" / "cortex-m4-instruction-counts.json").read_text())["records"]
    counts = {(r["model"], r["build"]): next(op["instructions"] for op in r["ops"] if op["tag"] == "SOFTMAX")
              for r in records if any(op["tag"] == "SOFTMAX" for op in r["ops"])}
    labels = [f"LCG seed {seed}" for seed in SEEDS] + ["zeros"]
    print("| model | elements | instructions cmsis-nn | instructions reference | input scale | diff_min | "
          + " | ".join(f"reach exp, {label}" for label in labels) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in labels) + " |")
    table = []
    for model in MODELS:
        scale, rows = softmax_logits(args.data / "mlperf-tiny" / f"{model}.tflite")
        limit = diff_min(scale)
        reached = [int(((row - row.max()) >= limit).sum()) for row in rows]
        print(f"| {model} | {rows[0].size} | {counts[model, 'cmsis-nn']:,} | {counts[model, 'reference']:,} "
              f"| {scale:.4f} | {limit} | " + " | ".join(str(n) for n in reached) + " |")
        table.append((rows[0].size, reached, {build: counts[model, build] for build in ("cmsis-nn", "reference")}))
    print("\n| input | build | a (per op) | b (per element) | c (per input reaching the exponential) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for column, label in enumerate(labels):
        design = np.array([[1.0, elements, reached[column]] for elements, reached, _ in table])
        for build in ("cmsis-nn", "reference"):
            a, b, c = np.linalg.solve(design, np.array([float(row[2][build]) for row in table]))
            print(f"| {label} | {build} | {a:.0f} | {b:.1f} | {c:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
