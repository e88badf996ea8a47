"""16-bit PCM mono WAV files, read and written with the standard library (no torchaudio).

Speech Commands (and the datasets :mod:`mcunas.data.espeak` writes) are 16 kHz, 16-bit, mono,
uncompressed WAV. :func:`read_wav` accepts exactly that and names the file in every error: a
file that is not WAV (or not uncompressed PCM), stereo, not 16-bit, at another sample rate,
empty, or shorter than its header declares (truncated).
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from mcunas.errors import DatasetError
from mcunas.io import atomic_path

SAMPLE_BYTES = 2


def read_wav(path: str | os.PathLike[str], sample_rate_hz: int) -> np.ndarray:
    """The samples of a 16-bit mono PCM WAV file at ``sample_rate_hz``, as int16.

    Raises:
        DatasetError: the file is missing, unreadable, not 16-bit mono PCM at ``sample_rate_hz``,
            has no samples, or is truncated (the message names the file and what is wrong).
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate, frames = (reader.getnchannels(), reader.getsampwidth(),
                                             reader.getframerate(), reader.getnframes())
            if channels != 1:
                raise DatasetError(f"{path}: {channels} channels, expected mono (1 channel)")
            if width != SAMPLE_BYTES:
                raise DatasetError(f"{path}: {8 * width}-bit samples, expected 16-bit PCM")
            if rate != sample_rate_hz:
                raise DatasetError(f"{path}: sample rate {rate} Hz, expected {sample_rate_hz} Hz")
            data = reader.readframes(frames)
    except FileNotFoundError:
        raise DatasetError(f"{path}: WAV file not found") from None
    except (wave.Error, EOFError) as error:
        raise DatasetError(f"{path}: not a readable 16-bit PCM WAV file ({error})") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read WAV file: {error}") from None
    if frames == 0:
        raise DatasetError(f"{path}: the WAV file holds no samples")
    if len(data) != frames * SAMPLE_BYTES:
        raise DatasetError(
            f"{path}: truncated: the header declares {frames} samples, the file holds {len(data) // SAMPLE_BYTES}"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate_hz: int) -> None:
    """Write int16 mono samples as a PCM WAV file, atomically."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"write_wav expects 1-D int16 samples, got {samples.dtype} {samples.shape}")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(SAMPLE_BYTES)
            writer.setframerate(sample_rate_hz)
            writer.writeframes(samples.astype("<i2").tobytes())
