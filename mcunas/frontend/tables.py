"""The constant tables of a front end: window, mel filter bank and DCT matrix.

They are made by the ``cmsisdsp.mfcc`` helpers (the ones CMSIS-DSP documents for its MFCC) and
converted to the arithmetic of the front end (q15 with ``cmsisdsp.fixedpoint.toQ15``: rounded,
saturated; or float32). The same arrays initialize the Python feature extraction and are
written into the generated ``features.c``, so both compute with identical coefficients.

* window: ``fft_samples`` values, the periodic Hann or Hamming window of ``frame_samples``
  points (as ``tf.signal.hann_window``'s default) followed by zeros, so a frame is zero-padded
  to the FFT length by the window itself;
* mel filter bank in CMSIS-DSP's packed format: for filter ``i``, ``filter_lengths[i]``
  coefficients applied to the FFT magnitudes from bin ``filter_pos[i]`` on, all filters'
  coefficients concatenated in ``filter_coefs`` (triangles on the HTK mel scale
  ``1127 ln(1 + f / 700)``, peak 1, no area normalization);
* DCT: ``mfcc_coefficients x mel_filters`` row-major, DCT-II scaled by ``sqrt(2 / mel_filters)``
  (``tf.signal.mfccs_from_log_mel_spectrograms``'s scaling); empty for log-mel features.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcunas.frontend.config import FrontEndConfig


@dataclass(frozen=True)
class FrontEndTables:
    """The constant arrays of one front end (int16 q15 or float32; positions and lengths uint32)."""

    window: np.ndarray
    filter_pos: np.ndarray
    filter_lengths: np.ndarray
    filter_coefs: np.ndarray
    dct: np.ndarray


def _window(cfg: FrontEndConfig) -> np.ndarray:
    n = np.arange(cfg.frame_samples, dtype=np.float64)
    phase = np.cos(2.0 * np.pi * n / cfg.frame_samples)
    values = 0.5 - 0.5 * phase if cfg.window == "hann" else 0.54 - 0.46 * phase
    window = np.zeros(cfg.fft_samples, dtype=np.float64)
    window[: cfg.frame_samples] = values
    return window


@functools.lru_cache(maxsize=16)
def frontend_tables(cfg: FrontEndConfig) -> FrontEndTables:
    """The window, packed mel filter bank and DCT matrix of ``cfg``, in its arithmetic."""
    import cmsisdsp.datatype as dt
    from cmsisdsp.mfcc import dctMatrix, melFilterMatrix

    kind = dt.Q15 if cfg.arithmetic == "q15" else dt.F32
    dtype = np.int16 if cfg.arithmetic == "q15" else np.float32
    lengths, positions, coefs = melFilterMatrix(
        kind, cfg.fmin_hz, cfg.fmax_hz, cfg.mel_filters, cfg.sample_rate_hz, cfg.fft_samples
    )
    if cfg.features == "mfcc":
        dct = np.asarray(dctMatrix(kind, cfg.mfcc_coefficients, cfg.mel_filters), dtype=dtype)
    else:
        dct = np.zeros(0, dtype=dtype)
    tables = FrontEndTables(
        window=np.asarray(dt.convert(_window(cfg), kind), dtype=dtype),
        filter_pos=np.asarray(positions, dtype=np.uint32),
        filter_lengths=np.asarray(lengths, dtype=np.uint32),
        filter_coefs=np.asarray(coefs, dtype=dtype),
        dct=dct,
    )
    for array in (tables.window, tables.filter_pos, tables.filter_lengths, tables.filter_coefs, tables.dct):
        array.setflags(write=False)
    return tables
