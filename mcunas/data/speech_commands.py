"""Google Speech Commands v0.02 in its own layout, as keyword-spotting features.

Layout (the canonical archive's): one folder per word of 16 kHz mono 16-bit WAV clips of at most
1 s, ``validation_list.txt`` and ``testing_list.txt`` (paths ``word/file.wav``; every clip not
listed is training data) and ``_background_noise_/`` (long recordings of noise). Tasks:

* ``12``: the ten keywords yes, no, up, down, left, right, on, off, stop, go (the default
  ``wanted_words`` of TensorFlow's ``tensorflow/examples/speech_commands``, and MLPerf Tiny KWS's
  ten) plus ``_silence_`` and ``_unknown_``, class order ``[_silence_, _unknown_, yes, ...]``
  as that example's ``input_data.prepare_words_list``. As its ``prepare_data_index``: every split
  holds all its keyword clips, ``ceil(10 %)`` of that count of silence clips (a background segment
  at a random volume) and as many unknown clips drawn from the other words' clips of the split,
  with a fixed seed (59185, ``input_data.RANDOM_SEED``), so the composition does not depend on
  the experiment seed;
* ``35``: the 35 words of v0.02, one class each, sorted (the Speech Commands paper's task).

Each split's clips are turned into features by the front end (:mod:`mcunas.frontend`, CMSIS-DSP),
cached on disk per split (:mod:`mcunas.data.feature_cache`; by default under
``data_dir/.mcunas-features``), and normalized with one mean and std computed on the training
split (real feature units). The training split gets ``augment.copies`` augmented versions of each
clip (:mod:`mcunas.data.audio_augment`). :func:`download_speech_commands` fetches and verifies
the canonical archive.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mcunas.data.audio_augment import AudioAugmentConfig, ClipRecipe, draw_augmentations, draw_silence, render_clip
from mcunas.data.feature_cache import cached_array
from mcunas.data.splits import TEST_SUBSET_SEED, DatasetSplits, Split, stratified_split
from mcunas.data.wav import read_wav
from mcunas.errors import DatasetError
from mcunas.frontend import FrontEndConfig, compute_features, features_to_float

KEYWORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
WORDS_V2: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
    "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
TASKS: tuple[int, ...] = (12, 35)
SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
SILENCE_PERCENTAGE = 10.0
UNKNOWN_PERCENTAGE = 10.0
COMPOSITION_SEED = 59185

BACKGROUND_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SPLITS: tuple[str, ...] = ("train", "val", "test")
CACHE_DIR_NAME = ".mcunas-features"

# tensorflow/datasets: tensorflow_datasets/url_checksums/speech_commands.txt
ARCHIVE_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
ARCHIVE_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
ARCHIVE_BYTES = 2428923189
_CHUNK_BYTES = 1 << 20


def class_names(task: int) -> tuple[str, ...]:
    """The class of each label index of ``task`` (12 or 35)."""
    if task == 12:
        return (SILENCE_LABEL, UNKNOWN_LABEL, *KEYWORDS)
    if task == 35:
        return WORDS_V2
    raise DatasetError(f"unknown Speech Commands task {task!r} (allowed: {', '.join(map(str, TASKS))})")


@dataclass(frozen=True)
class SpeechCommandsIndex:
    """What a Speech Commands folder holds: clips per word and split (relative paths), noise files."""

    data_dir: Path
    clips: dict[str, dict[str, list[str]]]  # split -> word -> sorted relative paths
    background: list[Path]

    @property
    def words(self) -> list[str]:
        return sorted({word for per_word in self.clips.values() for word in per_word})


def _read_list(path: Path, data_dir: Path) -> set[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: split list not found (a Speech Commands folder has {VALIDATION_LIST} and "
                           f"{TESTING_LIST})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read split list: {error}") from None
    entries = set()
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry:
            continue
        if len(Path(entry).parts) != 2 or ".." in Path(entry).parts or not (data_dir / entry).is_file():
            raise DatasetError(f"{path}: line {number}: {entry!r} is not a clip of {data_dir} (word/file.wav)")
        entries.add(entry)
    return entries


def scan_speech_commands(data_dir: str | os.PathLike[str]) -> SpeechCommandsIndex:
    """Index a Speech Commands folder (see the module docstring for the layout).

    Raises:
        DatasetError: the folder, a split list, the background folder or a listed clip is missing,
            or a word folder holds no WAV file (the message names it).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: Speech Commands folder not found")
    validation = _read_list(data_dir / VALIDATION_LIST, data_dir)
    testing = _read_list(data_dir / TESTING_LIST, data_dir)
    background_dir = data_dir / BACKGROUND_DIR
    background = sorted(background_dir.glob("*.wav")) if background_dir.is_dir() else []
    if not background:
        raise DatasetError(f"{background_dir}: no background noise WAV files (needed for silence and noise mixing)")
    clips: dict[str, dict[str, list[str]]] = {split: {} for split in SPLITS}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        names = sorted(p.name for p in folder.glob("*.wav"))
        if not names:
            raise DatasetError(f"{folder}: class folder holds no .wav clips")
        for name in names:
            relative = f"{folder.name}/{name}"
            split = "val" if relative in validation else "test" if relative in testing else "train"
            clips[split].setdefault(folder.name, []).append(relative)
    return SpeechCommandsIndex(data_dir=data_dir, clips=clips, background=background)


def _check_words(index: SpeechCommandsIndex, task: int) -> None:
    required = KEYWORDS if task == 12 else WORDS_V2
    present = set(index.words)
    for word in required:
        if word not in present:
            raise DatasetError(f"{index.data_dir / word}: class folder missing (task {task} needs {', '.join(required)})")
    if task == 12 and not present - set(KEYWORDS):
        raise DatasetError(f"{index.data_dir}: no word folders besides the ten keywords, so no {UNKNOWN_LABEL} clips")
    for split in SPLITS:
        if not any(index.clips[split].get(word) for word in required):
            raise DatasetError(f"{index.data_dir}: the {split} split has no clips of the task's words "
                               f"(check {VALIDATION_LIST} / {TESTING_LIST})")


def compose_splits(index: SpeechCommandsIndex, task: int, noise_lengths: list[int], clip_samples: int) -> dict[str, list[ClipRecipe]]:
    """The clips of each split for ``task`` (composition of the module docstring), before augmentation."""
    _check_words(index, task)
    names = class_names(task)
    rng = np.random.default_rng(COMPOSITION_SEED)
    splits = {}
    for split in SPLITS:
        per_word = index.clips[split]
        if task == 35:
            splits[split] = [ClipRecipe(source=path, label=names.index(word))
                             for word in WORDS_V2 for path in per_word.get(word, [])]
            continue
        recipes = [ClipRecipe(source=path, label=names.index(word)) for word in KEYWORDS for path in per_word.get(word, [])]
        extra = math.ceil(len(recipes) * SILENCE_PERCENTAGE / 100.0)
        silence = [draw_silence(names.index(SILENCE_LABEL), noise_lengths, clip_samples, rng) for _ in range(extra)]
        unknown_pool = [path for word in sorted(per_word) if word not in KEYWORDS for path in per_word[word]]
        picks = rng.permutation(len(unknown_pool))[: math.ceil(len(recipes) * UNKNOWN_PERCENTAGE / 100.0)]
        unknown = [ClipRecipe(source=unknown_pool[i], label=names.index(UNKNOWN_LABEL)) for i in sorted(picks)]
        splits[split] = recipes + silence + unknown
    return splits


def _subset(recipes: list[ClipRecipe], count: int | None, rng: np.random.Generator) -> list[ClipRecipe]:
    if count is None or count >= len(recipes):
        return recipes
    chosen, _ = stratified_split(np.array([r.label for r in recipes]), count, rng)
    return [recipes[i] for i in sorted(chosen)]


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _raw_features(
    recipes: list[ClipRecipe], index: SpeechCommandsIndex, noises: list[np.ndarray], front_end: FrontEndConfig,
    cache_dir: Path,
) -> np.ndarray:
    """Raw front-end features of ``recipes`` ``(N, frames, features)``, from the cache when it has them."""
    from cmsisdsp import __version__ as cmsisdsp_version

    sources = sorted({r.source for r in recipes if r.source is not None})
    description = {
        "front_end": front_end.model_dump(mode="json"),
        "cmsisdsp": cmsisdsp_version,
        "recipes": [r.key() for r in recipes],
        "files": {source: _file_stamp(index.data_dir / source) for source in sources},
        "background": [[path.name, *_file_stamp(path)] for path in index.background],
    }

    def compute() -> np.ndarray:
        dtype = np.int16 if front_end.arithmetic == "q15" else np.float32
        out = np.empty((len(recipes), front_end.num_frames, front_end.num_features), dtype=dtype)
        for i, recipe in enumerate(recipes):
            recording = None if recipe.source is None else read_wav(index.data_dir / recipe.source, front_end.sample_rate_hz)
            out[i] = compute_features(render_clip(recipe, recording, noises, front_end.clip_samples), front_end)
        return out

    return cached_array(cache_dir, description, compute)


@dataclass(frozen=True)
class AudioDatasetSplits(DatasetSplits):
    """:class:`DatasetSplits` of an audio dataset: ``x`` is ``(N, 1, num_frames, num_features)``.

    ``resolution`` is ``num_frames`` (the input is not square: see ``front_end.input_shape``);
    ``mean``/``std`` (one value each) normalize real feature values. ``test_raw`` holds the test
    split's raw front-end features, from which :func:`mcunas.frontend.quantize_features` makes the
    exact int8 inputs ``features.c`` computes on the device.
    """

    front_end: FrontEndConfig
    class_names: tuple[str, ...]
    test_raw: np.ndarray


def load_speech_commands(
    data_dir: str | os.PathLike[str],
    *,
    task: int = 12,
    front_end: FrontEndConfig | None = None,
    augment: AudioAugmentConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
) -> AudioDatasetSplits:
    """Speech Commands (or a folder in its layout) as normalized front-end features.

    Args:
        task: 12 (ten keywords + silence + unknown) or 35 (all words).
        front_end: the features (default: MLPerf Tiny KWS's MFCC, 49 x 10).
        augment: training augmentation (default: one augmented copy of each training clip).
        cache_dir: feature cache folder (default ``data_dir/.mcunas-features``).
        max_train_samples: limit of train + val together (both shrunk in proportion, stratified).
        max_test_samples: limit of the test split (stratified, fixed seed).

    Raises:
        DatasetError: missing or malformed files (the message names the file).
    """
    front_end = front_end or FrontEndConfig()
    augment = augment or AudioAugmentConfig()
    names = class_names(task)
    index = scan_speech_commands(data_dir)
    noises = [read_wav(path, front_end.sample_rate_hz) for path in index.background]
    for path, noise in zip(index.background, noises):
        if len(noise) < front_end.clip_samples:
            raise DatasetError(f"{path}: background recording of {len(noise)} samples is shorter than one clip "
                               f"({front_end.clip_samples})")
    lengths = [len(noise) for noise in noises]
    recipes = compose_splits(index, task, lengths, front_end.clip_samples)
    rng = np.random.default_rng(COMPOSITION_SEED)
    if max_train_samples is not None:
        pool = len(recipes["train"]) + len(recipes["val"])
        n_val = min(max(1, round(max_train_samples * len(recipes["val"]) / pool)), max_train_samples - 1)
        recipes["train"] = _subset(recipes["train"], max_train_samples - n_val, rng)
        recipes["val"] = _subset(recipes["val"], n_val, rng)
    recipes["test"] = _subset(recipes["test"], max_test_samples, np.random.default_rng(TEST_SUBSET_SEED))
    recipes["train"] = recipes["train"] + draw_augmentations(recipes["train"], augment, lengths, front_end.clip_samples,
                                                             front_end.sample_rate_hz)
    cache = Path(cache_dir) if cache_dir is not None else index.data_dir / CACHE_DIR_NAME
    raw = {split: _raw_features(recipes[split], index, noises, front_end, cache) for split in SPLITS}
    real = {split: features_to_float(raw[split], front_end) for split in SPLITS}
    mean = float(real["train"].mean(dtype=np.float64))
    std = max(float(real["train"].std(dtype=np.float64)), 1e-6)

    def split_of(name: str) -> Split:
        x = ((real[name] - np.float32(mean)) / np.float32(std)).astype(np.float32)[:, None, :, :]
        return Split(np.ascontiguousarray(x), np.array([r.label for r in recipes[name]], dtype=np.int64))

    return AudioDatasetSplits(
        name="speech_commands",
        train=split_of("train"),
        val=split_of("val"),
        test=split_of("test"),
        num_classes=len(names),
        input_channels=1,
        resolution=front_end.num_frames,
        mean=(mean,),
        std=(std,),
        front_end=front_end,
        class_names=names,
        test_raw=raw["test"],
    )


def _has_layout(data_dir: Path) -> bool:
    return (data_dir / VALIDATION_LIST).is_file() and (data_dir / TESTING_LIST).is_file() and (data_dir / BACKGROUND_DIR).is_dir()


def _fetch(url: str, destination: Path, timeout_s: float) -> Iterator[bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - fixed or caller-given URL
            while chunk := response.read(_CHUNK_BYTES):
                yield chunk
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(f"could not download {url} into {destination}: {error}") from None


def download_speech_commands(
    data_dir: str | os.PathLike[str], url: str = ARCHIVE_URL, sha256: str = ARCHIVE_SHA256, timeout_s: float = 60.0,
) -> Path:
    """Fetch the Speech Commands archive into ``data_dir``, check its SHA-256, extract it there.

    Nothing is done when ``data_dir`` already holds the layout (both split lists and the
    background folder). The archive is streamed to a temporary file beside ``data_dir`` (2.4 GB for
    v0.02), extracted into a temporary folder (tar's ``data`` filter: no links out, no absolute
    paths) and moved into place, the split lists last; it is deleted afterwards.

    Raises:
        DatasetError: the download failed or its checksum differs (nothing is extracted), or the
            archive is not a Speech Commands archive.
    """
    data_dir = Path(data_dir)
    if _has_layout(data_dir):
        return data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".download-") as tmp:
        archive = Path(tmp) / "speech_commands.tar.gz"
        digest = hashlib.sha256()
        with open(archive, "wb") as handle:
            for chunk in _fetch(url, data_dir, timeout_s):
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != sha256:
            raise DatasetError(f"{url}: SHA-256 {digest.hexdigest()}, expected {sha256} (corrupt or not the archive); "
                               f"nothing extracted into {data_dir}")
        staged = Path(tmp) / "extracted"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staged, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DatasetError(f"{url}: cannot extract the archive: {error}") from None
        if not _has_layout(staged):
            raise DatasetError(f"{url}: the archive has no {VALIDATION_LIST}, {TESTING_LIST} and {BACKGROUND_DIR}/ "
                               f"at its top level")
        last = [VALIDATION_LIST, TESTING_LIST]
        for entry in sorted(staged.iterdir(), key=lambda p: p.name in last):
            target = data_dir / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    return data_dir
