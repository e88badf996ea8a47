"""Flash and RAM of the generated front end (``features.c`` + the CMSIS-DSP code it links).

Derived from the configuration, except the code sizes, which are measured:

* flash = the const tables of ``features.c`` (exact: the sizes of :func:`frontend_tables`'s
  arrays) + CMSIS-DSP's FFT tables for this FFT length (exact: the array lengths declared in
  CMSIS-DSP 1.16's ``Include/arm_common_tables.h``, below) + code (measured);
* RAM = the static frame and scratch buffers (exact: ``fft_samples`` and
  :func:`scratch_values` elements) + other static data (the CMSIS-DSP instance, measured) + the
  stack bound (measured for the default settings, plus the frame of raw features
  ``features_compute`` keeps on the stack, which grows with ``num_features``; within 8 bytes of
  gcc's call-graph bound in the benchmark) + the clip of int16 PCM the caller hands to
  ``features_compute`` (``clip_samples * 2``).

The int8 output is written into the model's input tensor, which lives in the TFLM arena and is
counted there, not here.

The measured figures come from ``benchmarks/frontend_size.py`` (a Cortex-M4 ``-Os`` build with
``--gc-sections``, linked with and without the front end), stored with their source in
``cortex_m4_frontend.json`` beside this module. Code size depends on the features and the
arithmetic, not on the table sizes; the benchmark checks the whole model on other FFT lengths
and filter counts than the one it measured the code on.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from mcunas.frontend.config import FrontEndConfig
from mcunas.frontend.features import scratch_values
from mcunas.frontend.tables import frontend_tables

MEASUREMENTS_FILE = Path(__file__).with_name("cortex_m4_frontend.json")

# CMSIS-DSP 1.16 Include/arm_common_tables.h: bit-reversal table lengths (uint16 values) per CFFT length.
BITREV_TABLE_VALUES_FIXED: dict[int, int] = {  # ARMBITREVINDEXTABLE_FIXED_<N>_TABLE_LENGTH (q15/q31 CFFT)
    16: 12, 32: 24, 64: 56, 128: 112, 256: 240, 512: 480, 1024: 992, 2048: 1984, 4096: 4032,
}
BITREV_TABLE_VALUES_F32: dict[int, int] = {  # ARMBITREVINDEXTABLE_<N>_TABLE_LENGTH (f32 CFFT)
    16: 20, 32: 48, 64: 56, 128: 208, 256: 440, 512: 448, 1024: 1800, 2048: 3808, 4096: 4032,
}
# realCoefAQ15 / realCoefBQ15: one pair of 8192-value tables shared by every q15 RFFT length.
REAL_COEF_Q15_VALUES = 8192
# The const CFFT instance arm_cfft_sR_<type>_len<N> (length, two pointers, bit-reversal length) on 32 bits.
CFFT_INSTANCE_BYTES = 16
STACK_ALIGNMENT_BYTES = 8


def mode_name(cfg: FrontEndConfig) -> str:
    """``"<features>-<arithmetic>"``: the key of the measured figures."""
    return f"{cfg.features}-{cfg.arithmetic}"


def fft_table_bytes(cfg: FrontEndConfig) -> int:
    """CMSIS-DSP's constant tables for an RFFT of ``fft_samples`` (size-specific initializers).

    q15 (``arm_rfft_init_<N>_q15``): ``realCoefAQ15`` + ``realCoefBQ15`` (2 x 8192 q15), the CFFT of
    ``N / 2``'s ``twiddleCoef_<N/2>_q15`` (``3 (N/2) / 2`` q15) and ``armBitRevIndexTable_fixed_<N/2>``.
    f32 (``arm_rfft_fast_init_<N>_f32``): ``twiddleCoef_<N/2>`` (``N`` floats),
    ``armBitRevIndexTable<N/2>`` and ``twiddleCoef_rfft_<N>`` (``N`` floats). Both: the const CFFT
    instance ``arm_cfft_sR_<type>_len<N/2>``.
    """
    half = cfg.fft_samples // 2
    if cfg.arithmetic == "q15":
        tables = 2 * (2 * REAL_COEF_Q15_VALUES) + 2 * (3 * half // 2) + 2 * BITREV_TABLE_VALUES_FIXED[half]
    else:
        tables = 4 * (2 * half) + 2 * BITREV_TABLE_VALUES_F32[half] + 4 * cfg.fft_samples
    return tables + CFFT_INSTANCE_BYTES


def table_bytes(cfg: FrontEndConfig) -> int:
    """``features.c``'s const arrays: window, filter positions/lengths/coefficients, DCT."""
    tables = frontend_tables(cfg)
    return sum(array.nbytes for array in (tables.window, tables.filter_pos, tables.filter_lengths,
                                          tables.filter_coefs, tables.dct))


def _element_bytes(cfg: FrontEndConfig) -> int:
    return 2 if cfg.arithmetic == "q15" else 4


def buffer_bytes(cfg: FrontEndConfig) -> int:
    """``features.c``'s static frame buffer and CMSIS-DSP scratch buffer."""
    return _element_bytes(cfg) * cfg.fft_samples + 4 * scratch_values(cfg)


def raw_frame_stack_bytes(cfg: FrontEndConfig) -> int:
    """``features_compute``'s array of one frame's raw features on the stack (8-byte aligned)."""
    size = _element_bytes(cfg) * cfg.num_features
    return -(-size // STACK_ALIGNMENT_BYTES) * STACK_ALIGNMENT_BYTES


@functools.lru_cache(maxsize=1)
def _measurements() -> dict:
    return json.loads(MEASUREMENTS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class FrontEndMemory:
    """The front end's footprint on a 32-bit Cortex-M, bytes."""

    table_bytes: int
    fft_table_bytes: int
    code_bytes: int
    buffer_bytes: int
    static_other_bytes: int
    stack_bytes: int
    pcm_bytes: int

    @property
    def flash_bytes(self) -> int:
        return self.table_bytes + self.fft_table_bytes + self.code_bytes

    @property
    def ram_bytes(self) -> int:
        return self.buffer_bytes + self.static_other_bytes + self.stack_bytes + self.pcm_bytes


def frontend_memory(cfg: FrontEndConfig) -> FrontEndMemory:
    """The breakdown of :func:`frontend_memory_bytes` (see the module docstring)."""
    measured = _measurements()["modes"][mode_name(cfg)]
    return FrontEndMemory(
        table_bytes=table_bytes(cfg),
        fft_table_bytes=fft_table_bytes(cfg),
        code_bytes=int(measured["code_bytes"]),
        buffer_bytes=buffer_bytes(cfg),
        static_other_bytes=int(measured["static_other_bytes"]),
        stack_bytes=int(measured["stack_base_bytes"]) + raw_frame_stack_bytes(cfg),
        pcm_bytes=2 * cfg.clip_samples,
    )


def frontend_memory_bytes(cfg: FrontEndConfig) -> tuple[int, int]:
    """``(flash_bytes, ram_bytes)`` the front end adds to a board's budget.

    flash: const tables + CMSIS-DSP FFT tables + code (Cortex-M4 ``-Os``, measured per mode);
    RAM: static buffers + other static data + stack bound + the int16 PCM clip buffer. The int8
    output is the model's input tensor (counted in the TFLM arena).
    """
    memory = frontend_memory(cfg)
    return memory.flash_bytes, memory.ram_bytes
