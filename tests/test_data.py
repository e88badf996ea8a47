"""Datasets: shapes, determinism, normalization, IDX parsing, MD5 checks, restricted unpickling."""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from mcunas.data import calibration_sample, load_dataset, load_dataset_at, verify_mnist
from mcunas.data.config import DatasetConfig
from mcunas.data.cifar10 import load_batch, load_cifar10_raw
from mcunas.data.mnist import MNIST_FILES, download_mnist, parse_idx, read_mnist_file
from mcunas.data.splits import stratified_split
from mcunas.errors import DatasetError


def _check_splits(splits, channels: int, resolution: int, num_classes: int) -> None:
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape[1:] == (channels, resolution, resolution)
        assert split.x.flags["C_CONTIGUOUS"]
        assert len(split) == split.x.shape[0] > 0
        assert split.y.min() >= 0 and split.y.max() < num_classes
    assert splits.input_channels == channels and splits.num_classes == num_classes
    assert len(splits.mean) == len(splits.std) == channels
    # normalized with the recorded train statistics: the train split has mean 0, std 1 per channel
    np.testing.assert_allclose(splits.train.x.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(splits.train.x.std(axis=(0, 2, 3)), 1.0, atol=1e-3)


def test_digits_shapes_split_and_normalization():
    splits = load_dataset(DatasetConfig(name="digits", resolution=12, val_fraction=0.25), seed=3)
    _check_splits(splits, channels=1, resolution=12, num_classes=10)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    assert len(splits.test) == round(0.2 * 1797)
    assert len(splits.val) == round(0.25 * (1797 - len(splits.test)))
    # digits are 0..16, scaled to 0..1: the recorded mean lies within (0, 1)
    assert 0.1 < splits.mean[0] < 0.6 and 0.1 < splits.std[0] < 0.6
    # every class is present in the stratified val split
    assert set(np.unique(splits.val.y)) == set(range(10))


def test_split_is_deterministic_per_seed_and_test_set_fixed():
    cfg = DatasetConfig(name="digits", resolution=8, max_train_samples=300)
    a, b, c = (load_dataset(cfg, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.val.y, b.val.y)
    assert not np.array_equal(a.val.x, c.val.x)
    # the test set does not depend on the experiment seed
    np.testing.assert_array_equal(a.test.y, c.test.y)
    assert len(a.train) + len(a.val) == 300 and len(a.val) == 30


def test_synthetic_channels_classes_and_subsets():
    cfg = DatasetConfig(name="synthetic", resolution=10, channels=3, num_classes=4, max_train_samples=80, max_test_samples=20)
    splits = load_dataset(cfg, seed=0)
    _check_splits(splits, channels=3, resolution=10, num_classes=4)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (72, 8, 20)
    assert np.bincount(splits.val.y, minlength=4).tolist() == [2, 2, 2, 2]


def test_synthetic_is_learnable_by_nearest_class_mean():
    splits = load_dataset(DatasetConfig(name="synthetic", resolution=8, max_train_samples=400), seed=0)
    flat = splits.train.x.reshape(len(splits.train), -1)
    centroids = np.stack([flat[splits.train.y == k].mean(axis=0) for k in range(10)])
    test = splits.test.x.reshape(len(splits.test), -1)
    predicted = np.argmin(((test[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == splits.test.y).mean() > 0.8


def test_dataset_at_an_input_size():
    cfg = DatasetConfig(name="digits", resolution=16)
    assert cfg.input_size == (16, 16) and cfg.front_end is None
    assert load_dataset_at(cfg, None).input_size == (16, 16)
    assert load_dataset_at(cfg, (12, 12)).train.x.shape[1:] == (1, 12, 12)  # resized
    with pytest.raises(DatasetError, match=r"dataset 'digits' gives square images .* asks for 12x10"):
        load_dataset_at(cfg, (12, 10))


def test_stratified_split_keeps_proportions():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    first, rest = stratified_split(labels, 10, np.random.default_rng(0))
    assert sorted(np.concatenate([first, rest]).tolist()) == list(range(100))
    assert np.bincount(labels[first]).tolist() == [6, 3, 1]


def test_calibration_sample_from_train():
    splits = load_dataset(DatasetConfig(name="synthetic", resolution=8, max_train_samples=50), seed=0)
    sample = calibration_sample(splits, 16, seed=5)
    assert sample.shape == (16, 1, 8, 8) and sample.dtype == np.float32
    train_rows = {row.tobytes() for row in splits.train.x}
    assert all(row.tobytes() in train_rows for row in sample)
    np.testing.assert_array_equal(sample, calibration_sample(splits, 16, seed=5))
    assert calibration_sample(splits, 10_000, seed=0).shape[0] == len(splits.train)


# --- MNIST IDX files -------------------------------------------------------------------------


def test_parse_idx_header_and_errors():
    data = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))
    np.testing.assert_array_equal(parse_idx(data, "x"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    with pytest.raises(DatasetError, match="x: not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00" + data[4:], "x")
    with pytest.raises(DatasetError, match="x: IDX size mismatch"):
        parse_idx(data[:-1], "x")
    with pytest.raises(DatasetError, match="unknown IDX element type 0x07"):
        parse_idx(bytes([0, 0, 0x07, 1]) + (0).to_bytes(4, "big"), "x")


def test_mnist_real_files_subset(mnist_dir: Path):
    cfg = DatasetConfig(name="mnist", data_dir=mnist_dir, resolution=14, max_train_samples=500, max_test_samples=100)
    splits = load_dataset(cfg, seed=0)
    _check_splits(splits, channels=1, resolution=14, num_classes=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (450, 50, 100)
    # the canonical MNIST pixel statistics (about 0.13 / 0.31 at 28x28; std shrinks when resized)
    assert 0.11 < splits.mean[0] < 0.15 and 0.2 < splits.std[0] < 0.35


def test_mnist_md5_verification(mnist_dir: Path, tmp_path: Path):
    verify_mnist(mnist_dir)  # the canonical files pass

    stem = "t10k-labels-idx1-ubyte"
    data = bytearray(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    data[100] ^= 0x01  # one flipped bit in a label: still a valid IDX file, wrong checksum
    (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DatasetError, match=rf"{stem}\.gz: MD5 of the uncompressed data is [0-9a-f]{{32}}, expected"):
        read_mnist_file(tmp_path, stem)

    compressed = bytearray((mnist_dir / f"{stem}.gz").read_bytes())
    compressed[len(compressed) // 2] ^= 0xFF  # corrupt the gzip stream itself
    (tmp_path / f"{stem}.gz").write_bytes(bytes(compressed))
    with pytest.raises(DatasetError, match=rf"{stem}\.gz: not a valid gzip file"):
        read_mnist_file(tmp_path, stem)

    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: MNIST file not found"):
        verify_mnist(tmp_path)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: MNIST file not found"):
        load_dataset(DatasetConfig(name="mnist", data_dir=tmp_path), seed=0)


def test_mnist_uncompressed_files_accepted(mnist_dir: Path, tmp_path: Path):
    stem = "t10k-labels-idx1-ubyte"
    (tmp_path / stem).write_bytes(gzip.decompress((mnist_dir / f"{stem}.gz").read_bytes()))
    labels = parse_idx(read_mnist_file(tmp_path, stem), stem)
    assert labels.shape == (10_000,) and labels.max() == 9


@pytest.fixture
def local_mirrors(mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two HTTP mirrors on 127.0.0.1: the first serves a corrupt label file only, the second the real files."""
    for name in ("no_proxy", "NO_PROXY"):  # a CI proxy must not capture the local mirrors
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    bad, good = tmp_path / "bad-mirror", tmp_path / "good-mirror"
    bad.mkdir()
    good.mkdir()
    for stem in MNIST_FILES:
        shutil.copy(mnist_dir / f"{stem}.gz", good / f"{stem}.gz")
    labels = bytearray(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[-1] ^= 0x01
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield (f"{base}/bad-mirror/", f"{base}/good-mirror/")
    server.shutdown()
    server.server_close()


def test_download_verifies_and_falls_back_to_next_mirror(local_mirrors, tmp_path: Path):
    target = tmp_path / "downloaded" / "mnist"
    assert download_mnist(target, mirrors=local_mirrors, timeout_s=10) == target
    verify_mnist(target)
    assert sorted(os.listdir(target)) == sorted(f"{stem}.gz" for stem in MNIST_FILES)  # no temporary files left

    # valid files are kept: nothing is fetched (the only mirror is unreachable) and nothing rewritten
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    download_mnist(target, mirrors=("http://127.0.0.1:9/",), timeout_s=2)
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before

    # only the label file is missing and the one mirror serves it corrupt: refused, nothing written
    partial = tmp_path / "partial"
    shutil.copytree(target, partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: MD5 [0-9a-f]{32}, expected 27ae3e4e"):
        download_mnist(partial, mirrors=local_mirrors[:1], timeout_s=10)
    assert sorted(os.listdir(partial)) == sorted(f"{s}.gz" for s in MNIST_FILES if s != "t10k-labels-idx1-ubyte")


# --- CIFAR-10 python batches ------------------------------------------------------------------


def _write_batch(path: Path, n: int, seed: int, protocol: int = 2) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    batch = {b"batch_label": b"synthetic", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    return data, labels


def test_cifar10_batches_in_standard_layout(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = [_write_batch(folder / f"data_batch_{i}", 20, i) for i in range(1, 6)]
    _write_batch(folder / "test_batch", 10, 99, protocol=4)
    raw = load_cifar10_raw(tmp_path)
    assert raw.train_images.shape == (100, 3, 32, 32) and raw.test_images.shape == (10, 3, 32, 32)
    np.testing.assert_array_equal(raw.train_images[:20].reshape(20, -1), written[0][0])
    assert raw.train_labels[:20].tolist() == written[0][1]

    splits = load_dataset(DatasetConfig(name="cifar10", data_dir=tmp_path, resolution=16, val_fraction=0.2), seed=0)
    _check_splits(splits, channels=3, resolution=16, num_classes=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 10)


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_arbitrary_globals(tmp_path: Path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsShell(), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match=r"data_batch_1: not a readable CIFAR-10 batch: refusing to load global (posix|os)\.system"):
        load_batch(path)


def test_cifar10_bad_batches_named(tmp_path: Path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DatasetError, match=r"test_batch: 'data' must be a uint8 array of shape \(N, 3072\)"):
        load_batch(path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))
    with pytest.raises(DatasetError, match=r"test_batch: 'labels' must be 2 class indices in 0\.\.9"):
        load_batch(path)
    path.write_bytes(b"\x80\x02}q\x00(")  # truncated pickle
    with pytest.raises(DatasetError, match="test_batch: not a readable CIFAR-10 batch"):
        load_batch(path)
    with pytest.raises(DatasetError, match="data_batch_1: CIFAR-10 batch not found"):
        load_cifar10_raw(tmp_path)
