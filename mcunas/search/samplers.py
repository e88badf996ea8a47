"""Optuna samplers (one table, seeded and reproducible) and pruners for the config's names.

The names are :data:`mcunas.config.SAMPLERS` and :data:`mcunas.config.PRUNERS`; this module maps
each to an Optuna object (a test checks the tables cover exactly those names). ``auto`` (or no
name) picks NSGA-II for several objectives and TPE for one. Constraints reach
the samplers through ``Trial.set_constraint`` (see :mod:`mcunas.search.objectives`), which
NSGA-II, NSGA-III, TPE, GP and CMA-ES read; random, QMC and brute force ignore them.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from mcunas import config
from mcunas.errors import ConfigError

if TYPE_CHECKING:
    import optuna


def _nsga2(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=_population_size(n_trials))


def _nsga3(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIIISampler(seed=seed, population_size=_population_size(n_trials))


def _tpe(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    # constant_liar keeps concurrent workers from proposing the same candidate.
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=True, n_startup_trials=min(10, max(2, n_trials // 4))
    )


def _random(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _qmc(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, scramble=True)


def _gp(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=min(10, max(2, n_trials // 4)))


def _cmaes(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import cmaes  # noqa: F401  (the sampler imports it only when sampling: fail early instead)
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed)


def _bruteforce(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.BruteForceSampler(seed=seed)


# config name (except "auto") -> factory(seed, n_trials); mcunas.config checks names and objective counts.
SAMPLER_FACTORIES: dict[str, Callable[[int, int], "optuna.samplers.BaseSampler"]] = {
    "nsga2": _nsga2,
    "nsga3": _nsga3,
    "tpe": _tpe,
    "random": _random,
    "qmc": _qmc,
    "gp": _gp,
    "cmaes": _cmaes,
    "bruteforce": _bruteforce,
}



def _population_size(n_trials: int) -> int:
    """NSGA population: about four generations within the trial budget, between 4 and 50."""
    return max(4, min(50, n_trials // 4))


def resolve_sampler_name(name: str | None, n_objectives: int) -> str:
    """The sampler actually used: ``auto``/None -> nsga2 for several objectives, tpe for one."""
    if name is None or name == "auto":
        return "nsga2" if n_objectives > 1 else "tpe"
    if name not in SAMPLER_FACTORIES:
        raise ConfigError(f"search.sampler: unknown sampler {name!r}; choose one of {', '.join(config.SAMPLERS)}")
    return name


def make_sampler(name: str | None, *, seed: int, n_objectives: int, n_trials: int) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler; ``n_trials`` sizes NSGA populations and TPE/GP start-up phases."""
    import optuna

    factory = SAMPLER_FACTORIES[resolve_sampler_name(name, n_objectives)]
    try:
        with warnings.catch_warnings():  # chosen by name in a config: no "experimental" noise
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(seed, n_trials)
    except ImportError as error:
        raise ConfigError(f"search.sampler: {name!r} needs a package that is not installed: {error}") from error


def make_pruner(name: str, *, epochs: int, objectives: list[str]) -> optuna.pruners.BasePruner:
    """An Optuna pruner fed with per-epoch validation accuracy, so only for ``objectives:
    [accuracy]`` (Optuna prunes single-objective studies only)."""
    import optuna

    if name not in config.PRUNERS:
        raise ConfigError(f"search.pruner: unknown pruner {name!r}; choose one of {', '.join(config.PRUNERS)}")
    if name == "none":
        return optuna.pruners.NopPruner()
    if objectives != ["accuracy"]:
        raise ConfigError(f"search.pruner: {name!r} prunes on validation accuracy and needs objectives: [accuracy], "
                          f"got {objectives}; use pruner: none")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
