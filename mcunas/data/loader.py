"""``load_dataset``: from a validated :class:`mcunas.data.config.DatasetConfig` to ready splits."""

from __future__ import annotations

from pathlib import Path

from mcunas.data.config import DATASETS, DatasetConfig
from mcunas.data.splits import DatasetSplits, RawDataset, build_splits
from mcunas.errors import DatasetError


def _require_data_dir(cfg: DatasetConfig) -> Path:
    if cfg.data_dir is None:
        raise DatasetError(f"dataset {cfg.name!r} needs data_dir (the folder with its files)")
    return cfg.data_dir


def load_raw(cfg: DatasetConfig) -> RawDataset:
    """The dataset's images as stored (downloading MNIST first when ``cfg.download``)."""
    if cfg.name == "digits":
        from mcunas.data.digits import load_digits_raw

        return load_digits_raw()
    if cfg.name == "mnist":
        from mcunas.data.mnist import download_mnist, load_mnist_raw

        data_dir = _require_data_dir(cfg)
        if cfg.download:
            download_mnist(data_dir)
        return load_mnist_raw(data_dir)
    if cfg.name == "cifar10":
        from mcunas.data.cifar10 import load_cifar10_raw

        return load_cifar10_raw(_require_data_dir(cfg))
    if cfg.name == "synthetic":
        from mcunas.data.synthetic import DEFAULT_TEST_SAMPLES, DEFAULT_TRAIN_SAMPLES, make_synthetic_raw

        return make_synthetic_raw(
            resolution=cfg.resolution,
            channels=cfg.channels or 1,
            num_classes=cfg.num_classes or 10,
            train_samples=cfg.max_train_samples or DEFAULT_TRAIN_SAMPLES,
            test_samples=cfg.max_test_samples or DEFAULT_TEST_SAMPLES,
        )
    raise DatasetError(f"unknown dataset {cfg.name!r} (allowed: {', '.join(DATASETS)})")


def load_dataset(cfg: DatasetConfig, seed: int = 0) -> DatasetSplits:
    """Load, split (val from ``seed``), resize to ``cfg.resolution`` and normalize a dataset.

    Raises:
        DatasetError: missing or corrupt dataset files (the message names the file).
    """
    return build_splits(
        load_raw(cfg),
        resolution=cfg.resolution,
        val_fraction=cfg.val_fraction,
        seed=seed,
        max_train_samples=cfg.max_train_samples,
        max_test_samples=cfg.max_test_samples,
    )
