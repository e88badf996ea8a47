"""Resuming a study: count finished trials, retry the ones a crash or Ctrl-C cut short.

A study is resumed by the same command that started it. Trials left ``RUNNING`` (the process
died) are marked ``FAIL``; their parameters, and those of trials that failed because of a
Ctrl-C (user attr ``interrupted``), are enqueued once with ``study.enqueue_trial`` (the new
trial carries ``retry_of``) so the sampler's proposal is not lost. Finished means
``COMPLETE`` or ``PRUNED``: the trial budget counts both.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger("mcunas.search")


def finished_trials(study: optuna.Study) -> int:
    """Number of COMPLETE and PRUNED trials of ``study``."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail stale RUNNING trials and enqueue the parameters of interrupted ones.

    Must only be called while no other process runs trials of ``study`` (the run directory
    lock guarantees it for ``mcunas search``). Returns the numbers of the re-enqueued trials.
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
        if trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            requeued.append(trial.number)
    if requeued:
        logger.info("%s: re-enqueued the parameters of interrupted trials %s", study.study_name, requeued)
    return requeued
