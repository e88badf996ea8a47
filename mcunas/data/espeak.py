"""An offline keyword-spotting dataset in the Speech Commands layout, spoken by espeak-ng.

Real (synthesized) speech without a network: each "speaker" is an espeak-ng voice, voice variant,
speed and pitch; every speaker says every word ``repeats`` times (a little faster and higher each
time). A clip is the utterance resampled to 16 kHz (polyphase, ``scipy.signal.resample_poly``),
trimmed, scaled to a random peak level, placed at a random offset in 1 s and mixed with one of the
generated background noises at a random SNR. ``_background_noise_/`` holds those noises (white,
pink, brown, mains hum); speakers, not clips, are split into validation, test and training (as
Speech Commands splits by speaker), written as ``validation_list.txt`` / ``testing_list.txt``.
File names follow Speech Commands: ``<speaker hash>_nohash_<repeat>.wav``. ``espeak_dataset.json``
records the preset, seed, espeak-ng version and the speakers of each split.

Presets: ``tiny`` (the ten keywords and three other words, 10 speakers: 130 clips, about a second;
for tests) and ``quick`` (twenty words, 48 speakers x 2: 1,920 clips; for the quick experiment).
Needs the ``espeak-ng`` program (Debian package ``espeak-ng``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mcunas.data.audio_augment import mix_at_snr
from mcunas.data.speech_commands import BACKGROUND_DIR, KEYWORDS, TESTING_LIST, VALIDATION_LIST
from mcunas.data.wav import write_wav
from mcunas.errors import DatasetError
from mcunas.io import write_json

ESPEAK = "espeak-ng"
SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = SAMPLE_RATE_HZ
VOICES: tuple[str, ...] = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                           "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
SPEEDS_WPM: tuple[int, ...] = (130, 150, 170, 190)
PITCHES: tuple[int, ...] = (25, 40, 55, 70)
NOISES: tuple[str, ...] = ("white_noise", "pink_noise", "brown_noise", "hum")
SNR_DB_RANGE = (10.0, 30.0)
PEAK_RANGE = (0.2, 0.9)  # of full scale
TRIM_FRACTION = 0.02  # of the peak: quieter samples at either end are cut
NOISE_RMS = 0.1 * 32767
MANIFEST = "espeak_dataset.json"


@dataclass(frozen=True)
class EspeakPreset:
    """What to synthesize: ``words`` x ``speakers`` x ``repeats`` clips, noises of ``background_s`` seconds."""

    words: tuple[str, ...]
    speakers: int
    repeats: int
    val_speakers: int
    test_speakers: int
    background_s: float


PRESETS: dict[str, EspeakPreset] = {
    "tiny": EspeakPreset(words=KEYWORDS + ("bed", "cat", "marvin"), speakers=10, repeats=1, val_speakers=2,
                         test_speakers=2, background_s=3.0),
    "quick": EspeakPreset(words=KEYWORDS + ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila",
                                            "tree", "wow"),
                          speakers=48, repeats=2, val_speakers=6, test_speakers=6, background_s=30.0),
}


@dataclass(frozen=True)
class Speaker:
    voice: str
    variant: str
    speed_wpm: int
    pitch: int

    @property
    def name(self) -> str:
        """A stable id, the part of the file name before ``_nohash_``."""
        return hashlib.sha1(f"{self.voice}+{self.variant}|{self.speed_wpm}|{self.pitch}".encode()).hexdigest()[:8]


def espeak_version() -> str:
    """``espeak-ng --version``'s line (DatasetError when espeak-ng is missing)."""
    return _espeak(["--version"]).stdout.strip()


def _espeak(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    program = shutil.which(ESPEAK)
    if program is None:
        raise DatasetError(f"{ESPEAK} not found: install it (Debian package espeak-ng) to build the offline speech dataset")
    try:
        result = subprocess.run([program, *arguments], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DatasetError(f"{ESPEAK} {' '.join(arguments)}: {error}") from None
    if result.returncode != 0:
        raise DatasetError(f"{ESPEAK} {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result


def _speak(word: str, speaker: Speaker, repeat: int, folder: Path) -> np.ndarray:
    """The utterance at 16 kHz, int16, leading and trailing near-silence cut."""
    from scipy.signal import resample_poly

    path = folder / f"{speaker.name}-{word}-{repeat}.wav"
    _espeak(["-v", f"{speaker.voice}+{speaker.variant}", "-s", str(speaker.speed_wpm + 8 * repeat),
             "-p", str(min(99, speaker.pitch + 5 * repeat)), "-w", str(path), word])
    with wave.open(str(path), "rb") as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
    divisor = np.gcd(SAMPLE_RATE_HZ, rate)
    speech = resample_poly(samples, SAMPLE_RATE_HZ // divisor, rate // divisor)
    loud = np.flatnonzero(np.abs(speech) >= TRIM_FRACTION * np.abs(speech).max(initial=1.0))
    return speech[loud[0]:loud[-1] + 1] if len(loud) else speech


def _background(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.normal(size=samples)
    if kind == "pink_noise":  # 1/f power: amplitude 1/sqrt(f)
        spectrum = np.fft.rfft(white)
        spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
        noise = np.fft.irfft(spectrum, n=samples)
    elif kind == "brown_noise":  # integrated white noise, drift removed
        noise = np.cumsum(white)
        noise -= np.convolve(noise, np.ones(801) / 801, mode="same")
    elif kind == "hum":  # 50 Hz mains and harmonics over faint white noise
        t = np.arange(samples) / SAMPLE_RATE_HZ
        noise = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3, 5)) + 0.05 * white
    else:
        noise = white
    noise = noise * (NOISE_RMS / max(float(np.sqrt(np.mean(noise ** 2))), 1e-9))
    return np.clip(np.rint(noise), -32768, 32767).astype(np.int16)


def _clip(speech: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The utterance at a random peak level and offset in one second, mixed with a noise segment."""
    if len(speech) > CLIP_SAMPLES:
        start = (len(speech) - CLIP_SAMPLES) // 2
        speech = speech[start:start + CLIP_SAMPLES]
    speech = speech * (rng.uniform(*PEAK_RANGE) * 32767 / max(float(np.abs(speech).max()), 1.0))
    offset = int(rng.integers(CLIP_SAMPLES - len(speech) + 1))
    placed = np.zeros(CLIP_SAMPLES, dtype=np.int16)
    placed[offset:offset + len(speech)] = np.clip(np.rint(speech), -32768, 32767).astype(np.int16)
    start = int(rng.integers(len(noise) - CLIP_SAMPLES + 1))
    return mix_at_snr(placed, noise[start:start + CLIP_SAMPLES], float(rng.uniform(*SNR_DB_RANGE)))


def _speakers(preset: EspeakPreset, rng: np.random.Generator) -> list[Speaker]:
    grid = [Speaker(v, a, s, p) for v in VOICES for a in VARIANTS for s in SPEEDS_WPM for p in PITCHES]
    if preset.speakers > len(grid):
        raise DatasetError(f"espeak preset: {preset.speakers} speakers asked, {len(grid)} voice combinations exist")
    return [grid[i] for i in rng.choice(len(grid), size=preset.speakers, replace=False)]


def build_espeak_dataset(out_dir: str | os.PathLike[str], preset: str | EspeakPreset = "tiny", seed: int = 0) -> Path:
    """Write a Speech Commands-layout dataset spoken by espeak-ng into ``out_dir`` (see the module docstring).

    The folder is built beside ``out_dir`` and renamed into place, so a failure leaves nothing.

    Raises:
        DatasetError: ``out_dir`` exists and is not empty, the preset is unknown, or espeak-ng is missing or fails.
    """
    out_dir = Path(out_dir)
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise DatasetError(f"unknown espeak dataset preset {preset!r} (allowed: {', '.join(PRESETS)})")
        preset_name, preset = preset, PRESETS[preset]
    else:
        preset_name = "custom"
    if preset.val_speakers + preset.test_speakers >= preset.speakers:
        raise DatasetError("espeak preset: validation and test speakers leave none for training")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: exists and is not empty; choose a new folder for the espeak dataset")
    version = espeak_version()
    rng = np.random.default_rng(seed)
    speakers = _speakers(preset, rng)
    split_of = {speaker.name: "val" if i < preset.val_speakers else "test" if i < preset.val_speakers + preset.test_speakers
                else "train" for i, speaker in enumerate(speakers)}
    noise_samples = max(CLIP_SAMPLES, round(preset.background_s * SAMPLE_RATE_HZ))
    noises = {kind: _background(kind, noise_samples, rng) for kind in NOISES}
    jobs = [(word, speaker, repeat) for word in preset.words for speaker in speakers for repeat in range(preset.repeats)]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        staged, scratch = Path(tmp) / "dataset", Path(tmp) / "espeak"
        scratch.mkdir()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            utterances = list(pool.map(lambda job: _speak(*job, scratch), jobs))
        listed: dict[str, list[str]] = {"val": [], "test": []}
        for (word, speaker, repeat), speech in zip(jobs, utterances):
            relative = f"{word}/{speaker.name}_nohash_{repeat}.wav"
            noise = noises[NOISES[int(rng.integers(len(NOISES)))]]
            write_wav(staged / relative, _clip(speech, noise, rng), SAMPLE_RATE_HZ)
            listed.get(split_of[speaker.name], []).append(relative)
        for kind, noise in noises.items():
            write_wav(staged / BACKGROUND_DIR / f"{kind}.wav", noise, SAMPLE_RATE_HZ)
        for name, split in ((VALIDATION_LIST, "val"), (TESTING_LIST, "test")):
            (staged / name).write_text("".join(f"{entry}\n" for entry in sorted(listed[split])), encoding="utf-8")
        write_json(staged / MANIFEST, {
            "preset": preset_name, **asdict(preset), "seed": seed, "espeak": version,
            "speaker_splits": {split: sorted(f"{s.name}: {s.voice}+{s.variant}, {s.speed_wpm} wpm, pitch {s.pitch}"
                                       for s in speakers if split_of[s.name] == split) for split in ("train", "val", "test")},
        })
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staged, out_dir)
    return out_dir
