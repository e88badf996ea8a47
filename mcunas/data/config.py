"""The ``dataset:`` section of an experiment config: which dataset, resolution, splits, subsets.

Owned by the data package (the one list of dataset names is :data:`DATASETS`);
:mod:`mcunas.config` embeds it and reports :func:`dataset_problems` with the other problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from mcunas.data.audio_augment import AudioAugmentConfig
from mcunas.frontend.config import FrontEndConfig
from mcunas.schema import Section, resolve_path

DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10", "synthetic", "speech_commands")
# Datasets read from files in ``data_dir``, and those that can fetch them (``download: true``).
FILE_DATASETS: tuple[str, ...] = ("mnist", "cifar10", "speech_commands")
DOWNLOADABLE_DATASETS: tuple[str, ...] = ("mnist", "speech_commands")
# Datasets whose samples are not images: load_dataset builds their splits itself (no RawDataset).
AUDIO_DATASETS: tuple[str, ...] = ("speech_commands",)

DatasetName = Literal[DATASETS]  # type: ignore[valid-type]


class SpeechCommandsConfig(Section):
    """``dataset.speech_commands``: the task, the front end computing the model input, augmentation.

    The input is ``front_end.input_shape`` (frames x features, one channel); the split lists of
    the dataset folder give val and test, so ``dataset.resolution`` and ``val_fraction`` are unused.
    """

    task: Literal[12, 35] = Field(default=12, description="12: ten keywords + silence + unknown; 35: all words")
    front_end: FrontEndConfig = FrontEndConfig()
    augment: AudioAugmentConfig = AudioAugmentConfig()
    feature_cache_dir: Path | None = Field(default=None, strict=False, description="default: data_dir/.mcunas-features")

    _resolve_cache_dir = field_validator("feature_cache_dir")(resolve_path)


class DatasetConfig(Section):
    """Which dataset, at which input resolution, and how it is split and subset."""

    name: DatasetName = "digits"
    data_dir: Path | None = Field(default=None, strict=False)
    download: bool = False
    resolution: int = Field(default=16, ge=8, le=224, description="square input side, pixels")
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    max_train_samples: int | None = Field(
        default=None, ge=2, description="limit of the training pool (train + val) before the val split"
    )
    max_test_samples: int | None = Field(default=None, ge=1)
    channels: int | None = Field(default=None, ge=1, le=4, description="synthetic only: input channels (default 1)")
    num_classes: int | None = Field(default=None, ge=2, le=1000, description="synthetic only: classes (default 10)")
    speech_commands: SpeechCommandsConfig | None = Field(
        default=None, description="speech_commands only: task, front end, augmentation (defaults when omitted)"
    )

    _resolve_data_dir = field_validator("data_dir")(resolve_path)

    @property
    def front_end(self) -> FrontEndConfig | None:
        """The audio front end computing the model input (speech_commands), else None (images)."""
        if self.name not in AUDIO_DATASETS:
            return None
        return (self.speech_commands or SpeechCommandsConfig()).front_end

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of one sample as loaded: the front end's frames x features for audio,
        ``resolution x resolution`` for images."""
        front_end = self.front_end
        return front_end.input_shape if front_end is not None else (self.resolution, self.resolution)


def dataset_problems(dataset: DatasetConfig) -> list[str]:
    """Checks across the section's fields and against the file system, one line per problem."""
    problems = []
    if dataset.name in FILE_DATASETS:
        if dataset.data_dir is None and not dataset.download:
            hint = " or set download: true" if dataset.name in DOWNLOADABLE_DATASETS else ""
            problems.append(f"dataset.data_dir: required for dataset {dataset.name!r} (a folder with its files){hint}")
        elif dataset.data_dir is not None and not dataset.download and not dataset.data_dir.is_dir():
            hint = " (or set download: true to fetch the files into it)" if dataset.name in DOWNLOADABLE_DATASETS else ""
            problems.append(f"dataset.data_dir: folder not found: {dataset.data_dir}{hint}")
    elif dataset.data_dir is not None:
        problems.append(f"dataset.data_dir: not used by dataset {dataset.name!r} (allowed for: {', '.join(FILE_DATASETS)})")
    if dataset.download and dataset.name not in DOWNLOADABLE_DATASETS:
        problems.append(
            f"dataset.download: dataset {dataset.name!r} cannot be downloaded (allowed for: {', '.join(DOWNLOADABLE_DATASETS)})"
        )
    if dataset.download and dataset.data_dir is None:
        problems.append("dataset.data_dir: required with download: true (the folder the files are saved to)")
    for key in ("channels", "num_classes"):
        if getattr(dataset, key) is not None and dataset.name != "synthetic":
            problems.append(f"dataset.{key}: only the synthetic dataset takes this option (dataset is {dataset.name!r})")
    if dataset.speech_commands is not None and dataset.name != "speech_commands":
        problems.append(f"dataset.speech_commands: only the speech_commands dataset takes this section (dataset is {dataset.name!r})")
    if dataset.name == "speech_commands":
        # a value other than the default (the resolved config in a run directory holds the defaults)
        for key in ("resolution", "val_fraction"):
            if getattr(dataset, key) == DatasetConfig.model_fields[key].default:
                continue
            problems.append(f"dataset.{key}: not used by speech_commands (its input is front_end's frames x features; "
                            f"val and test come from the split lists)")
    return problems
