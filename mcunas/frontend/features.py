"""Audio features computed by CMSIS-DSP itself (the ``cmsisdsp`` package), frame by frame.

``cmsisdsp`` wraps the C functions a Cortex-M runs, so these are the device's features, not an
imitation of them. Per frame (``frame_samples`` of 16-bit PCM copied into a zeroed buffer of
``fft_samples``):

* MFCC: one call of ``arm_mfcc_q15`` or ``arm_mfcc_f32`` (float input is ``pcm / 32768``, as
  ``arm_q15_to_float`` converts). Inside: normalize the frame by its absolute maximum, window,
  real FFT, magnitude, mel filters, undo the normalization, natural log (``arm_vlog_*``; the
  float path adds 1e-6 first), DCT. q15 coefficients are q8.7 (``raw_unit`` = 2**-7).
* log-mel: the same steps without the DCT, made of the same CMSIS-DSP calls in the same order
  (:func:`_log_mel_q15`, :func:`_log_mel_f32`; the generated ``features.c`` makes the same calls);
  its integer glue (rounding, shifts) is CMSIS-DSP's MFCC's, so its output times the DCT matrix
  is exactly ``arm_mfcc_q15``'s (``tests/test_frontend.py`` checks this).

:func:`quantize_features` turns raw features into the model's int8 input exactly as
``features.c`` does: in integers for q15, in float32 for float.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mcunas.frontend.config import FrontEndConfig
from mcunas.frontend.tables import frontend_tables

# arm_mfcc_q15's integer constants (CMSIS-DSP Source/TransformFunctions/arm_mfcc_q15.c), also
# written into features.c's log-mel path.
MEL_ROUNDING_Q15 = 0x219  # MICRO_Q15: added to each mel energy before the shift
MEL_SHIFT_Q15 = 10  # SHIFT_MELFILTER_SATURATION_Q15
LOG2_TO_LOG_Q15 = 0x02C5C860  # ln(2) in q5.26
_Q15_ONE = 0x7FFF
LOG_OFFSET_F32 = np.float32(1.0e-6)  # arm_mfcc_f32: added before the log

INT8_MIN, INT8_MAX = -128, 127


def scratch_values(cfg: FrontEndConfig) -> int:
    """Elements of CMSIS-DSP's scratch buffer (q31 for q15, float32 for f32).

    q15: the RFFT's complex output (``2 * fft`` q15 = ``fft`` q31), then one q31 per mel filter.
    f32: ``2 * fft`` floats (``arm_mfcc_f32`` reads ``fft`` complex magnitudes from it).
    """
    if cfg.arithmetic == "q15":
        return max(cfg.fft_samples, cfg.mel_filters)
    return 2 * cfg.fft_samples


def log_exponent_q15(cfg: FrontEndConfig) -> int:
    """arm_mfcc_q15's ``logExponent``: the scalings undone after the log, as a natural log in q5.26.

    log2(fft) for the FFT's down-scaling, 2 for the magnitude's q14, the mel shift.
    """
    return (cfg.fft_samples.bit_length() - 1 + 2 + MEL_SHIFT_Q15) * LOG2_TO_LOG_Q15


class _Engine:
    """The CMSIS-DSP instances of one front end (made once per config and process)."""

    def __init__(self, cfg: FrontEndConfig) -> None:
        import cmsisdsp as dsp

        self.dsp = dsp
        self.cfg = cfg
        self.tables = tables = frontend_tables(cfg)
        fft, mel = cfg.fft_samples, cfg.mel_filters
        q15 = cfg.arithmetic == "q15"
        self.tmp = np.zeros(scratch_values(cfg), dtype=np.int32 if q15 else np.float32)
        if cfg.features == "mfcc":
            self.mfcc = dsp.arm_mfcc_instance_q15() if q15 else dsp.arm_mfcc_instance_f32()
            init = dsp.arm_mfcc_init_q15 if q15 else dsp.arm_mfcc_init_f32
            status = init(self.mfcc, fft, mel, cfg.mfcc_coefficients, tables.dct, tables.filter_pos,
                          tables.filter_lengths, tables.filter_coefs, tables.window)
        elif q15:
            self.rfft = dsp.arm_rfft_instance_q15()
            status = dsp.arm_rfft_init_q15(self.rfft, fft, 0, 1)
        else:
            self.rfft = dsp.arm_rfft_fast_instance_f32()
            status = dsp.arm_rfft_fast_init_f32(self.rfft, fft)
        if status != 0:
            raise RuntimeError(f"CMSIS-DSP front-end init failed with status {status} for {cfg!r}")
        ends = np.cumsum(tables.filter_lengths, dtype=np.int64)
        self.filters = [
            (int(pos), tables.filter_coefs[int(end - length):int(end)])
            for pos, length, end in zip(tables.filter_pos, tables.filter_lengths, ends)
        ]

    def frame_function(self) -> Callable[[np.ndarray], np.ndarray]:
        cfg = self.cfg
        if cfg.features == "mfcc":
            return self._mfcc_q15 if cfg.arithmetic == "q15" else self._mfcc_f32
        return self._log_mel_q15 if cfg.arithmetic == "q15" else self._log_mel_f32

    def _mfcc_q15(self, frame: np.ndarray) -> np.ndarray:
        status, out = self.dsp.arm_mfcc_q15(self.mfcc, frame, self.tmp)
        if status != 0:
            raise RuntimeError(f"arm_mfcc_q15 returned status {status}")
        return out

    def _mfcc_f32(self, frame: np.ndarray) -> np.ndarray:
        return self.dsp.arm_mfcc_f32(self.mfcc, frame, self.tmp)

    def _log_mel_q15(self, frame: np.ndarray) -> np.ndarray:
        """arm_mfcc_q15's steps up to the log (q8.7 log mel energies)."""
        dsp, fft = self.dsp, self.cfg.fft_samples
        peak, _ = dsp.arm_absmax_q15(frame)
        normalized = peak not in (0, _Q15_ONE)
        if normalized:
            _, quotient, shift = dsp.arm_divide_q15(_Q15_ONE, peak)
            frame = dsp.arm_scale_q15(frame, quotient, shift)
        frame = dsp.arm_mult_q15(frame, self.tables.window)
        spectrum = dsp.arm_rfft_q15(self.rfft, frame)
        magnitude = dsp.arm_cmplx_mag_q15(spectrum[: 2 * (fft // 2 + 1)])
        sums = np.array([dsp.arm_dot_prod_q15(magnitude[pos:pos + len(coefs)], coefs) for pos, coefs in self.filters],
                        dtype=np.int64)
        # __SSAT(result, 31) of the 64-bit sum: truncated to 32 bits, then saturated to 31
        energies = np.clip(((sums + MEL_ROUNDING_Q15) >> MEL_SHIFT_Q15).astype(np.int32), -(1 << 30), (1 << 30) - 1)
        if normalized:
            energies = dsp.arm_scale_q31(energies, int(peak) << 16, 0)
        logs = dsp.arm_vlog_q31(energies)
        logs = dsp.arm_shift_q31(dsp.arm_offset_q31(logs, log_exponent_q15(self.cfg)), -19)  # q5.26 -> q8.7
        return logs.astype(np.int16)  # (q15_t) cast: the value always fits

    def _log_mel_f32(self, frame: np.ndarray) -> np.ndarray:
        """arm_mfcc_f32's steps up to the log (natural log of mel energies + 1e-6)."""
        dsp, fft = self.dsp, self.cfg.fft_samples
        peak, _ = dsp.arm_absmax_f32(frame)
        if peak != 0.0:
            frame = dsp.arm_scale_f32(frame, np.float32(1.0) / np.float32(peak))  # 1.0f / peak, in float32
        frame = dsp.arm_mult_f32(frame, self.tables.window)
        spectrum = dsp.arm_rfft_fast_f32(self.rfft, frame, 0)
        nyquist = spectrum[1]
        spectrum[1] = 0.0
        magnitude = np.append(dsp.arm_cmplx_mag_f32(spectrum), np.float32(abs(nyquist)))
        if peak != 0.0:
            magnitude = dsp.arm_scale_f32(magnitude, peak)
        energies = np.array([dsp.arm_dot_prod_f32(magnitude[pos:pos + len(coefs)], coefs) for pos, coefs in self.filters],
                            dtype=np.float32)
        return dsp.arm_vlog_f32(dsp.arm_offset_f32(energies, LOG_OFFSET_F32))


@functools.lru_cache(maxsize=8)
def _engine(cfg: FrontEndConfig) -> _Engine:
    return _Engine(cfg)


def frame_buffer(pcm: np.ndarray, start: int, cfg: FrontEndConfig) -> np.ndarray:
    """Frame ``pcm[start:start + frame_samples]`` in a zeroed ``fft_samples`` buffer (int16, or float32 / 32768)."""
    buffer = np.zeros(cfg.fft_samples, dtype=np.int16)
    buffer[: cfg.frame_samples] = pcm[start:start + cfg.frame_samples]
    if cfg.arithmetic == "q15":
        return buffer
    return buffer.astype(np.float32) / np.float32(32768.0)


def compute_features(pcm: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Raw features of int16 clips ``(clip_samples,)`` or ``(N, clip_samples)``.

    Returns:
        ``(num_frames, num_features)`` or ``(N, num_frames, num_features)``: int16 (q15: q8.7
        values) or float32, in CMSIS-DSP's own results.
    """
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.shape[-1:] != (cfg.clip_samples,) or pcm.ndim not in (1, 2):
        raise ValueError(f"expected int16 PCM of shape (N, {cfg.clip_samples}) or ({cfg.clip_samples},), "
                         f"got {pcm.dtype} {pcm.shape}")
    clips = pcm.reshape(-1, cfg.clip_samples)
    frame = _engine(cfg).frame_function()
    out = np.empty((len(clips), cfg.num_frames, cfg.num_features), dtype=np.int16 if cfg.arithmetic == "q15" else np.float32)
    for i, clip in enumerate(clips):
        for f in range(cfg.num_frames):
            out[i, f] = frame(frame_buffer(clip, f * cfg.stride_samples, cfg))
    return out[0] if pcm.ndim == 1 else out


def features_to_float(raw: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """Raw features as float32 real values (``raw * raw_unit``)."""
    return (np.asarray(raw, dtype=np.float32) * np.float32(cfg.raw_unit)).astype(np.float32)


@dataclass(frozen=True)
class InputQuantization:
    """From real features to the model's int8 input: ``q = round((x - mean) / std / scale) + zero_point``.

    ``mean``/``std`` are the training normalization (real feature units), ``scale``/``zero_point``
    the int8 input tensor's quantization.
    """

    mean: float
    std: float
    scale: float
    zero_point: int


@dataclass(frozen=True)
class FixedPointQuantizer:
    """q15 features to int8 in integers: ``q = clamp(((raw * multiplier + bias) >> shift) + zero_point)``.

    ``multiplier`` (in ``[2**30, 2**31)``) and ``shift`` represent ``raw_unit / (std * scale)``;
    ``bias`` holds ``-mean / (std * scale)`` at the same shift plus the rounding half, so the
    result is ``floor(x + 0.5)`` of the exact value up to the multiplier's 31-bit precision.
    """

    multiplier: int
    shift: int
    bias: int
    zero_point: int


@dataclass(frozen=True)
class FloatQuantizer:
    """float32 features to int8: ``q = clamp(floor(raw * gain + offset))``, all float32 (offset holds zero point + 0.5)."""

    gain: float
    offset: float


def input_quantizer(cfg: FrontEndConfig, quant: InputQuantization) -> FixedPointQuantizer | FloatQuantizer:
    """The integer (q15) or float (f32) form of ``quant`` that ``features.c`` and :func:`quantize_features` use.

    Raises:
        ValueError: ``std`` or ``scale`` is not positive, or the mapping does not fit 64-bit integers.
    """
    if not (quant.std > 0.0 and quant.scale > 0.0):
        raise ValueError(f"input quantization needs std > 0 and scale > 0, got std={quant.std} scale={quant.scale}")
    gain = cfg.raw_unit / (quant.std * quant.scale)
    offset = -quant.mean / (quant.std * quant.scale)
    if cfg.arithmetic == "f32":
        return FloatQuantizer(gain=float(np.float32(gain)), offset=float(np.float32(offset + quant.zero_point + 0.5)))
    exponent = int(np.floor(np.log2(gain)))
    shift = 30 - exponent
    if not 1 <= shift <= 62:
        raise ValueError(f"input quantization gain {gain:g} per q15 unit is out of the fixed-point range")
    multiplier = int(round(gain * 2.0 ** shift))
    if multiplier == 1 << 31:  # rounding reached the next power of two
        multiplier, shift = 1 << 30, shift - 1
    bias = int(round(offset * 2.0 ** shift)) + (1 << (shift - 1))
    if abs(bias) >= 1 << 62:
        raise ValueError(f"input quantization offset {offset:g} is out of the fixed-point range")
    return FixedPointQuantizer(multiplier=multiplier, shift=shift, bias=bias, zero_point=int(quant.zero_point))


def quantize_features(raw: np.ndarray, cfg: FrontEndConfig, quant: InputQuantization) -> np.ndarray:
    """The model's int8 input from raw features, bit for bit as ``features.c`` computes it on the host."""
    quantizer = input_quantizer(cfg, quant)
    if isinstance(quantizer, FixedPointQuantizer):
        acc = np.asarray(raw, dtype=np.int64) * np.int64(quantizer.multiplier) + np.int64(quantizer.bias)
        q = (acc >> np.int64(quantizer.shift)) + quantizer.zero_point
    else:
        q = np.floor(np.asarray(raw, dtype=np.float32) * np.float32(quantizer.gain) + np.float32(quantizer.offset))
    return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)
