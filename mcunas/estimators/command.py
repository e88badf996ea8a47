"""``mcunas estimate``: SRAM, flash and latency of an architecture (file or block string) or a ``.tflite`` on a board.

    mcunas estimate ARCH.json|BLOCK_STRING|MODEL.tflite --board NAME [--runtime R] [--profile P] [--config C] [--per-op] [--json]
    mcunas estimate calibrate [MEASUREMENTS.csv] [--ticks LOG --ticks-model MODEL.tflite [--tick-hz HZ]]
                              --board NAME [--runtime R] --out PROFILE.json

``calibrate`` fits a latency profile to the board from latencies measured on it (CSV columns
``tflite_path,measured_ms``, paths relative to the CSV) and/or a per-op tick log as TFLM's
MicroProfiler prints it (``LogCsv`` or ``LogTicksPerTagCsv``; the deployment bundle's
``profile_main.cc`` prints one in CPU cycles); pass the written file back with ``--profile``.
``--config`` counts the audio front end of an experiment's dataset (keyword spotting) in SRAM
and flash, as the search does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mcunas.errors import McunasError
from mcunas.estimators.runtime import DEFAULT_RUNTIME, RUNTIMES

if TYPE_CHECKING:
    from mcunas.estimators.board import Board
    from mcunas.estimators.cost import Cost
    from mcunas.graph.ir import Graph



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "mcunas estimate (ARCH.json | BLOCK_STRING | MODEL.tflite) --board NAME [--runtime R] [--profile P] [--config C] [--per-op] [--json]\n"
        "       mcunas estimate calibrate [MEASUREMENTS.csv] [--ticks LOG --ticks-model MODEL.tflite] "
        "--board NAME [--runtime R] --out PROFILE.json"
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="an architecture JSON, a block string (e.g. from `mcunas space sample`) or an int8 .tflite; or: calibrate MEASUREMENTS.csv "
        "(CSV columns tflite_path,measured_ms; paths relative to the CSV)",
    )
    parser.add_argument("--board", required=True, help="board name from `mcunas boards`, or a board .yaml file")
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=RUNTIMES)
    parser.add_argument("--profile", type=Path, help="latency profile JSON (from `mcunas estimate calibrate`)")
    parser.add_argument("--max-latency-ms", type=float, help="latency ceiling to check (ms)")
    parser.add_argument("--max-activation-bytes", type=int,
                        help="activation budget to check (bytes of the planned arena without its persistent tail, as μNAS counts)")
    parser.add_argument("--max-param-bytes", type=int, help="parameter budget to check (bytes of int8 weights and int32 biases)")
    parser.add_argument("--max-arena-bytes", type=int, help="arena budget to check (bytes of the whole 32-bit TFLM arena)")
    parser.add_argument("--max-model-bytes", type=int, help="model budget to check (bytes of the .tflite file)")
    parser.add_argument("--config", type=Path,
                        help="experiment YAML: count its dataset's audio front end (features.c) in SRAM and flash")
    parser.add_argument(
        "--per-op",
        action="store_true",
        help="also show per op: output shape, MACs, arena bytes live while it runs, latency share; marks the peak-memory op",
    )
    parser.add_argument("--json", action="store_true", help="print the Cost as JSON (with --per-op: and the per-op rows)")
    parser.add_argument("--out", type=Path, help="calibrate: where to write the profile JSON")
    parser.add_argument("--ticks", type=Path, help="calibrate: a MicroProfiler log (LogCsv or LogTicksPerTagCsv)")
    parser.add_argument("--ticks-model", type=Path, help="calibrate: the .tflite the tick log was taken with")
    parser.add_argument("--tick-hz", type=float, help="calibrate: profiler ticks per second (default: ticks are CPU cycles)")


def run(args: argparse.Namespace) -> int:
    if args.inputs[0] == "calibrate" and not Path("calibrate").exists():
        return _calibrate(args)
    if len(args.inputs) != 1:
        raise McunasError(f"expected one ARCH.json or MODEL.tflite, got {len(args.inputs)} arguments")
    if args.out is not None:
        raise McunasError("--out is for `mcunas estimate calibrate`")
    from mcunas.estimators import estimate, load_board

    board = load_board(args.board)
    graph = _graph(Path(args.inputs[0]))
    front_end = None
    if args.config is not None:
        from mcunas.config import load_experiment

        front_end = load_experiment(args.config).dataset.front_end
    cost = estimate(graph, board, args.runtime, profile=args.profile, max_latency_ms=args.max_latency_ms,
                    max_activation_bytes=args.max_activation_bytes, max_param_bytes=args.max_param_bytes,
                    max_arena_bytes=args.max_arena_bytes, max_model_bytes=args.max_model_bytes,
                    front_end=front_end)
    rows = _per_op_rows(graph, board, args) if args.per_op else None
    if args.json:
        data = cost.to_dict()
        if rows is not None:
            from mcunas.estimators.per_op import to_dict

            data["per_op"] = to_dict(rows)
        print(json.dumps(data, indent=2))
    else:
        print(_table(cost, board, graph.name))
        if rows is not None:
            from mcunas.estimators.per_op import format_table

            print(f"\nper op (32-bit arena, {args.runtime}):")
            print(format_table(rows))
    return 0


def _per_op_rows(graph: Graph, board: Board, args: argparse.Namespace) -> list:
    from mcunas.estimators.per_op import per_op_view

    return per_op_view(graph, board, args.runtime, args.profile)


def _graph(path: Path) -> Graph:
    if path.suffix == ".tflite":
        from mcunas.graph.tflite import read_tflite

        return read_tflite(path)
    from mcunas.spaces import NotAnArchError, arch_graph

    try:
        return arch_graph(str(path))
    except NotAnArchError:
        raise McunasError(f"{path}: expected an architecture .json or a .tflite file, or a block string") from None


def _kb(n_bytes: int) -> str:
    return f"{n_bytes:,} B ({n_bytes / 1024:.1f} KB)"


def _table(cost: Cost, board: Board, model_name: str) -> str:
    from mcunas.estimators.latency import unavailable_reason

    latency = (
        f"{cost.latency_ms:,.2f} ms at {board.clock_mhz:g} MHz (interval {cost.latency_ms_low:,.2f}-"
        f"{cost.latency_ms_high:,.2f} ms)"
        if cost.latency_ms is not None
        else f"not estimated: {unavailable_reason(board, cost.runtime)}"
    )
    rows = [
        ("model", model_name),
        ("board", f"{board.name} ({board.mcu}, {board.core} @ {board.clock_mhz:g} MHz)"),
        ("runtime", cost.runtime),
        ("MACs", f"{cost.macs:,}"),
        ("params", f"{cost.params:,} ({_kb(cost.param_bytes)})"),
        ("activations (planned)", _kb(cost.activation_bytes)),
        ("arena (32-bit target)", _kb(cost.arena_bytes)),
        ("arena (64-bit host)", _kb(cost.arena_bytes_host)),
        ("SRAM (arena + reserve" + (" + front end" if cost.frontend_ram_bytes else "") + ")",
         f"{_kb(cost.sram_bytes)} of {_kb(board.sram_bytes)}"),
        ("model", _kb(cost.model_bytes)),
        ("flash (model + runtime" + (" + front end" if cost.frontend_flash_bytes else "") + ")",
         f"{_kb(cost.flash_bytes)} of budget {_kb(board.flash_budget_bytes)}"),
        ("latency", latency),
    ]
    if cost.frontend_flash_bytes or cost.frontend_ram_bytes:
        rows.append(("front end (features.c)", f"flash {_kb(cost.frontend_flash_bytes)}, RAM {_kb(cost.frontend_ram_bytes)}"))
    if cost.latency_assumed_ops:
        rows.append(("latency assumed", f"{cost.latency_assumed_pct:.1f}% in {', '.join(cost.latency_assumed_ops)}"))
    rows += [
        ("fits", "yes" if cost.fits else "NO"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"{'violation':<{width}}  {v}" for v in cost.violations]
    return "\n".join(lines)


def _calibrate(args: argparse.Namespace) -> int:
    usage = ("usage: mcunas estimate calibrate [MEASUREMENTS.csv] [--ticks LOG --ticks-model MODEL.tflite] "
             "--board NAME [--runtime R] --out PROFILE.json")
    if len(args.inputs) > 2 or (len(args.inputs) == 1 and args.ticks is None):
        raise McunasError(usage)
    if args.out is None:
        raise McunasError("calibrate: --out PROFILE.json is required")
    if (args.ticks is None) != (args.ticks_model is None):
        raise McunasError("calibrate: --ticks and --ticks-model go together (the log and the model it was taken with)")
    from mcunas.estimators import load_board
    from mcunas.estimators.calibrate import fit_profile, read_measurements, save_profile

    board = load_board(args.board)
    measurements = read_measurements(args.inputs[1]) if len(args.inputs) == 2 else []
    profile = fit_profile(measurements, board, args.runtime, base=args.profile, tick_log=args.ticks,
                          tick_model=args.ticks_model, ticks_per_second=args.tick_hz)
    save_profile(profile, args.out)
    provenance = profile.provenance
    if args.json:
        print(json.dumps(provenance, indent=2))
        return 0
    print(f"scale {provenance['scale']:.4f} on the {profile.core}/{profile.runtime} profile for {board.name}; "
          f"wrote {args.out}")
    for group in (provenance["tick_log"] or {}).get("groups", []):
        print(f"  {group['group']:32s} ticks {group['measured_cycles']:12,d} cycles  predicted "
              f"{group['predicted_cycles']:12,d}  factor {group['factor']:.3f}")
    for row in provenance["measurements"]:
        print(f"  {row['model']:32s} measured {row['measured_ms']:10.2f} ms  predicted {row['predicted_ms']:10.2f} ms  {row['error_pct']:+6.1f}%")
    print(f"  RMS error {provenance['rms_error_pct']:.1f}%")
    return 0
