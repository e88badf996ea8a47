"""The fast estimator (mcunas.estimators.fast) returns the reference Cost, every field equal.

``estimate_arch(space, arch, board, ...)`` is compared with ``estimate(space.graph(arch), board,
...)`` on 2,000 random architectures of every space (mobilenetv2, mobilenetv1, dscnn, cnn), each
on two of several boards and runtimes (Cortex-M0+/M4/M7/M33/M85 and Xtensa boards; CMSIS-NN,
reference and ESP-NN kernels; a board without a latency model for its runtime), with and without
latency ceilings on either bound, byte budgets (activations, parameters, arena, model; some
broken, some not) and an audio front end, and with space options at their edges: odd and tiny
resolutions (maps down to 1x1, where the graph has no MEAN), 7x7 kernels and stems, stride-1
stems, expansion 1, rectangular inputs and stem kernels with unequal strides, max pools on odd
maps, ReLU and ReLU6. Floats are compared exactly (``==``): the fast path adds the same numbers
in the same order.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import optuna
import pytest

from mcunas.estimators import estimate, fast, load_board, memory
from mcunas.estimators.budget import BYTE_BUDGETS
from mcunas.estimators.cost import cost_of
from mcunas.estimators.fast_chain import greedy_plan_bytes
from mcunas.estimators.latency import default_profile
from mcunas.frontend.config import FrontEndConfig
from mcunas.spaces import get_space

ARCHS_PER_SPACE = 2000

# (space, options) -> share of the space's architectures: the defaults and the edges.
SPACES: dict[str, list[dict]] = {
    "mobilenetv2": [
        {},
        {"resolutions": [7, 9, 31, 33, 47], "stem_kernels": [3, 5, 7], "kernel_sizes": [3, 5, 7], "expand_ratios": [1, 6]},
        {"stem_stride": 1, "resolutions": [8, 15, 16, 17], "stem_kernels": [1, 7], "kernel_sizes": [1, 7]},
    ],
    "mobilenetv1": [
        {},
        {"resolutions": [5, 11, 31, 65], "stem_kernels": [3, 7], "kernel_sizes": [3, 5, 7], "activation": "relu6"},
        {"stem_stride": 1, "resolutions": [4, 9, 16], "kernel_sizes": [1, 3, 9]},
    ],
    "dscnn": [
        {},
        {"input_size": [49, 10], "stem_kernels": [[10, 4], [4, 3], [5, 5], [1, 1]], "stem_strides": [[1, 2], [2, 1], [1, 1]],
         "stages": [{"stride": 2, "channels": [16, 24], "depth": [1, 2]}, {"stride": 2, "channels": [32, 64], "depth": [1, 3]}],
         "kernel_sizes": [3, 7], "activation": "relu6"},
        {"input_size": [9, 13], "stem_kernels": [[3, 3], [4, 2], [9, 13]], "stem_strides": [[2, 2], [1, 1]],
         "kernel_sizes": [3, 5]},
        {"input_size": [9, 9], "stem_channels": [5, 8], "stem_kernels": [[3, 3]], "stem_strides": [[2, 2]],
         "stages": [{"stride": 2, "channels": [3, 8], "depth": [1, 2]}, {"stride": 2, "channels": [2, 4], "depth": [1, 2]},
                    {"stride": 2, "channels": [6], "depth": [1, 1]}]},
    ],
    "cnn": [
        {},
        {"resolutions": [5, 7, 15, 29], "stem_kernels": [3, 7], "stem_stride": 1, "kernel_sizes": [3, 7],
         "pool_choices": [1], "activation": "relu6"},
        {"resolutions": [9, 16, 33], "stem_channels": [3, 16], "kernel_sizes": [1, 3, 5], "separable_choices": [1],
         "stages": [{"stride": 2, "channels": [4, 8], "depth": [1, 3]}, {"stride": 2, "channels": [8, 16], "depth": [1, 3]}]},
    ],
}
# The byte budgets of estimate() (mcunas.estimators.budget.BYTE_BUDGETS), near the spaces'
# typical sizes (some broken, some kept), and none.
BUDGETS = [
    {},
    {"max_activation_bytes": 24_000, "max_param_bytes": 40_000},
    {"max_arena_bytes": 30_000, "max_model_bytes": 60_000},
    {"max_activation_bytes": 8_000, "max_param_bytes": 8_000, "max_arena_bytes": 12_000, "max_model_bytes": 16_000},
]
# Audio front ends (their flash and RAM count in the budget), and none.
FRONT_ENDS = [None, FrontEndConfig(), FrontEndConfig(features="log_mel", arithmetic="f32", mel_filters=32)]
# (board, runtime, max_latency_ms, latency_bound): cores with each kernel library; the
# ESP32-S3 has no CMSIS-NN latency profile (latency None, a ceiling cannot be checked).
CASES = [
    ("arduino-nano-33-ble-sense", "tflm-cmsis-nn", None, "point"),
    ("raspberry-pi-pico", "tflm-reference", 800.0, "point"),
    ("esp32-s3-devkitc-1", "tflm-esp-nn", 20.0, "upper"),
    ("esp32-s3-devkitc-1", "tflm-cmsis-nn", 50.0, "point"),
    ("nucleo-h743zi2", "tflm-cmsis-nn", 5.0, "upper"),
    ("nrf5340-dk", "tflm-reference", None, "point"),
    ("ek-ra8d1", "tflm-cmsis-nn", 1.0, "point"),
    ("nucleo-l4r5zi", "tflm-cmsis-nn", 10.0, "point"),
]


def _archs(name: str, count: int, seed: int) -> list:
    """``count`` architectures drawn by Optuna's RandomSampler from the option sets of ``name``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found = []
    for index, options in enumerate(SPACES[name]):
        space = get_space(name, **options)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + index))
        for _ in range(count // len(SPACES[name]) + (index < count % len(SPACES[name]))):
            trial = study.ask()
            found.append((space, space.sample(trial)))
            study.tell(trial, 0.0)
    return found


def _edges(graph) -> set[str]:
    """The edge cases ``graph`` has."""
    kinds = {op.kind for op in graph.ops}
    found = {"no MEAN (1x1 map)"} if "MEAN" not in kinds else set()
    if "PAD" in kinds:
        found.add("explicit PAD")
    if memory.duplicate_constant_indices(graph):
        found.add("shared paddings")
    if any(op.padding == "SAME" and op.stride != (1, 1) for op in graph.ops):
        found.add("strided SAME")
    if any(op.kernel is not None and max(op.kernel) >= 7 for op in graph.ops):
        found.add("7x7 kernel")
    if any(op.kernel is not None and op.kernel[0] != op.kernel[1] for op in graph.ops):
        found.add("rectangular kernel")
    if any(len(shape := graph.tensors[op.inputs[0]].shape) == 4 and shape[1] == shape[2] == shape[3] for op in graph.ops):
        found.add("H == W == C input")
    if graph.tensors[graph.ops[0].outputs[0]].shape[1:3] == graph.tensors[graph.inputs[0]].shape[1:3]:
        found.add("stride-1 stem")
    if "MAX_POOL_2D" in kinds:
        found.add("max pool")
    if any(op.kind == "MAX_POOL_2D" and graph.tensors[op.inputs[0]].shape[1] % 2 for op in graph.ops):
        found.add("max pool on an odd map")
    if graph.tensors[graph.inputs[0]].shape[1] != graph.tensors[graph.inputs[0]].shape[2]:
        found.add("rectangular input")
    return found


@pytest.mark.parametrize("name", sorted(SPACES))
def test_fast_estimate_equals_the_reference(name: str) -> None:
    fast.clear_cache()
    boards = {board: load_board(board) for board, *_ in CASES}
    # Lengths 8, 4 and 3 are coprime to 2 * 3: every combination comes up.
    cases, budgets, front_ends = itertools.cycle(CASES), itertools.cycle(BUDGETS), itertools.cycle(FRONT_ENDS)
    compared = 0
    edges: set[str] = set()
    outcomes: set[tuple[bool, bool]] = set()
    broken: set[str] = set()  # the byte budgets some estimate broke
    for space, arch in _archs(name, ARCHS_PER_SPACE, seed=11):
        graph = space.graph(arch)
        edges |= _edges(graph)
        for board, runtime, max_latency_ms, bound in (next(cases), next(cases)):
            options = {"max_latency_ms": max_latency_ms, "latency_bound": bound, **next(budgets),
                       "front_end": next(front_ends)}
            expected = estimate(graph, boards[board], runtime, **options)
            got = fast.estimate_arch(space, arch, boards[board], runtime, **options)
            assert got.to_dict() == expected.to_dict(), f"{arch.block_string()} on {board} with {runtime}, {options}"
            outcomes.add((expected.fits, options["front_end"] is not None))
            broken |= {key for key, (_, what) in BYTE_BUDGETS.items() if any(v.startswith(what) for v in expected.violations)}
            compared += 1
    assert compared == 2 * ARCHS_PER_SPACE
    assert outcomes == {(True, False), (False, False), (True, True), (False, True)}
    assert broken == set(BYTE_BUDGETS)
    expected_edges = {"no MEAN (1x1 map)", "explicit PAD", "strided SAME", "7x7 kernel", "H == W == C input", "stride-1 stem"}
    expected_edges |= {
        "mobilenetv2": {"shared paddings"}, "mobilenetv1": {"shared paddings"},
        "dscnn": {"rectangular kernel", "rectangular input"}, "cnn": {"shared paddings", "max pool", "max pool on an odd map"},
    }[name]
    assert expected_edges <= edges, f"not exercised: {sorted(expected_edges - edges)}"
    assert fast.cache_info()["fallbacks"] == 0
    assert 0 < fast.cache_info()["parts"] < 2 * ARCHS_PER_SPACE * 10  # parts are shared between archs


def test_given_profile_and_board_by_name() -> None:
    """A calibrated profile object and a board given by name: as for estimate()."""
    space = get_space("mobilenetv2")
    board = load_board("nucleo-f746zg")
    profile = default_profile(board.core, "tflm-cmsis-nn").with_scales({"conv": 1.3, "depthwise_3x3": 0.8}, board.name,
                                                                        {"source": "test"})
    for _, arch in _archs("mobilenetv2", 30, seed=3):
        expected = estimate(space.graph(arch), board, "tflm-cmsis-nn", profile=profile, max_latency_ms=3.0)
        assert fast.estimate_arch(space, arch, "nucleo-f746zg", "tflm-cmsis-nn", profile=profile,
                                  max_latency_ms=3.0) == expected


def test_one_figures_object_serves_every_board() -> None:
    """arch_figures once, cost_of per board and runtime: the reference Cost each time."""
    space = get_space("mobilenetv2")
    for _, arch in _archs("mobilenetv2", 20, seed=7):
        figures = fast.arch_figures(space, arch)
        graph = space.graph(arch)
        for board, runtime, max_latency_ms, bound in CASES:
            assert cost_of(figures, board, runtime, max_latency_ms=max_latency_ms, latency_bound=bound) == estimate(
                graph, board, runtime, max_latency_ms=max_latency_ms, latency_bound=bound)


def test_parts_whose_facts_do_not_add_up_go_through_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a builtin-parameter alignment that the blocks' phases do not end on, every
    architecture is estimated from its graph (counted), and the Cost is still the reference's."""
    monkeypatch.setattr(memory, "BUILTIN_ALIGNMENT", 4096)
    fast.clear_cache()
    try:
        space = get_space("mobilenetv1")
        board = load_board("nucleo-h743zi2")
        before = fast.cache_info()["fallbacks"]
        archs = _archs("mobilenetv1", 10, seed=5)
        for _, arch in archs:
            assert fast.estimate_arch(space, arch, board) == estimate(space.graph(arch), board)
        assert fast.cache_info()["fallbacks"] - before == len(archs)
    finally:
        fast.clear_cache()  # parts made under the patched alignment


def test_compiled_planner_equals_the_reference_planner() -> None:
    """The compiled greedy planner places random buffers (ties, long and one-step lifetimes,
    empty input) exactly as memory.greedy_plan_bytes."""
    rng = random.Random(0)
    for _ in range(3000):
        count = rng.randint(0, 50)
        steps = rng.randint(1, 30)
        sizes = [rng.choice([16, 32, 64, 16 * rng.randint(1, 60)]) for _ in range(count)]
        firsts = [rng.randint(0, steps) for _ in range(count)]
        lasts = [first + rng.choice([0, 0, 1, 2, rng.randint(0, 12)]) for first in firsts]
        arrays = [np.array(values, np.int64) for values in (sizes, firsts, lasts)]
        assert greedy_plan_bytes(*arrays) == memory.greedy_plan_bytes(sizes, firsts, lasts)
