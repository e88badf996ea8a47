"""Turning a dataset's raw images into normalized train/val/test splits.

Every dataset module returns a :class:`RawDataset` (images as stored, NCHW, values
``0..max_value``); :func:`build_splits` subsets, splits, resizes and normalizes it the same way
for all of them:

1. the test set is subset to ``max_test_samples`` with a fixed seed (the same test images for
   every experiment seed);
2. the training pool is subset to ``max_train_samples`` and split into train and val
   (``val_fraction``), both stratified by class and drawn from the experiment ``seed``;
3. images are scaled to 0..1 and resized (bilinear, antialiased when shrinking) to
   ``resolution x resolution``;
4. per-channel ``mean``/``std`` are computed on the train split (0..1 scale) and every split is
   normalized to ``(x - mean) / std``.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

# Seed of the test subset: fixed, so runs with different seeds are scored on the same images.
TEST_SUBSET_SEED = 0


@dataclass(frozen=True)
class RawDataset:
    """Images as stored by a dataset: ``(N, C, H, W)`` integers in ``0..max_value``, int labels."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    max_value: float


@dataclass(frozen=True)
class Split:
    """One split: ``x`` float32 ``(N, C, H, W)`` normalized, ``y`` int64 ``(N,)`` class indices."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset ready for training: normalized NCHW float32 splits and how they were made.

    ``mean`` and ``std`` are per channel, on the 0..1 pixel scale, computed on the train split;
    a deployed model's input is ``(pixel / 255 - mean) / std``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_channels: int
    resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of one sample (``resolution x resolution`` for images)."""
        _, _, height, width = self.train.x.shape
        return int(height), int(width)


def stratified_split(labels: np.ndarray, n_first: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``labels`` into ``n_first`` and the rest, keeping class proportions.

    Each class gets its share of ``n_first`` by largest remainder; the indices of both parts are
    shuffled by ``rng``.
    """
    labels = np.asarray(labels)
    n_first = int(min(max(n_first, 0), len(labels)))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n_first / max(len(labels), 1))
    take = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n_first - int(take.sum())]] += 1
    first, rest = [], []
    for cls, n_cls in zip(classes, take):
        members = rng.permutation(np.flatnonzero(labels == cls))
        first.append(members[:n_cls])
        rest.append(members[n_cls:])
    return rng.permutation(np.concatenate(first)), rng.permutation(np.concatenate(rest))


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinear resize of float32 ``(N, C, H, W)`` to ``(N, C, resolution, resolution)`` (deterministic, CPU)."""
    if images.shape[2] == resolution and images.shape[3] == resolution:
        return images
    import torch
    import torch.nn.functional as F

    shrink = resolution < max(images.shape[2], images.shape[3])
    with torch.no_grad():
        out = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(images)),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=shrink,
        )
    return out.numpy()


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``(N, C, H, W)`` (std floored at 1e-6)."""
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = np.maximum(images.std(axis=(0, 2, 3), dtype=np.float64), 1e-6)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def build_splits(
    raw: RawDataset,
    *,
    resolution: int,
    val_fraction: float,
    seed: int,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
) -> DatasetSplits:
    """Subset, split, resize and normalize ``raw`` (see the module docstring for the steps)."""
    test_idx = np.arange(len(raw.test_labels))
    if max_test_samples is not None and max_test_samples < len(test_idx):
        test_idx, _ = stratified_split(raw.test_labels, max_test_samples, np.random.default_rng(TEST_SUBSET_SEED))

    rng = np.random.default_rng(seed)
    pool_idx = np.arange(len(raw.train_labels))
    if max_train_samples is not None and max_train_samples < len(pool_idx):
        pool_idx, _ = stratified_split(raw.train_labels, max_train_samples, rng)
    pool_labels = raw.train_labels[pool_idx]
    n_val = min(max(1, round(val_fraction * len(pool_idx))), len(pool_idx) - 1)
    val_part, train_part = stratified_split(pool_labels, n_val, rng)
    train_idx, val_idx = pool_idx[train_part], pool_idx[val_part]

    def scaled(images: np.ndarray, index: np.ndarray) -> np.ndarray:
        x = images[index].astype(np.float32) / np.float32(raw.max_value)
        return resize_images(x, resolution)

    x_train = scaled(raw.train_images, train_idx)
    mean, std = channel_stats(x_train)
    mean_arr = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std_arr = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)

    def normalized(x: np.ndarray) -> np.ndarray:
        # in place: ``x`` is always a fresh float32 array from ``scaled``
        x -= mean_arr
        x /= std_arr
        return np.ascontiguousarray(x)

    def labels(values: np.ndarray, index: np.ndarray) -> np.ndarray:
        return values[index].astype(np.int64)

    return DatasetSplits(
        name=raw.name,
        train=Split(normalized(x_train), labels(raw.train_labels, train_idx)),
        val=Split(normalized(scaled(raw.train_images, val_idx)), labels(raw.train_labels, val_idx)),
        test=Split(normalized(scaled(raw.test_images, test_idx)), labels(raw.test_labels, test_idx)),
        num_classes=raw.num_classes,
        input_channels=int(raw.train_images.shape[1]),
        resolution=resolution,
        mean=mean,
        std=std,
    )


def calibration_sample(splits: DatasetSplits, n: int, seed: int) -> np.ndarray:
    """``min(n, len(train))`` normalized train images, float32 NCHW, drawn without replacement.

    Used as the representative data of int8 post-training quantization.
    """
    rng = np.random.default_rng(seed)
    count = min(int(n), len(splits.train))
    index = np.sort(rng.choice(len(splits.train), size=count, replace=False))
    return np.ascontiguousarray(splits.train.x[index], dtype=np.float32)
