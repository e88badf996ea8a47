"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16, 10 classes).

No download: the data ships with scikit-learn. There is no official test split, so a fixed,
stratified 20 % is held out as the test set (the same for every experiment seed).
"""

from __future__ import annotations

import numpy as np

from mcunas.data.splits import RawDataset, stratified_split

TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 0


def load_digits_raw() -> RawDataset:
    """The digits as ``(N, 1, 8, 8)`` uint8 images (0..16) with a fixed 80/20 train/test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    test_idx, train_idx = stratified_split(
        labels, round(TEST_FRACTION * len(labels)), np.random.default_rng(TEST_SPLIT_SEED)
    )
    return RawDataset(
        name="digits",
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[test_idx],
        test_labels=labels[test_idx],
        num_classes=10,
        max_value=16.0,
    )
