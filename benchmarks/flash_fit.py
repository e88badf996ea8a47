"""Fit the closed-form size model of exported ``.tflite`` files (``mcunas.estimators.flash``).

Exports random architectures of every square space (each space's default options and a tiny
variant, random weights, ``mcunas.export.export_tflite`` in this process: the stripped file the
pipeline writes), then fits by least squares the overheads that the exact terms of
:func:`mcunas.estimators.flash.model_terms` leave out: a fixed part, one per distinct operator
code, one per constant tensor, and one per operator of each kind (with its output tensor: a
space graph's activations are its input and one output per operator, so an activation
coefficient of its own would be collinear with the operator counts). A kind that every export
has exactly once (the classifier's FULLY_CONNECTED) cannot be told from the fixed part: its
overhead is 0 and the fixed part holds it.
Prints the fitted constants (to paste into ``flash.py``), and the in-sample and
leave-one-out errors of the size predicted from ``Space.graph(arch)`` against the file.

Exports are cached in ``--out`` (``exports.json``: block string, file size), so a refit with
``--fit-only`` reads them back without exporting again; ``--check N`` exports N further
architectures (another seed) and reports the errors of the constants now in ``flash.py``.

    .venv/bin/python benchmarks/flash_fit.py --out runs/flash-fit --per-space 12
    .venv/bin/python benchmarks/flash_fit.py --out runs/flash-fit --check 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mcunas.io import read_json, write_json

SPACES = ("mobilenetv2", "mobilenetv1", "cnn")
TINY_STAGES = [
    {"stride": 1, "channels": [4, 8], "depth": [1, 2]},
    {"stride": 2, "channels": [8, 12], "depth": [1, 2]},
    {"stride": 2, "channels": [12, 16], "depth": [1, 2]},
]


def _archs(count: int, seed: int) -> list[Any]:
    from mcunas.spaces import get_space
    from mcunas.spaces.draws import uniform_archs

    archs = []
    for index, name in enumerate(SPACES):
        for tiny in (False, True):
            options = {"input_channels": 1, "resolutions": [8, 12, 15, 16], "stem_channels": [4, 8],
                       "stages": TINY_STAGES} if tiny else {}
            space = get_space(name, **options)
            archs += list(uniform_archs(space, count // 2, seed * 100 + 2 * index + tiny))
    return archs


def _export_sizes(archs: list[Any], cache: Path) -> dict[str, int]:
    """File size of each arch's export (block string -> bytes), exporting those not cached."""
    import torch

    from mcunas.export.selfcheck import CALIBRATION_SAMPLES, randomize_batchnorm
    from mcunas.export.tflite import export_tflite
    from mcunas.spaces import get_space

    sizes = read_json(cache) if cache.is_file() else {}
    for number, arch in enumerate(archs):
        text = arch.block_string()
        if text in sizes:
            continue
        space = get_space(arch.space)
        torch.manual_seed(number)
        model = randomize_batchnorm(space.build(arch), number)
        shape = (1, arch.input_channels, *arch.input_size)
        calibration = np.random.default_rng(number).standard_normal((CALIBRATION_SAMPLES, *shape[1:])).astype(np.float32)
        with tempfile.TemporaryDirectory() as folder:
            path = export_tflite(model, shape, calibration, Path(folder) / "model.tflite", isolate=False)
            sizes[text] = path.stat().st_size
        write_json(cache, sizes)
        print(f"exported {len(sizes)}: {sizes[text]:,} B {text}", flush=True)
    return sizes


def _design(archs: list[Any], kinds: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of counts (fixed, opcodes, constants, ops per kind) and the exact terms."""
    from mcunas.estimators.flash import model_terms
    from mcunas.spaces import get_space

    rows, exact = [], []
    for arch in archs:
        terms = model_terms(get_space(arch.space).graph(arch))
        rows.append([1, terms.opcodes, terms.constant_tensors, *(terms.ops_per_kind.get(kind, 0) for kind in kinds)])
        exact.append(terms.exact_bytes)
    return np.array(rows, float), np.array(exact, float)


def _errors(predicted: np.ndarray, actual: np.ndarray) -> str:
    relative = 100 * (predicted - actual) / actual
    return (f"max |error| {np.abs(relative).max():.2f} % ({np.abs(predicted - actual).max():.0f} B), "
            f"mean |error| {np.abs(relative).mean():.2f} %, mean {relative.mean():+.2f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/flash-fit"))
    parser.add_argument("--per-space", type=int, default=12, help="architectures per space (half tiny)")
    parser.add_argument("--fit-only", action="store_true", help="fit the cached exports, export nothing")
    parser.add_argument("--check", type=int, default=0, help="export N more (another seed), report flash.py's errors")
    args = parser.parse_args()
    from mcunas.estimators.flash import model_bytes
    from mcunas.spaces import get_space, parse_block_string

    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "exports.json"
    if args.check:
        archs = _archs(args.check, seed=1)
        sizes = _export_sizes(archs, args.out / "check.json")
        predicted = np.array([model_bytes(get_space(a.space).graph(a)) for a in archs], float)
        actual = np.array([sizes[a.block_string()] for a in archs], float)
        print(f"held-out check, {len(archs)} exports ({actual.min():,.0f}-{actual.max():,.0f} B): "
              f"{_errors(predicted, actual)}")
        return
    if args.fit_only:
        sizes = read_json(cache)
        archs = [parse_block_string(text) for text in sizes]
    else:
        archs = _archs(args.per_space, seed=0)
        sizes = _export_sizes(archs, cache)
    graphs = [get_space(a.space).graph(a) for a in archs]
    counts = [[op.kind for op in graph.ops] for graph in graphs]
    every_once = {kind for kind in counts[0] if all(c.count(kind) == 1 for c in counts)}
    kinds = sorted({kind for c in counts for kind in c} - every_once)
    design, exact = _design(archs, kinds)
    actual = np.array([sizes[a.block_string()] for a in archs], float)
    coefficients, *_ = np.linalg.lstsq(design, actual - exact, rcond=None)
    fitted = design @ coefficients + exact
    loo = []
    for i in range(len(archs)):
        keep = np.arange(len(archs)) != i
        c, *_ = np.linalg.lstsq(design[keep], (actual - exact)[keep], rcond=None)
        loo.append(design[i] @ c + exact[i])
    names = ["FIXED_OVERHEAD_BYTES", "OPCODE_OVERHEAD_BYTES", "CONSTANT_TENSOR_OVERHEAD_BYTES"]
    print(f"{len(archs)} exports ({actual.min():,.0f}-{actual.max():,.0f} B) of {', '.join(SPACES)}")
    for name, value in zip(names, coefficients):
        print(f"{name} = {value:.2f}")
    overheads = {**dict(zip(kinds, coefficients[3:])), **dict.fromkeys(sorted(every_once), 0.0)}
    print("OPERATOR_OVERHEAD_BYTES = {" + ", ".join(f'"{k}": {v:.2f}' for k, v in sorted(overheads.items())) + "}")
    print(f"(in every export once, held by FIXED_OVERHEAD_BYTES: {', '.join(sorted(every_once)) or 'none'})")
    print(f"in-sample: {_errors(fitted, actual)}")
    print(f"leave-one-out: {_errors(np.array(loo), actual)}")
    current = np.array([model_bytes(get_space(a.space).graph(a)) for a in archs], float)
    print(f"flash.py as it is: {_errors(current, actual)}")
    print(f"relative errors, stdev: {statistics.pstdev(100 * (fitted - actual) / actual):.2f} %")


if __name__ == "__main__":
    main()
