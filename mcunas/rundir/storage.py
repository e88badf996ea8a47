"""The Optuna storage of a run directory: which one, opening it, riding out outages.

Storage URLs: any SQLAlchemy URL Optuna's RDBStorage accepts (``sqlite:///abs/study.db``, the
default of a search in one process; ``postgresql+psycopg2://...`` for several machines), or the
path of an Optuna JournalStorage file (``journal.log``, the default when trials run on Ray;
``journal:<path>`` is accepted too). SQLite is refused for trials in several processes
(:func:`check_storage_for`): its writers lock the whole file and its cache does not see the
other processes' trials.

Credentials. A URL as configured may name environment variables, ``${NAME}``, expanded only
when the storage is opened (:func:`resolve_storage_url`). What the run directory records is
:func:`mcunas.secrets.redact` of the URL: a password in it becomes ``***``. Opening a recorded
URL whose password is hidden takes the password from :data:`PASSWORD_VARIABLE`; without it the
error says what to set. The URL with its password lives only in memory.

:func:`open_storage` opens one for a search (creating it); :func:`open_run_storage` opens the
storage a ``run.json`` names for reading, and never creates one. :func:`retry_storage` retries a
call while the database server is unreachable (restart, network), with backoff, for a bounded
time, then raises one :class:`~mcunas.errors.StorageError`. :func:`repair_journal` drops an
incomplete last record that a killed writer left in a journal file.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcunas.errors import ConfigError, RunDirError, StorageError
from mcunas.secrets import REDACTED, is_redacted, redact

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)
T = TypeVar("T")

# Name of the journal file (Optuna JournalStorage) in the run directory; of the SQLite file.
JOURNAL_FILE = "journal.log"
SQLITE_FILE = "study.db"
SQLITE_PREFIX = "sqlite:///"
JOURNAL_PREFIX = "journal:"

# The environment variable that gives the password of a recorded URL whose password is hidden.
PASSWORD_VARIABLE = "MCUNAS_STORAGE_PASSWORD"

# Backoff between attempts while the server is unreachable: first wait, growth, cap (seconds).
_FIRST_WAIT_S, _WAIT_GROWTH, _MAX_WAIT_S = 0.5, 2.0, 10.0

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_storage_url(run_dir: str | Path, several_processes: bool) -> str:
    """SQLite in the run directory for one process, the journal file for several (absolute paths)."""
    path = Path(run_dir).resolve()
    return str(path / JOURNAL_FILE) if several_processes else f"{SQLITE_PREFIX}{path / SQLITE_FILE}"


def is_journal_path(url: str) -> bool:
    """True for a journal file path, False for an SQLAlchemy URL (``dialect[+driver]://...``)."""
    return "://" not in url


def is_sqlite(url: str) -> bool:
    """True for an SQLite URL (``sqlite://...``, any driver)."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() == "sqlite" and not is_journal_path(url)


def check_storage_for(url: str, several_processes: bool) -> None:
    """Refuse SQLite when trials run in several processes (any use of Ray).

    Raises:
        ConfigError: naming ``search.storage`` and the two storages that work.
    """
    if several_processes and is_sqlite(url):
        raise ConfigError(
            f"search.storage: {redact(url)} is SQLite, which trials in several processes (Ray: --workers > 1 or "
            f"--ray-address) cannot share; leave search.storage unset for the run directory's journal file, or use "
            f"PostgreSQL (postgresql+psycopg2://USER@HOST/DB); a run directory that already holds an SQLite study "
            f"resumes in one process only (--workers 1, no --ray-address)"
        )


def resolve_storage_url(url: str) -> str:
    """The usable URL of ``url`` as configured or recorded: ``${NAME}`` expanded from the
    environment, a hidden password (``***``) filled in from :data:`PASSWORD_VARIABLE`.

    Raises:
        ConfigError: a variable the URL names is not set, or the password is hidden and
            :data:`PASSWORD_VARIABLE` is not set; the message names what to set.
    """

    def expand(match: re.Match[str]) -> str:
        value = os.environ.get(match[1])
        if value is None:
            raise ConfigError(f"search.storage: {url} names the environment variable {match[1]}, which is not set; "
                              f"set it to the storage URL (or the part of it that it stands for)")
        return value

    resolved = _VARIABLE.sub(expand, url)
    if not is_redacted(resolved):
        return resolved
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        raise ConfigError(
            f"search.storage: {redact(resolved)}: the run directory does not store the database password; "
            f"set {PASSWORD_VARIABLE} to it (or give search.storage with the password, e.g. "
            f"search.storage: ${{MCUNAS_STORAGE}} with MCUNAS_STORAGE set to the full URL)"
        )
    quoted = urllib.parse.quote(password, safe="")
    resolved = resolved.replace(f":{REDACTED}@", f":{quoted}@", 1)
    return re.sub(rf"([?&]password=){re.escape(REDACTED)}", lambda m: m[1] + quoted, resolved, flags=re.IGNORECASE)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (or create) an Optuna storage from a journal file path or an SQLAlchemy URL
    (configured or recorded: see :func:`resolve_storage_url`).

    Raises:
        ConfigError: the storage cannot be opened (the message names ``search.storage``, never a
            password); for a missing database driver (PostgreSQL without psycopg2) it names what
            to install.
    """
    import optuna

    url = resolve_storage_url(url)
    if is_journal_path(url):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        if not path.parent.is_dir():
            raise ConfigError(f"search.storage: folder of the journal file {path} does not exist")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"search.storage: {redact(url)} needs the database driver {error.name!r}, which is not installed "
            f"(PostgreSQL: pip install 'mcunas[postgres]')"
        ) from None
    except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"search.storage: cannot open {redact(url)}: {redact(_first_line(error))}") from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite waits for its file lock instead of failing at once; a server's pooled
    connections are checked before use, so that a restarted server is reconnected to."""
    return {"connect_args": {"timeout": 60}} if is_sqlite(url) else {"pool_pre_ping": True}


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def open_run_storage(run_dir: Path, url: Any) -> optuna.storages.BaseStorage:
    """Open the storage ``run.json`` records for ``run_dir``, for reading; never create one.

    A relative SQLite or journal path is taken relative to the run directory; when the recorded
    file is gone but the run directory holds ``study.db`` or ``journal.log`` (the directory was
    moved), that file is used.

    Raises:
        RunDirError: the URL is missing, the storage file does not exist, or it cannot be read.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(url, str) or not url:
        raise RunDirError(f"{run_dir / 'run.json'}: 'storage' (the Optuna storage URL) is missing")
    try:
        url = resolve_storage_url(url)
    except ConfigError as error:
        raise RunDirError(f"{run_dir}: {error}") from None
    if not is_journal_path(url):
        if url.startswith(SQLITE_PREFIX):
            url = f"{SQLITE_PREFIX}{_existing_file(run_dir, Path(url[len(SQLITE_PREFIX):]), SQLITE_FILE, url)}"
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        except (SQLAlchemyError, ModuleNotFoundError) as error:
            raise RunDirError(
                f"{run_dir}: cannot read the Optuna storage {redact(url)} ({redact(_first_line(error))})"
            ) from None
    path = _existing_file(run_dir, Path(url.removeprefix(JOURNAL_PREFIX)), JOURNAL_FILE, url)
    lock = optuna.storages.journal.JournalFileOpenLock(str(path))
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock))


def _existing_file(run_dir: Path, recorded: Path, default_name: str, url: str) -> Path:
    candidates = [recorded if recorded.is_absolute() else run_dir / recorded, run_dir / default_name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise RunDirError(
        f"{run_dir}: the Optuna storage {redact(url)} does not exist (no {default_name} in the run directory)"
    )


# ----------------------------------------------------------------------------- outages


def is_storage_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or an exception in its cause/context chain) means the database
    server could not be reached or dropped the connection (restart, network), not bad data."""
    from sqlalchemy import exc

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)):
            return True
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_storage(call: Callable[[], T], *, what: str, url: str, retry_s: float) -> T:
    """``call()``, attempted again while the storage is unavailable, for at most ``retry_s``.

    Waits 0.5 s after the first failure, twice as long after each next one (at most 10 s), and
    logs each wait. ``call`` must be safe to repeat (an Optuna write that may have committed
    before the connection broke: tell with ``skip_if_finished``, set an attribute).

    Args:
        call: the storage operation.
        what: what it does, for messages (``"record trial 3"``).
        url: the storage (shown redacted).
        retry_s: the longest time to keep trying, seconds.

    Raises:
        StorageError: the storage stayed unavailable for ``retry_s`` seconds; the message says
            that the finished trials are kept and that rerunning the command resumes the run.
        Exception: whatever else ``call`` raises, at once.
    """
    deadline = time.monotonic() + retry_s
    wait = _FIRST_WAIT_S
    while True:
        try:
            return call()
        except Exception as error:
            if not is_storage_unavailable(error):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise storage_unavailable(url, f"was unreachable for {retry_s:g} s (could not {what})", error) from None
            pause = min(wait, left)
            _logger.warning("storage %s unreachable (%s): retrying in %.1f s (for up to %.0f s more)",
                            redact(url), describe_storage_error(error), pause, left)
            time.sleep(pause)
            wait = min(wait * _WAIT_GROWTH, _MAX_WAIT_S)


def storage_unavailable(url: str, what: str, error: BaseException) -> StorageError:
    """The one error of a search that lost its storage: what happened, the last database error,
    and that rerunning the same command resumes the run."""
    return StorageError(
        f"search.storage: {redact(url)} {what}; last error: {describe_storage_error(error)}. Finished trials "
        f"are kept in it; run the same command again to resume once it is back"
    )


def describe_storage_error(error: BaseException) -> str:
    """``Type: first line`` of the database error under ``error`` (Optuna wraps it), redacted."""
    return redact(_first_line(_root_cause(error)))


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def repair_journal(url: str) -> bool:
    """Drop an incomplete last record (no final newline) from the journal file ``url`` names
    (nothing for a database URL); True if one was dropped.

    A writer killed in the middle of an append leaves such a record; Optuna ignores it when
    reading but would glue the next record to it, corrupting the file. Call it only while no
    other process writes the journal (the run directory lock).
    """
    if not is_journal_path(url):
        return False
    path = Path(url.removeprefix(JOURNAL_PREFIX))
    if not path.is_file():
        return False
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return False
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return False
        keep = _end_of_last_line(handle, size)
        handle.truncate(keep)
        os.fsync(handle.fileno())
    _logger.warning("%s: dropped an incomplete last record (%d bytes) left by a killed process", path, size - keep)
    return True


def _end_of_last_line(handle: Any, size: int, chunk: int = 65536) -> int:
    """Offset just past the last newline in the first ``size`` bytes of ``handle`` (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        handle.seek(start)
        block = handle.read(end - start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0
