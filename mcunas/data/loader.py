"""``load_dataset``: from a validated :class:`mcunas.data.config.DatasetConfig` to ready splits."""

from __future__ import annotations

from pathlib import Path

from mcunas.data.config import AUDIO_DATASETS, DATASETS, DatasetConfig
from mcunas.data.splits import DatasetSplits, RawDataset, build_splits
from mcunas.errors import DatasetError


def _require_data_dir(cfg: DatasetConfig) -> Path:
    if cfg.data_dir is None:
        raise DatasetError(f"dataset {cfg.name!r} needs data_dir (the folder with its files)")
    return cfg.data_dir


def load_raw(cfg: DatasetConfig) -> RawDataset:
    """The dataset's images as stored (downloading MNIST first when ``cfg.download``)."""
    if cfg.name in AUDIO_DATASETS:
        raise DatasetError(f"dataset {cfg.name!r} is audio: it has no raw images (use load_dataset)")
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


def _load_speech_commands(cfg: DatasetConfig) -> DatasetSplits:
    from mcunas.data.speech_commands import download_speech_commands, load_speech_commands

    data_dir = _require_data_dir(cfg)
    if cfg.download:
        download_speech_commands(data_dir)
    options = cfg.speech_commands
    return load_speech_commands(
        data_dir,
        task=options.task if options else 12,
        front_end=options.front_end if options else None,
        augment=options.augment if options else None,
        cache_dir=options.feature_cache_dir if options else None,
        max_train_samples=cfg.max_train_samples,
        max_test_samples=cfg.max_test_samples,
    )


def load_dataset(cfg: DatasetConfig, seed: int = 0) -> DatasetSplits:
    """Load, split (val from ``seed``), resize to ``cfg.resolution`` and normalize a dataset.

    ``speech_commands`` gives :class:`mcunas.data.speech_commands.AudioDatasetSplits` (front-end
    features; ``cfg.resolution`` and ``val_fraction`` do not apply, the split lists do).

    Raises:
        DatasetError: missing or corrupt dataset files (the message names the file).
    """
    if cfg.name == "speech_commands":
        return _load_speech_commands(cfg)
    return build_splits(
        load_raw(cfg),
        resolution=cfg.resolution,
        val_fraction=cfg.val_fraction,
        seed=seed,
        max_train_samples=cfg.max_train_samples,
        max_test_samples=cfg.max_test_samples,
    )


def load_dataset_at(cfg: DatasetConfig, input_size: tuple[int, int] | None, seed: int = 0) -> DatasetSplits:
    """:func:`load_dataset` with samples of ``input_size`` (height, width); None: ``cfg.input_size``.

    Images are resized to any square size; audio features come in the front end's one shape.

    Raises:
        DatasetError: the dataset cannot give samples of that size (the message names both sizes).
    """
    size = cfg.input_size if input_size is None else (int(input_size[0]), int(input_size[1]))
    if size == cfg.input_size:
        return load_dataset(cfg, seed)
    height, width = size
    native = "x".join(map(str, cfg.input_size))
    if cfg.name in AUDIO_DATASETS:
        raise DatasetError(f"dataset {cfg.name!r} gives {native} inputs (its front end's frames x features); "
                           f"an architecture asks for {height}x{width}: change the front end or the architecture")
    if height != width:
        raise DatasetError(f"dataset {cfg.name!r} gives square images (resized to n x n); an architecture asks "
                           f"for {height}x{width}")
    return load_dataset(cfg.model_copy(update={"resolution": height}), seed)
