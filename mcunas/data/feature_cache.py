"""A disk cache of computed feature arrays, keyed by everything that went into them.

The key is the SHA-256 of the canonical JSON of a description (front-end config, the cmsisdsp
version, the exact list of clip recipes, the size and modification time of every file read): a
changed config, file, augmentation draw or package version gives another key, so stale features
are never reused. One ``<key>.npy`` per array, written atomically (a crash leaves no partial
file); an unreadable cache file is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mcunas.io import atomic_path

CACHE_FORMAT = 1


def cache_key(description: Any) -> str:
    """SHA-256 hex digest of ``description`` as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps({"format": CACHE_FORMAT, "description": description}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cached_array(cache_dir: str | os.PathLike[str], description: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array cached for ``description`` in ``cache_dir``, or ``compute()`` stored there first."""
    path = Path(cache_dir) / f"{cache_key(description)}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            pass  # damaged: recompute below and replace it
    array = np.ascontiguousarray(compute())
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    return array
