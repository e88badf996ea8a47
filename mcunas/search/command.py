"""``mcunas search CONFIG.yaml [--out RUN_DIR] [--trials N] [--workers N] [--ray-address ADDR]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment config (YAML)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/<name>); rerunning resumes it")
    parser.add_argument("--trials", type=int, default=None, help="trial budget per board (overrides search.trials)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel trial workers on Ray (overrides search.workers; > 1 uses Ray)")
    parser.add_argument("--ray-address", default=None,
                        help="join this Ray cluster ('auto' or host:port) instead of starting a local one")
    parser.add_argument("--no-finalize", action="store_true",
                        help="stop after the trials (no retraining, export or report)")


def _positive(name: str, value: int | None) -> None:
    from mcunas.errors import ConfigError

    if value is not None and value < 1:
        raise ConfigError(f"{name}: must be at least 1, got {value}")


def run(args: argparse.Namespace) -> int:
    from mcunas.config import load_experiment

    _positive("--trials", args.trials)
    _positive("--workers", args.workers)
    from mcunas.search.progress import SearchProgress
    from mcunas.secrets import RedactingFormatter

    # On a terminal: live progress lines per board, log records printed above them; elsewhere
    # plain log records. Either way, passwords are hidden.
    progress = SearchProgress(sys.stderr)
    if progress.live:
        handler = progress.log_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    experiment = load_experiment(args.config)
    run_dir = args.out or Path("runs") / experiment.name
    from mcunas.run import run_experiment  # torch, optuna: only once the config is valid

    outcome = run_experiment(experiment, run_dir, trials=args.trials, workers=args.workers,
                             ray_address=args.ray_address, finalize=not args.no_finalize, progress=progress)
    result = outcome.search
    for board, study in result.studies.items():
        finals = result.finals.get(board, [])
        print(f"{study}: {result.trials_finished.get(board, 0)} trials finished "
              f"({result.trials_run.get(board, 0)} in this run), {len(finals)} Pareto models retrained")
        for model in finals:
            where = model.export_dir or model.final_dir
            print(f"  #{model.trial} {model.metrics.get('block_string', '')}: "
                  f"test acc {model.metrics.get('accuracy_test', float('nan')):.4f} -> {where}")
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    print(f"run directory: {result.run_dir}")
    return 0
