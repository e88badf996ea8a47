"""CIFAR-10 from the standard python batches, read with a restricted unpickler.

The batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) are pickled dicts with
``data`` (uint8 array ``(10000, 3072)``, channel-major 32x32) and ``labels``. They are read from
``data_dir/cifar-10-batches-py/`` or directly from ``data_dir``. A pickle can run arbitrary code
when loaded, so :class:`RestrictedUnpickler` resolves only the few numpy names that rebuild an
array (and ``_codecs.encode``, which protocol-2 pickles written by Python 3 use for bytes):
anything else is refused with a DatasetError.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mcunas.data.splits import RawDataset
from mcunas.errors import DatasetError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for data files: plain containers, bytes, numbers and numpy arrays only."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def load_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch as uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            batch = RestrictedUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(f"{path}: CIFAR-10 batch not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise DatasetError(f"{path}: not a readable CIFAR-10 batch: {error}") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: a CIFAR-10 batch is a dict, found {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE):
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072)")
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: 'labels' must be a list of class indices") from None
    if label_array.shape != (data.shape[0],) or label_array.min(initial=0) < 0 or label_array.max(initial=0) >= NUM_CLASSES:
        raise DatasetError(f"{path}: 'labels' must be {data.shape[0]} class indices in 0..{NUM_CLASSES - 1}")
    return data.reshape((-1, *IMAGE_SHAPE)), label_array


def batches_dir(data_dir: str | os.PathLike[str]) -> Path:
    """``data_dir/cifar-10-batches-py`` when it exists, else ``data_dir``."""
    data_dir = Path(data_dir)
    nested = data_dir / "cifar-10-batches-py"
    return nested if nested.is_dir() else data_dir


def load_cifar10_raw(data_dir: str | os.PathLike[str]) -> RawDataset:
    """CIFAR-10 as ``(N, 3, 32, 32)`` uint8 images: the five train batches and the test batch."""
    folder = batches_dir(data_dir)
    train = [load_batch(folder / name) for name in TRAIN_BATCHES]
    test_images, test_labels = load_batch(folder / TEST_BATCH)
    return RawDataset(
        name="cifar10",
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        num_classes=NUM_CLASSES,
        max_value=255.0,
    )
