"""Shared test fixtures.

``../shared`` (beside the repository) holds MNIST and the MLPerf Tiny reference models on the
developers' machines and in CI; a user's clone has no such folder, so tests that need it skip
with a reason. Set ``MCUNAS_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# onnx2tf sets TF_USE_LEGACY_KERAS=1 when imported, which turns `tf.keras` into tf_keras for the
# rest of the process. Set it before anything imports TensorFlow so every test sees the same Keras
# whatever the order the tests run in.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MCUNAS_SHARED", REPO_ROOT.parent / "shared"))


def _shared_path(relative: str) -> Path:
    path = SHARED_DIR / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (no ../shared beside this clone; set MCUNAS_SHARED to provide it)")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The canonical MNIST IDX .gz files."""
    return _shared_path("datasets/mnist")


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    """The four MLPerf Tiny int8 models, published latencies and Cortex-M4 instruction counts."""
    return _shared_path("reference-models/mlperf-tiny")


@pytest.fixture(scope="session")
def latency_dir() -> Path:
    """Published whole-model latencies on six boards, person_detect.tflite, and the per-op
    Cortex-M4 instruction counts of the mcunas space models (with their architectures)."""
    return _shared_path("reference-models/latency")


# --- keyword spotting (issue 15): the offline espeak-ng dataset and CMSIS-DSP's C sources ---------
def _missing(what: str) -> None:
    """Skip on a user's machine; fail in CI (CI=true), where .ci/run provides it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: .ci/run installs it)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def espeak_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` espeak-ng dataset in the Speech Commands layout (13 words x 10 speakers)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        _missing("espeak-ng is not installed (Debian package espeak-ng)")
    from mcunas.data.espeak import build_espeak_dataset

    return build_espeak_dataset(tmp_path_factory.mktemp("espeak") / "speech", preset="tiny")


@pytest.fixture(scope="session")
def cmsis_dsp_dir() -> Path:
    """CMSIS-DSP's C sources (``$MCUNAS_CMSIS_DSP_DIR``, the user cache, or pip's cmsisdsp sdist)."""
    from mcunas.errors import ExportError
    from mcunas.frontend.host_build import cmsis_dsp_sources

    try:
        return cmsis_dsp_sources()
    except ExportError as error:
        _missing(f"CMSIS-DSP C sources unavailable: {error}")


@pytest.fixture(scope="session")
def cmsis_library(cmsis_dsp_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMSIS-DSP's front-end function groups compiled for the host (``libcmsisdsp.a``), once per session."""
    from mcunas.frontend.host_build import build_cmsis_library

    return build_cmsis_library(cmsis_dsp_dir, tmp_path_factory.mktemp("cmsis-dsp-host"))


# --- end keyword spotting
