"""Block strings (``Arch.block_string`` / ``parse_block_string``): round trips, unambiguous
multi-digit values, errors that name the token, and telling them from ARCH.json paths."""

from __future__ import annotations

import json
import re

import optuna
import pytest

from mcunas.errors import ArchitectureError
from mcunas.spaces import SPACE_NAMES, NotAnArchError, get_space, parse_block_string, read_arch
from mcunas.spaces.dscnn import DsCnnArch
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch
from mcunas.spaces.mobilenetv2 import MobileNetV2Arch

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Edge options: odd and tiny inputs (1x1 maps at the end), every kernel size up to 9x9, stride-1
# and stride-2 stems, depth-1 and deep stages, one- to four-digit channels, expansions up to 16.
EDGE_STAGES = [
    {"stride": 2, "channels": [1, 7, 16], "depth": [1, 3]},
    {"stride": 1, "channels": [12, 100], "depth": [1, 12]},
    {"stride": 2, "channels": [8, 1000], "depth": 1},
    {"stride": 2, "channels": [5, 4096], "depth": [1, 2]},
]
SQUARE_EDGES = [
    {},
    {"resolutions": [4, 5, 7, 9, 11, 31, 1024], "stem_channels": [1, 3, 24, 512], "stem_kernels": [1, 3, 5, 7, 9],
     "stem_stride": 1, "stages": EDGE_STAGES, "kernel_sizes": [1, 3, 5, 7, 9]},
    {"resolutions": [4, 6, 13], "stem_stride": 2, "stages": EDGE_STAGES, "kernel_sizes": [7, 9]},
]
EDGE_OPTIONS = {
    "mobilenetv2": [{**options, **({"expand_ratios": [1, 6, 10, 16]} if options else {})} for options in SQUARE_EDGES],
    "mobilenetv1": [{**options, **({"activation": "relu6"} if options else {})} for options in SQUARE_EDGES],
    "cnn": [{**options, **({"pool_choices": [0, 1], "separable_choices": [1, 0]} if options else {})}
            for options in SQUARE_EDGES],
    "dscnn": [
        {},
        {"input_size": [49, 10], "stem_kernels": [[10, 4], [1, 1], [16, 3], [9, 9], [2, 10]],
         "stem_strides": [[2, 2], [1, 1], [2, 1], [1, 2]], "stages": EDGE_STAGES, "kernel_sizes": [1, 3, 5, 7, 9]},
        {"input_size": [1, 13], "stem_kernels": [[1, 13], [1, 4]], "stem_strides": [[1, 2], [1, 1]],
         "stages": EDGE_STAGES, "kernel_sizes": [3, 9], "activation": "relu6"},
    ],
}
ARCHS_PER_OPTION_SET = 350  # three option sets: 1,050 architectures per space


def sampled(name: str):
    for seed, options in enumerate(EDGE_OPTIONS[name]):
        space = get_space(name, **options)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(ARCHS_PER_OPTION_SET):
            yield space.sample(study.ask())


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_every_sampled_arch_round_trips(name: str) -> None:
    seen = set()
    for arch in sampled(name):
        text = arch.block_string()
        assert parse_block_string(text) == arch, text
        assert parse_block_string(text).block_string() == text
        seen.add(text)
    assert len(seen) > 0.9 * ARCHS_PER_OPTION_SET * len(EDGE_OPTIONS[name])  # distinct archs, distinct strings


def test_multi_digit_values_are_unambiguous() -> None:
    arch = MobileNetV2Arch(
        input_channels=3, num_classes=100, resolution=96, stem_channels=16, stem_kernel=3, stem_stride=2,
        stage_strides=(1, 2), stage_channels=(16, 160), block_kernels=((3,), (3, 5, 7)), block_expansions=((16,), (1, 16, 6)),
    )
    assert arch.block_string() == "r96_in3-stem_k3_s2_c16-ir_r1_k3_e16_s1_c16-ir_r3_k3.5.7_e1.16.6_s2_c160-fc100"
    single = MobileNetV2Arch(
        input_channels=3, num_classes=10, resolution=32, stem_channels=16, stem_kernel=3, stem_stride=2,
        stage_strides=(1,), stage_channels=(16,), block_kernels=((3, 3),), block_expansions=((1, 6),),
    )
    assert single.block_string() == "r32_in3-stem_k3_s2_c16-ir_r2_k3_e1.6_s1_c16-fc10"
    assert parse_block_string("r32_in3-stem_k3_s2_c16-ir_r2_k3_e16_s1_c16-fc10").block_expansions == ((16, 16),)
    assert parse_block_string(single.block_string()) == single


def test_activation_and_rectangular_sizes_are_written() -> None:
    v1 = MobileNetV1Arch(
        input_channels=1, num_classes=10, resolution=32, stem_channels=8, stem_kernel=3, stem_stride=2,
        stage_strides=(2,), stage_channels=(32,), block_kernels=((5, 3),), activation="relu6",
    )
    assert v1.block_string() == "r32_in1-relu6-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-fc10"
    assert parse_block_string(v1.block_string()).activation == "relu6"
    square_dscnn = DsCnnArch(
        input_channels=1, num_classes=12, resolution=(32, 32), stem_channels=8, stem_kernel=(3, 3), stem_stride=(2, 2),
        stage_strides=(1,), stage_channels=(8,), block_kernels=((3,),), activation="relu",
    )
    assert square_dscnn.block_string() == "r32x32_in1-relu-stem_k3x3_s2x2_c8-dsc_r1_k3_s1_c8-fc12"
    assert parse_block_string(square_dscnn.block_string()) == square_dscnn


V2 = "r32_in3-stem_k3_s2_c16-ir_r1_k3_e1_s1_c8-ir_r2_k5.7_e6.4_s2_c16-fc10"
DSCNN = "r49x10_in1-relu-stem_k10x4_s2x2_c64-dsc_r4_k3_s1_c64-fc12"


@pytest.mark.parametrize(
    ("text", "token", "problem"),
    [
        ("r32_in3", None, "expected at least 4 tokens"),
        ("r32_in3-ir_r1_k3_e1_s1_c8-ir_r1_k3_e1_s1_c8-fc10", "ir_r1_k3_e1_s1_c8", "expected the stem token"),
        ("r32_in3-stem_k3_s2_c16-fc10-fc10", "fc10", "unknown stage prefix 'fc10'"),
        ("r32_in3-stem_k3_s2_c16-fc10", None, "expected at least 4 tokens"),
        ("r32_in3-stem_k3_s2_c16-xx_r1_k3_s1_c8-fc10", "xx_r1_k3_s1_c8", "unknown stage prefix 'xx'"),
        (V2.replace("k5.7_e6.4", "k5.7.3_e6.4"), "ir_r2_k5.7.3_e6.4_s2_c16", "3 values for 2 blocks"),
        (V2.replace("_e6.4", ""), "ir_r2_k5.7_s2_c16", "expected the fields 'r', 'k', 'e', 's', 'c' in this order"),
        (V2.replace("k5.7_e6.4_s2", "s2_k5.7_e6.4"), "ir_r2_s2_k5.7_e6.4_c16", "in this order"),
        (V2.replace("k5.7", "k5..7"), "ir_r2_k5..7_e6.4_s2_c16", "expected numbers joined by '.'"),
        (V2.replace("k5.7", "k5.4"), "ir_r2_k5.4_e6.4_s2_c16", r"'block_kernels\[1\]\[1\]': expected one of"),
        (V2.replace("_e6.4", "_e6.17"), "ir_r2_k5.7_e6.17_s2_c16", r"'block_expansions\[1\]\[1\]'"),
        (V2.replace("ir_r1", "ir_r0"), "ir_r0_k3_e1_s1_c8", "expected 1 to 16 blocks, got 0"),
        (V2.replace("ir_r1", "ir_r99999999999"), "ir_r99999999999_k3_e1_s1_c8", "expected 1 to 16 blocks"),
        (V2.replace("_c8-", "_c08-"), "ir_r1_k3_e1_s1_c08", "no leading zeros"),
        (V2.replace("_c8-", "_c-8-"), "ir_r1_k3_e1_s1_c", "field 'c': expected a number"),
        (V2.replace("_s1_c8", "_s3_c8"), "ir_r1_k3_e1_s1_c8".replace("s1", "s3"), r"'stage_strides\[0\]'"),
        (V2.replace("r32", "r32x16"), "r32x16_in3", "mobilenetv2 sizes are square"),
        (V2.replace("r32", "r3"), "r3_in3", "'resolution'"),
        (V2.replace("in3", "in0"), "r32_in0", "'input_channels'"),
        (V2.replace("fc10", "fc1"), "fc1", "'num_classes'"),
        (V2.replace("fc10", "fc10_x"), "fc10_x", "expected the fields 'fc'"),
        (V2.replace("stem_k3", "stem_k4"), "stem_k4_s2_c16", "'stem_kernel'"),
        (V2.replace("stem_k3", "stem_k3x3"), "stem_k3x3_s2_c16", "square"),
        (V2.replace("-stem", "-relu-stem"), "relu", "mobilenetv2 has no activation token"),
        ("r32_in1-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-fc10", "stem_k3_s2_c8", "needs the activation token"),
        ("r32_in1-gelu-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-fc10", "gelu", "'activation': expected one of"),
        ("r32_in1-relu-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-ir_r1_k3_e1_s1_c8-fc10", "ir_r1_k3_e1_s1_c8", "expected ds_r{depth}"),
        (DSCNN.replace("r49x10", "r49"), "r49x10_in1".replace("x10", ""), r"dscnn sizes are \{height\}x\{width\}"),
        (DSCNN.replace("k10x4", "k10x11"), "stem_k10x11_s2x2_c64", r"'stem_kernel\[1\]': expected at most the input size 10"),
        (DSCNN.replace("s2x2", "s2x"), "stem_k10x4_s2x_c64", "expected a size"),
    ],
)
def test_errors_name_the_token_and_the_problem(text: str, token: str | None, problem: str) -> None:
    with pytest.raises(ArchitectureError, match=problem) as raised:
        parse_block_string(text)
    if token is not None:
        assert f"token {text.split('-').index(token) + 1} {token!r}" in str(raised.value)


@pytest.mark.parametrize("value", [None, 12, b"r32_in3", ["r32_in3"]])
def test_non_text_is_an_architecture_error(value) -> None:
    with pytest.raises(ArchitectureError, match="must be text"):
        parse_block_string(value)


def test_read_arch_tells_files_from_block_strings(tmp_path, monkeypatch) -> None:
    arch = parse_block_string(DSCNN)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_dict()))
    monkeypatch.chdir(tmp_path)
    assert read_arch(str(path)) == read_arch("arch.json") == read_arch(DSCNN) == arch
    (tmp_path / "r32.JSON").write_text(json.dumps(arch.to_dict()))
    assert read_arch("r32.JSON") == arch  # a .json name is a file, even when it starts like a block string
    (tmp_path / "plain").write_text(json.dumps(arch.to_dict()))
    for text in ("plain", str(tmp_path / "plain"), "model.onnx", "", "x" + DSCNN):
        with pytest.raises(NotAnArchError, match="expected an architecture file .* or a block string"):
            read_arch(text)
    with pytest.raises(ArchitectureError, match="architecture file not found"):
        read_arch("absent.json")
    with pytest.raises(ArchitectureError, match="token 1 'r32'"):
        read_arch("r32-stem_k3_s2_c8-ir_r1_k3_e1_s1_c8-fc10")
