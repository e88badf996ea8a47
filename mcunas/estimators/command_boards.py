"""``mcunas boards``: list the board catalog with the budgets a model may use."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the catalog as JSON")


def run(args: argparse.Namespace) -> int:
    from mcunas.estimators import list_boards

    from mcunas.estimators.latency import unavailable_reason
    from mcunas.estimators.runtime import RUNTIMES

    boards = list_boards()
    rows = [
        {
            "name": b.name,
            "display_name": b.display_name,
            "mcu": b.mcu,
            "core": b.core,
            "clock_mhz": b.clock_mhz,
            "sram_bytes": b.sram_bytes,
            "flash_bytes": b.flash_bytes,
            "sram_reserve_bytes": b.sram_reserve_bytes,
            "flash_reserve_bytes": b.flash_reserve_bytes,
            "arena_budget_bytes": b.arena_budget_bytes,
            "flash_budget_bytes": b.flash_budget_bytes,
            "latency_supported": b.latency_supported,
            "latency_runtimes": [r for r in RUNTIMES if unavailable_reason(b, r) is None],
        }
        for b in boards
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("board", "core", "MHz", "SRAM KB", "flash KB", "arena budget KB", "flash budget KB", "latency runtimes")
    table = [header] + [
        (
            r["name"],
            r["core"],
            f"{r['clock_mhz']:g}",
            f"{r['sram_bytes'] / 1024:g}",
            f"{r['flash_bytes'] / 1024:g}",
            f"{r['arena_budget_bytes'] / 1024:g}",
            f"{r['flash_budget_bytes'] / 1024:g}",
            ", ".join(r["latency_runtimes"]) or "unsupported",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    return 0
