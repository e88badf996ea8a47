"""``mcunas report RUN_DIR [RUN_DIR ...] [--out report.html]``: write the HTML Pareto report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories of `mcunas search`")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="HTML file to write; CSVs and figures/ go beside it (default for one run: RUN_DIR/report/report.html)",
    )


def run(args: argparse.Namespace) -> int:
    from mcunas.report import write_report

    out = args.out
    if out is None:
        if len(args.run_dirs) > 1:
            print("mcunas report: error: several run directories need --out", file=sys.stderr)
            return 2
        out = args.run_dirs[0] / "report" / "report.html"
    path = write_report(args.run_dirs, out)
    print(f"report: {path}")
    return 0
