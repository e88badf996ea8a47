"""``mcunas espeak-dataset``: write an offline Speech Commands-layout dataset spoken by espeak-ng."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mcunas.data.espeak import PRESETS

    parser.add_argument("out", help="folder to create (must not exist or be empty)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                        help="tiny: 13 words x 10 speakers (tests); quick: 20 words x 48 speakers x 2 (quick experiment)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the speakers, placements and noise (default 0)")


def run(args: argparse.Namespace) -> int:
    from mcunas.data.espeak import build_espeak_dataset
    from mcunas.data.speech_commands import scan_speech_commands

    start = time.perf_counter()
    out_dir = build_espeak_dataset(args.out, preset=args.preset, seed=args.seed)
    index = scan_speech_commands(out_dir)
    counts = {split: sum(len(paths) for paths in per_word.values()) for split, per_word in index.clips.items()}
    print(f"{out_dir}: {len(index.words)} words, {counts['train']} train / {counts['val']} validation / "
          f"{counts['test']} test clips, {len(index.background)} background noises "
          f"({time.perf_counter() - start:.1f} s)")
    return 0
