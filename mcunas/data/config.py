"""The ``dataset:`` section of an experiment config: which dataset, resolution, splits, subsets.

Owned by the data package (the one list of dataset names is :data:`DATASETS`);
:mod:`mcunas.config` embeds it and reports :func:`dataset_problems` with the other problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from mcunas.schema import Section, resolve_path

DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10", "synthetic")
# Datasets read from files in ``data_dir``, and those that can fetch them (``download: true``).
FILE_DATASETS: tuple[str, ...] = ("mnist", "cifar10")
DOWNLOADABLE_DATASETS: tuple[str, ...] = ("mnist",)

DatasetName = Literal[DATASETS]  # type: ignore[valid-type]


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

    _resolve_data_dir = field_validator("data_dir")(resolve_path)


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
    return problems
