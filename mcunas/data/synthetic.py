"""A learnable synthetic image task for tests and smoke runs (no files, generated in memory).

Each class has a smooth random prototype (a 4x4 pattern per channel, upsampled); a sample is its
class prototype with a random contrast, a shift of up to one pixel and Gaussian noise. The data
depend only on the sizes asked for, not on the experiment seed.
"""

from __future__ import annotations

import numpy as np

from mcunas.data.splits import RawDataset, resize_images

DATA_SEED = 1234
DEFAULT_TRAIN_SAMPLES = 1000
DEFAULT_TEST_SAMPLES = 200


def _prototypes(num_classes: int, channels: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.uniform(-1.0, 1.0, size=(num_classes, channels, 4, 4)).astype(np.float32)
    return resize_images(coarse, resolution)


def _samples(
    prototypes: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    num_classes = prototypes.shape[0]
    labels = rng.permutation(np.arange(count) % num_classes).astype(np.int64)
    contrast = rng.uniform(0.7, 1.3, size=(count, 1, 1, 1)).astype(np.float32)
    images = prototypes[labels] * contrast
    shifts = rng.integers(-1, 2, size=(count, 2))
    for i, (dy, dx) in enumerate(shifts):
        images[i] = np.roll(images[i], (int(dy), int(dx)), axis=(1, 2))
    images += rng.normal(0.0, 0.25, size=images.shape).astype(np.float32)
    pixels = np.clip(np.rint(127.5 + 100.0 * images), 0, 255).astype(np.uint8)
    return pixels, labels


def make_synthetic_raw(
    *,
    resolution: int,
    channels: int = 1,
    num_classes: int = 10,
    train_samples: int = DEFAULT_TRAIN_SAMPLES,
    test_samples: int = DEFAULT_TEST_SAMPLES,
) -> RawDataset:
    """Generate ``train_samples`` + ``test_samples`` uint8 images ``(N, channels, resolution, resolution)``."""
    rng = np.random.default_rng(DATA_SEED)
    prototypes = _prototypes(num_classes, channels, resolution, rng)
    train_images, train_labels = _samples(prototypes, train_samples, rng)
    test_images, test_labels = _samples(prototypes, test_samples, rng)
    return RawDataset(
        name="synthetic",
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        num_classes=num_classes,
        max_value=255.0,
    )
