"""MNIST from the canonical IDX files, and their download from the canonical mirrors.

The four files (``train-images-idx3-ubyte`` etc.) are read from a folder, gzip-compressed
(``.gz``, as distributed) or not. Their uncompressed bytes are checked against the MD5 sums of
the original distribution, so a corrupt or different file is refused with its name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from mcunas.data.splits import RawDataset
from mcunas.errors import DatasetError
from mcunas.io import atomic_write_bytes

# file stem -> MD5 of the uncompressed file
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# Base URLs tried in order; each serves ``<stem>.gz``.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# IDX element type code -> numpy dtype (big-endian, as the format stores them)
_IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode uncompressed IDX bytes: magic ``00 00 <type> <ndim>``, big-endian int32 dims, data.

    Raises:
        DatasetError: bad magic number, unknown element type, or a size that does not match the
            header (``source`` names the file in the message).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{source}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DatasetError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DatasetError(f"{source}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header_bytes + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(
            f"{source}: IDX size mismatch: header {dims} needs {expected} bytes, file has {len(data)} (truncated?)"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_bytes).reshape(dims).astype(dtype.newbyteorder("="))


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _gunzip(data: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{source}: not a valid gzip file ({error})") from None


def _find_file(data_dir: Path, stem: str) -> Path | None:
    for candidate in (data_dir / f"{stem}.gz", data_dir / stem):
        if candidate.is_file():
            return candidate
    return None


def read_mnist_file(data_dir: str | os.PathLike[str], stem: str) -> bytes:
    """The uncompressed, MD5-verified bytes of one MNIST file (``<stem>.gz`` or ``<stem>``)."""
    data_dir = Path(data_dir)
    path = _find_file(data_dir, stem)
    if path is None:
        raise DatasetError(
            f"{data_dir / (stem + '.gz')}: MNIST file not found (nor uncompressed {stem}); "
            "put the canonical files there or set dataset.download: true"
        )
    raw = path.read_bytes()
    data = _gunzip(raw, str(path)) if path.suffix == ".gz" else raw
    actual = _md5(data)
    if actual != MNIST_FILES[stem]:
        raise DatasetError(
            f"{path}: MD5 of the uncompressed data is {actual}, expected {MNIST_FILES[stem]} (corrupt or not MNIST)"
        )
    return data


def verify_mnist(data_dir: str | os.PathLike[str]) -> None:
    """Check that all four MNIST files are present and match their MD5 sums (DatasetError if not)."""
    for stem in MNIST_FILES:
        read_mnist_file(data_dir, stem)


def load_mnist_raw(data_dir: str | os.PathLike[str]) -> RawDataset:
    """MNIST as ``(N, 1, 28, 28)`` uint8 images: 60,000 train and 10,000 test."""

    def load(stem: str) -> np.ndarray:
        return parse_idx(read_mnist_file(data_dir, stem), str(Path(data_dir) / stem))

    arrays = {}
    for split in ("train", "t10k"):
        images, labels = load(f"{split}-images-idx3-ubyte"), load(f"{split}-labels-idx1-ubyte")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"{data_dir}: {split} images {images.shape} and labels {labels.shape} do not match"
            )
        arrays[split] = (images[:, None, :, :], labels.astype(np.int64))
    return RawDataset(
        name="mnist",
        train_images=arrays["train"][0],
        train_labels=arrays["train"][1],
        test_images=arrays["t10k"][0],
        test_labels=arrays["t10k"][1],
        num_classes=10,
        max_value=255.0,
    )


def download_mnist(
    data_dir: str | os.PathLike[str], mirrors: tuple[str, ...] = MNIST_MIRRORS, timeout_s: float = 60.0
) -> Path:
    """Fetch the MNIST ``.gz`` files that are missing or corrupt in ``data_dir``.

    Each file is tried from ``mirrors`` in order; its uncompressed bytes must match the MD5 sum
    before it is written (atomically) into ``data_dir``. Files already present and valid are kept.

    Returns:
        ``data_dir`` as a Path.

    Raises:
        DatasetError: a file could not be fetched with the right checksum from any mirror.
    """
    data_dir = Path(data_dir)
    for stem, md5 in MNIST_FILES.items():
        try:
            read_mnist_file(data_dir, stem)
            continue
        except DatasetError:
            pass
        failures = []
        for mirror in mirrors:
            url = f"{mirror}{stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed https/http URLs
                    payload = response.read()
            except (urllib.error.URLError, OSError) as error:
                failures.append(f"{url}: {error}")
                continue
            try:
                actual = _md5(_gunzip(payload, url))
            except DatasetError as error:
                failures.append(str(error))
                continue
            if actual != md5:
                failures.append(f"{url}: MD5 {actual}, expected {md5}")
                continue
            atomic_write_bytes(data_dir / f"{stem}.gz", payload)
            break
        else:
            raise DatasetError(f"could not download {stem}.gz into {data_dir}:\n  " + "\n  ".join(failures))
    return data_dir
