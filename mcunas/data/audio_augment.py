"""How each audio clip of a split is made: a recording, shifted in time, mixed with background noise.

A :class:`ClipRecipe` describes one clip completely (which WAV, which shift, which noise segment at
which level), so a split is a list of recipes: rendering them is deterministic and their list is
what the feature cache is keyed by. Recipes come from the dataset's composition (silence clips
are background noise at a random volume, as TensorFlow's speech_commands ``input_data.py``) and,
for the training split, from :func:`draw_augmentations`: ``copies`` augmented versions of every
training clip, each with a uniform time shift of up to ``time_shift_ms`` (zero-padded, as
``input_data.py``; MLPerf Tiny KWS uses 100 ms) and, with probability ``noise_probability``
(MLPerf Tiny's ``background_frequency`` 0.8), a random background segment mixed at a uniform SNR
in ``[snr_db_min, snr_db_max]`` (power ratio over the whole clip). Audio stays int16 PCM
throughout (rounded, saturated), as a microphone delivers it to ``features.c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from mcunas.schema import Section


class AudioAugmentConfig(Section):
    """Training-set augmentation of audio datasets (``dataset.speech_commands.augment``)."""

    copies: int = Field(default=1, ge=0, le=32, description="augmented versions of each training clip (0: none)")
    time_shift_ms: float = Field(default=100.0, ge=0.0, description="largest shift either way")
    noise_probability: float = Field(default=0.8, ge=0.0, le=1.0, description="share of augmented clips mixed with noise")
    snr_db_min: float = Field(default=5.0, ge=-20.0, le=60.0)
    snr_db_max: float = Field(default=20.0, ge=-20.0, le=60.0)
    seed: int = Field(default=0, ge=0, description="seed of the augmentation draws (independent of the experiment seed)")

    @model_validator(mode="after")
    def _check_snr_range(self) -> AudioAugmentConfig:
        if self.snr_db_min > self.snr_db_max:
            raise ValueError(f"snr_db_min ({self.snr_db_min}) is above snr_db_max ({self.snr_db_max})")
        return self


@dataclass(frozen=True)
class ClipRecipe:
    """One clip: ``source`` (a WAV path relative to the dataset folder; None for silence), shifted
    by ``shift_samples`` (positive: later), plus background ``noise`` (index into the background
    recordings; -1: none) from ``noise_offset`` at ``snr_db`` (speech) or scaled by ``volume`` (silence).
    """

    source: str | None
    label: int
    shift_samples: int = 0
    noise: int = -1
    noise_offset: int = 0
    snr_db: float = 0.0
    volume: float = 0.0

    def key(self) -> list[object]:
        """The recipe as plain values (for the feature cache key)."""
        return [self.source, self.label, self.shift_samples, self.noise, self.noise_offset, self.snr_db, self.volume]


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples, zero-padded at the end when shorter (as ``decode_wav(desired_samples)``)."""
    out = np.zeros(length, dtype=np.int16)
    out[: min(length, len(samples))] = samples[:length]
    return out


def time_shift(samples: np.ndarray, shift: int) -> np.ndarray:
    """``samples`` moved by ``shift`` samples (positive: later), zero-filled, same length."""
    out = np.zeros_like(samples)
    if abs(shift) >= len(samples):
        return out
    if shift >= 0:
        out[shift:] = samples[: len(samples) - shift]
    else:
        out[:shift] = samples[-shift:]
    return out


def _to_int16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``g`` making the power ratio ``snr_db`` (unchanged if either is silent)."""
    speech_power = float(np.mean(speech.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if speech_power == 0.0 or noise_power == 0.0:
        return speech.copy()
    gain = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return _to_int16(speech.astype(np.float64) + gain * noise.astype(np.float64))


def render_clip(recipe: ClipRecipe, recording: np.ndarray | None, noises: list[np.ndarray], clip_samples: int) -> np.ndarray:
    """The int16 PCM clip ``recipe`` describes (``recording``: the WAV's samples, None for silence)."""
    segment = None
    if recipe.noise >= 0:
        segment = noises[recipe.noise][recipe.noise_offset:recipe.noise_offset + clip_samples]
    if recipe.source is None:
        if segment is None:
            return np.zeros(clip_samples, dtype=np.int16)
        return _to_int16(segment.astype(np.float64) * recipe.volume)
    clip = time_shift(fit_length(recording, clip_samples), recipe.shift_samples)
    return clip if segment is None else mix_at_snr(clip, segment, recipe.snr_db)


def _draw_segment(noise_lengths: list[int], clip_samples: int, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly drawn background recording and a start inside it leaving ``clip_samples``."""
    noise = int(rng.integers(len(noise_lengths)))
    return noise, int(rng.integers(noise_lengths[noise] - clip_samples + 1))


def draw_silence(label: int, noise_lengths: list[int], clip_samples: int, rng: np.random.Generator) -> ClipRecipe:
    """A silence clip: a random background segment at a volume uniform in [0, 1) (``input_data.py``)."""
    if not noise_lengths:
        return ClipRecipe(source=None, label=label)
    noise, offset = _draw_segment(noise_lengths, clip_samples, rng)
    return ClipRecipe(source=None, label=label, noise=noise, noise_offset=offset, volume=float(rng.uniform(0.0, 1.0)))


def draw_augmentations(
    recipes: list[ClipRecipe], cfg: AudioAugmentConfig, noise_lengths: list[int], clip_samples: int,
    sample_rate_hz: int,
) -> list[ClipRecipe]:
    """``cfg.copies`` augmented versions of every recipe (silence clips get a new silence draw), seeded by ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    max_shift = round(cfg.time_shift_ms * sample_rate_hz / 1000.0)
    out = []
    for _ in range(cfg.copies):
        for recipe in recipes:
            if recipe.source is None:
                out.append(draw_silence(recipe.label, noise_lengths, clip_samples, rng))
                continue
            shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift else 0
            if noise_lengths and rng.uniform() < cfg.noise_probability:
                noise, offset = _draw_segment(noise_lengths, clip_samples, rng)
                out.append(ClipRecipe(source=recipe.source, label=recipe.label, shift_samples=shift, noise=noise,
                                      noise_offset=offset, snr_db=float(rng.uniform(cfg.snr_db_min, cfg.snr_db_max))))
            else:
                out.append(ClipRecipe(source=recipe.source, label=recipe.label, shift_samples=shift))
    return out
