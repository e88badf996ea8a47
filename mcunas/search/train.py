"""A compact PyTorch training loop for candidate networks (CPU or CUDA).

Inputs are normalized float32 NCHW arrays (see :mod:`mcunas.data`). The loop uses SGD
(momentum 0.9, Nesterov), Adam or AdamW with a per-step cosine learning-rate schedule,
optional label smoothing and light augmentation of images: a random shift of up to 1/8 of the
side (replicate padding, then a random crop back to size) for every image dataset, plus
horizontal flips where the dataset allows them (never for digits: a mirrored 2 is not a 2).
Audio features are not shifted (a shift along the feature axis would change what a coefficient
means): their dataset augments the waveforms (:mod:`mcunas.data.audio_augment`). After every epoch
the validation accuracy is computed and handed to ``on_epoch`` (the search reports it to the
Optuna pruner there). Everything random draws from one seeded generator.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mcunas.data.config import AUDIO_DATASETS
from mcunas.errors import ConfigError

# Datasets whose images may be mirrored left-right during training.
FLIP_DATASETS: frozenset[str] = frozenset({"cifar10"})

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""loss(student_logits, inputs, labels) -> scalar loss."""


@dataclass
class TrainData:
    """Training and validation tensors (float32 NCHW inputs, int64 labels) and augmentation.

    With ``training.augment``, :func:`augment` (shifts, and left-right flips when ``flip``) runs
    where ``image_augment``; it is False for audio features (augmented as waveforms by their dataset).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    flip: bool = False
    image_augment: bool = True

    @classmethod
    def from_arrays(
        cls,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        *,
        flip: bool = False,
        image_augment: bool = True,
    ) -> TrainData:
        def as_x(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

        def as_y(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64))

        return cls(as_x(x_train), as_y(y_train), as_x(x_val), as_y(y_val), flip, image_augment)

    @classmethod
    def from_splits(cls, splits: Any, dataset_name: str) -> TrainData:
        """From :class:`mcunas.data.DatasetSplits`; flips only for :data:`FLIP_DATASETS`, no image
        augmentation for the audio datasets."""
        return cls.from_arrays(
            splits.train.x, splits.train.y, splits.val.x, splits.val.y, flip=dataset_name in FLIP_DATASETS,
            image_augment=dataset_name not in AUDIO_DATASETS,
        )


@dataclass
class TrainResult:
    """Outcome of one training run.

    Attributes:
        accuracy_val: validation accuracy after the last epoch, 0..1.
        history: validation accuracy after each epoch.
        train_seconds: wall time of the loop (training and per-epoch validation), seconds.
        epochs: epochs run.
    """

    accuracy_val: float
    history: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    epochs: int = 0


def configure_threads() -> int:
    """Torch intra-op threads of a search process: ``OMP_NUM_THREADS`` when set, else 1.

    Candidate networks are tiny (kilobytes of weights, 16-96 px inputs): per-op overhead
    dominates and extra intra-op threads buy little, while threads that spin-wait for a busy
    core cost a lot. Measured on the shared 2-core machine (digits 16 px, one epoch): 2 threads
    took 48.5 s (teacher) and 22.8 s (student) against 5.2 s and 1.2 s with 1 thread.
    Parallelism comes from running trials in parallel (``search.workers``). Returns the count.
    """
    requested = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(requested) if requested.isdigit() and int(requested) > 0 else 1
    torch.set_num_threads(threads)
    return threads


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (cuda when available) as a torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device: 'cuda' was requested but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"training.device: unknown device {name!r}; choose cpu, cuda or auto")
    return torch.device(name)


def build_model(space: Any, arch: Any, seed: int) -> nn.Module:
    """``space.build(arch)`` with the weight initialization drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return space.build(arch)


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """Plain (optionally label-smoothed) cross-entropy on the hard labels."""

    def loss(logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)

    return loss


def augment(x: torch.Tensor, generator: torch.Generator, *, flip: bool) -> torch.Tensor:
    """Random shift by up to ``H // 8`` pixels (replicate padding) and optional left-right flip."""
    batch, _, height, width = x.shape
    pad = max(1, height // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(width))[:, None, :]  # (B, 1, W)
    shifted = padded.permute(0, 2, 3, 1)[torch.arange(batch)[:, None, None], rows, cols]  # (B, H, W, C)
    out = shifted.permute(0, 3, 1, 2).contiguous()
    if flip:
        mirror = torch.rand(batch, generator=generator) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"training.optimizer: unknown optimizer {name!r}; choose sgd, adam or adamw")


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` in eval mode for all of ``x`` (on the CPU)."""
    model.eval()
    parts = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, device: torch.device) -> float:
    """Top-1 accuracy (0..1) of ``model`` on ``x``; 0.0 for empty inputs."""
    if len(x) == 0:
        return 0.0
    return float((predict_logits(model, x, device=device).argmax(1) == y).float().mean())


def train(
    model: nn.Module,
    data: TrainData,
    training: Any,
    *,
    epochs: int,
    seed: int,
    loss_fn: LossFn | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    description: str = "train",
) -> TrainResult:
    """Train ``model`` in place for ``epochs`` and return its validation accuracy.

    Args:
        model: the network; moved to ``training.device``.
        data: training and validation tensors.
        training: the config's ``training`` section (batch_size, optimizer, lr, weight_decay,
            label_smoothing, augment, device); ``epochs`` is given separately.
        epochs: number of passes over ``data.x_train``.
        seed: seeds shuffling and augmentation.
        loss_fn: defaults to cross-entropy with ``training.label_smoothing``.
        on_epoch: called as ``on_epoch(epoch, accuracy_val)`` after each epoch (epoch from 0);
            may raise (``optuna.TrialPruned``) to stop.
        description: label of the progress bar.
    """
    device = resolve_device(training.device)
    loss_fn = loss_fn or cross_entropy_loss(training.label_smoothing)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    n = len(data.x_train)
    batch_size = max(1, min(int(training.batch_size), n))
    # A last batch of one sample would break BatchNorm statistics: drop it.
    steps_per_epoch = n // batch_size + (1 if n % batch_size > 1 else 0)
    total_steps = max(1, steps_per_epoch * epochs)
    optimizer = make_optimizer(model, training.optimizer, float(training.lr), float(training.weight_decay))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    history: list[float] = []
    start = time.perf_counter()
    with tqdm(total=total_steps, desc=description, leave=False, file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            for step in range(steps_per_epoch):
                index = order[step * batch_size : (step + 1) * batch_size]
                x = data.x_train[index]
                if training.augment and data.image_augment:
                    x = augment(x, generator, flip=data.flip)
                x, y = x.to(device), data.y_train[index].to(device)
                loss = loss_fn(model(x), x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            history.append(accuracy(model, data.x_val, data.y_val, device=device))
            bar.set_postfix(val=f"{history[-1]:.3f}")
            if on_epoch is not None:
                on_epoch(epoch, history[-1])
    final = history[-1] if history else accuracy(model, data.x_val, data.y_val, device=device)
    return TrainResult(final, history, time.perf_counter() - start, epochs)
