"""The training loop and knowledge distillation on the real synthetic dataset and a real space."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from mcunas.config import parse_experiment
from mcunas.data.config import DatasetConfig
from mcunas.data import load_dataset
from mcunas.search.distill import distillation_loss, ensure_teacher
from mcunas.search.train import TrainData, augment, build_model, train
from mcunas.spaces import get_space

# Tiny models on a shared machine: one intra-op thread is fastest and avoids oversubscription.
torch.set_num_threads(1)

# A small space at 8x8 pixels: trains in a second on one core.
TINY_SPACE = {
    "name": "mobilenetv2",
    "stem_channels": [4, 8],
    "stages": [{"stride": 2, "channels": [8], "depth": [1, 1]}, {"stride": 2, "channels": [8, 16], "depth": [1, 2]}],
    "kernel_sizes": [3],
    "expand_ratios": [1, 3],
}


def tiny_experiment(**overrides):
    config = {
        "name": "tiny",
        "dataset": {"name": "synthetic", "resolution": 8, "max_train_samples": 400, "max_test_samples": 100},
        "space": TINY_SPACE,
        "training": {"epochs": 2, "batch_size": 32, "lr": 0.05},
        "distillation": {"enabled": True, "teacher_epochs": 2},
    }
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value}
    return parse_experiment(config)


@pytest.fixture(scope="module")
def splits():
    return load_dataset(DatasetConfig(name="synthetic", resolution=8, max_train_samples=400, max_test_samples=100), 0)


def _space(splits):
    options = {k: v for k, v in TINY_SPACE.items() if k != "name"}
    return get_space("mobilenetv2", input_channels=splits.input_channels, num_classes=splits.num_classes,
                     resolutions=[8], **options)


def _arch(space, splits):
    return space.default_teacher(splits.input_channels, splits.num_classes, 8)


def test_training_learns_and_is_reproducible(splits):
    experiment = tiny_experiment()
    space = _space(splits)
    arch = _arch(space, splits)
    data = TrainData.from_splits(splits, "synthetic")
    epochs_seen = []
    first = train(build_model(space, arch, 1), data, experiment.training, epochs=2, seed=1,
                  on_epoch=lambda epoch, acc: epochs_seen.append((epoch, acc)))
    second = train(build_model(space, arch, 1), data, experiment.training, epochs=2, seed=1)
    assert first.history == second.history  # seeded: same weights init, order, augmentation
    assert [e for e, _ in epochs_seen] == [0, 1] and epochs_seen[-1][1] == first.accuracy_val
    chance = 1.0 / splits.num_classes
    assert first.accuracy_val > chance + 0.2, first.history
    assert first.train_seconds > 0 and first.epochs == 2


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_other_optimizers_train(splits, optimizer):
    experiment = tiny_experiment(training={"optimizer": optimizer, "lr": 0.01, "label_smoothing": 0.1})
    space = _space(splits)
    result = train(build_model(space, _arch(space, splits), 0), TrainData.from_splits(splits, "synthetic"),
                   experiment.training, epochs=1, seed=0)
    assert 0.0 <= result.accuracy_val <= 1.0 and len(result.history) == 1


def test_augment_shifts_without_flipping_digits():
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 6:10, 2:5] = 1.0  # a bar on the left
    shifted = augment(x, generator, flip=False)
    assert shifted.shape == x.shape
    assert not torch.equal(shifted, x)
    columns = shifted.sum(dim=(1, 2)).argmax(dim=1)
    assert int(columns.max()) <= 4 + 2  # at most H // 8 = 2 pixels of shift, never mirrored to the right
    flipped = augment(x, torch.Generator().manual_seed(0), flip=True)
    assert int(flipped.sum(dim=(1, 2)).argmax(dim=1).max()) >= 10  # some samples mirrored


def test_distillation_loss_matches_formula():
    torch.manual_seed(0)
    student, teacher_logits, labels = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    teacher = torch.nn.Identity()
    loss_fn = distillation_loss(teacher, alpha=0.3, temperature=2.0)
    ce = torch.nn.functional.cross_entropy(student, labels)
    p_t = torch.softmax(teacher_logits / 2.0, dim=1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student / 2.0, dim=1))).sum(1).mean()
    expected = 0.3 * ce + 0.7 * 4.0 * kl
    assert torch.allclose(loss_fn(student, teacher_logits, labels), expected, atol=1e-6)
    # alpha = 1 is plain cross-entropy
    assert torch.allclose(distillation_loss(teacher, alpha=1.0, temperature=2.0)(student, teacher_logits, labels), ce)


def test_ensure_teacher_trains_once_and_reloads(tmp_path, splits):
    experiment = tiny_experiment()
    teacher = ensure_teacher(experiment, tmp_path, splits)
    folder = tmp_path / "teacher"
    assert {p.name for p in folder.iterdir()} >= {"arch.json", "weights.pt", "metrics.json"}
    stamp = (folder / "weights.pt").stat().st_mtime_ns
    again = ensure_teacher(experiment, tmp_path, splits)
    assert (folder / "weights.pt").stat().st_mtime_ns == stamp  # loaded, not retrained
    x = torch.from_numpy(splits.val.x[:8])
    with torch.no_grad():
        assert torch.allclose(teacher(x), again(x), atol=1e-5)


def test_teacher_checkpoint_is_loaded_not_trained(tmp_path, splits):
    space = _space(splits)
    model = build_model(space, _arch(space, splits), 7)
    checkpoint = tmp_path / "teacher_weights.pt"
    torch.save(model.state_dict(), checkpoint)
    experiment = tiny_experiment(distillation={"teacher_checkpoint": str(checkpoint)})
    teacher = ensure_teacher(experiment, tmp_path / "run", splits)
    for (name, a), b in zip(model.state_dict().items(), teacher.state_dict().values()):
        assert torch.equal(a, b), name


def _teacher_in_process(run_dir: str, queue) -> None:
    from mcunas.data import load_dataset as load

    experiment = tiny_experiment()
    ensure_teacher(experiment, Path(run_dir), load(experiment.dataset, 0))
    queue.put((Path(run_dir) / "teacher" / "weights.pt").stat().st_mtime_ns)


@pytest.mark.slow
def test_ensure_teacher_from_two_processes_trains_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_teacher_in_process, args=(str(tmp_path), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    stamps = [queue.get(timeout=5) for _ in workers]
    assert stamps[0] == stamps[1]
