"""Search spaces: the analytic op graph against the real PyTorch model, Arch JSON, sampling."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import optuna
import pytest
import torch
from torch import nn

from mcunas.errors import ArchitectureError, ConfigError
from mcunas.graph import SPACE_OP_KINDS, Graph
from mcunas.spaces import SPACE_NAMES, arch_from_dict, get_space, load_arch
from mcunas.spaces.layers import InvertedResidual
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch
from mcunas.spaces.mobilenetv2 import MobileNetV2Arch

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Small inputs keep the 200-architecture comparisons fast; 5 and 12 give odd sizes deeper in.
SMALL = {"resolutions": [5, 8, 12, 16]}
MACS_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not oversubscribe a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample_archs(space, n: int, seed: int) -> list:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(n)]


def measure_torch(model: nn.Module, arch) -> dict:
    """MACs, BN-folded params, per-layer NHWC output shapes and residual adds of the real model."""
    layers: list[tuple[str, tuple[int, ...], int]] = []

    def on_conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        n, c, h, w = output.shape
        kind = "DEPTHWISE_CONV_2D" if module.groups > 1 else "CONV_2D"
        kh, kw = module.kernel_size
        layers.append((kind, (n, h, w, c), h * w * c * kh * kw * module.in_channels // module.groups))

    def on_linear(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        layers.append(("FULLY_CONNECTED", tuple(output.shape), module.in_features * module.out_features))

    params = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(on_conv)
            params += module.weight.numel() + module.out_channels  # BN folds into one bias per channel
        elif isinstance(module, nn.Linear):
            module.register_forward_hook(on_linear)
            params += module.weight.numel() + module.bias.numel()
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(1, arch.input_channels, arch.resolution, arch.resolution))
    adds = sum(1 for m in model.modules() if isinstance(m, InvertedResidual) and m.residual)
    return {"layers": layers, "params": params, "macs": sum(m for _, _, m in layers), "adds": adds, "logits": tuple(logits.shape)}


def check_well_formed(graph: Graph) -> None:
    """Every op reads the graph input, a constant or an earlier op's output; kinds are TFLM int8 ops."""
    produced = set(graph.inputs)
    for op in graph.ops:
        assert op.kind in SPACE_OP_KINDS
        for index in op.inputs:
            assert index in produced or graph.tensors[index].is_constant, (op, index)
        for index in op.outputs:
            assert index not in produced
            produced.add(index)
    assert graph.outputs == (graph.ops[-1].outputs[0],)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_graph_matches_pytorch_for_200_random_archs(name: str, one_torch_thread) -> None:
    torch.manual_seed(0)
    space = get_space(name, **SMALL)
    for arch in sample_archs(space, 200, seed=1):
        graph = space.graph(arch)
        measured = measure_torch(space.build(arch), arch)
        check_well_formed(graph)
        graph_layers = [
            (op.kind, graph.tensors[op.outputs[0]].shape, op.macs) for op in graph.ops if op.kind in MACS_KINDS
        ]
        assert graph_layers == measured["layers"], arch.block_string()
        assert graph.macs == measured["macs"]
        assert graph.params == measured["params"]
        assert sum(op.kind == "ADD" for op in graph.ops) == measured["adds"]
        assert graph.tensors[graph.outputs[0]].shape == measured["logits"] == (1, arch.num_classes)


def test_padding_follows_the_exported_models() -> None:
    """Stride 2 on an even size: explicit PAD + VALID; on an odd size or 1x1: SAME (checked
    against onnx2tf 1.28.8 + TF 2.21 exports of these two architectures)."""
    arch = MobileNetV1Arch(
        input_channels=1, num_classes=4, resolution=8, stem_channels=8, stem_kernel=3, stem_stride=2,
        stage_strides=(2, 2, 2), stage_channels=(8, 16, 16), block_kernels=((5,), (3,), (3,)), activation="relu6",
    )
    graph = get_space("mobilenetv1").graph(arch)
    assert [op.kind for op in graph.ops] == [
        "PAD", "CONV_2D",  # 8x8 -> 4x4
        "PAD", "DEPTHWISE_CONV_2D", "CONV_2D",  # 4x4 -> 2x2, 5x5 kernel: pad 2
        "PAD", "DEPTHWISE_CONV_2D", "CONV_2D",  # 2x2 -> 1x1
        "DEPTHWISE_CONV_2D", "CONV_2D",  # 1x1 -> 1x1: SAME, no PAD
        "FULLY_CONNECTED",  # no MEAN on a 1x1 map, no RESHAPE
    ]
    pads = [op for op in graph.ops if op.kind == "PAD"]
    assert [graph.tensors[op.outputs[0]].shape for op in pads] == [(1, 10, 10, 1), (1, 8, 8, 8), (1, 4, 4, 8)]
    assert all(graph.tensors[op.inputs[1]].shape == (4, 2) and graph.tensors[op.inputs[1]].dtype == "int32" for op in pads)
    convs = [op for op in graph.ops if op.kernel]
    assert [op.padding for op in convs] == ["VALID", "VALID", "SAME", "VALID", "SAME", "SAME", "SAME"]
    assert {op.activation for op in convs} == {"RELU6"}
    fc = graph.ops[-1]
    weights, bias = (graph.tensors[i] for i in fc.inputs[1:])
    assert graph.tensors[fc.inputs[0]].shape == (1, 1, 1, 16)
    assert (weights.shape, bias.shape, bias.dtype, weights.quant_channels) == ((4, 16), (4,), "int32", 4)

    odd = MobileNetV2Arch(
        input_channels=3, num_classes=10, resolution=9, stem_channels=8, stem_kernel=3, stem_stride=2,
        stage_strides=(1, 2, 2, 2), stage_channels=(8, 16, 16, 24), block_kernels=((3,), (5, 7), (3,), (7,)),
        block_expansions=((1,), (6, 4), (3,), (1,)),
    )
    graph = get_space("mobilenetv2").graph(odd)
    strided = [(graph.tensors[op.inputs[0]].shape[1], op.padding) for op in graph.ops if op.stride == (2, 2)]
    assert strided == [(9, "SAME"), (5, "SAME"), (3, "SAME"), (8, "VALID")]  # 8: after PAD of 2x2 by 3
    assert [op.kind for op in graph.ops].count("PAD") == 1


def test_mean_pools_maps_larger_than_1x1() -> None:
    arch = MobileNetV1Arch(
        input_channels=1, num_classes=4, resolution=16, stem_channels=8, stem_kernel=5, stem_stride=2,
        stage_strides=(2, 2), stage_channels=(8, 16), block_kernels=((7,), (3,)), activation="relu",
    )
    graph = get_space("mobilenetv1").graph(arch)
    mean, fc = graph.ops[-2:]
    assert (mean.kind, fc.kind) == ("MEAN", "FULLY_CONNECTED")
    assert graph.tensors[mean.inputs[0]].shape == (1, 2, 2, 16)
    assert graph.tensors[mean.inputs[1]].shape == (2,) and graph.tensors[mean.inputs[1]].quant_channels == 0
    assert graph.tensors[mean.outputs[0]].shape == (1, 1, 1, 16) == graph.tensors[fc.inputs[0]].shape
    assert graph.tensors[fc.outputs[0]].shape == (1, 4) and fc.macs == 16 * 4


def test_inverted_residual_tensors_and_quantization() -> None:
    arch = MobileNetV2Arch(
        input_channels=3, num_classes=10, resolution=16, stem_channels=8, stem_kernel=3, stem_stride=1,
        stage_strides=(1, 2), stage_channels=(8, 16), block_kernels=((3,), (5, 7)), block_expansions=((1,), (6, 4)),
    )
    assert arch.block_string() == "r16_in3-stem_k3_s1_c8-ir_r1_k3_e1_s1_c8-ir_r2_k57_e64_s2_c16-fc10"
    graph = get_space("mobilenetv2").graph(arch)
    kinds = [op.kind for op in graph.ops]
    assert kinds == [
        "CONV_2D",  # stem, stride 1
        "DEPTHWISE_CONV_2D", "CONV_2D", "ADD",  # e1: no expansion conv, residual
        "CONV_2D", "PAD", "DEPTHWISE_CONV_2D", "CONV_2D",  # e6, stride 2: no residual
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD",  # e4, stride 1, 16 -> 16: residual
        "MEAN", "FULLY_CONNECTED",
    ]
    expand, _, dw, project = graph.ops[4:8]
    tensors = graph.tensors
    assert tensors[expand.inputs[1]].shape == (48, 1, 1, 8) and tensors[expand.inputs[1]].quant_channels == 48
    assert tensors[dw.inputs[1]].shape == (1, 5, 5, 48) and tensors[dw.inputs[1]].quant_channels == 48
    assert tensors[dw.inputs[2]].shape == (48,) and tensors[dw.inputs[2]].dtype == "int32"
    assert (dw.kernel, dw.stride, dw.padding, dw.activation) == ((5, 5), (2, 2), "VALID", "RELU6")
    assert project.activation == "NONE" and tensors[project.outputs[0]].shape == (1, 8, 8, 16)
    assert dw.macs == 8 * 8 * 48 * 5 * 5
    assert all(t.quant_channels == 1 for t in tensors if not t.is_constant)


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_json_round_trip_is_exact(name: str, tmp_path) -> None:
    space = get_space(name)
    for arch in sample_archs(space, 200, seed=2):
        data = json.loads(json.dumps(arch.to_dict()))
        assert data == arch.to_dict() and list(data)[0] == "space" and data["space"] == name
        assert arch_from_dict(data) == arch
        assert arch_from_dict(json.loads(arch.to_json())) == arch
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_dict(), indent=2))
    assert load_arch(path) == arch


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_sampling_is_deterministic_and_conditional(name: str) -> None:
    space = get_space(name)
    assert sample_archs(space, 20, seed=5) == sample_archs(space, 20, seed=5)
    assert sample_archs(space, 20, seed=5) != sample_archs(space, 20, seed=6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(30):
        trial = study.ask()
        arch = space.sample(trial)
        for i, depth in enumerate(arch.depths):
            assert trial.params[f"stage{i}_depth"] == depth
            assert f"stage{i}_block{depth - 1}_kernel" in trial.params
            assert f"stage{i}_block{depth}_kernel" not in trial.params
        assert arch.resolution in space.resolutions
        assert arch.input_channels == space.input_channels and arch.num_classes == space.num_classes


def test_fixed_trial_samples_the_given_architecture() -> None:
    space = get_space("mobilenetv1", stages=[{"stride": 2, "channels": [16, 32], "depth": [1, 2]}])
    params = {"resolution": 32, "stem_channels": 8, "stem_kernel": 3, "stage0_channels": 32, "stage0_depth": 2,
              "stage0_block0_kernel": 5, "stage0_block1_kernel": 3}
    arch = space.sample(optuna.trial.FixedTrial(params))
    assert arch.block_string() == "r32_in1-stem_k3_s2_c8-ds_r2_k53_s2_c32-fc10"
    assert arch.activation == "relu"


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_default_teacher_is_the_largest_arch(name: str) -> None:
    space = get_space(name, input_channels=1, num_classes=7, resolutions=[16])
    teacher = space.default_teacher(1, 7, 16)
    assert (teacher.space, teacher.input_channels, teacher.num_classes, teacher.resolution) == (name, 1, 7, 16)
    teacher_graph = space.graph(teacher)
    for arch in sample_archs(space, 30, seed=4):
        graph = space.graph(arch)
        assert graph.macs <= teacher_graph.macs and graph.params <= teacher_graph.params


def v2_dict() -> dict:
    return MobileNetV2Arch(
        input_channels=3, num_classes=10, resolution=32, stem_channels=16, stem_kernel=3, stem_stride=2,
        stage_strides=(1, 2), stage_channels=(16, 24), block_kernels=((3,), (5, 7)), block_expansions=((1,), (6, 4)),
    ).to_dict()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resolution": "32"}, "resolution"),
        ({"resolution": 2}, "resolution"),
        ({"num_classes": True}, "num_classes"),
        ({"stem_kernel": 4}, "stem_kernel"),
        ({"stem_stride": 3}, "stem_stride"),
        ({"stage_strides": [1, 3]}, "stage_strides[1]"),
        ({"stage_channels": [16]}, "stage_channels"),
        ({"stage_channels": [16, 0]}, "stage_channels[1]"),
        ({"block_kernels": [[3], [5, 8]]}, "block_kernels[1][1]"),
        ({"block_kernels": [[3], []]}, "block_kernels[1]"),
        ({"block_expansions": [[1], [6]]}, "block_expansions[1]"),
        ({"block_expansions": [[1], [6, 12]]}, "block_expansions[1][1]"),
        ({"block_expansions": [[1], [6, 4.0]]}, "block_expansions[1][1]"),
        ({"width": 8}, "width"),
        ({"space": "resnet"}, "space"),
    ],
)
def test_bad_arch_fields_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ArchitectureError, match=f"'{re.escape(field)}'"):
        arch_from_dict({**v2_dict(), **change})


def test_missing_field_and_bad_activation_are_named() -> None:
    data = v2_dict()
    del data["block_expansions"]
    with pytest.raises(ArchitectureError, match="missing field 'block_expansions'"):
        arch_from_dict(data)
    v1 = get_space("mobilenetv1").default_teacher(1, 10, 32).to_dict()
    with pytest.raises(ArchitectureError, match="'activation'"):
        arch_from_dict({**v1, "activation": "gelu"})
    with pytest.raises(ArchitectureError, match="'stem_channels'"):
        replace(get_space("mobilenetv1").default_teacher(1, 10, 32), stem_channels=-1)


def test_load_arch_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(ArchitectureError, match="no such architecture file"):
        load_arch(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"space": "mobilenetv2",')
    with pytest.raises(ArchitectureError, match=r"broken\.json: not valid JSON"):
        load_arch(broken)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**v2_dict(), "resolution": 0}))
    with pytest.raises(ArchitectureError, match=r"bad\.json: .*'resolution'"):
        load_arch(bad)


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("resnet", {}, "name"),
        ("mobilenetv2", {"resolutions": []}, "resolutions"),
        ("mobilenetv2", {"resolutions": [32, "64"]}, r"resolutions\[1\]"),
        ("mobilenetv2", {"expand_ratios": [1, 9]}, r"expand_ratios\[1\]"),
        ("mobilenetv2", {"kernel_sizes": [3, 4]}, r"kernel_sizes\[1\]"),
        ("mobilenetv2", {"widths": [8]}, "widths"),
        ("mobilenetv1", {"activation": "gelu"}, "activation"),
        ("mobilenetv1", {"expand_ratios": [1]}, "expand_ratios"),
        ("mobilenetv1", {"stages": [{"stride": 3, "channels": [8], "depth": 1}]}, r"stages\[0\]\.stride"),
        ("mobilenetv1", {"stages": [{"stride": 1, "channels": [8], "depth": [3, 1]}]}, r"stages\[0\]\.depth"),
        ("mobilenetv1", {"stages": [{"stride": 1, "channels": [8]}]}, r"stages\[0\]\.depth"),
        ("mobilenetv1", {"stages": [{"stride": 1, "channels": [8], "depth": 1, "se": 1}]}, r"stages\[0\]\.se"),
        ("mobilenetv1", {"input_channels": 0}, "input_channels"),
    ],
)
def test_bad_options_raise_config_error_naming_the_key(name: str, options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: "):
        get_space(name, **options)


def test_space_of_wrong_arch_is_refused() -> None:
    arch = get_space("mobilenetv1").default_teacher(1, 10, 32)
    with pytest.raises(ArchitectureError, match="space 'mobilenetv1' was given to space 'mobilenetv2'"):
        get_space("mobilenetv2").graph(arch)
