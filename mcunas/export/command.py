"""``mcunas export``: export a trained architecture to int8 TFLite + a TFLM deployment bundle.

Two forms::

    mcunas export --arch ARCH.json --weights W.pt --config CONFIG.yaml --out DIR [--board B]
    mcunas export RUN_DIR [--trial N] [--board B]      # into RUN_DIR/exports/<board>/<N>/
"""

from __future__ import annotations

import argparse
import json

from mcunas.estimators.runtime import RUNTIMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", help="a search run directory (instead of --arch/--weights/--config/--out)")
    parser.add_argument("--trial", type=int, help="trial number in RUN_DIR (default: the only finalized one)")
    parser.add_argument("--arch", help="architecture JSON (arch.json)")
    parser.add_argument("--weights", help="trained state dict (weights.pt)")
    parser.add_argument("--config", help="experiment YAML (dataset for calibration and validation)")
    parser.add_argument("--out", help="export directory to write (replaced as a whole on success)")
    parser.add_argument("--board", help="board name or file for the predictions (default: the config's first board)")
    parser.add_argument("--runtime", choices=RUNTIMES, help="default: the config's")
    parser.add_argument("--max-test-samples", type=int, help="validate on the first N test samples only")
    parser.add_argument("--json", action="store_true", help="print validation.json instead of the table")


def run(args: argparse.Namespace) -> int:
    from mcunas.config import load_experiment
    from mcunas.errors import ConfigError
    from mcunas.export.pipeline import export_model, run_dir_member
    from mcunas.spaces import load_arch

    direct = (args.arch, args.weights, args.config, args.out)
    if args.run_dir is not None:
        if any(direct):
            raise ConfigError("give either RUN_DIR or --arch/--weights/--config/--out, not both")
        member = run_dir_member(args.run_dir, args.trial, args.board)
        arch_path, weights, config, out = (member[k] for k in ("arch_path", "weights_path", "config_path", "out_dir"))
        board = args.board or member["board"]
    else:
        if not all(direct):
            missing = [f"--{n}" for n, v in zip(("arch", "weights", "config", "out"), direct) if not v]
            raise ConfigError(f"missing {', '.join(missing)} (or give a RUN_DIR)")
        arch_path, weights, config, out = direct
        board = args.board
    experiment = load_experiment(config)
    validation = export_model(
        load_arch(arch_path),
        weights,
        out,
        experiment=experiment,
        board=board,
        runtime=args.runtime,
        max_test_samples=args.max_test_samples,
    )
    if args.json:
        print(json.dumps(validation.to_dict(), indent=2))
    else:
        print(validation.table())
        print(f"exported to {out}")
    return 0
