"""Block strings: a one-line notation of an architecture that reads both ways.

:func:`format_block_string` writes it (``Arch.block_string()``), :func:`parse_block_string`
reads it back; the docstring of :func:`parse_block_string` is the notation's manual.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NoReturn

from mcunas.errors import ArchitectureError
from mcunas.spaces.arch import DEPTH_RANGE, ArchFieldError

if TYPE_CHECKING:
    from mcunas.spaces.arch import StagedArch

_NUMBER = r"(?:0|[1-9][0-9]*)"
_INT = re.compile(_NUMBER)
_SIZE = re.compile(rf"({_NUMBER})(?:x({_NUMBER}))?")
_LIST = re.compile(rf"{_NUMBER}(?:\.{_NUMBER})*")
_FIELD = re.compile(r"([a-z]+)(.*)")
# What a field's value means, for error messages.
_MEANING = {"r": "depth", "k": "kernels", "e": "expansions", "d": "separable flags", "p": "pool flags", "s": "stride",
            "c": "channels", "in": "channels", "fc": "classes"}


def format_block_string(arch: "StagedArch") -> str:
    """The block string of ``arch`` (see :func:`parse_block_string`)."""
    tokens = [f"r{_size(arch.resolution)}_in{arch.input_channels}"]
    if _has_activation(type(arch)):
        tokens.append(arch.activation)
    tokens.append(f"stem_k{_size(arch.stem_kernel)}_s{_size(arch.stem_stride)}_c{arch.stem_channels}")
    prefix = arch.block_prefix
    tables = [(key, getattr(arch, field)) for key, field in arch.block_fields]
    for stage, (depth, stride, channels) in enumerate(zip(arch.depths, arch.stage_strides, arch.stage_channels)):
        per_block = "".join([f"_{key}{_values(table[stage])}" for key, table in tables])
        tokens.append(f"{prefix}_r{depth}{per_block}_s{stride}_c{channels}")
    tokens.append(f"fc{arch.num_classes}")
    return "-".join(tokens)


def parse_block_string(text: str) -> "StagedArch":
    """The architecture a block string describes: the inverse of ``Arch.block_string()``.

    A block string is tokens joined by ``-``; a token is fields joined by ``_``; a field is a
    key (lower-case letters) followed by its value::

        r32_in3-stem_k3_s2_c16-ir_r1_k3_e1_s1_c8-ir_r2_k5.7_e6.4_s2_c16-fc10      mobilenetv2
        r32_in1-relu-stem_k3_s2_c8-ds_r2_k5.3_s2_c32-ds_r1_k3_s2_c64-fc10          mobilenetv1
        r49x10_in1-relu-stem_k10x4_s2x2_c64-dsc_r2_k3_s1_c64-dsc_r2_k3_s1_c64-fc12  dscnn
        r28_in1-relu-stem_k3_s2_c8-cnn_r2_k3_d0.1_p1.0_s1_c12-fc10                 cnn

    Tokens, in this order:

    1. Input: ``r{size}_in{channels}``: the input size (the Arch's ``resolution``) and its
       channels (``input_channels``).
    2. Activation (mobilenetv1 and dscnn only): ``relu`` or ``relu6``, the activation after
       every convolution (the Arch's ``activation``).
    3. Stem, the first convolution: ``stem_k{size}_s{size}_c{channels}``: kernel, stride,
       output channels.
    4. One token per stage: ``{prefix}_r{depth}_k{list}[_e{list}][_d{list}_p{list}]_s{stride}_c{channels}``.
       The prefix names the block type, and with it the space: ``ir`` (inverted residual,
       mobilenetv2), ``ds`` (depthwise separable, mobilenetv1), ``dsc`` (depthwise separable,
       dscnn), ``cnn`` (plain or depthwise-separable convolution, optional max pool: cnn);
       every stage of a string has the same prefix. ``r``: the number of blocks;
       ``k``: the depthwise (cnn: the block's) kernel size of each block; ``e`` (mobilenetv2
       only): the expansion ratio of each block; ``d`` and ``p`` (cnn only): per block 1 for a
       depthwise-separable block (0: a plain convolution) and 1 for a 2x2 max pool after it;
       ``s``: the stride of the stage's first block (the others have stride 1); ``c``: the
       output channels of every block of the stage.
    5. Classifier: ``fc{classes}`` (``num_classes``), after the global average pool.

    Values: numbers are decimal, without sign or leading zeros. A ``{size}`` is one number
    ``n`` (``n x n``) in the square spaces (mobilenetv1, mobilenetv2) and ``{height}x{width}``
    in the rectangular one (dscnn: frames x coefficients for the input; always both, even when
    equal). A ``{list}`` is one number when every block of the stage has that value, else one
    number per block, in order, joined by ``.``: ``k3.5.7`` is three blocks with kernels 3, 5,
    7 and ``e1.16`` two blocks with expansions 1 and 16, so values of any number of digits are
    unambiguous. Fields appear in the order above; nothing else may appear.

    Raises:
        ArchitectureError: naming the token (by position and text) and what is wrong with it;
        a value the Arch refuses (a kernel size of 4, 0 channels) names the Arch field too.
    """
    if not isinstance(text, str):
        raise ArchitectureError(f"a block string must be text, got {type(text).__name__}")
    tokens = text.split("-")
    if len(tokens) < 4:
        raise ArchitectureError(
            f"block string {text!r}: expected at least 4 tokens joined by '-' (input, stem, stages, classifier), got {len(tokens)}"
        )
    stem_at = next((i for i in (1, 2) if tokens[i].split("_")[0] == "stem"), None)  # 0-based
    if stem_at is None:
        _fail(tokens, 2, "expected the stem token stem_k{kernel}_s{stride}_c{channels} (after the activation token, if any)")
    if stem_at == len(tokens) - 2:
        _fail(tokens, len(tokens), "expected at least one stage token between the stem and the classifier")
    arch_type = _arch_type(tokens, stem_at + 2)
    reader = _Reader(tokens, arch_type)
    return reader.arch(stem_at)


class _Reader:
    """Parses the tokens of one block string for one Arch type; tokens are numbered from 1."""

    def __init__(self, tokens: list[str], arch_type: Any):
        self.tokens = tokens
        self.arch_type = arch_type
        self.values: dict[str, Any] = {}  # Arch field -> value
        self.token_of: dict[str, int] = {}  # Arch field -> the number of the token that holds it

    def arch(self, stem_at: int) -> "StagedArch":
        """The Arch; ``stem_at`` is the stem token's 0-based index (1, or 2 after an activation)."""
        last = len(self.tokens)
        size, channels = self._fields(1, "", ("r", "in"))
        self._set(1, resolution=self._size(1, "r", size), input_channels=self._int(1, "in", channels))
        self._activation(stem_at)
        stem = stem_at + 1
        kernel, stride, channels = self._fields(stem, "stem", ("k", "s", "c"))
        self._set(stem, stem_kernel=self._size(stem, "k", kernel), stem_stride=self._size(stem, "s", stride),
                  stem_channels=self._int(stem, "c", channels))
        self._stages(range(stem + 1, last))
        self._set(last, num_classes=self._int(last, "fc", self._fields(last, "", ("fc",))[0]))
        try:
            return self.arch_type(**self.values)
        except ArchFieldError as error:
            root, _, index = error.field.partition("[")
            stage = int(index.split("]")[0]) if index else 0  # stage fields: field[stage]...
            number = self.token_of[root] if root in self.token_of else stem + 1 + stage
            _fail(self.tokens, number, str(error))

    def _activation(self, stem_at: int) -> None:
        space = self.arch_type.space
        if _has_activation(self.arch_type):
            if stem_at != 2:
                _fail(self.tokens, 2, f"{space} needs the activation token (relu | relu6) before the stem")
            self._set(2, activation=self.tokens[1])
        elif stem_at != 1:
            _fail(self.tokens, 2, f"{space} has no activation token: expected the stem token")

    def _stages(self, numbers: range) -> None:
        """The stage fields; an error in a stage field names the stage's token (first + index)."""
        block_fields = self.arch_type.block_fields
        keys = ("r", *(key for key, _ in block_fields), "s", "c")
        tables: dict[str, list[tuple[int, ...]]] = {field: [] for _, field in block_fields}
        strides, widths = [], []
        for number in numbers:
            depth_text, *lists, stride, channels = self._fields(number, self.arch_type.block_prefix, keys)
            depth = self._int(number, "r", depth_text)
            if not DEPTH_RANGE[0] <= depth <= DEPTH_RANGE[1]:
                _fail(self.tokens, number, f"field 'r' (depth): expected {DEPTH_RANGE[0]} to {DEPTH_RANGE[1]} blocks, got {depth}")
            for (key, field), list_text in zip(block_fields, lists):
                tables[field].append(self._list(number, key, list_text, depth))
            strides.append(self._int(number, "s", stride))
            widths.append(self._int(number, "c", channels))
        self.values.update(stage_strides=tuple(strides), stage_channels=tuple(widths))
        self.values.update({field: tuple(rows) for field, rows in tables.items()})

    def _set(self, number: int, **values: Any) -> None:
        self.values.update(values)
        self.token_of.update(dict.fromkeys(values, number))

    def _fields(self, number: int, name: str, keys: tuple[str, ...]) -> list[str]:
        """The values of token ``number`` (1-based), which must be ``name`` then ``keys`` in order."""
        parts = self.tokens[number - 1].split("_")
        if name:
            if parts[0] != name:
                _fail(self.tokens, number, f"expected {self._template(name, keys)}")
            parts = parts[1:]
        found = [_FIELD.fullmatch(part) for part in parts]
        got = [match.group(1) if match else part for match, part in zip(found, parts)]
        if got != list(keys):
            _fail(self.tokens, number, f"expected the fields {', '.join(map(repr, keys))} in this order, as in "
                  f"{self._template(name, keys)}; got {', '.join(map(repr, got)) or 'none'}")
        return [match.group(2) for match in found if match]

    def _template(self, name: str, keys: tuple[str, ...]) -> str:
        """The token's form, e.g. ``stem_k{size}_s{size}_c{channels}``."""
        size = "height}x{width" if self.arch_type.rectangular else "size"
        meanings = dict(_MEANING)
        if name in ("", "stem"):  # the input's r and the stem's k, s are sizes
            meanings.update(r=size, k=size, s=size)
        return "_".join([name] * bool(name) + [f"{key}{{{meanings[key]}}}" for key in keys])

    def _int(self, number: int, key: str, text: str) -> int:
        if not _INT.fullmatch(text):
            _fail(self.tokens, number, f"field '{key}': expected a number (decimal, no leading zeros), got {text!r}")
        return int(text)

    def _size(self, number: int, key: str, text: str) -> Any:
        match = _SIZE.fullmatch(text)
        if not match:
            _fail(self.tokens, number, f"field '{key}': expected a size, got {text!r}")
        height, width = match.group(1), match.group(2)
        if self.arch_type.rectangular:
            if width is None:
                _fail(self.tokens, number, f"field '{key}': {self.arch_type.space} sizes are {{height}}x{{width}}, got {text!r}")
            return (int(height), int(width))
        if width is not None:
            _fail(self.tokens, number, f"field '{key}': {self.arch_type.space} sizes are square, one number, got {text!r}")
        return int(height)

    def _list(self, number: int, key: str, text: str, depth: int) -> tuple[int, ...]:
        if not _LIST.fullmatch(text):
            _fail(self.tokens, number, f"field '{key}' ({_MEANING[key]}): expected numbers joined by '.', got {text!r}")
        values = tuple(int(value) for value in text.split("."))
        if len(values) == 1:
            return values * depth
        if len(values) != depth:
            _fail(self.tokens, number, f"field '{key}' ({_MEANING[key]}): {len(values)} values for {depth} blocks "
                  "(give one value for the whole stage or one per block)")
        return values


def _arch_type(tokens: list[str], first_stage: int) -> Any:
    """The Arch type whose stage prefix starts token ``first_stage`` (1-based)."""
    from mcunas.spaces.registry import arch_types

    by_prefix = {arch_type.block_prefix: arch_type for arch_type in arch_types()}
    prefix = tokens[first_stage - 1].split("_")[0]
    if prefix not in by_prefix:
        known = ", ".join(f"{p} ({t.space})" for p, t in sorted(by_prefix.items()))
        _fail(tokens, first_stage, f"unknown stage prefix {prefix!r}; known: {known}")
    return by_prefix[prefix]


def _has_activation(arch_type: Any) -> bool:
    return "activation" in arch_type.__dataclass_fields__


def _size(size: Any) -> str:
    return str(size) if isinstance(size, int) else f"{size[0]}x{size[1]}"


def _values(row: tuple[int, ...]) -> str:
    return str(row[0]) if len(set(row)) == 1 else ".".join(map(str, row))


def _fail(tokens: list[str], number: int, problem: str) -> NoReturn:
    raise ArchitectureError(f"block string token {number} {tokens[number - 1]!r}: {problem}")
