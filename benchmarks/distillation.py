"""Knowledge distillation on MNIST: the same student architectures trained with and without a
teacher, same seeds, same data, same epochs.

The teacher is the space's default teacher (its largest architecture), trained once with
:func:`mcunas.search.distill.ensure_teacher` exactly as a search does. Students are fixed
architectures of the same space, from small to medium. Prints a Markdown table of validation
and test accuracies (mean over seeds) and writes it, with the raw numbers, to ``--out``.

    .venv/bin/python benchmarks/distillation.py --mnist ../shared/datasets/mnist --out runs/bench-kd
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mcunas.config import parse_experiment
from mcunas.data import load_dataset
from mcunas.io import atomic_write_text, write_json
from mcunas.search.context import make_space
from mcunas.search.distill import distillation_loss, ensure_teacher
from mcunas.search.train import TrainData, accuracy, build_model, cross_entropy_loss, train

SPACE = {
    "name": "mobilenetv2",
    "stem_channels": [4, 8, 16],
    "stages": [
        {"stride": 1, "channels": [8, 16], "depth": [1, 1]},
        {"stride": 2, "channels": [8, 16, 24], "depth": [1, 2]},
        {"stride": 2, "channels": [16, 24, 32, 48], "depth": [1, 3]},
    ],
    "kernel_sizes": [3, 5],
    "expand_ratios": [1, 3, 6],
}

# Student parameters (Optuna names of the space): smallest to medium.
STUDENTS = {
    "xs": {"stem_channels": 4, "stage0_channels": 8, "stage0_depth": 1, "stage1_channels": 8, "stage1_depth": 1,
           "stage2_channels": 16, "stage2_depth": 1},
    "s": {"stem_channels": 8, "stage0_channels": 8, "stage0_depth": 1, "stage1_channels": 16, "stage1_depth": 1,
          "stage2_channels": 24, "stage2_depth": 2},
    "m": {"stem_channels": 8, "stage0_channels": 16, "stage0_depth": 1, "stage1_channels": 24, "stage1_depth": 2,
          "stage2_channels": 32, "stage2_depth": 2},
}


def student_arch(space, params: dict[str, int]):
    """The Arch for ``params``; every block gets kernel 3 and expansion 3 (1 in stage 0)."""
    import optuna

    fixed = dict(params)
    for stage in range(len(SPACE["stages"])):
        for block in range(params[f"stage{stage}_depth"]):
            fixed[f"stage{stage}_block{block}_kernel"] = 3
            fixed[f"stage{stage}_block{block}_expansion"] = 1 if stage == 0 else 3
    fixed["resolution"] = space.resolutions[0]
    fixed["stem_kernel"] = 3
    return space.sample(optuna.trial.FixedTrial(fixed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-distillation"))
    parser.add_argument("--train-samples", type=int, default=3000, help="MNIST training pool (train + val)")
    parser.add_argument("--test-samples", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    experiment = parse_experiment({
        "name": "bench-kd",
        "dataset": {"name": "mnist", "data_dir": str(args.mnist), "resolution": args.resolution,
                    "max_train_samples": args.train_samples, "max_test_samples": args.test_samples},
        "space": SPACE,
        "training": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05},
        "distillation": {"enabled": True, "teacher_epochs": args.teacher_epochs, "alpha": 0.5, "temperature": 4.0},
    })
    splits = load_dataset(experiment.dataset, experiment.seed)
    data = TrainData.from_splits(splits, "mnist")
    x_test, y_test = torch.from_numpy(splits.test.x), torch.from_numpy(splits.test.y)
    device = torch.device("cpu")
    start = time.perf_counter()
    teacher = ensure_teacher(experiment, args.out, splits)
    teacher_metrics = json.loads((args.out / "teacher" / "metrics.json").read_text())
    teacher_metrics["accuracy_test"] = accuracy(teacher, x_test, y_test, device=device)
    space = make_space(experiment, splits)
    kd = experiment.distillation
    rows = []
    for label, params in STUDENTS.items():
        arch = student_arch(space, params)
        for seed in args.seeds:
            for distilled in (False, True):
                loss = (distillation_loss(teacher, alpha=kd.alpha, temperature=kd.temperature) if distilled
                        else cross_entropy_loss())
                model = build_model(space, arch, seed)
                result = train(model, data, experiment.training, epochs=args.epochs, seed=seed, loss_fn=loss)
                rows.append({"student": label, "block_string": arch.block_string(),
                             "params": sum(p.numel() for p in model.parameters()), "seed": seed,
                             "distilled": distilled, "accuracy_val": result.accuracy_val,
                             "accuracy_test": accuracy(model, x_test, y_test, device=device),
                             "train_seconds": result.train_seconds})
                print(json.dumps(rows[-1]), flush=True)
    elapsed = time.perf_counter() - start

    def mean(label: str, distilled: bool, key: str) -> float:
        return statistics.mean(r[key] for r in rows if r["student"] == label and r["distilled"] == distilled)

    lines = [
        f"MNIST {args.resolution}x{args.resolution}, {len(splits.train)} train / {len(splits.val)} val / "
        f"{len(splits.test)} test images, students {args.epochs} epochs (SGD, cosine, shift augmentation), "
        f"seeds {args.seeds}, KD alpha {kd.alpha} T {kd.temperature}; teacher {teacher_metrics['block_string']} "
        f"({teacher_metrics['params']:,} params, {teacher_metrics['epochs']} epochs): val "
        f"{100 * teacher_metrics['accuracy_val']:.2f}%, test {100 * teacher_metrics['accuracy_test']:.2f}%. "
        f"Total {elapsed / 60:.1f} min with {args.threads} thread(s).",
        "",
        "| student | params | val acc, CE | val acc, KD | test acc, CE | test acc, KD | test delta (pp) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in STUDENTS:
        first = next(r for r in rows if r["student"] == label)
        ce_val, kd_val = mean(label, False, "accuracy_val"), mean(label, True, "accuracy_val")
        ce_test, kd_test = mean(label, False, "accuracy_test"), mean(label, True, "accuracy_test")
        lines.append(f"| {label} `{first['block_string']}` | {first['params']:,} | {100 * ce_val:.2f} | "
                     f"{100 * kd_val:.2f} | {100 * ce_test:.2f} | {100 * kd_test:.2f} | {100 * (kd_test - ce_test):+.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    atomic_write_text(args.out / "distillation.md", table)
    write_json(args.out / "distillation.json", {"teacher": teacher_metrics, "rows": rows, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}})


if __name__ == "__main__":
    main()
