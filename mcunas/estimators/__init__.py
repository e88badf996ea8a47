"""Estimators: the board catalog, TFLM arena, flash and latency of an op graph on a board.

``estimate(graph, board, runtime)`` returns a :class:`Cost`; boards come from
``load_board(name_or_path)`` / ``list_boards()``. The parts: :mod:`.board` (catalog),
:mod:`.memory` (arena), :mod:`.flash` (model and runtime code), :mod:`.latency` (cycle model),
:mod:`.calibrate` (fitting profiles). Importing this package is light (no numpy/TensorFlow).
"""

from mcunas.estimators.board import Board, list_boards, load_board
from mcunas.estimators.cost import Cost, estimate

__all__ = ["Board", "Cost", "estimate", "list_boards", "load_board"]
