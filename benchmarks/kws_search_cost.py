"""What the keyword-spotting experiments cost on this machine, from measured unit costs.

Measures, in one process with the search's torch thread count:

* front-end features per 1 s clip (the experiment's front end, CMSIS-DSP in Python);
* training seconds per sample (one epoch at the experiment's batch size) of the space's default
  teacher (plain cross-entropy) and of 6 random candidates of the space (with distillation from
  that teacher, as the search trains them), and evaluation seconds per sample;
* one export (ONNX -> onnx2tf -> int8 .tflite, TFLM arena) of the MLPerf Tiny DS-CNN and the TFLM
  interpreter's seconds per test sample.

Inputs are random 49 x 10 features: time per sample does not depend on their values. The cost
of each experiment is then ``features + teacher + trials + final + export`` with the split sizes
of its dataset: counted from the data for ``kws_quick`` (the espeak-ng ``quick`` preset, built in
a temporary folder when ``data/espeak_quick`` is absent), the usual 12-class sizes for Speech
Commands v0.02. Trials whose architecture was already trained reuse it, so the trial figure is an
upper bound. ``--run-quick`` also runs ``experiments/kws_quick.yaml`` end to end in a temporary run
directory and prints its wall time, trials and exported models next to the prediction.

Usage::

    python benchmarks/kws_search_cost.py [--run-quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from mcunas.config import Experiment, load_experiment  # noqa: E402
from mcunas.data import load_dataset  # noqa: E402
from mcunas.data.espeak import build_espeak_dataset  # noqa: E402
from mcunas.frontend import compute_features  # noqa: E402
from mcunas.search.distill import distillation_loss  # noqa: E402
from mcunas.search.train import TrainData, build_model, configure_threads, predict_logits, train  # noqa: E402
from mcunas.spaces import get_space, parse_block_string, space_for_input  # noqa: E402

QUICK = REPO_ROOT / "experiments" / "kws_quick.yaml"
SPEECH_COMMANDS = REPO_ROOT / "experiments" / "kws_speech_commands.yaml"
# Speech Commands v0.02, 12-class task (keyword clips + 10 % silence + 10 % unknown, TensorFlow's
# speech_commands input_data.py composition): the split sizes usually reported for it.
SPEECH_COMMANDS_12 = {"train": 36_923, "val": 4_445, "test": 4_890}
MLPERF_DSCNN = "r49x10_in1-relu-stem_k10x4_s2x2_c64-dsc_r2_k3_s1_c64-dsc_r2_k3_s1_c64-fc12"
TIMED_SAMPLES = 1000
CANDIDATES = 6


def _seconds(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def _train_seconds_per_sample(space, arch, experiment: Experiment, loss_fn) -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((TIMED_SAMPLES, 1, *arch.input_size)).astype(np.float32)
    y = rng.integers(0, arch.num_classes, TIMED_SAMPLES)
    data = TrainData.from_arrays(x, y, x[:2], y[:2])
    model = build_model(space, arch, 0)
    return _seconds(train, model, data, experiment.training, epochs=1, seed=0, loss_fn=loss_fn) / TIMED_SAMPLES


def _eval_seconds_per_sample(space, arch) -> float:
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((TIMED_SAMPLES, 1, *arch.input_size)).astype(np.float32))
    return _seconds(predict_logits, build_model(space, arch, 0), x, device=torch.device("cpu")) / TIMED_SAMPLES


def unit_costs(experiment: Experiment) -> dict[str, float]:
    """Measured seconds per clip / sample / export for ``experiment`` (see the module docstring)."""
    import optuna

    front_end = experiment.dataset.front_end
    space = space_for_input(experiment.space.name, {**experiment.space.options, "num_classes": 12}, front_end.input_shape)
    teacher_arch = space.default_teacher(1, 12, front_end.input_shape)
    teacher = build_model(space, teacher_arch, 0).eval()
    kd = experiment.distillation
    student_loss = distillation_loss(teacher, alpha=kd.alpha, temperature=kd.temperature) if kd.enabled else None
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    candidates = [space.sample(study.ask()) for _ in range(CANDIDATES)]
    pcm = np.random.default_rng(2).integers(-3000, 3000, (100, front_end.clip_samples)).astype(np.int16)
    compute_features(pcm[:1], front_end)
    return {
        "feature_s_per_clip": _seconds(compute_features, pcm, front_end) / len(pcm),
        "teacher_train_s": _train_seconds_per_sample(space, teacher_arch, experiment, None),
        "teacher_eval_s": _eval_seconds_per_sample(space, teacher_arch),
        "candidate_train_s": statistics.mean(_train_seconds_per_sample(space, a, experiment, student_loss) for a in candidates),
        "candidate_eval_s": statistics.mean(_eval_seconds_per_sample(space, a) for a in candidates),
    }


def export_costs(work: Path) -> dict[str, float]:
    """Seconds of one export of the MLPerf DS-CNN and TFLM seconds per sample."""
    from mcunas.export.selfcheck import check_export
    from mcunas.tflm import TflmModel

    arch = parse_block_string(MLPERF_DSCNN)
    start = time.perf_counter()
    check = check_export(get_space("dscnn"), arch, work / "dscnn.tflite", isolate=True)
    export_s = time.perf_counter() - start
    if not check.exported:
        raise SystemExit(f"export of {MLPERF_DSCNN} failed: {check.error}")
    model = TflmModel(work / "dscnn.tflite")
    x = np.random.default_rng(3).integers(-128, 128, (200, *arch.input_size, 1)).astype(np.int8)
    return {"export_s": export_s, "tflm_s": _seconds(model.predict_int8, x) / len(x)}


def predicted_minutes(experiment: Experiment, sizes: dict[str, int], units: dict[str, float]) -> dict[str, float]:
    """Minutes per stage of ``experiment`` with split sizes ``sizes`` (train before augmentation)."""
    copies = experiment.dataset.speech_commands.augment.copies if experiment.dataset.speech_commands else 1
    n_train, n_val, n_test = sizes["train"] * (1 + copies), sizes["val"], sizes["test"]
    training, final = experiment.training, experiment.final
    student_epoch = n_train * units["candidate_train_s"] + n_val * units["candidate_eval_s"]
    stages = {
        "features (first run, compute only)": (n_train + n_val + n_test) * units["feature_s_per_clip"],
        "teacher": experiment.distillation.teacher_epochs * (n_train * units["teacher_train_s"] + n_val * units["teacher_eval_s"])
        if experiment.distillation.enabled else 0.0,
        "trials (upper bound)": experiment.search.trials * training.epochs * student_epoch,
        "final retraining": final.max_models * (final.epochs * student_epoch + n_test * units["candidate_eval_s"]),
        "export + TFLM validation": final.max_models * (units["export_s"] + n_test * units["tflm_s"])
        if experiment.export.enabled else 0.0,
    }
    return {name: seconds / 60.0 for name, seconds in stages.items()}


def _quick_sizes(experiment: Experiment, work: Path) -> tuple[Experiment, dict[str, int]]:
    """The quick experiment (on a temporary espeak dataset if its data_dir is absent) and its split sizes."""
    if not experiment.dataset.data_dir.is_dir():
        data_dir = build_espeak_dataset(work / "espeak_quick", preset="quick")
        experiment = experiment.model_copy(update={"dataset": experiment.dataset.model_copy(update={"data_dir": data_dir})})
    splits = load_dataset(experiment.dataset, experiment.seed)
    copies = experiment.dataset.speech_commands.augment.copies
    return experiment, {"train": len(splits.train) // (1 + copies), "val": len(splits.val), "test": len(splits.test)}


def run_quick(experiment: Experiment, work: Path) -> dict[str, object]:
    """Run the quick experiment in ``work/run``: wall minutes, trials, the exported models' figures."""
    from mcunas.run import run_experiment

    start = time.perf_counter()
    run_experiment(experiment, work / "run")
    minutes = (time.perf_counter() - start) / 60.0
    models = []
    for path in sorted((work / "run" / "exports").glob("*/*/validation.json")):
        validation = json.loads(path.read_text())
        metrics = json.loads((work / "run" / "trials" / path.parent.parent.name / path.parent.name / "metrics.json").read_text())
        models.append({"trial": int(path.parent.name), "block_string": json.loads(
            (work / "run" / "final" / path.parent.parent.name / path.parent.name / "metrics.json").read_text())["block_string"],
            "accuracy_float": validation["accuracy_float"], "accuracy_int8": validation["accuracy_int8"],
            "latency_ms": metrics["estimates"]["latency_ms"], "sram_bytes": metrics["estimates"]["sram_bytes"],
            "flash_bytes": metrics["estimates"]["flash_bytes"], "arena_measured": validation["arena_bytes_measured"],
            "arena_predicted": validation["arena_bytes_predicted"], "arena_target": validation["arena_bytes_predicted_target"]})
    trials = len(list((work / "run" / "trials").glob("*/*/metrics.json")))
    return {"minutes": minutes, "trials": trials, "models": models}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-quick", action="store_true", help="also run experiments/kws_quick.yaml and time it")
    args = parser.parse_args()
    threads = configure_threads()
    quick, speech = load_experiment(QUICK), load_experiment(SPEECH_COMMANDS)
    with tempfile.TemporaryDirectory(prefix="mcunas-kws-cost-") as tmp:
        work = Path(tmp)
        exports = export_costs(work)
        quick, quick_sizes = _quick_sizes(quick, work)
        rows = []
        for name, experiment, sizes in (("kws_quick", quick, quick_sizes), ("kws_speech_commands", speech, SPEECH_COMMANDS_12)):
            units = {**unit_costs(experiment), **exports}
            rows.append((name, experiment, sizes, units, predicted_minutes(experiment, sizes, units)))
        print(f"torch threads: {threads}; export of the MLPerf DS-CNN {exports['export_s']:.1f} s, "
              f"TFLM {1e3 * exports['tflm_s']:.2f} ms per sample\n")
        print("| experiment | train / val / test clips | features ms/clip | teacher ms/sample | candidate ms/sample (KD) |")
        print("| --- | --- | --- | --- | --- |")
        for name, experiment, sizes, units, _ in rows:
            print(f"| {name} | {sizes['train']:,} / {sizes['val']:,} / {sizes['test']:,} | "
                  f"{1e3 * units['feature_s_per_clip']:.2f} | {1e3 * units['teacher_train_s']:.2f} | "
                  f"{1e3 * units['candidate_train_s']:.2f} |")
        print("\n| stage | " + " | ".join(f"{name} (min)" for name, *_ in rows) + " |")
        print("| --- |" + " --- |" * len(rows))
        for stage in rows[0][4]:
            print(f"| {stage} | " + " | ".join(f"{row[4][stage]:,.1f}" for row in rows) + " |")
        print("| total | " + " | ".join(f"{sum(row[4].values()):,.1f}" for row in rows) + " |")
        if args.run_quick:
            outcome = run_quick(quick, work / "quick")
            print(f"\nkws_quick run: {outcome['minutes']:.1f} min wall ({sum(rows[0][4].values()):.1f} predicted), "
                  f"{outcome['trials']} trials")
            print("| trial | architecture | float acc | int8 acc | latency ms | SRAM B | flash B | arena B (host meas / pred, 32-bit pred) |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for m in outcome["models"]:
                print(f"| {m['trial']} | `{m['block_string']}` | {100 * m['accuracy_float']:.2f} % | "
                      f"{100 * m['accuracy_int8']:.2f} % | {m['latency_ms']:.1f} | {m['sram_bytes']:,} | {m['flash_bytes']:,} | "
                      f"{m['arena_measured']:,} / {m['arena_predicted']:,}, {m['arena_target']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
