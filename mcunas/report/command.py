"""``mcunas report DIR [DIR ...] [--out report.html]``: write the HTML report of search runs and
space optimizations (a folder with ``space_optimize.json``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run directories of `mcunas search`, or folders of `mcunas space optimize`")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="HTML file to write; CSVs and figures/ go beside it (default for one run: RUN_DIR/report/report.html; "
        "for one space optimization: DIR/report.html)",
    )


def run(args: argparse.Namespace) -> int:
    from mcunas.report import write_report
    from mcunas.rundir.spacedir import is_space_dir

    space_dirs = [d for d in args.run_dirs if is_space_dir(d)]
    run_dirs = [d for d in args.run_dirs if not is_space_dir(d)]
    out = args.out
    if out is None:
        if len(args.run_dirs) > 1:
            print("mcunas report: error: several run directories need --out", file=sys.stderr)
            return 2
        out = space_dirs[0] / "report.html" if space_dirs else run_dirs[0] / "report" / "report.html"
    path = write_report(run_dirs, out, space_dirs)
    print(f"report: {path}")
    return 0
