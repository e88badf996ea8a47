"""Hiding credentials in text that mcunas writes or prints.

:func:`redact` is the one function every writer and printer of storage URLs goes through: the
run directory's ``config.yaml`` and ``run.json``, log lines, the report's config view and error
messages. It replaces the password of every ``scheme://user:password@host`` URL in a text (a
URL alone, a log line, a YAML or JSON document) and the value of every ``password=`` query
parameter with :data:`REDACTED`; ``${NAME}`` references to environment variables are kept, as
they hold no secret themselves. :class:`RedactingFormatter` applies it to log output.
"""

from __future__ import annotations

import logging
import re

# What a hidden password is replaced with.
REDACTED = "***"

# scheme://user:password@ - the password runs to the last "@" of the token (an unencoded "@" in
# a password is hidden too); a token ends at whitespace, a quote or an angle bracket.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>]*:)(?P<password>[^\s\"'<>]*)@")
# ?password=... or &password=... (SQLAlchemy passes query parameters to the database driver).
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&\s\"'<>]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every URL and every ``password=`` parameter hidden."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED if m['password'] else ''}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}", text)


def is_redacted(url: str) -> bool:
    """True when ``url`` carries a password hidden by :func:`redact` (it cannot be used as is)."""
    return f":{REDACTED}@" in url or re.search(rf"[?&]password={re.escape(REDACTED)}", url, re.IGNORECASE) is not None


class RedactingFormatter(logging.Formatter):
    """A logging formatter whose output (message, arguments, traceback) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
