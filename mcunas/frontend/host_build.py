"""Build and run a generated ``features.c`` on the host with gcc, against CMSIS-DSP's C sources.

This is how the front end's C code is checked against the Python path (feature parity) without
a board. The C sources are those of the installed ``cmsisdsp`` package: its source distribution
on PyPI holds CMSIS-DSP's ``Include/``, ``PrivateInclude/`` and ``Source/`` (Apache-2.0).
:func:`cmsis_dsp_sources` finds them, in this order:

1. ``$MCUNAS_CMSIS_DSP_DIR`` (a CMSIS-DSP checkout or extracted sdist), if set;
2. the cache folder ``$XDG_CACHE_HOME/mcunas/cmsis-dsp-<version>`` (``~/.cache/...``);
3. otherwise ``pip download --no-deps --no-binary cmsisdsp cmsisdsp==<version>`` and the three
   folders extracted into that cache folder (nothing is written into the repository).

The library is compiled the way the ``cmsisdsp`` package compiles it for its Python wrapper
(its ``setup.py`` and ``Source/configDsp.cmake``): ``-D__GNUC_PYTHON__`` (host build, no CMSIS
Core), ``-DARM_MATH_LOOPUNROLL``, ``-O3 -ffast-math``, one translation unit per function group.
The generated ``features.c`` itself is compiled with ``-Wall -Wextra -Werror``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from mcunas.errors import ExportError
from mcunas.frontend.config import FrontEndConfig

CMSIS_DSP_DIR_ENV = "MCUNAS_CMSIS_DSP_DIR"
CMSIS_FOLDERS: tuple[str, ...] = ("Include", "PrivateInclude", "Source")
# The function groups a front end uses; each has a ``Source/<group>/<group>.c`` including all its files.
CMSIS_GROUPS: tuple[str, ...] = (
    "BasicMathFunctions",
    "CommonTables",
    "ComplexMathFunctions",
    "FastMathFunctions",
    "MatrixFunctions",
    "StatisticsFunctions",
    "SupportFunctions",
    "TransformFunctions",
)
HOST_DEFINES: tuple[str, ...] = ("-D__GNUC_PYTHON__", "-DARM_MATH_LOOPUNROLL")
HOST_FLAGS: tuple[str, ...] = ("-std=c11", "-O3", "-ffast-math")
_TIMEOUT_S = 600

# Reads clips of FEATURES_CLIP_SAMPLES int16 from argv[1] until its end; for each, writes the raw
# features of every frame (features_frame) to argv[2] and the int8 model input (features_compute) to argv[3].
_HARNESS = r"""#include <stdio.h>
#include "mcunas_features.h"

int main(int argc, char **argv)
{
    static int16_t pcm[FEATURES_CLIP_SAMPLES];
    static features_raw_t raw[FEATURES_OUTPUT_SIZE];
    static int8_t out[FEATURES_OUTPUT_SIZE];
    if (argc != 4) {
        fprintf(stderr, "usage: %s PCM_IN RAW_OUT INT8_OUT\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *raw_file = fopen(argv[2], "wb");
    FILE *out_file = fopen(argv[3], "wb");
    if (!in || !raw_file || !out_file || features_init() != 0) {
        return 3;
    }
    while (fread(pcm, sizeof(int16_t), FEATURES_CLIP_SAMPLES, in) == FEATURES_CLIP_SAMPLES) {
        for (int frame = 0; frame < FEATURES_NUM_FRAMES; ++frame) {
            if (features_frame(pcm + frame * FEATURES_STRIDE_SAMPLES, raw + frame * FEATURES_PER_FRAME) != 0) {
                return 4;
            }
        }
        if (features_compute(pcm, out) != 0) {
            return 5;
        }
        fwrite(raw, sizeof(features_raw_t), FEATURES_OUTPUT_SIZE, raw_file);
        fwrite(out, sizeof(int8_t), FEATURES_OUTPUT_SIZE, out_file);
    }
    fclose(in);
    fclose(raw_file);
    fclose(out_file);
    return 0;
}
"""


def cmsisdsp_version() -> str:
    """The installed ``cmsisdsp`` package's version."""
    return metadata.version("cmsisdsp")


def _has_sources(folder: Path) -> bool:
    return (folder / "Include" / "arm_math.h").is_file() and (folder / "Source" / "TransformFunctions").is_dir()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcunas"


def _run(command: list[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ExportError(f"{what}: {error}") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise ExportError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result


def _extract_sources(archive: Path, destination: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) >= 2 and parts[1] in CMSIS_FOLDERS + ("LICENSE",):
                member.name = str(Path(*parts[1:]))
                members.append(member)
        tar.extractall(destination, members=members, filter="data")


def cmsis_dsp_sources(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A folder holding CMSIS-DSP's ``Include/``, ``PrivateInclude/`` and ``Source/`` (see the module docstring).

    Raises:
        ExportError: ``$MCUNAS_CMSIS_DSP_DIR`` has no CMSIS-DSP sources, or they could not be downloaded.
    """
    override = os.environ.get(CMSIS_DSP_DIR_ENV)
    if override:
        folder = Path(override)
        if not _has_sources(folder):
            raise ExportError(f"${CMSIS_DSP_DIR_ENV}={folder}: no CMSIS-DSP sources there (Include/arm_math.h, Source/)")
        return folder
    version = cmsisdsp_version()
    folder = Path(cache_dir or default_cache_dir()) / f"cmsis-dsp-{version}"
    if _has_sources(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".cmsis-dsp-") as tmp:
        tmp_dir = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "cmsisdsp", "--quiet",
              f"cmsisdsp=={version}", "-d", str(tmp_dir)], f"downloading the cmsisdsp {version} source distribution")
        archives = sorted(tmp_dir.glob("cmsisdsp-*.tar.gz"))
        if not archives:
            raise ExportError(f"pip download of cmsisdsp=={version} gave no source archive in {tmp_dir}")
        staged = tmp_dir / "sources"
        _extract_sources(archives[0], staged)
        if not _has_sources(staged):
            raise ExportError(f"{archives[0].name}: no CMSIS-DSP Include/ and Source/ folders inside")
        try:
            os.replace(staged, folder)
        except OSError:
            if not _has_sources(folder):  # not another process that got there first
                raise
    return folder


def _compiler() -> str:
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        raise ExportError("no C compiler found (set $CC or install gcc) to build the front end on the host")
    return compiler


def build_cmsis_library(cmsis_dir: str | os.PathLike[str], build_dir: str | os.PathLike[str]) -> Path:
    """Compile :data:`CMSIS_GROUPS` of CMSIS-DSP for the host into ``build_dir/libcmsisdsp.a`` (kept if present)."""
    cmsis_dir, build_dir = Path(cmsis_dir), Path(build_dir)
    library = build_dir / "libcmsisdsp.a"
    if library.is_file():
        return library
    build_dir.mkdir(parents=True, exist_ok=True)
    compiler = _compiler()
    includes = [f"-I{cmsis_dir / 'Include'}", f"-I{cmsis_dir / 'PrivateInclude'}"]
    objects = []
    for group in CMSIS_GROUPS:
        obj = build_dir / f"{group}.o"
        _run([compiler, "-c", *HOST_FLAGS, *HOST_DEFINES, "-w", *includes,
              str(cmsis_dir / "Source" / group / f"{group}.c"), "-o", str(obj)], f"compiling CMSIS-DSP {group}")
        objects.append(str(obj))
    staged = build_dir / ".libcmsisdsp.a.tmp"
    _run(["ar", "rcs", str(staged), *objects], "archiving CMSIS-DSP")
    os.replace(staged, library)
    return library


def build_host_frontend(
    source_dir: str | os.PathLike[str], cmsis_dir: str | os.PathLike[str], library: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
) -> Path:
    """Compile ``source_dir/features.c`` and a small harness against ``library``; returns the executable.

    The harness (``frontend_host``) reads clips of int16 PCM from a file and writes every frame's
    raw features (``features_frame``) and the int8 model input (``features_compute``).
    """
    source_dir, cmsis_dir, out_dir = Path(source_dir), Path(cmsis_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    compiler = _compiler()
    harness = out_dir / "frontend_host.c"
    harness.write_text(_HARNESS, encoding="utf-8")
    includes = [f"-I{source_dir}", f"-I{cmsis_dir / 'Include'}", f"-I{cmsis_dir / 'PrivateInclude'}"]
    features_obj = out_dir / "features.o"
    _run([compiler, "-c", *HOST_FLAGS, *HOST_DEFINES, "-Wall", "-Wextra", "-Werror", *includes,
          str(source_dir / "features.c"), "-o", str(features_obj)], "compiling features.c")
    executable = out_dir / "frontend_host"
    _run([compiler, *HOST_FLAGS, *HOST_DEFINES, *includes, str(harness), str(features_obj), str(library), "-lm",
          "-o", str(executable)], "linking the host front end")
    return executable


def run_host_frontend(executable: str | os.PathLike[str], pcm: np.ndarray, cfg: FrontEndConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run the host front end on int16 clips ``(N, clip_samples)``.

    Returns:
        The raw features ``(N, num_frames, num_features)`` (int16 q8.7 or float32) and the int8
        model input of the same shape.
    """
    clips = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1, cfg.clip_samples)
    raw_dtype = np.int16 if cfg.arithmetic == "q15" else np.float32
    shape = (len(clips), cfg.num_frames, cfg.num_features)
    with tempfile.TemporaryDirectory(prefix="mcunas-frontend-") as tmp:
        tmp_dir = Path(tmp)
        pcm_path, raw_path, int8_path = tmp_dir / "pcm.bin", tmp_dir / "raw.bin", tmp_dir / "int8.bin"
        clips.astype("<i2").tofile(pcm_path)
        _run([str(executable), str(pcm_path), str(raw_path), str(int8_path)], f"running {executable}")
        raw = np.fromfile(raw_path, dtype=np.dtype(raw_dtype).newbyteorder("<")).astype(raw_dtype)
        int8 = np.fromfile(int8_path, dtype=np.int8)
    if raw.size != np.prod(shape) or int8.size != np.prod(shape):
        raise ExportError(f"{executable}: wrote {raw.size} raw / {int8.size} int8 values, expected {np.prod(shape)} each")
    return raw.reshape(shape), int8.reshape(shape)
