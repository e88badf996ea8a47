"""``mcunas space``: sample architectures from a space; show the op graph of an architecture.

``mcunas space sample SPACE --n N --seed S [--input-channels C --num-classes K]`` prints N
architectures as JSON lines (Optuna RandomSampler(seed): the same seed gives the same lines).
``mcunas space show ARCH [--json]`` prints the op graph of the int8 model as a table with MAC
and parameter totals, or as JSON; ARCH is an architecture JSON file (a name ending in ``.json``
or containing ``/``) or a block string (``mcunas.spaces.parse_block_string``).
``mcunas space optimize CONFIG [--samples N] [--resolutions R ...] [--widths W ...] [--out DIR]``
chooses the input resolution and width of the config's space per board
(:func:`mcunas.search.space_optimize.optimize_space`) and writes DIR: the result, a table, the
narrowed configs, and the report (``report.html`` with the MACs CDF figures in ``figures/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mcunas.spaces.registry import SPACE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="space_command", metavar="ACTION", required=True)
    sample = actions.add_parser("sample", help="print random architectures of a space as JSON lines")
    sample.add_argument("space", metavar="SPACE", help=f"space name: {' | '.join(SPACE_NAMES)}")
    sample.add_argument("--n", type=int, default=1, help="number of architectures (default 1)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--input-channels", type=int, default=None, help="input image channels (default: the space's)")
    sample.add_argument("--num-classes", type=int, default=None, help="classifier outputs (default: the space's)")
    show = actions.add_parser("show", help="print the op graph of an architecture (JSON file or block string)")
    show.add_argument(
        "arch", metavar="ARCH", help="an architecture file (e.g. a trial's arch.json) or a block string (e.g. r32_in3-stem_k3_s2_c16-...)"
    )
    show.add_argument("--json", action="store_true", help="print the graph as JSON instead of a table")
    optimize = actions.add_parser(
        "optimize", help="choose the input resolution and width of a config's space per board (MCUNet's first step)")
    optimize.add_argument("config", type=Path, metavar="CONFIG", help="experiment config (YAML)")
    optimize.add_argument("--samples", type=int, default=1000, help="architectures drawn per grid cell (default 1000)")
    optimize.add_argument("--resolutions", type=int, nargs="+", metavar="PX",
                          help="input sides of the grid (default: the config space's resolutions)")
    optimize.add_argument("--widths", type=float, nargs="+", metavar="W",
                          help="width multipliers of the grid (default 0.5 0.75 1 1.25 1.5)")
    optimize.add_argument("--divisor", type=int, default=4, help="scaled channel counts are multiples of it (default 4)")
    optimize.add_argument("--min-feasible", type=float, default=0.05, metavar="FRACTION",
                          help="cells where fewer of the samples fit are chosen only if none reaches it (default 0.05)")
    optimize.add_argument("--seed", type=int, default=None, help="seed of the draws (default: the config's)")
    optimize.add_argument("--out", type=Path, default=None,
                          help="folder to write (default: space-optimize/<experiment name>)")


def run(args: argparse.Namespace) -> int:
    if args.space_command == "sample":
        return _sample(args)
    if args.space_command == "optimize":
        return _optimize(args)
    return _show(args)


def _optimize(args: argparse.Namespace) -> int:
    from mcunas.config import load_experiment
    from mcunas.report import write_report
    from mcunas.search.space_optimize import optimize_space

    experiment = load_experiment(args.config)
    out = args.out if args.out is not None else Path("space-optimize") / experiment.name
    result = optimize_space(experiment, out, samples=args.samples, resolutions=args.resolutions, widths=args.widths,
                            divisor=args.divisor, min_feasible_fraction=args.min_feasible, seed=args.seed)
    report = write_report([], out / "report.html", [out])
    print(f"{result.estimates:,} estimates in {result.seconds:,.1f} s; rule: {result.rule}")
    for board in result.boards:
        chosen = result.chosen.get(board)
        if chosen is None:
            print(f"{board}: no cell has a model that fits")
            continue
        print(f"{board}: {chosen.label}, {100 * chosen.feasible_fraction:.1f}% of {chosen.samples} fit, mean "
              f"{chosen.macs_mean / 1e6:,.3f} M MACs -> {out / result.narrowed[board]}")
        edges = result.grid_edges(board)
        if edges:
            print(f"  note: the chosen cell has the grid's {' and '.join(edges)}: a wider grid may hold a better one")
    print(f"table: {out / 'cells.csv'}; report: {report}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import optuna

    from mcunas.errors import ConfigError
    from mcunas.spaces import get_space

    if args.n < 1:
        raise ConfigError(f"--n: expected a positive number of architectures, got {args.n}")
    options = {
        key: value
        for key, value in (("input_channels", args.input_channels), ("num_classes", args.num_classes))
        if value is not None
    }
    try:
        space = get_space(args.space, **options)
    except ConfigError as error:
        raise ConfigError(f"space.{error}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    for _ in range(args.n):
        print(space.sample(study.ask()).to_json())
    return 0


def _show(args: argparse.Namespace) -> int:
    from mcunas.spaces import get_space, read_arch

    arch = read_arch(args.arch)
    graph = get_space(arch.space).graph(arch)
    rows = [_op_row(graph, index) for index in range(len(graph.ops))]
    if args.json:
        print(json.dumps({"arch": arch.to_dict(), "block_string": arch.block_string(), "macs": graph.macs,
                          "params": graph.params, "ops": rows}, indent=2))
        return 0
    print(arch.block_string())
    header = ("#", "op", "input -> output", "k/s/pad", "act", "MACs", "params")
    table = [header] + [
        (
            str(row["index"]),
            row["kind"],
            f"{_shape(row['input_shape'])} -> {_shape(row['output_shape'])}",
            _geometry(row),
            row["activation"],
            f"{row['macs']:,}",
            f"{row['params']:,}",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for line in table:
        print("  ".join(cell.rjust(w) if c >= 5 else cell.ljust(w) for c, (cell, w) in enumerate(zip(line, widths))).rstrip())
    print(f"macs: {graph.macs:,}")
    print(f"params: {graph.params:,}")
    return 0


def _op_row(graph: Any, index: int) -> dict[str, Any]:
    """One op as plain data: shapes of its first input and output, geometry, MACs, own params."""
    op = graph.ops[index]
    constants = [graph.tensors[i] for i in op.inputs[1:] if i >= 0 and graph.tensors[i].is_constant]
    return {
        "index": index,
        "kind": op.kind,
        "input_shape": list(graph.tensors[op.inputs[0]].shape),
        "output_shape": list(graph.tensors[op.outputs[0]].shape),
        "kernel": list(op.kernel) if op.kernel else None,
        "stride": list(op.stride) if op.stride else None,
        "padding": op.padding,
        "activation": op.activation,
        "macs": op.macs,
        "params": sum(t.num_elements for t in constants) if op.macs else 0,
    }


def _shape(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape)


def _geometry(row: dict[str, Any]) -> str:
    if row["kernel"] is None:
        return ""
    stride = row["stride"]
    return f"{_shape(row['kernel'])}/{stride[0] if stride[0] == stride[1] else _shape(stride)}/{row['padding']}"
