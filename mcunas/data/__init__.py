"""Datasets without torchvision: digits, MNIST, CIFAR-10 and a synthetic task.

:func:`load_dataset` gives :class:`DatasetSplits`: normalized float32 NCHW train/val/test
splits at the configured resolution, with the per-channel mean/std used (see
:mod:`mcunas.data.splits` for the exact steps).
"""

from mcunas.data.loader import DATASETS, load_dataset, load_raw
from mcunas.data.mnist import download_mnist, verify_mnist
from mcunas.data.splits import DatasetSplits, RawDataset, Split, calibration_sample

__all__ = [
    "DATASETS",
    "DatasetSplits",
    "RawDataset",
    "Split",
    "calibration_sample",
    "download_mnist",
    "load_dataset",
    "load_raw",
    "verify_mnist",
]
