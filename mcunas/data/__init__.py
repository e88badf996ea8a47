"""Datasets without torchvision: digits, MNIST, CIFAR-10, a synthetic task and Speech Commands.

:func:`load_dataset` gives :class:`DatasetSplits`: normalized float32 NCHW train/val/test
splits at the configured resolution, with the per-channel mean/std used (see
:mod:`mcunas.data.splits` for the exact steps). Speech Commands (keyword spotting) gives
:class:`AudioDatasetSplits` of front-end features (:mod:`mcunas.data.speech_commands`);
:func:`build_espeak_dataset` writes an offline dataset in its layout.
"""

from mcunas.data.audio_augment import AudioAugmentConfig
from mcunas.data.espeak import build_espeak_dataset
from mcunas.data.loader import DATASETS, load_dataset, load_dataset_at, load_raw
from mcunas.data.mnist import download_mnist, verify_mnist
from mcunas.data.speech_commands import AudioDatasetSplits, download_speech_commands, load_speech_commands
from mcunas.data.splits import DatasetSplits, RawDataset, Split, calibration_sample

__all__ = [
    "DATASETS",
    "AudioAugmentConfig",
    "AudioDatasetSplits",
    "DatasetSplits",
    "RawDataset",
    "Split",
    "build_espeak_dataset",
    "calibration_sample",
    "download_mnist",
    "download_speech_commands",
    "load_dataset",
    "load_dataset_at",
    "load_raw",
    "load_speech_commands",
    "verify_mnist",
]
