"""``export_model``: trained weights of an architecture -> validated int8 model + TFLM bundle.

Steps: build the space's PyTorch model, load the weights (``torch.load(weights_only=True)``),
export it (:func:`mcunas.export.tflite.export_tflite`, calibrated on a sample of the training
split), validate it in TFLite Micro (:func:`mcunas.export.validate.validate_tflite`, float
accuracy from the PyTorch model) and write the deployment bundle
(:func:`mcunas.export.bundle.write_bundle`).

The export directory holds ``model.tflite``, ``model_float32.tflite`` (same graph in float, for
per-layer error analysis), ``model_data.cc``, ``model_data.h``, ``model_config.h``,
``profile_main.cc``, ``README.md``, ``validation.json`` and ``per_op.txt`` (the per-op arena and
latency view); for an audio dataset also the front end, ``features.c`` and ``mcunas_features.h``,
whose flash and RAM the bundle's estimate counts. It is assembled in a temporary directory and renamed into
place at the end: after a failure ``out_dir`` is left as it was (absent, or the previous export).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcunas.errors import ExportError, RunDirError
from mcunas.estimators.runtime import DEFAULT_RUNTIME
from mcunas.export.validate import FLOAT_MODEL_NAME, Validation
from mcunas.io import space_checked, write_json

if TYPE_CHECKING:
    from mcunas.config import Experiment
    from mcunas.data import DatasetSplits
    from mcunas.estimators import Board
    from mcunas.spaces import Arch

MODEL_NAME = "model.tflite"
# The per-op view of the exported graph (mcunas.estimators.per_op), linked from the report.
PER_OP_NAME = "per_op.txt"
DEFAULT_CALIBRATION_SAMPLES = 256


def load_weights(model, weights: Any) -> None:
    """Load a state dict (or a ``weights.pt`` path, read with ``weights_only=True``) into ``model``.

    Raises:
        ExportError: missing or unreadable file, or tensors that do not fit the architecture.
    """
    import torch

    source = "state dict"
    if isinstance(weights, (str, os.PathLike)):
        source = str(weights)
        if not Path(weights).is_file():
            raise ExportError(f"weights {source}: no such file")
        try:
            weights = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling errors come in many types
            raise ExportError(f"weights {source}: not a readable state dict ({type(error).__name__}: {error})") from None
    if not isinstance(weights, dict):
        raise ExportError(f"weights {source}: expected a state dict (mapping of tensors), got {type(weights).__name__}")
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise ExportError(f"weights {source} do not fit the architecture: {' '.join(first[:3])}") from None


def export_model(
    arch: Arch,
    weights: Any,
    out_dir: str | os.PathLike[str],
    *,
    experiment: Experiment | None = None,
    splits: DatasetSplits | None = None,
    board: Board | str | os.PathLike[str] | None = None,
    runtime: str | None = None,
    max_test_samples: int | None = None,
    isolate: bool = True,
) -> Validation:
    """Export a trained architecture to ``out_dir`` and validate it in TFLite Micro.

    Args:
        arch: an Arch of a registered space.
        weights: ``weights.pt`` path or a state dict.
        out_dir: the export directory (replaced as a whole on success).
        experiment: the experiment the model belongs to: its dataset (loaded at
            ``arch.input_size`` unless ``splits`` are given), first board, runtime, calibration
            size, allowed int8 drop and seed; without it the defaults apply.
        splits: dataset splits matching the architecture's input, for calibration and
            validation; default: the experiment's dataset. One of ``experiment``/``splits`` is needed.
        board: board name, file or ``Board`` the arena/latency are predicted for; default the
            experiment's first board, or a generic 32-bit target.
        runtime: a runtime name; default the experiment's, else the default runtime.
        max_test_samples: evaluate on the first N test samples only.
        isolate: convert in a child process (see :mod:`mcunas.export.tflite`).

    Returns:
        The :class:`Validation` (also in ``out_dir/validation.json``).

    Raises:
        ExportError: a failing stage (named), unreadable or unfitting weights, no data.
    """
    from mcunas.data import AudioDatasetSplits, calibration_sample, load_dataset_at
    from mcunas.estimators import estimate, load_board
    from mcunas.estimators.per_op import per_op_text
    from mcunas.export.bundle import write_bundle
    from mcunas.export.tflite import export_tflite
    from mcunas.export.validate import validate_tflite
    from mcunas.spaces import get_space

    if splits is None:
        if experiment is None:
            raise ExportError("export needs the experiment or dataset splits for calibration and validation")
        splits = load_dataset_at(experiment.dataset, arch.input_size, experiment.seed)
    runtime = runtime or (experiment.runtime if experiment is not None else DEFAULT_RUNTIME)
    if board is None and experiment is not None:
        board = experiment.boards[0]
    board = load_board(board) if board is not None else None
    calibration_samples = experiment.export.calibration_samples if experiment is not None else DEFAULT_CALIBRATION_SAMPLES
    max_drop_pp = experiment.export.max_int8_drop_pp if experiment is not None else 1.0
    seed = experiment.seed if experiment is not None else 0

    space = get_space(arch.space)
    model = space.build(arch)
    load_weights(model, weights)
    model.eval()
    graph = space.graph(arch)
    shape = (1, arch.input_channels, *arch.input_size)
    if splits.train.x.shape[1:] != shape[1:]:
        raise ExportError(
            f"dataset samples {splits.train.x.shape[1:]} (C, H, W) do not fit architecture input {shape[1:]}"
        )
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="mcunas-bundle-") as staging_name:
        staging = Path(staging_name)
        export_tflite(
            model,
            shape,
            calibration_sample(splits, calibration_samples, seed),
            staging / MODEL_NAME,
            float_out_path=staging / FLOAT_MODEL_NAME,
            isolate=isolate,
        )
        validation = validate_tflite(
            staging / MODEL_NAME,
            splits,
            graph=graph,
            board=board,
            runtime=runtime,
            float_model=model,
            max_int8_drop_pp=max_drop_pp,
            max_test_samples=max_test_samples,
            write=False,
        )
        validation.tflite_path = str(out / MODEL_NAME)
        write_json(staging / "validation.json", validation.to_dict())
        front_end = splits.front_end if isinstance(splits, AudioDatasetSplits) else None
        cost = (estimate(graph, board, runtime, front_end=front_end) if board is not None
                else {"arena_bytes": validation.arena_bytes_predicted_target})
        (staging / PER_OP_NAME).write_text(per_op_text(graph, board, runtime), encoding="utf-8")
        write_bundle(
            staging / MODEL_NAME,
            graph,
            board.name if board is not None else None,
            cost,
            staging,
            mean=splits.mean,
            std=splits.std,
            headroom_bytes=validation.arena_bytes_min_measured - validation.arena_bytes_measured,
            front_end=front_end,
        )
        _move_into_place(staging, out)
    return validation


def _move_into_place(staging: Path, out: Path) -> None:
    """Copy ``staging`` beside ``out`` and rename it onto ``out`` (replacing an old export).

    Raises:
        OutOfSpaceError: the disk of ``out`` filled up; the partial copy is removed and an old
            export is left as it was.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    incoming.chmod(0o755)  # mkdtemp makes it private; an export folder is an ordinary one
    try:
        # A full disk raises OutOfSpaceError from the copy at once (copytree would collect it).
        shutil.copytree(staging, incoming, dirs_exist_ok=True, copy_function=_copy_file)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, retired / out.name)
            os.replace(incoming, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(incoming, out)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _copy_file(source: str, target: str) -> None:
    with space_checked(target):
        shutil.copy2(source, target)


def run_dir_member(run_dir: str | os.PathLike[str], trial: int | None = None, board: str | None = None) -> dict[str, Any]:
    """Locate a model of a run directory: arch, weights, config, board, export folder.

    ``board`` defaults to the only board of the run (required when there are several);
    ``trial`` defaults to the only finalized member (``final/<board>/<n>/``), and may name any
    trial with weights (``final/`` preferred over ``trials/``).

    Returns:
        ``{"arch_path", "weights_path", "config_path", "board", "trial", "out_dir"}``.

    Raises:
        RunDirError: naming the missing file or the ambiguous choice.
    """
    root = Path(run_dir)
    config_path = root / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{root}: not a run directory (no config.yaml)")
    boards = sorted(p.name for p in (root / "trials").iterdir() if p.is_dir()) if (root / "trials").is_dir() else []
    if board is None:
        if len(boards) != 1:
            raise RunDirError(f"{root}: choose --board, the run has boards {boards or 'none with trials'}")
        board = boards[0]
    elif board not in boards:
        raise RunDirError(f"{root}: no trials for board {board!r} (boards: {', '.join(boards) or 'none'})")
    final_root = root / "final" / board
    if trial is None:
        finals = sorted(int(p.name) for p in final_root.iterdir() if p.name.isdigit()) if final_root.is_dir() else []
        if len(finals) != 1:
            raise RunDirError(f"{final_root}: choose --trial, finalized trials are {finals or 'none'}")
        trial = finals[0]
    trial_dir = root / "trials" / board / str(trial)
    arch_path = trial_dir / "arch.json"
    if not arch_path.is_file():
        raise RunDirError(f"{arch_path}: no such file (trial {trial} of board {board!r})")
    weights_path = next(
        (p for p in (final_root / str(trial) / "weights.pt", trial_dir / "weights.pt") if p.is_file()), None
    )
    if weights_path is None:
        raise RunDirError(f"{root}: trial {trial} of board {board!r} has no weights.pt in final/ or trials/")
    return {
        "arch_path": arch_path,
        "weights_path": weights_path,
        "config_path": config_path,
        "board": board,
        "trial": trial,
        "out_dir": root / "exports" / board / str(trial),
    }

