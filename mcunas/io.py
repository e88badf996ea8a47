"""Small file helpers shared by every stage: atomic writes, JSON in and out, reading user files.

A file is written to a temporary name in its destination folder and renamed into place, so a
crash, Ctrl-C or a full disk never leaves a half-written file behind; a full file system (or
quota) is reported as :class:`~mcunas.errors.OutOfSpaceError` naming the file
(:func:`space_checked`). :func:`staged_files` writes a set of files (a report) into a hidden
folder first and moves them into place only when all of them were written. A file a user gives (config, board,
profile, architecture, measurements, run-directory files) is read with :func:`read_user_text` /
:func:`read_user_json`, which turn every way of failing into the caller's error type with a
message that names the file and the problem.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mcunas.errors import McunasError, OutOfSpaceError

# errno values that mean "the file system (or the user's quota) is full".
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def space_checked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a "no space left" (or quota) ``OSError`` raised in the block into an
    :class:`OutOfSpaceError` that names ``path`` and the free space of its file system."""
    try:
        yield
    except OSError as error:
        if error.errno not in _NO_SPACE:
            raise
        target = Path(path)
        folder = next((p for p in (target, *target.parents) if p.is_dir()), Path("."))
        free = shutil.disk_usage(folder).free
        raise OutOfSpaceError(
            f"{target}: no space left on its file system ({free} bytes free under {folder}; "
            f"{os.strerror(error.errno)}); it was not written: free some space or write elsewhere"
        ) from None


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    Raises:
        OutOfSpaceError: the file system filled up (the temporary file is removed).
    """
    target = Path(path)
    with space_checked(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            # mkstemp creates 0600 files; give the result the mode a plain open() would.
            os.chmod(tmp, 0o666 & ~_current_umask())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def staged_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh hidden folder inside ``folder`` to write a set of files into; when the block
    succeeds, rename each of them onto the same relative path in ``folder`` (replacing older
    files), deepest first; the staging folder is removed in any case.

    So a set of files that cannot all be written (a full disk) leaves none of them behind, and
    the older set, if any, stays as it was.
    """
    root = Path(folder)
    with space_checked(root):
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        yield stage
        files = sorted((p for p in stage.rglob("*") if p.is_file()), key=lambda p: (-len(p.parts), str(p)))
        for file in files:
            target = root / file.relative_to(stage)
            with space_checked(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_user_text(path: str | os.PathLike[str], error: type[McunasError], what: str) -> str:
    """The UTF-8 text of a user's file.

    Args:
        path: the file.
        error: the McunasError subclass to raise (e.g. BoardError).
        what: what the file is, for messages (e.g. ``"board file"``).

    Raises:
        error: ``<path>: <what> not found``, ``<path>: cannot read <what> (<reason>)`` or
            ``<path>: not UTF-8 text (<reason> at byte <n>)``.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as problem:
        raise error(f"{path}: cannot read {what} ({problem.strerror or problem})") from None
    except UnicodeDecodeError as problem:
        raise error(f"{path}: not UTF-8 text ({problem.reason} at byte {problem.start})") from None


def parse_user_json(text: str, path: str | os.PathLike[str], error: type[McunasError]) -> Any:
    """``text`` (the contents of ``path``) parsed as JSON; ``error`` names the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{path}: not valid JSON (line {problem.lineno}, column {problem.colno}: {problem.msg})") from None


def read_user_json(path: str | os.PathLike[str], error: type[McunasError], what: str) -> Any:
    """A user's JSON file, parsed; errors as :func:`read_user_text` plus
    ``<path>: not valid JSON (line L, column C: <problem>)``."""
    return parse_user_json(read_user_text(path, error, what), path, error)
