"""Search spaces: the analytic op graph against the real PyTorch model, layer specs, Arch JSON,
block strings, sampling."""

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
from mcunas.spaces import SPACE_NAMES, arch_from_dict, get_space, load_arch, parse_block_string, space_for_input
from mcunas.spaces.dscnn import DsCnnArch
from mcunas.spaces.graph_builder import LAYER_EMITTERS, LAYER_GEOMETRY
from mcunas.spaces.layers import LAYER_MODULES, SpecBlock
from mcunas.spaces.mobilenetv1 import MobileNetV1Arch
from mcunas.spaces.mobilenetv2 import MobileNetV2Arch
from mcunas.spaces.spec import LAYER_KINDS

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Small inputs keep the 200-architecture comparisons fast; 5 and 12 give odd sizes deeper in.
# dscnn: rectangular inputs, odd and even stem kernels, every stem stride.
SMALL_RECTANGULAR = {"input_size": [13, 6], "stem_kernels": [[4, 2], [3, 3], [5, 4], [1, 3]],
                     "stem_strides": [[2, 2], [2, 1], [1, 2], [1, 1]],
                     "stages": [{"stride": 1, "channels": [4, 8], "depth": [1, 2]},
                                {"stride": 2, "channels": [8, 12], "depth": [1, 2]},
                                {"stride": 2, "channels": [12, 16], "depth": [1, 2]}],
                     "kernel_sizes": [3, 5, 7]}
SMALL = {"mobilenetv2": {"resolutions": [5, 8, 12, 16]}, "mobilenetv1": {"resolutions": [5, 8, 12, 16]},
         "dscnn": SMALL_RECTANGULAR, "cnn": {"resolutions": [5, 8, 12, 15], "stem_stride": 1}}
# Options that fix the input size to 16 (square) or 16x10 (dscnn).
SIZE_16 = {"mobilenetv2": {"resolutions": [16]}, "mobilenetv1": {"resolutions": [16]}, "dscnn": {"input_size": [16, 10]},
           "cnn": {"resolutions": [16]}}
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


def candidate_input_sizes(space) -> list[tuple[int, int]]:
    """The (height, width) input sizes a space samples."""
    if hasattr(space, "input_size"):
        return [space.input_size]
    return [(r, r) for r in space.resolutions]


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
        logits = model(torch.randn(1, arch.input_channels, *arch.input_size))
    adds = sum(1 for m in model.modules() if isinstance(m, SpecBlock) and m.residual)
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
    space = get_space(name, **SMALL[name])
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
    assert arch.block_string() == "r16_in3-stem_k3_s1_c8-ir_r1_k3_e1_s1_c8-ir_r2_k5.7_e6.4_s2_c16-fc10"
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


def test_every_layer_kind_has_both_builders() -> None:
    assert tuple(LAYER_EMITTERS) == tuple(LAYER_MODULES) == tuple(LAYER_GEOMETRY) == LAYER_KINDS


def test_cnn_pools_only_maps_of_at_least_2x2() -> None:
    """A pool drawn for a map already 1 pixel wide is not in the sampled Arch; one asked for is refused."""
    space = get_space("cnn", resolutions=[5], stem_channels=[4], stem_kernels=[3], pool_choices=[1],
                      stages=[{"stride": 2, "channels": [4], "depth": [3, 3]}])
    arch = sample_archs(space, 1, seed=0)[0]
    # 5x5 -> stem 3x3 -> block 0 (stride 2) 2x2, pool -> 1x1; blocks 1 and 2 cannot pool
    assert arch.block_pools == ((1, 0, 0),)
    assert [op.kind for op in space.graph(arch).ops].count("MAX_POOL_2D") == 1
    with pytest.raises(ArchitectureError, match=r"'block_pools\[0\]\[1\]': a 2x2 max pool needs"):
        replace(arch, block_pools=((1, 1, 0),))
    odd = parse_block_string("r15_in1-relu-stem_k3_s1_c4-cnn_r1_k3_d0_p1_s1_c8-fc10")
    pool = get_space("cnn").graph(odd).ops[-3]  # then MEAN, FULLY_CONNECTED
    assert (pool.kind, pool.padding, pool.kernel, pool.stride) == ("MAX_POOL_2D", "VALID", (2, 2), (2, 2))
    assert get_space("cnn").graph(odd).tensors[pool.outputs[0]].shape == (1, 7, 7, 8)  # floor(15 / 2)


def test_spec_lists_each_layer_once_and_names_modules_like_tensors() -> None:
    space = get_space("mobilenetv2")
    arch = MobileNetV2Arch(
        input_channels=3, num_classes=10, resolution=16, stem_channels=8, stem_kernel=3, stem_stride=1,
        stage_strides=(1, 2), stage_channels=(8, 16), block_kernels=((3,), (5, 7)), block_expansions=((1,), (6, 4)),
    )
    spec = space.spec(arch)
    assert (spec.name, spec.input_size, spec.input_channels, spec.num_classes) == (arch.block_string(), (16, 16), 3, 10)
    assert [(b.name, [layer.name for layer in b.layers], b.residual) for b in spec.blocks] == [
        ("stage0.block0", ["depthwise", "project"], True),
        ("stage1.block0", ["expand", "depthwise", "project"], False),
        ("stage1.block1", ["expand", "depthwise", "project"], True),
    ]
    assert spec.blocks[1].layers[1] == ("depthwise", "depthwise", 48, (5, 5), (2, 2), "RELU6")
    model = space.build(arch)
    convolutions = [name[: -len(".0")] for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    assert convolutions == ["stem"] + [f"blocks.{i}.{layer.name}" for i, b in enumerate(spec.blocks) for layer in b.layers]
    weights = [t.name[: -len("/weights")] for t in space.graph(arch).tensors if t.name.endswith("/weights")]
    assert weights == ["stem"] + [f"{b.name}.{layer.name}" for b in spec.blocks for layer in b.layers] + ["classifier"]


def test_rectangular_geometry_follows_the_exported_models() -> None:
    """Conventions checked on onnx2tf 1.28.8 + TF 2.21 exports (graph_builder's docstring): the
    MLPerf Tiny DS-CNN stem (10x4, stride 2x2 on 49x10) pads explicitly to 59x12; a stride of
    (2, 1) on an even height pads explicitly, (1, 2) on an odd width is SAME; an even kernel at
    stride 1 grows the map by one."""
    arch = DsCnnArch(
        input_channels=1, num_classes=12, resolution=(49, 10), stem_channels=8, stem_kernel=(10, 4), stem_stride=(2, 2),
        stage_strides=(1,), stage_channels=(8,), block_kernels=((3,),), activation="relu",
    )
    graph = get_space("dscnn").graph(arch)
    pad, stem = graph.ops[:2]
    assert (pad.kind, graph.tensors[pad.outputs[0]].shape) == ("PAD", (1, 59, 12, 1))
    assert (stem.kernel, stem.stride, stem.padding, graph.tensors[stem.outputs[0]].shape) == ((10, 4), (2, 2), "VALID", (1, 25, 5, 8))
    assert graph.tensors[stem.inputs[1]].shape == (8, 10, 4, 1) and stem.macs == 25 * 5 * 8 * 10 * 4

    def stem_of(size, kernel, stride):
        arch = DsCnnArch(
            input_channels=2, num_classes=4, resolution=size, stem_channels=4, stem_kernel=kernel, stem_stride=stride,
            stage_strides=(1,), stage_channels=(4,), block_kernels=((3,),), activation="relu",
        )
        graph = get_space("dscnn").graph(arch)
        conv = next(op for op in graph.ops if op.kind == "CONV_2D")
        return [op.kind for op in graph.ops[:2]], conv.padding, graph.tensors[conv.outputs[0]].shape[1:3]

    assert stem_of((12, 7), (3, 3), (2, 1)) == (["PAD", "CONV_2D"], "VALID", (6, 7))
    assert stem_of((3, 7), (3, 3), (1, 2)) == (["CONV_2D", "DEPTHWISE_CONV_2D"], "SAME", (3, 4))
    assert stem_of((8, 9), (4, 4), (1, 1)) == (["PAD", "CONV_2D"], "VALID", (9, 10))
    assert stem_of((9, 10), (5, 3), (1, 1)) == (["CONV_2D", "DEPTHWISE_CONV_2D"], "SAME", (9, 10))


def test_dscnn_space_holds_the_mlperf_tiny_model(mlperf_dir) -> None:
    """The MLPerf Tiny KWS DS-CNN (real file) is an architecture of the default dscnn space: same
    convolutions (kinds, shapes, kernels, strides, MACs) and classifier; the export differs only
    in the stem's explicit PAD (PyTorch pads 5 rows on both sides where TensorFlow padded 4 and 5)
    and in pooling with MEAN instead of AVERAGE_POOL_2D + RESHAPE, and has no SOFTMAX."""
    from mcunas.graph.tflite import read_tflite

    reference = read_tflite(mlperf_dir / "kws_ref_model.tflite")
    space = get_space("dscnn")
    params = {"stem_channels": 64, "stem_kernel": "10x4", "stem_stride": "2x2", "stage0_channels": 64, "stage0_depth": 2,
              "stage1_channels": 64, "stage1_depth": 2, **{f"stage{i}_block{j}_kernel": 3 for i in (0, 1) for j in (0, 1)}}
    arch = space.sample(optuna.trial.FixedTrial(params))
    assert arch.block_string() == "r49x10_in1-relu-stem_k10x4_s2x2_c64-dsc_r2_k3_s1_c64-dsc_r2_k3_s1_c64-fc12"
    graph = space.graph(arch)

    def layers(g):
        return [(op.kind, g.tensors[op.inputs[1]].shape, g.tensors[op.outputs[0]].shape, op.kernel, op.stride,
                 op.activation, op.macs) for op in g.ops if op.kind in MACS_KINDS]

    assert layers(graph) == layers(reference)
    assert graph.macs == reference.macs and graph.params == reference.params
    assert [op.kind for op in reference.ops if op.kind not in MACS_KINDS] == ["AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"]
    assert [op.kind for op in graph.ops if op.kind not in MACS_KINDS] == ["PAD", "MEAN"]


def test_depthwise_convolutions_need_equal_strides() -> None:
    from mcunas.spaces.graph_builder import GraphBuilder
    from mcunas.spaces.spec import LayerSpec

    builder = GraphBuilder("g")
    x = builder.input(8, 8, 4)
    with pytest.raises(ValueError, match="equal strides"):
        builder.depthwise_conv2d(x, LayerSpec("depthwise", "dw", 4, (3, 3), (2, 1), "RELU"), "dw")


def test_dscnn_arch_and_options_errors_name_the_field() -> None:
    good = get_space("dscnn").default_teacher(1, 12, (49, 10)).to_dict()
    for change, field in [
        ({"resolution": 49}, "resolution"),
        ({"resolution": [49, 0]}, r"resolution\[1\]"),
        ({"stem_kernel": [10, 11]}, r"stem_kernel\[1\]"),  # wider than the 10 coefficients
        ({"stem_kernel": [17, 4]}, r"stem_kernel\[0\]"),
        ({"stem_stride": [2, 3]}, r"stem_stride\[1\]"),
        ({"stem_stride": 2}, "stem_stride"),
    ]:
        with pytest.raises(ArchitectureError, match=f"dscnn arch field '{field}'"):
            arch_from_dict({**good, **change})
    for options, key in [
        ({"input_size": [49]}, "input_size"),
        ({"input_size": [9, 10], "stem_kernels": [[8, 4], [10, 4]]}, r"stem_kernels\[1\]"),  # taller than 9 frames
        ({"stem_kernels": [[10, 4], [10, 4]]}, "stem_kernels"),
        ({"stem_strides": [[2, 3]]}, r"stem_strides\[0\]\[1\]"),
        ({"resolutions": [32]}, "resolutions"),
        ({"stem_stride": 2}, "stem_stride"),
    ]:
        with pytest.raises(ConfigError, match=f"^{key}: "):
            get_space("dscnn", **options)


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
        assert arch.input_size in candidate_input_sizes(space)
        assert arch.input_channels == space.input_channels and arch.num_classes == space.num_classes


def test_fixed_trial_samples_the_given_architecture() -> None:
    space = get_space("mobilenetv1", stages=[{"stride": 2, "channels": [16, 32], "depth": [1, 2]}])
    params = {"resolution": 32, "stem_channels": 8, "stem_kernel": 3, "stage0_channels": 32, "stage0_depth": 2,
              "stage0_block0_kernel": 5, "stage0_block1_kernel": 3}
    arch = space.sample(optuna.trial.FixedTrial(params))
    assert arch.block_string() == "r32_in1-relu-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-fc10"
    assert arch.activation == "relu"


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_default_teacher_is_the_largest_arch(name: str) -> None:
    space = get_space(name, input_channels=1, num_classes=7, **SIZE_16[name])
    (size,) = candidate_input_sizes(space)
    teacher = space.default_teacher(1, 7, size)  # a (height, width) pair for every space
    assert (teacher.space, teacher.input_channels, teacher.num_classes, teacher.input_size) == (name, 1, 7, size)
    teacher_graph = space.graph(teacher)
    for arch in sample_archs(space, 30, seed=4):
        graph = space.graph(arch)
        assert graph.macs <= teacher_graph.macs and graph.params <= teacher_graph.params


def test_space_for_input_takes_the_data_input_size() -> None:
    square = space_for_input("mobilenetv1", {}, (20, 20))
    assert square.resolutions == (20,)
    assert space_for_input("mobilenetv1", {"resolutions": [16, 24]}, (20, 20)).resolutions == (16, 24)  # resized
    assert space_for_input("dscnn", {}, (49, 40)).input_size == (49, 40)
    assert space_for_input("dscnn", {"input_size": [49, 10]}, (49, 10)).input_size == (49, 10)
    with pytest.raises(ConfigError, match=r"name: space 'mobilenetv2' takes square inputs, the dataset's are 49x10"):
        space_for_input("mobilenetv2", {}, (49, 10))
    with pytest.raises(ConfigError, match=r"input_size: \[32, 10\] is not the dataset's input \[49, 10\]"):
        space_for_input("dscnn", {"input_size": [32, 10]}, (49, 10))
    with pytest.raises(ArchitectureError, match="mobilenetv2 arch field 'resolution'"):
        get_space("mobilenetv2").default_teacher(1, 10, (32, 16))


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
        ({"block_expansions": [[1], [6, 17]]}, "block_expansions[1][1]"),
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
    with pytest.raises(ArchitectureError, match="architecture file not found"):
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
        ("mobilenetv2", {"expand_ratios": [1, 17]}, r"expand_ratios\[1\]"),
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
