"""No space left on the disk while writing an export or the report: one clear error that names
the file (OutOfSpaceError), and nothing half-written left behind. The disk is a real tmpfs of a
few KiB (conftest.py's ``small_filesystem``: needs root, as in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcunas.errors import OutOfSpaceError
from mcunas.export.selfcheck import randomize_batchnorm
from mcunas.report import write_report
from test_export import _random_arch
from test_report import make_run


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_report_on_a_full_disk_is_a_clear_error_and_leaves_no_file(tmp_path, small_filesystem):
    run = make_run(tmp_path / "run", [(0.8, 100, 300, 12.0), (0.9, 200, 500, 30.0), (0.0, 400, 900, 50.0)])
    disk = small_filesystem(48 * 1024)
    with pytest.raises(OutOfSpaceError, match=r"no space left on its file system .* it was not written") as error:
        write_report([run], disk / "report" / "report.html")
    assert str(disk) in str(error.value)
    assert _files(disk) == [] and [p.name for p in (disk / "report").iterdir()] == []
    bigger = small_filesystem(16 * 1024 * 1024)
    write_report([run], bigger / "report.html")  # the same report fits on a larger disk
    assert (bigger / "report.html").stat().st_size > 48 * 1024


def test_export_on_a_full_disk_is_a_clear_error_and_keeps_no_partial_bundle(tmp_path, small_filesystem):
    from mcunas.data import load_dataset
    from mcunas.data.config import DatasetConfig
    from mcunas.export.pipeline import export_model

    space, arch = _random_arch("mobilenetv1", 7)
    weights = randomize_batchnorm(space.build(arch), 7).state_dict()
    splits = load_dataset(DatasetConfig(name="synthetic", resolution=arch.resolution, channels=arch.input_channels,
                                        max_train_samples=64, max_test_samples=16), 0)
    disk = small_filesystem(24 * 1024)
    out = disk / "exports" / "board" / "0"
    with pytest.raises(OutOfSpaceError, match="no space left on its file system") as error:
        export_model(arch, weights, out, splits=splits, max_test_samples=16, isolate=False)
    assert str(out.parent) in str(error.value)
    assert _files(disk) == [] and not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [], "no staging folder is left"
