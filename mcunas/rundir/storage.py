"""The Optuna storage of a run directory: which one, and opening it.

Storage URLs: any SQLAlchemy URL Optuna's RDBStorage accepts (``sqlite:///abs/study.db``, the
default of a search in one process; ``postgresql+psycopg2://...`` for several machines), or the
path of an Optuna JournalStorage file (``journal.log``, the default when trials run in several
processes, since SQLite serializes writers badly; ``journal:<path>`` is accepted too).
:func:`open_storage` opens one for a search (creating it); :func:`open_run_storage` opens the
storage a ``run.json`` names for reading, and never creates one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.errors import ConfigError, RunDirError

if TYPE_CHECKING:
    import optuna

# Name of the journal file (Optuna JournalStorage) in the run directory; of the SQLite file.
JOURNAL_FILE = "journal.log"
SQLITE_FILE = "study.db"
SQLITE_PREFIX = "sqlite:///"
JOURNAL_PREFIX = "journal:"


def default_storage_url(run_dir: str | Path, several_processes: bool) -> str:
    """SQLite in the run directory for one process, the journal file for several (absolute paths)."""
    path = Path(run_dir).resolve()
    return str(path / JOURNAL_FILE) if several_processes else f"{SQLITE_PREFIX}{path / SQLITE_FILE}"


def is_journal_path(url: str) -> bool:
    """True for a journal file path, False for an SQLAlchemy URL (``dialect[+driver]://...``)."""
    return "://" not in url


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (or create) an Optuna storage from a journal file path or an SQLAlchemy URL.

    Raises:
        ConfigError: the storage cannot be opened (the message names ``search.storage``); for a
            missing database driver (PostgreSQL without psycopg2) it names what to install.
    """
    import optuna

    if is_journal_path(url):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        if not path.parent.is_dir():
            raise ConfigError(f"search.storage: folder of the journal file {path} does not exist")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    # SQLite serializes writers: wait for its lock instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"search.storage: {redacted(url)} needs the database driver {error.name!r}, which is not installed "
            f"(PostgreSQL: pip install 'mcunas[postgres]')"
        ) from error
    except Exception as error:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"search.storage: cannot open {redacted(url)}: {error}") from error


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
    if not is_journal_path(url):
        if url.startswith(SQLITE_PREFIX):
            url = f"{SQLITE_PREFIX}{_existing_file(run_dir, Path(url[len(SQLITE_PREFIX):]), SQLITE_FILE, url)}"
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError as error:
            raise RunDirError(f"{run_dir}: cannot read the Optuna storage {redacted(url)} ({error})") from error
    path = _existing_file(run_dir, Path(url.removeprefix(JOURNAL_PREFIX)), JOURNAL_FILE, url)
    lock = optuna.storages.journal.JournalFileOpenLock(str(path))
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path), lock_obj=lock))


def _existing_file(run_dir: Path, recorded: Path, default_name: str, url: str) -> Path:
    candidates = [recorded if recorded.is_absolute() else run_dir / recorded, run_dir / default_name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise RunDirError(f"{run_dir}: the Optuna storage {url} does not exist (no {default_name} in the run directory)")
