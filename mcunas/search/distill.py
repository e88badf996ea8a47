"""Knowledge distillation: one teacher per run directory, and the student loss.

The teacher is, in order of precedence, the architecture in ``distillation.teacher_arch``
(arch JSON) or the space's ``default_teacher``; its weights come from
``distillation.teacher_checkpoint`` (a state_dict read with ``torch.load(weights_only=True)``)
or from training it once for ``distillation.teacher_epochs``. The result is cached in
``RUN_DIR/teacher/`` (``arch.json``, ``weights.pt``, ``metrics.json``; ``metrics.json`` is
written last and marks the teacher complete) and reused on resume and by parallel workers:
:func:`ensure_teacher` holds a file lock while it checks and trains, so concurrent callers on
one machine train the teacher once and the others wait and load it.

Student loss: ``alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) ||
softmax(student / T))``, the Hinton et al. (2015) form; the T^2 factor keeps the soft-target
gradients on the scale of the hard-label ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mcunas.config import Experiment
from mcunas.data import DatasetSplits
from mcunas.errors import ConfigError
from mcunas.io import atomic_path, write_json
from mcunas.search.lock import file_lock
from mcunas.search.train import LossFn, TrainData, accuracy, build_model, resolve_device, train
from mcunas.spaces import Arch

logger = logging.getLogger("mcunas.search")

TEACHER_DIR = "teacher"


def distillation_loss(teacher: nn.Module, *, alpha: float, temperature: float, label_smoothing: float = 0.0) -> LossFn:
    """The student loss against ``teacher`` (kept in eval mode, no gradients)."""
    teacher.eval()

    def loss(logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        hard = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
        soft = F.kl_div(
            F.log_softmax(logits / temperature, dim=1),
            F.log_softmax(teacher_logits / temperature, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        return alpha * hard + (1.0 - alpha) * temperature**2 * soft

    return loss


def teacher_arch(experiment: Experiment, splits: DatasetSplits) -> Arch:
    """The teacher architecture: ``distillation.teacher_arch`` or the space's default teacher
    (the largest architecture of the experiment's space at the data's input size)."""
    from mcunas.search.context import make_space
    from mcunas.spaces import load_arch

    if experiment.distillation.teacher_arch is not None:
        return load_arch(experiment.distillation.teacher_arch)
    space = make_space(experiment, splits)
    return space.default_teacher(splits.input_channels, splits.num_classes, splits.input_size)


def _build(arch: Any, seed: int) -> nn.Module:
    from mcunas.spaces import get_space

    return build_model(get_space(arch.space), arch, seed)


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"distillation.teacher_checkpoint: cannot load {path} into the teacher: {error}") from error


def ensure_teacher(experiment: Experiment, run_dir: str | Path, splits: DatasetSplits) -> nn.Module:
    """The run's teacher in eval mode: loaded from ``RUN_DIR/teacher/`` or made once and cached.

    Safe to call from several processes of one machine at once (file lock).
    """
    folder = Path(run_dir) / TEACHER_DIR
    device = resolve_device(experiment.training.device)
    with file_lock(folder / ".lock"):
        if (folder / "metrics.json").is_file():
            from mcunas.spaces import load_arch

            model = _build(load_arch(folder / "arch.json"), experiment.seed)
            model.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
            return model.to(device).eval()
        model, metrics = _make_teacher(experiment, splits, device)
        arch = metrics.pop("arch")
        write_json(folder / "arch.json", arch)
        with atomic_path(folder / "weights.pt") as tmp:
            torch.save(model.state_dict(), tmp)
        write_json(folder / "metrics.json", metrics)
    return model.to(device).eval()


def _make_teacher(experiment: Experiment, splits: DatasetSplits, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Build the teacher and give it weights (checkpoint or training); metrics include its arch."""
    cfg = experiment.distillation
    arch = teacher_arch(experiment, splits)
    model = _build(arch, experiment.seed)
    data = TrainData.from_splits(splits, experiment.dataset.name)
    if cfg.teacher_checkpoint is not None:
        _load_checkpoint(model, cfg.teacher_checkpoint)
        model.to(device)
        acc, seconds, epochs = accuracy(model, data.x_val, data.y_val, device=device), 0.0, 0
        source = str(cfg.teacher_checkpoint)
    else:
        logger.info("training the teacher %s for %d epochs", arch.block_string(), cfg.teacher_epochs)
        result = train(model, data, experiment.training, epochs=cfg.teacher_epochs, seed=experiment.seed,
                       description="teacher")
        acc, seconds, epochs, source = result.accuracy_val, result.train_seconds, result.epochs, "trained"
    logger.info("teacher %s: val accuracy %.4f (%s, %.1f s)", arch.block_string(), acc, source, seconds)
    metrics = {
        "arch": arch.to_dict(),
        "block_string": arch.block_string(),
        "accuracy_val": acc,
        "train_seconds": seconds,
        "epochs": epochs,
        "source": source,
        "params": sum(p.numel() for p in model.parameters()),
    }
    return model, metrics
