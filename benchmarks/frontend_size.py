"""Flash and RAM of the generated audio front end on a Cortex-M4, measured vs mcunas.frontend.memory.

For each front-end mode (mfcc / log_mel x q15 / f32) the script generates ``features.c`` for the
default (MLPerf Tiny KWS) settings, compiles it with CMSIS-DSP's C sources for a Cortex-M4
(``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os
-ffunction-sections -fdata-sections``, linked with ``--gc-sections`` and newlib's nosys specs)
into a program that calls ``features_init`` and ``features_compute``, and links the same program
without the front end. The differences are the front end's cost:

* flash = delta(.text + .data), split by symbol into ``features.c``'s tables (``k_*``),
  CMSIS-DSP's FFT tables (twiddle, bit-reversal, real-FFT coefficients) and code (the rest,
  libm/libc functions it pulls in included);
* RAM = delta(.data + .bss) minus the harness's PCM and output buffers; the stack bound is the
  deepest call path from ``features_compute`` in gcc's ``-fcallgraph-info=su`` (functions of
  libc/libm, not compiled here, count 0).

``--write`` stores the code, other-static and base stack figures of the default settings in
``mcunas/frontend/cortex_m4_frontend.json`` (the measured part of the memory model). Every row
compares the model with the measurement; rows other than the defaults are held out (other FFT
lengths and filter counts than the ones the code size was measured on).

Limitation: CMSIS Core (``cmsis_compiler.h``) is not available offline, so CMSIS-DSP is built
with ``-D__GNUC_PYTHON__``: its portable C paths, not the DSP-extension intrinsics a firmware
build with CMSIS Core uses (those differ in code size by some hundred bytes either way).

Usage::

    python benchmarks/frontend_size.py            # print the table
    python benchmarks/frontend_size.py --write    # and update the measurements file
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mcunas.frontend import FrontEndConfig, InputQuantization, write_frontend_sources  # noqa: E402
from mcunas.frontend import memory  # noqa: E402
from mcunas.frontend.host_build import CMSIS_GROUPS, cmsis_dsp_sources, cmsisdsp_version  # noqa: E402
from mcunas.io import write_json  # noqa: E402

CC = "arm-none-eabi-gcc"
TARGET_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
                "-ffunction-sections", "-fdata-sections", "-std=c11", "-D__GNUC_PYTHON__", "-DARM_MATH_LOOPUNROLL"]
QUANT = InputQuantization(mean=-5.0, std=4.0, scale=0.05, zero_point=3)
FFT_TABLE_SYMBOL = re.compile(r"^(twiddleCoef_|armBitRevIndexTable|realCoef|arm_cfft_sR_)")
HARNESS_SYMBOLS = ("g_pcm", "g_out", "g_sink")

_MAIN_WITH = """#include "mcunas_features.h"
int16_t g_pcm[FEATURES_CLIP_SAMPLES];
int8_t g_out[FEATURES_OUTPUT_SIZE];
volatile int g_sink;
int main(void) { g_sink = features_init(); g_sink += features_compute(g_pcm, g_out); return g_out[1]; }
"""
_MAIN_WITHOUT = """#include <stdint.h>
int16_t g_pcm[%d];
int8_t g_out[%d];
volatile int g_sink;
int main(void) { g_sink = g_pcm[1]; return g_out[1]; }
"""


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _cmsis_objects(cmsis: Path, build: Path) -> list[Path]:
    objects = []
    for group in CMSIS_GROUPS:
        obj = build / f"{group}.o"
        if not obj.is_file():
            _run([CC, *TARGET_FLAGS, "-w", "-fcallgraph-info=su", f"-I{cmsis / 'Include'}",
                  f"-I{cmsis / 'PrivateInclude'}", "-c", str(cmsis / "Source" / group / f"{group}.c"), "-o", str(obj)],
                 build)
        objects.append(obj)
    return objects


def _sections(elf: Path, cwd: Path) -> dict[str, int]:
    line = _run(["arm-none-eabi-size", "-A", str(elf)], cwd)
    sizes = {}
    for row in line.splitlines():
        parts = row.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def _symbols(elf: Path, cwd: Path) -> dict[str, int]:
    sizes = {}
    for row in _run(["arm-none-eabi-nm", "-S", str(elf)], cwd).splitlines():
        parts = row.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def _stack_bound(ci_files: list[Path], root: str) -> int:
    """Deepest stack from ``root`` over the call graph of gcc's .ci files (unknown functions: 0)."""
    frame, edges = {}, {}
    for path in ci_files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for title, size in re.findall(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes', text):
            frame[title] = max(frame.get(title, 0), int(size))
        for source, target in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
            edges.setdefault(source, set()).add(target)

    def depth(name: str, seen: frozenset[str]) -> int:
        callees = [depth(callee, seen | {name}) for callee in edges.get(name, ()) if callee not in seen]
        return frame.get(name, 0) + max(callees, default=0)

    return depth(root, frozenset())


def _link(objects: list[Path], out: Path, cwd: Path) -> None:
    _run([CC, *TARGET_FLAGS, "--specs=nosys.specs", "-Wl,--gc-sections", *map(str, objects), "-lm", "-o", str(out)], cwd)


def measure(cfg: FrontEndConfig, cmsis: Path, build: Path) -> dict[str, int]:
    """Measured flash/RAM parts of ``cfg``'s front end on a Cortex-M4."""
    work = build / f"{memory.mode_name(cfg)}-{cfg.fft_samples}-{cfg.mel_filters}-{cfg.num_features}"
    work.mkdir(parents=True, exist_ok=True)
    write_frontend_sources(work, cfg, QUANT)
    includes = [f"-I{work}", f"-I{cmsis / 'Include'}", f"-I{cmsis / 'PrivateInclude'}"]
    (work / "main_with.c").write_text(_MAIN_WITH, encoding="utf-8")
    (work / "main_without.c").write_text(_MAIN_WITHOUT % (cfg.clip_samples, cfg.num_frames * cfg.num_features),
                                         encoding="utf-8")
    for name in ("features", "main_with", "main_without"):
        _run([CC, *TARGET_FLAGS, "-Wall", "-Wextra", "-fcallgraph-info=su", *includes, "-c", f"{name}.c", "-o", f"{name}.o"],
             work)
    cmsis_objects = _cmsis_objects(cmsis, build)
    _link([work / "main_with.o", work / "features.o", *cmsis_objects], work / "with.elf", work)
    _link([work / "main_without.o"], work / "without.elf", work)
    with_sections, without_sections = _sections(work / "with.elf", work), _sections(work / "without.elf", work)
    symbols = _symbols(work / "with.elf", work)

    def delta(*names: str) -> int:
        return sum(with_sections.get(n, 0) - without_sections.get(n, 0) for n in names)

    flash = delta(".text", ".rodata", ".data", ".ARM.exidx", ".init_array", ".fini_array")
    our_tables = sum(size for name, size in symbols.items() if name.startswith("k_"))
    fft_tables = sum(size for name, size in symbols.items() if FFT_TABLE_SYMBOL.match(name))
    buffers = symbols.get("s_frame", 0) + symbols.get("s_scratch", 0)
    ram = delta(".data", ".bss")
    ci_files = [work / "features.ci", *(build / f"{group}.ci" for group in CMSIS_GROUPS)]
    return {
        "flash_bytes": flash,
        "table_bytes": our_tables,
        "fft_table_bytes": fft_tables,
        "code_bytes": flash - our_tables - fft_tables,
        "buffer_bytes": buffers,
        "static_other_bytes": ram - buffers,
        "stack_bytes": _stack_bound(ci_files, "features_compute"),
    }


def _configs() -> list[tuple[FrontEndConfig, bool]]:
    rows = []
    for features in ("mfcc", "log_mel"):
        for arithmetic in ("q15", "f32"):
            base = dict(features=features, arithmetic=arithmetic)
            rows.append((FrontEndConfig(**base), True))
            rows.append((FrontEndConfig(**base, window_ms=40.0), False))  # 1024-point FFT (ML-KWS-for-MCU framing)
            rows.append((FrontEndConfig(**base, mel_filters=64, fmax_hz=7600.0, mfcc_coefficients=13), False))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {memory.MEASUREMENTS_FILE.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    cmsis = cmsis_dsp_sources()
    compiler = _run([CC, "--version"], REPO_ROOT).splitlines()[0]
    rows, fitted = [], {}
    with tempfile.TemporaryDirectory(prefix="mcunas-frontend-size-") as tmp:
        build = Path(tmp)
        for cfg, is_default in _configs():
            measured = measure(cfg, cmsis, build)
            if is_default:
                fitted[memory.mode_name(cfg)] = {
                    "code_bytes": measured["code_bytes"],
                    "static_other_bytes": measured["static_other_bytes"],
                    "stack_base_bytes": measured["stack_bytes"] - memory.raw_frame_stack_bytes(cfg),
                }
            rows.append((cfg, is_default, measured))
    if args.write:
        write_json(memory.MEASUREMENTS_FILE, {
            "source": (f"benchmarks/frontend_size.py, {datetime.date.today().isoformat()}: {compiler}, "
                       f"{' '.join(TARGET_FLAGS)}, --gc-sections, newlib nosys; CMSIS-DSP sources of cmsisdsp "
                       f"{cmsisdsp_version()}; default front end of each mode"),
            "modes": fitted,
        })
        memory._measurements.cache_clear()
    print(f"{'mode':<13} {'fft':>5} {'mel':>4} {'set':<9} {'flash pred':>10} {'flash meas':>10} {'tables p/m':>13} "
          f"{'fft tbl p/m':>13} {'RAM pred':>9} {'RAM meas':>9} {'stack p/m':>9}")
    for cfg, is_default, measured in rows:
        predicted = memory.frontend_memory(cfg)
        ram_measured = measured["buffer_bytes"] + measured["static_other_bytes"] + measured["stack_bytes"] + predicted.pcm_bytes
        print(f"{memory.mode_name(cfg):<13} {cfg.fft_samples:>5} {cfg.mel_filters:>4} "
              f"{'in-sample' if is_default else 'held-out':<9} {predicted.flash_bytes:>10} {measured['flash_bytes']:>10} "
              f"{predicted.table_bytes:>6}/{measured['table_bytes']:<6} {predicted.fft_table_bytes:>6}/{measured['fft_table_bytes']:<6} "
              f"{predicted.ram_bytes:>9} {ram_measured:>9} {predicted.stack_bytes:>4}/{measured['stack_bytes']:<4}")
    print("RAM includes the int16 PCM clip buffer (2 x clip samples); the int8 output is the model's input tensor (arena).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
