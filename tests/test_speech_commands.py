"""Speech Commands layout: tasks, composition, feature cache, augmentation, bad audio, download, espeak builder."""

from __future__ import annotations

import functools
import hashlib
import http.server
import math
import shutil
import tarfile
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from mcunas.cli import main
from mcunas.config import parse_experiment
from mcunas.data import AudioAugmentConfig, load_dataset, load_dataset_at, load_speech_commands
from mcunas.data.config import DatasetConfig, SpeechCommandsConfig
from mcunas.data.audio_augment import ClipRecipe, draw_augmentations, mix_at_snr, render_clip, time_shift
from mcunas.data.config import DatasetConfig, SpeechCommandsConfig
from mcunas.data.espeak import PRESETS, build_espeak_dataset
from mcunas.data.speech_commands import (
    CACHE_DIR_NAME,
    KEYWORDS,
    class_names,
    download_speech_commands,
    scan_speech_commands,
)
from mcunas.data.wav import read_wav, write_wav
from mcunas.errors import ConfigError, DatasetError
from mcunas.frontend import FrontEndConfig, InputQuantization, quantize_features

NO_AUGMENT = AudioAugmentConfig(copies=0)


@pytest.fixture
def dataset_copy(espeak_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the espeak dataset to damage."""
    return Path(shutil.copytree(espeak_dataset, tmp_path / "speech", ignore=shutil.ignore_patterns(CACHE_DIR_NAME)))


def test_espeak_dataset_has_the_speech_commands_layout(espeak_dataset: Path):
    index = scan_speech_commands(espeak_dataset)
    preset = PRESETS["tiny"]
    assert index.words == sorted(preset.words)
    assert len(index.background) == 4
    counts = {split: sum(len(paths) for paths in per_word.values()) for split, per_word in index.clips.items()}
    words = len(preset.words)
    assert counts == {"train": words * 6, "val": words * 2, "test": words * 2}  # split by speaker: 6 / 2 / 2
    speakers = {split: {Path(p).name.split("_nohash_")[0] for paths in per_word.values() for p in paths}
                for split, per_word in index.clips.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["val"] & speakers["test"]
    clip = read_wav(espeak_dataset / index.clips["test"]["yes"][0], 16000)
    assert clip.shape == (16000,) and np.abs(clip).max() > 3000  # spoken, at a real level


def test_twelve_class_composition(espeak_dataset: Path):
    splits = load_speech_commands(espeak_dataset, augment=NO_AUGMENT)
    assert splits.class_names == ("_silence_", "_unknown_", *KEYWORDS) and splits.num_classes == 12
    for split, speakers in (("train", 6), ("val", 2), ("test", 2)):
        counts = np.bincount(getattr(splits, split).y, minlength=12)
        keywords = 10 * speakers
        # TF input_data.py: ceil(10 %) of the keyword clips each of silence and unknown
        assert counts[2:].tolist() == [speakers] * 10
        assert counts[0] == counts[1] == math.ceil(keywords * 0.1)
    assert splits.train.x.shape[1:] == (1, 49, 10) and splits.train.x.dtype == np.float32
    assert abs(float(splits.train.x.mean())) < 1e-4 and abs(float(splits.train.x.std()) - 1.0) < 1e-3
    assert splits.test_raw.shape == (len(splits.test), 49, 10) and splits.test_raw.dtype == np.int16
    # the normalized test inputs are the raw features, so device int8 inputs follow from test_raw
    real = splits.test.x[:, 0] * splits.std[0] + splits.mean[0]
    np.testing.assert_allclose(real, splits.test_raw / 128.0, atol=1e-4)
    q = quantize_features(splits.test_raw, splits.front_end, InputQuantization(splits.mean[0], splits.std[0], 0.05, 0))
    assert q.shape == splits.test_raw.shape


def test_thirty_five_word_task_needs_every_word(espeak_dataset: Path):
    assert len(class_names(35)) == 35
    with pytest.raises(DatasetError, match=r"speech/backward: class folder missing \(task 35 needs"):
        load_speech_commands(espeak_dataset, task=35)


def test_augmentation_adds_seeded_copies(espeak_dataset: Path, tmp_path: Path):
    augment = AudioAugmentConfig(copies=2, seed=3)
    a = load_speech_commands(espeak_dataset, augment=augment, cache_dir=tmp_path)
    clean = load_speech_commands(espeak_dataset, augment=NO_AUGMENT, cache_dir=tmp_path)
    assert len(a.train) == 3 * len(clean.train) and len(a.test) == len(clean.test)
    np.testing.assert_array_equal(a.test_raw, clean.test_raw)  # val/test are never augmented
    b = load_speech_commands(espeak_dataset, augment=augment, cache_dir=tmp_path)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    other = load_speech_commands(espeak_dataset, augment=AudioAugmentConfig(copies=2, seed=4), cache_dir=tmp_path)
    assert not np.array_equal(a.train.x, other.train.x)


def test_time_shift_and_snr_mixing():
    rng = np.random.default_rng(0)
    speech = (rng.normal(size=16000) * 3000).astype(np.int16)
    shifted = time_shift(speech, 1600)
    np.testing.assert_array_equal(shifted[1600:], speech[:-1600])
    assert np.all(shifted[:1600] == 0) and np.all(time_shift(speech, -20000) == 0)
    noise = (rng.normal(size=16000) * 500).astype(np.int16)
    mixed = mix_at_snr(speech, noise, 10.0).astype(np.float64)
    residual = mixed - speech
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(residual ** 2))
    assert abs(snr - 10.0) < 0.05
    silence = render_clip(ClipRecipe(source=None, label=0, noise=0, noise_offset=100, volume=0.5), None, [noise], 16000)
    np.testing.assert_array_equal(silence, np.rint(noise[100:16100] * 0.5).astype(np.int16))
    recipes = [ClipRecipe(source="yes/a.wav", label=2), ClipRecipe(source=None, label=0)]
    drawn = draw_augmentations(recipes, AudioAugmentConfig(copies=30, noise_probability=0.5), [20000], 16000, 16000)
    speech_drawn = [r for r in drawn if r.source]
    assert len(drawn) == 60 and all(abs(r.shift_samples) <= 1600 for r in speech_drawn)
    assert 5 < sum(r.noise >= 0 for r in speech_drawn) < 25
    assert all(5.0 <= r.snr_db <= 20.0 for r in speech_drawn if r.noise >= 0)


def test_feature_cache_is_keyed_by_config_and_files(dataset_copy: Path):
    cache = dataset_copy / CACHE_DIR_NAME
    load_speech_commands(dataset_copy, augment=NO_AUGMENT)
    first = set(cache.glob("*.npy"))
    assert len(first) == 3  # one file per split
    load_speech_commands(dataset_copy, augment=NO_AUGMENT)
    assert set(cache.glob("*.npy")) == first  # reused
    log_mel = load_speech_commands(dataset_copy, augment=NO_AUGMENT, front_end=FrontEndConfig(features="log_mel"))
    assert log_mel.train.x.shape[2:] == (49, 40) and len(set(cache.glob("*.npy")) - first) == 3
    # a changed recording is never served from the cache
    test_clip = dataset_copy / (dataset_copy / "testing_list.txt").read_text().split()[0]
    before = load_speech_commands(dataset_copy, augment=NO_AUGMENT).test_raw
    write_wav(test_clip, np.zeros(16000, dtype=np.int16), 16000)
    after = load_speech_commands(dataset_copy, augment=NO_AUGMENT).test_raw
    assert not np.array_equal(before, after)
    # a damaged cache file is recomputed
    for path in cache.glob("*.npy"):
        path.write_bytes(b"not numpy")
    np.testing.assert_array_equal(load_speech_commands(dataset_copy, augment=NO_AUGMENT).test_raw, after)


def _rewrite_wav(path: Path, channels: int = 1, rate: int = 16000, width: int = 2, frames: int = 16000) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(b"\x01\x00" * channels * (width // 2) * frames)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: _rewrite_wav(p, rate=8000), r"sample rate 8000 Hz, expected 16000 Hz"),
        (lambda p: _rewrite_wav(p, channels=2), r"2 channels, expected mono"),
        (lambda p: _rewrite_wav(p, width=4), r"32-bit samples, expected 16-bit PCM"),
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), r"truncated: the header declares 16000 samples, the file holds 478"),
        (lambda p: p.write_bytes(b"RIFF"), r"not a readable 16-bit PCM WAV file"),
        (lambda p: _rewrite_wav(p, frames=0), r"the WAV file holds no samples"),
    ],
)
def test_bad_audio_is_named(dataset_copy: Path, damage, message):
    victim = dataset_copy / "stop" / sorted(p.name for p in (dataset_copy / "stop").glob("*.wav"))[0]
    damage(victim)
    with pytest.raises(DatasetError, match=rf"{victim}: {message}"):
        load_speech_commands(dataset_copy, augment=NO_AUGMENT)


def test_bad_layouts_are_named(dataset_copy: Path):
    (dataset_copy / "empty_word").mkdir()
    with pytest.raises(DatasetError, match=r"empty_word: class folder holds no \.wav clips"):
        scan_speech_commands(dataset_copy)
    (dataset_copy / "empty_word").rmdir()
    with open(dataset_copy / "testing_list.txt", "a", encoding="utf-8") as handle:
        handle.write("yes/missing_nohash_0.wav\n")
    with pytest.raises(DatasetError, match=r"testing_list\.txt: line \d+: 'yes/missing_nohash_0\.wav' is not a clip"):
        scan_speech_commands(dataset_copy)
    (dataset_copy / "testing_list.txt").unlink()
    with pytest.raises(DatasetError, match=r"testing_list\.txt: split list not found"):
        scan_speech_commands(dataset_copy)


def test_missing_keyword_and_background(dataset_copy: Path):
    keep = (dataset_copy / "validation_list.txt").read_text()
    shutil.rmtree(dataset_copy / "go")
    (dataset_copy / "validation_list.txt").write_text("".join(f"{line}\n" for line in keep.split() if not line.startswith("go/")))
    (dataset_copy / "testing_list.txt").write_text("".join(
        f"{line}\n" for line in (dataset_copy / "testing_list.txt").read_text().split() if not line.startswith("go/")))
    with pytest.raises(DatasetError, match=r"speech/go: class folder missing \(task 12 needs yes, no"):
        load_speech_commands(dataset_copy)
    short = dataset_copy / "_background_noise_" / "hum.wav"
    write_wav(short, np.zeros(8000, dtype=np.int16), 16000)
    with pytest.raises(DatasetError, match=rf"{short}: background recording of 8000 samples is shorter than one clip"):
        load_speech_commands(dataset_copy)
    shutil.rmtree(dataset_copy / "_background_noise_")
    with pytest.raises(DatasetError, match=r"_background_noise_: no background noise WAV files"):
        load_speech_commands(dataset_copy)


def test_load_dataset_from_config(espeak_dataset: Path, tmp_path: Path):
    cfg = DatasetConfig(name="speech_commands", data_dir=espeak_dataset, max_train_samples=60, max_test_samples=12,
                        speech_commands=SpeechCommandsConfig(augment=NO_AUGMENT, feature_cache_dir=tmp_path))
    splits = load_dataset(cfg, seed=0)
    assert len(splits.train) + len(splits.val) == 60 and len(splits.test) == 12
    assert splits.resolution == 49 and splits.input_channels == 1
    assert set(np.unique(splits.test.y)) == set(range(12))


def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_audio_data_has_one_input_size(espeak_dataset: Path, tmp_path: Path):
    cfg = DatasetConfig(name="speech_commands", data_dir=espeak_dataset,
                        speech_commands=SpeechCommandsConfig(feature_cache_dir=tmp_path, augment=NO_AUGMENT))
    assert load_dataset_at(cfg, (49, 10)).input_size == (49, 10)
    with pytest.raises(DatasetError, match=r"'speech_commands' gives 49x10 inputs .* asks for 32x32"):
        load_dataset_at(cfg, (32, 32))


def test_download_checks_the_sha256_and_extracts(espeak_dataset: Path, tmp_path: Path):
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the canonical archive has the layout at its top level
        for entry in sorted(espeak_dataset.iterdir()):
            if entry.name != CACHE_DIR_NAME:
                tar.add(entry, arcname=entry.name)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = _serve(served)
    url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    try:
        with pytest.raises(DatasetError, match=r"SHA-256 [0-9a-f]{64}, expected 0{64} .* nothing extracted"):
            download_speech_commands(tmp_path / "bad", url=url, sha256="0" * 64)
        assert list((tmp_path / "bad").iterdir()) == []
        with pytest.raises(DatasetError, match=r"could not download http://127\.0\.0\.1:\d+/missing\.tar\.gz"):
            download_speech_commands(tmp_path / "bad", url=url.replace(archive.name, "missing.tar.gz"), sha256=digest)
        target = download_speech_commands(tmp_path / "good", url=url, sha256=digest)
    finally:
        server.shutdown()
    assert scan_speech_commands(target).words == scan_speech_commands(espeak_dataset).words
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in espeak_dataset.iterdir() if p.name != CACHE_DIR_NAME)
    assert download_speech_commands(target, url="http://127.0.0.1:9/unused", sha256=digest) == target  # already there


def test_espeak_builder_refuses_a_used_folder_and_cli_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    assert main(["espeak-dataset", str(tmp_path / "used")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="unknown espeak dataset preset 'huge'"):
        build_espeak_dataset(tmp_path / "new", preset="huge")
    assert not (tmp_path / "new").exists()
    assert main(["espeak-dataset", str(tmp_path / "new"), "--preset", "tiny", "--seed", "1"]) == 0
    assert "13 words, 78 train / 26 validation / 26 test clips, 4 background noises" in capsys.readouterr().out


def test_config_section(espeak_dataset: Path, tmp_path: Path):
    experiment = parse_experiment(
        {"name": "kws", "dataset": {"name": "speech_commands", "data_dir": "speech",
                                    "speech_commands": {"task": 12, "front_end": {"arithmetic": "f32", "window_ms": 40},
                                                        "augment": {"copies": 2, "snr_db_min": 0},
                                                        "feature_cache_dir": "cache"}},
         "space": {"name": "dscnn"}},
        base_dir=espeak_dataset.parent,
    )
    options = experiment.dataset.speech_commands
    assert options.front_end.fft_samples == 1024 and options.augment.copies == 2
    assert options.feature_cache_dir == espeak_dataset.parent / "cache"
    assert experiment.dataset.front_end is options.front_end and experiment.dataset.input_size == (49, 10)
    assert parse_experiment(experiment.to_dict()) == experiment  # round trip through the run directory
    default = parse_experiment({"name": "kws", "dataset": {"name": "speech_commands", "data_dir": str(espeak_dataset)},
                                "space": {"name": "dscnn"}})
    assert default.dataset.speech_commands is None and default.dataset.front_end == FrontEndConfig()
    log_mel = parse_experiment({"name": "kws", "space": {"name": "dscnn", "stem_kernels": [[10, 8]]},
                                "dataset": {"name": "speech_commands", "data_dir": str(espeak_dataset),
                                            "speech_commands": {"front_end": {"features": "log_mel"}}}})
    assert log_mel.dataset.input_size == (49, 40)  # the space is checked at the data's input size


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({"name": "digits", "speech_commands": {}}, r"dataset\.speech_commands: only the speech_commands dataset"),
        ({"name": "speech_commands", "resolution": 32}, r"dataset\.resolution: not used by speech_commands"),
        ({"name": "speech_commands", "speech_commands": {"task": 10}}, r"dataset\.speech_commands\.task: .*12, 35"),
        ({"name": "speech_commands", "speech_commands": {"front_end": {"stride_ms": 20.01}}},
         r"dataset\.speech_commands\.front_end: stride_ms: 20\.01 ms is not a whole number of samples"),
        ({"name": "speech_commands", "speech_commands": {"augment": {"snr_db_min": 30}}},
         r"dataset\.speech_commands\.augment: snr_db_min \(30\.0\) is above snr_db_max"),
        ({"name": "speech_commands", "speech_commands": {"front_end": {"mel_filter": 13}}},
         r"dataset\.speech_commands\.front_end\.mel_filter: unknown key, did you mean 'mel_filters'"),
    ],
)
def test_config_errors(espeak_dataset: Path, dataset, message):
    dataset = {"data_dir": str(espeak_dataset), **dataset} if dataset["name"] == "speech_commands" else dataset
    with pytest.raises(ConfigError, match=message):
        parse_experiment({"name": "kws", "dataset": dataset, "space": {"name": "dscnn"}})


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"name": "mobilenetv2"}, r"space\.name: space 'mobilenetv2' takes square inputs, the dataset's are 49x10"),
        ({"name": "dscnn", "input_size": [40, 10]},
         r"space\.input_size: \[40, 10\] is not the dataset's input \[49, 10\] \(leave it out"),
        ({"name": "dscnn", "stem_kernels": [[10, 12]]}, r"space\.stem_kernels\[0\]: larger than input_size \[49, 10\]"),
    ],
)
def test_space_must_take_the_front_end_input(espeak_dataset: Path, space, message):
    with pytest.raises(ConfigError, match=message):
        parse_experiment({"name": "kws", "dataset": {"name": "speech_commands", "data_dir": str(espeak_dataset)},
                          "space": space})
