"""Throughput of the distributed search on Ray: trials per minute and dispatch overhead.

    .venv/bin/python benchmarks/ray_throughput.py [--trials 24] [--train-trials 6] [--workers 1 2]

One local Ray cluster (loopback, 2 CPUs by default) serves every measurement; its start-up time
is reported apart. For each objective, the same trials (same candidates: random samplers seeded
per trial number) run once in this process with one torch thread (ask, evaluate, tell on a
journal storage: what a sequential search does) and then through
:func:`mcunas.search.dispatch.run_trials_on_ray` with 1 and 2 workers of one CPU each.
Before each timed run, a short run on a throw-away storage warms the processes (imports), so
the numbers are steady-state throughput; each timed run still builds its search context (data,
space) once per process, as a real run does. Objectives:

* ``no-op``: one sampled float, nothing else: the per-trial cost of the machinery itself
  (driver ask/tell, storage reopened by the worker, trial rebuilt, Ray round trip);
* ``estimate``: sample a MobileNetV2 architecture, build its op graph, estimate latency and SRAM
  for the board (what an infeasible candidate costs in a search);
* ``train``: the search's real per-trial work (:class:`mcunas.search.search.SearchEvaluator`:
  estimate, then 1 epoch of training on 512 synthetic 16x16 images, weights written).

Also measured: the round trip of an empty Ray task (submit + get, sequential) against an
in-process call. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mcunas.estimators import load_board  # noqa: E402
from mcunas.rundir.storage import default_storage_url, open_storage  # noqa: E402
from mcunas.search.cluster import WorkerResources, ray_cluster  # noqa: E402
from mcunas.search.dispatch import run_trials_on_ray, worker_sampler_seed  # noqa: E402

BOARD = "arduino-nano-33-ble-sense"

TINY_EXPERIMENT = {
    "name": "bench",
    "seed": 0,
    "dataset": {"name": "synthetic", "resolution": 16, "max_train_samples": 512, "max_test_samples": 64},
    "space": {"name": "mobilenetv2"},
    "boards": [BOARD],
    "objectives": ["accuracy", "latency_ms"],
    "search": {"sampler": "random", "trials": 8},
    "training": {"epochs": 1, "batch_size": 64},
    "distillation": {"enabled": False},
}


@dataclass(frozen=True)
class NoopEvaluator:
    """One sampled float as the objective: only the machinery costs time."""

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> Any:
        import optuna

        return optuna.create_study(
            study_name=f"noop:{board}", storage=storage, load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=sampler_seed),
        )

    def evaluate(self, trial: Any, board: str) -> float:
        return trial.suggest_float("x", 0.0, 1.0)


_SPACES: dict[str, Any] = {}


@dataclass(frozen=True)
class EstimateEvaluator:
    """Sample a MobileNetV2 architecture and estimate it for the board: (latency_ms, sram_bytes)."""

    def load_study(self, storage: Any, board: str, sampler_seed: int) -> Any:
        import optuna

        return optuna.create_study(
            study_name=f"estimate:{board}", storage=storage, load_if_exists=True, directions=["minimize"] * 2,
            sampler=optuna.samplers.RandomSampler(seed=sampler_seed),
        )

    def evaluate(self, trial: Any, board: str) -> tuple[float, float]:
        from mcunas.estimators import estimate, load_board
        from mcunas.spaces import get_space

        space = _SPACES.setdefault("mobilenetv2", get_space("mobilenetv2"))
        arch = space.sample(trial)
        cost = estimate(space.graph(arch), load_board(board), "tflm-cmsis-nn")
        return cost.latency_ms, float(cost.sram_bytes)


def _train_evaluator(run_dir: Path) -> Any:
    """The search's own evaluator on a prepared run directory with the tiny experiment."""
    from mcunas.config import Experiment
    from mcunas.rundir.runinfo import prepare_run_dir
    from mcunas.search.search import SearchEvaluator, StudyFactory

    experiment = Experiment.model_validate(
        {**TINY_EXPERIMENT, "search": {**TINY_EXPERIMENT["search"], "workers": 2}}, strict=False
    )
    layout = prepare_run_dir(experiment, run_dir, [load_board(b) for b in experiment.boards], several_processes=True)
    return SearchEvaluator(StudyFactory(experiment, layout)), layout.storage_url


@dataclass
class Row:
    objective: str
    mode: str
    workers: int
    trials: int
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60.0 * self.trials / self.seconds


def run_in_process(evaluator: Any, storage_url: str, trials: int) -> float:
    """Sequential ask/evaluate/tell in this process, one torch thread; seconds for ``trials``.

    Trial ``n`` samples with the seed a Ray worker would use for it, so that both modes
    evaluate the same candidates (random samplers).
    """
    import torch

    torch.set_num_threads(1)
    storage = open_storage(storage_url)
    start = time.perf_counter()
    for number in range(trials):
        study = evaluator.load_study(storage, BOARD, worker_sampler_seed(0, number))
        trial = study.ask()
        study.tell(trial, evaluator.evaluate(trial, BOARD))
    return time.perf_counter() - start


def run_on_ray(evaluator: Any, storage_url: str, run_dir: Path, trials: int, workers: int) -> float:
    study = evaluator.load_study(open_storage(storage_url), BOARD, 0)  # creates the study
    start = time.perf_counter()
    result = run_trials_on_ray(
        evaluator, storage_url, {BOARD: study}, trials, WorkerResources(workers), seed=0, run_dir=run_dir
    )
    seconds = time.perf_counter() - start
    if len(result.finished[BOARD]) != trials or result.worker_deaths:
        raise RuntimeError(f"Ray run finished {len(result.finished[BOARD])} of {trials} trials")
    return seconds


def measure_objective(
    name: str, make: Callable[[Path], tuple[Any, str]], root: Path, trials: int, workers: list[int]
) -> list[Row]:
    rows = []
    warm, warm_url = make(root / f"{name}-warm-inproc")
    run_in_process(warm, warm_url, 1)
    evaluator, url = make(root / f"{name}-inproc")
    rows.append(Row(name, "in-process", 1, trials, run_in_process(evaluator, url, trials)))
    for count in workers:
        warm, warm_url = make(root / f"{name}-warm{count}")
        run_on_ray(warm, warm_url, root / f"{name}-warm{count}", count, count)
        run_dir = root / f"{name}-ray{count}"
        evaluator, url = make(run_dir)
        rows.append(Row(name, "Ray", count, trials, run_on_ray(evaluator, url, run_dir, trials, count)))
    return rows


def _plain(evaluator: Any) -> Callable[[Path], tuple[Any, str]]:
    def make(run_dir: Path) -> tuple[Any, str]:
        run_dir.mkdir(parents=True, exist_ok=True)
        return evaluator, default_storage_url(run_dir, several_processes=True)

    return make


def _noop() -> None:
    return None


def dispatch_overhead(calls: int) -> tuple[float, float]:
    """Median seconds of an empty Ray task round trip and of an in-process call."""
    import ray

    remote = ray.remote(num_cpus=1)(_noop)
    ray.get([remote.remote() for _ in range(4)])  # warm the workers
    ray_times, local_times = [], []
    for _ in range(calls):
        start = time.perf_counter()
        ray.get(remote.remote())
        ray_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        _noop()
        local_times.append(time.perf_counter() - start)
    return statistics.median(ray_times), statistics.median(local_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per run of the no-op and estimate objectives")
    parser.add_argument("--train-trials", type=int, default=6, help="trials per run of the training objective")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--calls", type=int, default=200, help="empty Ray tasks timed")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)

    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mcunas-bench-", dir="/tmp") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        start = time.perf_counter()
        stack.enter_context(ray_cluster(None, WorkerResources(max(args.workers)), root))
        ray_start_s = time.perf_counter() - start
        ray_rt_s, local_s = dispatch_overhead(args.calls)
        rows += measure_objective("no-op", _plain(NoopEvaluator()), root, args.trials, args.workers)
        rows += measure_objective("estimate", _plain(EstimateEvaluator()), root, args.trials, args.workers)
        if not args.skip_training:
            rows += measure_objective("train", _train_evaluator, root, args.train_trials, args.workers)
    load_after = os.getloadavg()

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after.")
    print(f"Local Ray cluster start: {ray_start_s:.1f} s. Empty task round trip: {ray_rt_s * 1e3:.2f} ms "
          f"(in-process call: {local_s * 1e6:.2f} us), median of {args.calls}.\n")
    print("| objective | mode | workers | trials | wall s | trials/min | s/trial | vs in-process |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    baseline = {row.objective: row.per_minute for row in rows if row.mode == "in-process"}
    for row in rows:
        speedup = row.per_minute / baseline[row.objective]
        print(f"| {row.objective} | {row.mode} | {row.workers} | {row.trials} | {row.seconds:.2f} | "
              f"{row.per_minute:.1f} | {row.seconds / row.trials:.3f} | {speedup:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
