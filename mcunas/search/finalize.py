"""After the search: retrain the Pareto members of each board, export them, write the report.

Per board, the feasible COMPLETE trials (one per Arch) are reduced to their Pareto front; at
most ``final.max_models`` members are chosen spread along it (both ends included, evenly
spaced in between when sorted by the first objective). Each is retrained for ``final.epochs``
into ``final/<board>/<trial number>/`` (an Arch already retrained for another board is copied,
not retrained), then exported with :func:`mcunas.export.export_model` into
``exports/<board>/<trial number>/``. Every step is skipped when its output exists, so an
interrupted finalization resumes where it stopped.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mcunas.io import atomic_path, read_json, write_json
from mcunas.rundir.pareto import pareto_indices
from mcunas.search.context import SearchContext
from mcunas.search.trial import arch_key, save_weights, train_arch

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger("mcunas.search")


@dataclass
class FinalModel:
    """A retrained Pareto member.

    Attributes:
        board: board name.
        trial: trial number in the board's study.
        final_dir: ``final/<board>/<trial>/`` (weights.pt, metrics.json).
        export_dir: ``exports/<board>/<trial>/`` or None when export is disabled.
        metrics: the contents of ``metrics.json`` (accuracy_val, accuracy_test, ...).
    """

    board: str
    trial: int
    final_dir: Path
    export_dir: Path | None
    metrics: dict[str, Any]


def pareto_front(trials: Sequence[Any], directions: Sequence[str]) -> list[Any]:
    """Feasible COMPLETE trials on the Pareto front, one per Arch, sorted by the first objective
    (best first)."""
    from optuna.trial import TrialState

    unique: dict[str, Any] = {}
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.user_attrs.get("feasible"):
            unique.setdefault(trial.user_attrs["arch_key"], trial)
    candidates = list(unique.values())
    maximize = [d == "maximize" for d in directions]
    front = [candidates[i] for i in pareto_indices([t.values for t in candidates], maximize)]
    sign = -1.0 if maximize[0] else 1.0
    return sorted(front, key=lambda t: (sign * t.values[0], t.number))


def spread(front: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` members of a sorted front: both ends and evenly spaced ones between."""
    if len(front) <= count:
        return list(front)
    if count == 1:
        return [front[0]]
    positions = sorted({round(i * (len(front) - 1) / (count - 1)) for i in range(count)})
    return [front[p] for p in positions]


def _copy_final(run_dir: Path, key: str, target: Path) -> bool:
    """Copy a final model of the same Arch retrained for another board; False if none."""
    for metrics_path in sorted(run_dir.glob("final/*/*/metrics.json")):
        if metrics_path.parent == target:
            continue
        metrics = read_json(metrics_path)
        if metrics.get("arch_key") == key:
            with atomic_path(target / "weights.pt") as tmp:
                shutil.copyfile(metrics_path.parent / "weights.pt", tmp)
            write_json(target / "metrics.json", {**metrics, "copied_from": str(metrics_path.parent.relative_to(run_dir))})
            return True
    return False


def retrain(ctx: SearchContext, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Retrain a Pareto member for ``final.epochs`` (skipped when done); return its metrics."""
    import torch

    from mcunas.search.train import accuracy, resolve_device
    from mcunas.spaces import arch_from_dict

    folder = ctx.layout.final_dir(ctx.board_name, trial.number)
    if (folder / "metrics.json").is_file():
        return read_json(folder / "metrics.json")
    arch = arch_from_dict(trial.user_attrs["arch"])
    key = arch_key(arch)
    if _copy_final(ctx.layout.path, key, folder):
        return read_json(folder / "metrics.json")
    epochs = ctx.experiment.final.epochs
    model, result = train_arch(ctx, arch, epochs, description=f"final {trial.number}")
    splits = ctx.data.splits(arch.input_size)
    test_acc = accuracy(model, torch.from_numpy(splits.test.x), torch.from_numpy(splits.test.y),
                        device=resolve_device(ctx.experiment.training.device))
    metrics = {
        "trial": trial.number,
        "board": ctx.board_name,
        "arch": arch.to_dict(),
        "arch_key": key,
        "block_string": arch.block_string(),
        "accuracy_val": result.accuracy_val,
        "accuracy_test": test_acc,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "epochs": epochs,
        "distilled": ctx.teacher is not None,
        "search_values": list(trial.values),
    }
    save_weights(model, folder / "weights.pt")
    write_json(folder / "metrics.json", metrics)
    logger.info("final %s #%d %s: val %.4f, test %.4f (%d epochs, %.1f s)", ctx.board_name, trial.number,
                arch.block_string(), result.accuracy_val, test_acc, epochs, result.train_seconds)
    return metrics


def export(ctx: SearchContext, number: int, metrics: dict[str, Any]) -> Path:
    """Export a retrained member into ``exports/<board>/<number>/`` (skipped when validated)."""
    from mcunas.export import export_model
    from mcunas.spaces import arch_from_dict

    folder = ctx.layout.export_dir(ctx.board_name, number)
    if (folder / "validation.json").is_file():
        return folder
    arch = arch_from_dict(metrics["arch"])
    weights = ctx.layout.final_dir(ctx.board_name, number) / "weights.pt"
    validation = export_model(arch, weights, folder, experiment=ctx.experiment, splits=ctx.data.splits(arch.input_size),
                              board=ctx.board)
    logger.info("exported %s #%d to %s: %s", ctx.board_name, number, folder, _summary(validation))
    return folder


def _summary(validation: Any) -> str:
    """One line of a :class:`mcunas.export.Validation`: accuracies and measured vs predicted arena."""
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    return (f"int8 acc {pct(validation.accuracy_int8)} (float {pct(validation.accuracy_float)}), "
            f"TFLM arena {validation.arena_bytes_measured:,} B measured vs {validation.arena_bytes_predicted or 0:,} B "
            f"predicted (host)" + ("; int8 drop exceeds the limit" if validation.int8_drop_exceeded else ""))


def finalize_board(ctx: SearchContext, study: optuna.Study) -> list[FinalModel]:
    """Retrain and export the chosen Pareto members of one board's study."""
    experiment = ctx.experiment
    chosen = spread(pareto_front(study.get_trials(deepcopy=False), experiment.directions()), experiment.final.max_models)
    if not chosen:
        logger.warning("%s: no feasible trial completed; nothing to retrain or export", study.study_name)
    models = []
    for trial in chosen:
        metrics = retrain(ctx, trial)
        export_dir = export(ctx, trial.number, metrics) if experiment.export.enabled else None
        models.append(FinalModel(ctx.board_name, trial.number, ctx.layout.final_dir(ctx.board_name, trial.number),
                                 export_dir, metrics))
    return models
