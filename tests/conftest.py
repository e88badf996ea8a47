"""Shared test fixtures.

``../shared`` (beside the repository) holds MNIST and the MLPerf Tiny reference models on the
developers' machines and in CI; a user's clone has no such folder, so tests that need it skip
with a reason. Set ``MCUNAS_SHARED`` to point elsewhere.

A PostgreSQL server on 127.0.0.1 (``make setup-postgres`` installs and starts one, as root) serves
the PostgreSQL tests: they connect with :data:`POSTGRES_URL` (``MCUNAS_TEST_POSTGRES_URL``) and
create a database each; without a server they skip with the reason. Restarting the server needs
``pg_ctlcluster`` (Debian) and root.

In CI (``CI=true``) whatever a test needs must be there: a missing ``../shared``, PostgreSQL
server or privilege fails the test instead of skipping it (:func:`require`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

# onnx2tf sets TF_USE_LEGACY_KERAS=1 when imported, which turns `tf.keras` into tf_keras for the
# rest of the process. Set it before anything imports TensorFlow so every test sees the same Keras
# whatever the order the tests run in.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MCUNAS_SHARED", REPO_ROOT.parent / "shared"))


IN_CI = os.environ.get("CI", "").lower() == "true"

# The PostgreSQL role and password of `make setup-postgres` (a test-only role on 127.0.0.1).
POSTGRES_URL = os.environ.get(
    "MCUNAS_TEST_POSTGRES_URL", "postgresql+psycopg2://mcunas_test:PASSWORD_OF_THE_TEST@127.0.0.1:5432/postgres"
)


def require(reason: str) -> NoReturn:
    """Skip the test for ``reason`` on a user's machine; fail it in CI, where nothing may be missing."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: CI must provide it)", pytrace=False)
    pytest.skip(reason)


def _shared_path(relative: str) -> Path:
    path = SHARED_DIR / relative
    if not path.exists():
        require(f"{path} is absent (no ../shared beside this clone; set MCUNAS_SHARED to provide it)")
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
@pytest.fixture(scope="session")
def espeak_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` espeak-ng dataset in the Speech Commands layout (13 words x 10 speakers)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        require("espeak-ng is not installed (Debian package espeak-ng)")
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
        require(f"CMSIS-DSP C sources unavailable: {error}")


@pytest.fixture(scope="session")
def cmsis_library(cmsis_dsp_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMSIS-DSP's front-end function groups compiled for the host (``libcmsisdsp.a``), once per session."""
    from mcunas.frontend.host_build import build_cmsis_library

    return build_cmsis_library(cmsis_dsp_dir, tmp_path_factory.mktemp("cmsis-dsp-host"))


# --- end keyword spotting


# ----------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    """The test server: create databases on it; stop and start it (Debian ``pg_ctlcluster``)."""

    url: str  # of the maintenance database, with the test role's password
    cluster: tuple[str, str] | None  # (version, name) for pg_ctlcluster, None when it cannot be controlled

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    @property
    def password(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).password or ""

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on the maintenance database."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool,
                                          connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(sql))

    def answers(self) -> bool:
        try:
            self.execute("SELECT 1")
        except Exception:  # psycopg2.OperationalError: refused, shutting down, starting up
            return False
        return True

    def control(self, action: str) -> None:
        """``pg_ctlcluster VERSION NAME action`` (start, stop, restart), waiting for it."""
        if self.cluster is None:
            require("stopping the PostgreSQL server needs pg_ctlcluster (Debian) and root")
        subprocess.run(["pg_ctlcluster", *self.cluster, action], check=True, capture_output=True, timeout=120)


def _controllable_cluster(port: int) -> tuple[str, str] | None:
    """The Debian cluster listening on ``port``, when this process may stop and start it."""
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    return None


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The PostgreSQL server of :data:`POSTGRES_URL`, checked to answer."""
    from sqlalchemy.engine import make_url

    from mcunas.secrets import redact

    try:
        import psycopg2  # noqa: F401
    except ImportError:
        require("psycopg2 is not installed (pip install -c constraints.txt -e '.[postgres]')")
    server = PostgresServer(POSTGRES_URL, _controllable_cluster(make_url(POSTGRES_URL).port or 5432))
    try:
        server.execute("SELECT 1")
    except Exception as error:  # psycopg2.OperationalError: no server, wrong role or password
        require(f"no PostgreSQL server answers at {redact(POSTGRES_URL)} ({str(error).strip().splitlines()[0]}); "
                f"`make setup-postgres` (as root) installs and starts one, or set MCUNAS_TEST_POSTGRES_URL")
    return server


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the test server (dropped afterwards); its URL has the password.

    The server is started again afterwards if a test left it stopped.
    """
    name = f"mcunas_test_{uuid.uuid4().hex[:12]}"
    postgres_server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.database_url(name)
    finally:
        if postgres_server.cluster is not None and not postgres_server.answers():
            postgres_server.control("start")
        postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----------------------------------------------------------------------------- small file systems


@pytest.fixture()
def small_filesystem(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``mount(size_bytes)``: a fresh tmpfs of that size under ``tmp_path`` (root only), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size_bytes: int) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            require("mounting a small tmpfs (to fill a disk) needs root")
        point = tmp_path / f"small-{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(point)], check=True,
                       capture_output=True, timeout=30)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True, capture_output=True, timeout=30)


# ----------------------------------------------------------------------------- Ray


@pytest.fixture()
def ray_can_pickle_toys():
    """Ray workers cannot import the test helpers: ship tests/toys.py's classes by value."""
    import ray

    import toys

    ray.cloudpickle.register_pickle_by_value(toys)
    yield
    ray.cloudpickle.unregister_pickle_by_value(toys)


@pytest.fixture(scope="module")
def shared_cluster():
    """One local cluster (2 CPUs, loopback) per test module, started and stopped as
    ``run_trials_on_ray`` does when given no address; the tests share it to save start-up time."""
    import ray

    from mcunas.search.cluster import WorkerResources, ray_cluster

    temp_root = tempfile.mkdtemp(prefix="mcunas-test-", dir="/tmp")  # short: Ray's socket paths
    try:
        with ray_cluster(None, WorkerResources(workers=2), temp_root):
            assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
            yield
        assert not ray.is_initialized()
        assert any(Path(temp_root, "ray").glob("session_*")), "Ray's files go to <temp_root>/ray"
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)
