"""Estimator throughput: full estimates per second for random architectures of a space, one core.

    .venv/bin/python benchmarks/estimate_throughput.py [--archs 500] [--sweep 20000] [--space mobilenetv2]
        [--board NAME] [--runtime tflm-cmsis-nn] [--repeat 3]

A full estimate turns an architecture into its :class:`~mcunas.estimators.cost.Cost` (32-bit and
host arena, planned activations, parameter bytes, model and runtime flash, latency, budget
checks), two ways, timed in the same run:

* reference: ``estimate(space.graph(arch), board)`` -- graph construction, then the estimators
  on the graph;
* fast: ``mcunas.estimators.fast.estimate_arch(space, arch, board)`` -- the same Cost (checked
  here on every architecture) from cached parts. Warm: the parts cache already holds the
  architectures' parts (a search past its first trials); cold: ``--archs`` architectures from an
  empty cache (each part built and read by the reference estimators once); sweep: ``--sweep``
  architectures drawn as ``mcunas space optimize`` draws them (:func:`mcunas.spaces.draws.uniform_archs`)
  in one pass from an empty cache, misses included -- what an optimization of that size gets
  (its Costs are checked against the reference on every 10th architecture, untimed).

Also reported: the one-time cost a fresh process pays for the compiled loops
(:mod:`mcunas.estimators.fast_chain`, numba), measured in child processes with an empty numba
cache (compilation) and then with the cache it wrote (loading): the import of the fast path and
its first estimate, minus the same in a process whose numba cache is warm and whose loops were
already called once -- see :func:`compile_seconds`.

Architectures of the first three rows are drawn by Optuna's RandomSampler from the space with
its default options (not timed). The process is pinned to one CPU where the OS allows it.
Reported: estimates/s and microseconds per estimate of the whole and of each part, each timed
separately over the same architectures (best of ``--repeat`` passes; the sweep: one pass) in CPU
time of this process (``time.process_time``: on a shared, loaded machine wall time also counts
the time spent waiting for the CPU) and, for the wholes, also in wall time. Compare the paths
by their ratio in one run: the machine's load moves all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcunas.estimators import estimate, load_board  # noqa: E402
from mcunas.estimators import fast, flash, memory  # noqa: E402
from mcunas.estimators.cost import cost_of  # noqa: E402
from mcunas.estimators.latency import default_profile  # noqa: E402
from mcunas.spaces import get_space  # noqa: E402
from mcunas.spaces.draws import uniform_archs  # noqa: E402

# A child process: import the fast path, make one estimate, print the CPU and wall seconds of
# each (the numba cache folder comes from NUMBA_CACHE_DIR).
_CHILD = """
import json, sys, time
cpu, wall = time.process_time(), time.perf_counter()
from mcunas.estimators import fast, load_board
from mcunas.spaces import get_space
from mcunas.spaces.draws import uniform_archs
space, board = get_space(sys.argv[1]), load_board(sys.argv[2])
arch = next(uniform_archs(space, 1, 0))
imported = (time.process_time() - cpu, time.perf_counter() - wall)
cpu, wall = time.process_time(), time.perf_counter()
fast.estimate_arch(space, arch, board)
print(json.dumps({"import": imported, "first": (time.process_time() - cpu, time.perf_counter() - wall)}))
"""


def sample_archs(count: int, seed: int, space_name: str = "mobilenetv2") -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(count):
        trial = study.ask()
        archs.append(space.sample(trial))
        study.tell(trial, 0.0)
    return archs


def best_seconds(work: Callable[[], object], repeat: int, before: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the pass with the least CPU time; ``before`` runs untimed
    before each pass."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        before()
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def _child_seconds(space_name: str, board: str, cache_dir: str) -> dict[str, tuple[float, float]]:
    environment = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    done = subprocess.run([sys.executable, "-c", _CHILD, space_name, board], env=environment, check=True,
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.splitlines()[-1])


def compile_seconds(space_name: str, board: str) -> dict[str, tuple[float, float]]:
    """(CPU, wall) seconds of a fresh process's import of the fast path plus its first estimate:
    ``compile`` with an empty numba cache (the loops are compiled and written to it), ``cached``
    with the cache that run wrote (the loops are loaded; the faster of two runs). Their
    difference is what compiling costs once per installation (per numba cache folder)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        runs = [_child_seconds(space_name, board, cache_dir) for _ in range(3)]
    total = [tuple(a + b for a, b in zip(run["import"], run["first"])) for run in runs]
    return {"compile": total[0], "cached": min(total[1:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=500)
    parser.add_argument("--sweep", type=int, default=20000, help="architectures of the long sweep from an empty cache")
    parser.add_argument("--space", default="mobilenetv2")
    parser.add_argument("--board", default="arduino-nano-33-ble-sense")
    parser.add_argument("--runtime", default="tflm-cmsis-nn")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    space = get_space(args.space)
    board = load_board(args.board)
    runtime = args.runtime
    kernels = "cmsis-nn" if runtime == "tflm-cmsis-nn" else "reference"
    archs = sample_archs(args.archs, args.seed, args.space)
    graphs = [space.graph(a) for a in archs]
    profile = default_profile(board.core, runtime)
    n = len(archs)
    mismatches = sum(fast.estimate_arch(space, a, board, runtime) != estimate(g, board, runtime) for a, g in zip(archs, graphs))
    figures: list = []

    def new_figures() -> None:  # fresh ones for each pass (figures keep the arenas they computed)
        figures[:] = [fast.arch_figures(space, a) for a in archs]

    wholes = {
        "reference: estimate(space.graph(arch))": (lambda: [estimate(space.graph(a), board, runtime) for a in archs], None),
        "fast, warm: estimate_arch(arch)": (lambda: [fast.estimate_arch(space, a, board, runtime) for a in archs], None),
        "fast, cold (empty parts cache)": (lambda: [fast.estimate_arch(space, a, board, runtime) for a in archs],
                                           fast.clear_cache),
    }
    parts = {
        "reference": {
            "graph construction": (lambda: [space.graph(a) for a in archs], None),
            "estimate() on a built graph": (lambda: [estimate(g, board, runtime) for g in graphs], None),
            "  arena, 32-bit target": (lambda: [memory.arena_bytes(g, target="cortex-m", kernels=kernels) for g in graphs],
                                       None),
            "  arena, 64-bit host": (lambda: [memory.arena_bytes(g, target="host", kernels="reference") for g in graphs],
                                     None),
            "  flash (model + runtime code)": (lambda: [
                (flash.model_bytes(g), flash.runtime_code_bytes(g.op_kinds(), kernels, board.core)) for g in graphs
            ], None),
            "  latency": (lambda: [profile.estimate(g, board) for g in graphs], None),
        },
        "fast (warm)": {
            "layers: space.spec(arch)": (lambda: [space.spec(a, name="") for a in archs], None),
            "parts: arch_figures(arch), spec included": (lambda: [fast.arch_figures(space, a) for a in archs], None),
            "cost_of(figures)": (lambda: [cost_of(f, board, runtime) for f in figures], new_figures),
            "  arena, both builds": (lambda: [f.arena_bytes_pair(kernels) for f in figures], new_figures),
            "  flash (model + runtime code)": (lambda: [
                (f.model_bytes(), flash.runtime_code_bytes(f.op_kinds(), kernels, board.core)) for f in figures
            ], new_figures),
            "  latency": (lambda: [f.latency(profile, board) for f in figures], new_figures),
        },
    }
    ops = sum(len(g.ops) for g in graphs) / n
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, Python {platform.python_version()}, pinned to 1 CPU")
    print(f"{n} random {args.space} archs (seed {args.seed}), {ops:.1f} ops per graph on average, board {board.name}, {runtime}")
    print(f"load average before: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"fast Cost == reference Cost on {n - mismatches} of {n} archs; {fast.cache_info()['parts']} distinct parts")
    rows = []  # (what, archs, CPU seconds, wall seconds)
    for name, (work, before) in wholes.items():
        rows.append((name, n, *best_seconds(work, args.repeat, before or (lambda: None))))
    sweep = list(uniform_archs(space, args.sweep, args.seed))
    sweep_checked = sweep[::10]
    sweep_mismatches = sum(fast.estimate_arch(space, a, board, runtime) != estimate(space.graph(a), board, runtime)
                           for a in sweep_checked)
    mismatches += sweep_mismatches
    name = f"fast, sweep of {len(sweep):,} from an empty cache"
    rows.append((name, len(sweep), *best_seconds(lambda: [fast.estimate_arch(space, a, board, runtime) for a in sweep], 1,
                                                   fast.clear_cache)))
    sweep_parts = fast.cache_info()["parts"]
    reference = rows[0][2] / rows[0][1]
    print()
    print(f"| {'estimates of ' + args.space:45s} | {'archs':>6s} | {'/s (CPU)':>9s} | {'us each':>8s} | {'/s (wall)':>9s} | {'vs reference':>12s} |")
    print(f"| {'-' * 45} | {'-' * 5}: | {'-' * 8}: | {'-' * 7}: | {'-' * 8}: | {'-' * 11}: |")
    for name, count, cpu, wall in rows:
        print(f"| {name:45s} | {count:>6,} | {count / cpu:>9,.0f} | {1e6 * cpu / count:>8.1f} | {count / wall:>9,.0f} | "
              f"{reference / (cpu / count):>11.1f}x |")
    print()
    print(f"sweep: {sweep_parts:,} distinct parts built (misses), Cost == reference on {len(sweep_checked) - sweep_mismatches} "
          f"of {len(sweep_checked)} checked (every 10th)")
    for group, works in parts.items():
        print(f"{group}:")
        for name, (work, before) in works.items():
            cpu, _ = best_seconds(work, args.repeat, before or (lambda: None))
            print(f"  {name:42s} {1e6 * cpu / n:9.1f} us/arch  ({n / cpu:>10,.0f} /s)")
    compiled = compile_seconds(args.space, board.name)
    print("fresh process, import of the fast path + first estimate (CPU s / wall s): "
          f"empty numba cache {compiled['compile'][0]:.2f} / {compiled['compile'][1]:.2f}; "
          f"numba cache written {compiled['cached'][0]:.2f} / {compiled['cached'][1]:.2f}; "
          f"one-time compile cost {compiled['compile'][0] - compiled['cached'][0]:.2f} s CPU")
    print(f"load average after: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
