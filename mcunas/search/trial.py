"""One trial of the search: sample, estimate, reject or train, record.

:func:`run_trial` is the Optuna objective of one board's study, used as is by the sequential
driver and by the Ray workers. Order of work:

1. the space samples an Arch through the trial; the fast estimator
   (:func:`mcunas.estimators.fast.estimate_arch`: the Cost of its op graph, from cached parts)
   costs it for the board (a tenth of a millisecond, no training);
2. the relative budget overruns are stored with ``Trial.set_constraint`` (> 0: violated) so that
   the samplers learn the feasible region; an infeasible candidate is completed at once with
   worst-case values and ``feasible: false`` plus its violations;
3. a feasible candidate whose Arch was already trained in this run (any board's study) reuses
   that accuracy; otherwise it is trained (with distillation when enabled), per-epoch validation
   accuracy going to the pruner;
4. arch, estimates, metrics and timings become user attrs (names in docs/architecture.md) and
   ``trials/<board>/<number>/`` gets ``arch.json``, ``weights.pt``, ``metrics.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mcunas.estimators import Cost
from mcunas.estimators.budget import overruns
from mcunas.io import atomic_path, write_json
from mcunas.search.context import SearchContext
from mcunas.search.objectives import infeasible_values, objective_values
from mcunas.spaces import Arch

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger("mcunas.search")


def arch_key(arch: Arch) -> str:
    """SHA-256 of the Arch's canonical JSON: equal iff the architectures are equal."""
    return hashlib.sha256(json.dumps(arch.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def training_seed(experiment_seed: int, key: str) -> int:
    """Seed of an Arch's weights and data order: the same Arch trains the same way in a run."""
    return (experiment_seed * 1_000_003 + int(key[:12], 16)) % 2**31


def describe_cost(cost: Cost) -> str:
    """``latency (interval), SRAM, flash`` of a Cost for a log line (latency "n/a" where not estimated)."""
    latency = ("latency n/a" if cost.latency_ms is None else
               f"{cost.latency_ms:.2f} ms ({cost.latency_ms_low:.2f}-{cost.latency_ms_high:.2f})")
    return f"{latency}, SRAM {cost.sram_bytes / 1024:.1f} KB, flash {cost.flash_bytes / 1024:.1f} KB"


def _find_trained(ctx: SearchContext, key: str) -> optuna.trial.FrozenTrial | None:
    """A COMPLETE trial of this run (any board) that trained Arch ``key``, else None."""
    from optuna.trial import TrialState

    for name in ctx.layout.studies.values():
        try:
            study_id = ctx.storage.get_study_id_from_name(name)
        except KeyError:
            continue
        for trial in ctx.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = trial.user_attrs
            if attrs.get("arch_key") == key and attrs.get("accuracy_val") is not None:
                return trial
    return None


def _loss(ctx: SearchContext) -> Any:
    from mcunas.search.distill import distillation_loss
    from mcunas.search.train import cross_entropy_loss

    training, kd = ctx.experiment.training, ctx.experiment.distillation
    if ctx.teacher is None:
        return cross_entropy_loss(training.label_smoothing)
    return distillation_loss(ctx.teacher, alpha=kd.alpha, temperature=kd.temperature,
                             label_smoothing=training.label_smoothing)


def train_arch(ctx: SearchContext, arch: Any, epochs: int, *, on_epoch: Any = None, description: str = "train") -> tuple[Any, Any]:
    """Build ``arch`` (seeded by its key) and train it; return (model, TrainResult)."""
    from mcunas.search.train import build_model, train

    seed = training_seed(ctx.experiment.seed, arch_key(arch))
    model = build_model(ctx.space, arch, seed)
    result = train(model, ctx.data.train_data(arch.input_size), ctx.experiment.training, epochs=epochs, seed=seed,
                   loss_fn=_loss(ctx), on_epoch=on_epoch, description=description)
    return model, result


def save_weights(model: Any, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)


def run_trial(trial: optuna.Trial, ctx: SearchContext) -> list[float]:
    """The objective of one board's study; see the module docstring."""
    try:
        return _run_trial(trial, ctx)
    except KeyboardInterrupt:
        # Optuna marks the trial FAIL; the attr tells the resume logic to retry its params.
        trial.set_user_attr("interrupted", True)
        raise


def _record_estimates(trial: optuna.Trial, ctx: SearchContext, arch: Arch, key: str, cost: Cost, seconds: float) -> None:
    """Constraint values (for the samplers) and the estimate user attrs of a candidate."""
    for name, value in overruns(cost, ctx.limits).items():
        trial.set_constraint(name, value)
    attrs = {"arch": arch.to_dict(), "arch_key": key, "block_string": arch.block_string(), "board": ctx.board_name,
             "estimates": cost.to_dict(), "feasible": bool(cost.fits), "violations": list(cost.violations),
             "estimate_seconds": seconds}
    for name, value in attrs.items():
        trial.set_user_attr(name, value)


def _pruning_reporter(trial: optuna.Trial, ctx: SearchContext, head: str) -> Callable[[int, float], None]:
    """``on_epoch`` for training: report validation accuracy to the pruner, prune when told."""
    import optuna

    pruning = ctx.experiment.search.pruner != "none"

    def on_epoch(epoch: int, accuracy_val: float) -> None:
        if not pruning:
            return
        trial.report(accuracy_val, epoch)
        if trial.should_prune():
            trial.set_user_attr("accuracy_val", accuracy_val)
            trial.set_user_attr("epochs", epoch + 1)
            logger.info("%s -> pruned after epoch %d at acc %.4f", head, epoch + 1, accuracy_val)
            raise optuna.TrialPruned()

    return on_epoch


def _reuse(ctx: SearchContext, previous: Any, folder: Path, on_epoch: Callable[[int, float], None]) -> dict[str, Any]:
    """Metrics (and a copy of the weights) of an earlier trial that trained the same Arch."""
    attrs = previous.user_attrs
    source = ctx.layout.trial_dir(attrs["board"], previous.number)
    if (source / "weights.pt").is_file():
        with atomic_path(folder / "weights.pt") as tmp:
            shutil.copyfile(source / "weights.pt", tmp)
    metrics = {name: attrs[name] for name in ("accuracy_val", "epochs", "distilled", "history") if name in attrs}
    metrics.update(train_seconds=0.0, cached_from=f"{attrs['board']}#{previous.number}")
    for epoch, accuracy_val in enumerate(metrics.get("history", [])):
        on_epoch(epoch, accuracy_val)  # the pruner sees the same learning curve again
    return metrics


def _run_trial(trial: optuna.Trial, ctx: SearchContext) -> list[float]:
    from mcunas.estimators.fast import estimate_arch

    experiment = ctx.experiment
    start = time.perf_counter()
    arch = ctx.space.sample(trial)
    key = arch_key(arch)
    cost = estimate_arch(ctx.space, arch, ctx.board, experiment.runtime,
                         **experiment.constraints.budget_arguments(), front_end=experiment.dataset.front_end)
    estimate_seconds = time.perf_counter() - start
    _record_estimates(trial, ctx, arch, key, cost, estimate_seconds)
    folder = ctx.layout.trial_dir(ctx.board_name, trial.number)
    write_json(folder / "arch.json", arch.to_dict())
    head = f"trial {trial.number} [{ctx.board_name}] {arch.block_string()}: {describe_cost(cost)}"

    if not cost.fits:
        write_json(folder / "metrics.json", {"feasible": False, "violations": list(cost.violations),
                                             "estimates": cost.to_dict(), "estimate_seconds": estimate_seconds})
        logger.info("%s -> infeasible: %s (%.2f s)", head, "; ".join(cost.violations), time.perf_counter() - start)
        return infeasible_values(experiment.objectives, cost)

    on_epoch = _pruning_reporter(trial, ctx, head)
    previous = _find_trained(ctx, key)
    if previous is not None:
        metrics = _reuse(ctx, previous, folder, on_epoch)
        note = f"cached from {metrics['cached_from']}"
    else:
        model, result = train_arch(ctx, arch, experiment.training.epochs, on_epoch=on_epoch,
                                   description=f"trial {trial.number}")
        save_weights(model, folder / "weights.pt")
        metrics = {"accuracy_val": result.accuracy_val, "epochs": result.epochs, "distilled": ctx.teacher is not None,
                   "history": result.history, "train_seconds": result.train_seconds}
        note = f"{result.train_seconds:.1f} s training"
    for name, value in metrics.items():
        trial.set_user_attr(name, value)
    write_json(folder / "metrics.json", {"feasible": True, "estimates": cost.to_dict(),
                                         "estimate_seconds": estimate_seconds, **metrics})
    logger.info("%s -> acc %.4f (%s, %.1f s total)", head, metrics["accuracy_val"], note, time.perf_counter() - start)
    return objective_values(experiment.objectives, metrics["accuracy_val"], cost)
