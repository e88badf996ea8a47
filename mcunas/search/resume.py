"""Resuming a study: count finished trials, retry the ones a crash or Ctrl-C cut short.

A study is resumed by the same command that started it. Trials left ``RUNNING`` (the process
died: killed, out of memory, its database unreachable) are marked ``FAIL`` and their
half-written ``trials/<board>/<number>/`` folders removed; their parameters, and those of
trials that failed because of a Ctrl-C (user attr ``interrupted``), are enqueued once with
``study.enqueue_trial`` (the new trial carries ``retry_of``) so the sampler's proposal is not
lost (a trial that died before sampling anything is not enqueued). Finished means ``COMPLETE``
or ``PRUNED``: the trial budget counts both.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger("mcunas.search")


def finished_trials(study: optuna.Study) -> int:
    """Number of COMPLETE and PRUNED trials of ``study``."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def recover_interrupted(study: optuna.Study, trial_dir: Callable[[int], Path] | None = None) -> list[int]:
    """Fail stale RUNNING trials and enqueue the parameters of interrupted ones.

    Must only be called while no other process runs trials of ``study`` (the run directory
    lock guarantees it for ``mcunas search``). ``trial_dir`` maps a trial number to its folder,
    removed for the stale and the interrupted trials. Returns the numbers of the re-enqueued trials.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    requeued = []
    for trial in trials:
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
            logger.info("trial %d of %s was left running by an earlier process: marked failed", trial.number,
                        study.study_name)
        elif not (trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted")):
            continue
        if trial_dir is not None:
            shutil.rmtree(trial_dir(trial.number), ignore_errors=True)
        if trial.number not in retried and trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            requeued.append(trial.number)
    if requeued:
        logger.info("%s: re-enqueued the parameters of interrupted trials %s", study.study_name, requeued)
    return requeued
