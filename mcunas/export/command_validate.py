"""``mcunas validate MODEL.tflite``: run a model in TFLite Micro, measured vs predicted.

Without ``--config`` only memory and size are checked; with it, int8 accuracy on the config's
test split (and float accuracy and top-1 agreement when ``model_float32.tflite`` lies beside
the model, as in an export directory); for an audio dataset the int8 inputs are the front end's
features quantized as ``features.c`` does. ``--output`` also writes the result as JSON to a file.
"""

from __future__ import annotations

import argparse
import json

from mcunas.estimators.runtime import RUNTIMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="int8 .tflite file")
    parser.add_argument("--board", help="board name or file for the 32-bit predictions (default: the config's first)")
    parser.add_argument("--config", help="experiment YAML: evaluate accuracy on its dataset's test split")
    parser.add_argument("--runtime", choices=RUNTIMES, help="default: the config's, else tflm-cmsis-nn")
    parser.add_argument("--max-test-samples", type=int, help="evaluate on the first N test samples only")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--output", help="also write the result to this JSON file (e.g. validation.json)")


def run(args: argparse.Namespace) -> int:
    from mcunas.estimators.runtime import DEFAULT_RUNTIME
    from mcunas.export.validate import validate_tflite
    from mcunas.graph.tflite import read_tflite

    splits = None
    board = args.board
    runtime = args.runtime
    max_drop_pp = 1.0
    if args.config:
        from mcunas.config import load_experiment
        from mcunas.data import load_dataset_at

        experiment = load_experiment(args.config)
        graph = read_tflite(args.model)
        _, height, width, _ = graph.tensors[graph.inputs[0]].shape
        splits = load_dataset_at(experiment.dataset, (height, width), experiment.seed)
        board = board or experiment.boards[0]
        runtime = runtime or experiment.runtime
        max_drop_pp = experiment.export.max_int8_drop_pp
    validation = validate_tflite(
        args.model,
        splits,
        board=board,
        runtime=runtime or DEFAULT_RUNTIME,
        max_int8_drop_pp=max_drop_pp,
        max_test_samples=args.max_test_samples,
        json_path=args.output,
        write=args.output is not None,
    )
    if args.json:
        print(json.dumps(validation.to_dict(), indent=2))
    else:
        print(validation.table())
    return 0
