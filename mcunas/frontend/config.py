"""The front-end settings: which audio features a keyword-spotting model reads.

:class:`FrontEndConfig` is the ``dataset.speech_commands.front_end`` section of an experiment
config and the one description every part of the front end is built from (the Python feature
extraction, the feature cache key, the generated ``features.c``, the memory figures).

Defaults are MLPerf Tiny keyword spotting's (``benchmark/training/keyword_spotting`` of
github.com/mlcommons/tiny: ``kws_util.py`` and ``get_dataset.py``): 16 kHz, 1 s clips, a 30 ms
Hann window every 20 ms, a 512-point FFT (the next power of two, as ``tf.signal.stft`` with
``fft_length=None``), 40 mel filters from 20 Hz to 4 kHz, 10 MFCCs: a 49 x 10 input. The same
49 x 10 shape results from ARM's ML-KWS-for-MCU 40 ms / 20 ms framing, which is one setting away
(``window_ms: 40``, giving a 1024-point FFT).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from mcunas.schema import Section

FeatureKind = Literal["mfcc", "log_mel"]
Arithmetic = Literal["q15", "f32"]
WindowName = Literal["hann", "hamming"]

# FFT lengths CMSIS-DSP has size-specific MFCC initializers for (arm_mfcc_init_<N>_q15/_f32).
FFT_LENGTHS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048, 4096)

# One unit of a q15 feature is 2**-7: arm_mfcc_q15 returns its coefficients in q8.7.
Q15_FEATURE_FRACTION_BITS = 7


class FrontEndConfig(Section):
    """MFCC or log-mel features computed frame by frame by CMSIS-DSP, in q15 or float32.

    A clip of ``clip_ms`` at ``sample_rate_hz`` (16-bit PCM) is cut into ``num_frames`` frames of
    ``window_ms`` every ``stride_ms`` (no padding at the ends); each frame is zero-padded to
    ``fft_samples``, windowed, and turned into ``num_features`` values.
    """

    features: FeatureKind = Field(default="mfcc", description="mfcc (arm_mfcc_*) or log_mel (the same steps without the DCT)")
    arithmetic: Arithmetic = Field(default="q15", description="q15 fixed point or float32, as the device computes")
    sample_rate_hz: int = Field(default=16000, ge=8000, le=48000)
    clip_ms: int = Field(default=1000, ge=100, le=10000, description="length of one clip (the model input)")
    window_ms: float = Field(default=30.0, gt=0.0)
    stride_ms: float = Field(default=20.0, gt=0.0)
    fft_length: int | None = Field(default=None, description="FFT points; null: the smallest power of two >= the window")
    window: WindowName = "hann"
    mel_filters: int = Field(default=40, ge=2, le=128)
    fmin_hz: float = Field(default=20.0, ge=0.0)
    fmax_hz: float = Field(default=4000.0, gt=0.0)
    mfcc_coefficients: int = Field(default=10, ge=1, le=128, description="mfcc only: DCT outputs kept per frame")

    @model_validator(mode="after")
    def _check_geometry(self) -> FrontEndConfig:
        for key in ("window_ms", "stride_ms"):
            samples = self.sample_rate_hz * getattr(self, key) / 1000.0
            if abs(samples - round(samples)) > 1e-9:
                raise ValueError(f"{key}: {getattr(self, key)} ms is not a whole number of samples at {self.sample_rate_hz} Hz")
        if self.frame_samples > self.clip_samples:
            raise ValueError(f"window_ms: the window ({self.window_ms} ms) is longer than the clip ({self.clip_ms} ms)")
        if self.fft_length is not None:
            if self.fft_length not in FFT_LENGTHS:
                raise ValueError(f"fft_length: {self.fft_length} is not one of {', '.join(map(str, FFT_LENGTHS))}")
            if self.fft_length < self.frame_samples:
                raise ValueError(f"fft_length: {self.fft_length} is shorter than the window ({self.frame_samples} samples)")
        elif self.fft_samples > FFT_LENGTHS[-1]:
            raise ValueError(f"window_ms: {self.frame_samples} samples need an FFT longer than {FFT_LENGTHS[-1]}")
        nyquist_hz = self.sample_rate_hz / 2.0
        # The last FFT bin (Nyquist) must lie outside every filter: CMSIS-DSP's float MFCC leaves it unset.
        if not self.fmin_hz < self.fmax_hz < nyquist_hz:
            raise ValueError(f"fmin_hz < fmax_hz < {nyquist_hz:g} (half the sample rate) is required, "
                             f"got {self.fmin_hz:g} and {self.fmax_hz:g}")
        if self.features == "mfcc" and self.mfcc_coefficients > self.mel_filters:
            raise ValueError(f"mfcc_coefficients: {self.mfcc_coefficients} is more than mel_filters ({self.mel_filters})")
        self._check_filters_cover_bins()
        return self

    def _check_filters_cover_bins(self) -> None:
        """Every mel triangle must contain an FFT bin (``cmsisdsp.mfcc.melFilterMatrix`` silently
        repeats the previous filter otherwise)."""
        from cmsisdsp.mfcc import frequencyToMelSpace

        edges = np.linspace(frequencyToMelSpace(self.fmin_hz), frequencyToMelSpace(self.fmax_hz), self.mel_filters + 2)
        bins = frequencyToMelSpace(np.linspace(0.0, self.sample_rate_hz / 2.0, self.fft_samples // 2 + 1))
        for index in range(self.mel_filters):
            if not np.any((bins > edges[index]) & (bins < edges[index + 2])):
                raise ValueError(
                    f"mel_filters: filter {index} ({edges[index]:.1f}..{edges[index + 2]:.1f} mel) contains no FFT bin; "
                    "use fewer mel_filters, a higher fmin_hz or a longer fft_length"
                )

    @property
    def clip_samples(self) -> int:
        return self.sample_rate_hz * self.clip_ms // 1000

    @property
    def frame_samples(self) -> int:
        return round(self.sample_rate_hz * self.window_ms / 1000.0)

    @property
    def stride_samples(self) -> int:
        return round(self.sample_rate_hz * self.stride_ms / 1000.0)

    @property
    def fft_samples(self) -> int:
        """The FFT length used: ``fft_length`` or the smallest power of two holding a window."""
        if self.fft_length is not None:
            return self.fft_length
        return max(FFT_LENGTHS[0], 1 << (self.frame_samples - 1).bit_length())

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.frame_samples) // self.stride_samples

    @property
    def num_features(self) -> int:
        """Values per frame: MFCC coefficients, or one log energy per mel filter."""
        return self.mfcc_coefficients if self.features == "mfcc" else self.mel_filters

    @property
    def input_shape(self) -> tuple[int, int]:
        """The model input, ``(num_frames, num_features)`` (height x width, one channel)."""
        return self.num_frames, self.num_features

    @property
    def raw_unit(self) -> float:
        """The real value of one unit of a raw feature: 2**-7 in q15 (q8.7), 1.0 in float32."""
        return 2.0 ** -Q15_FEATURE_FRACTION_BITS if self.arithmetic == "q15" else 1.0
