"""How long the keyword-spotting data takes: the espeak-ng dataset builder and the CMSIS-DSP features.

Builds the ``tiny`` and ``quick`` espeak-ng datasets in a temporary folder (wall time), computes
the features of up to 300 clips of ``quick`` with each front-end mode (ms per 1 s clip, one
process), and loads the ``quick`` 12-class task with the default front end and augmentation
twice: features computed (WAV reading, augmentation and features) and served from the cache. The
last line extrapolates the per-clip load time to Speech Commands v0.02's 12-class task.

Usage::

    python benchmarks/kws_data_speed.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mcunas.data.espeak import build_espeak_dataset  # noqa: E402
from mcunas.data.speech_commands import load_speech_commands, scan_speech_commands  # noqa: E402
from mcunas.data.wav import read_wav  # noqa: E402
from mcunas.frontend import FrontEndConfig, compute_features  # noqa: E402

from kws_search_cost import SPEECH_COMMANDS_12  # noqa: E402

# With one augmented copy of each training clip; an approximation for the extrapolation only.
SPEECH_COMMANDS_12_CLIPS = 2 * SPEECH_COMMANDS_12["train"] + SPEECH_COMMANDS_12["val"] + SPEECH_COMMANDS_12["test"]


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mcunas-kws-speed-") as tmp:
        folder = Path(tmp)
        print(f"{'espeak preset':<14} {'clips':>6} {'build s':>8}")
        for preset in ("tiny", "quick"):
            out, seconds = _timed(build_espeak_dataset, folder / preset, preset)
            clips = sum(len(paths) for per_word in scan_speech_commands(out).clips.values() for paths in per_word.values())
            print(f"{preset:<14} {clips:>6} {seconds:>8.1f}")
        paths = [p for p in sorted((folder / "quick").glob("*/*.wav")) if not p.parent.name.startswith("_")][:300]
        pcm = np.stack([read_wav(path, 16000) for path in paths])
        print(f"\n{'features':<9} {'arith':<5} {'shape':>7} {'ms/clip':>8}")
        for features in ("mfcc", "log_mel"):
            for arithmetic in ("q15", "f32"):
                cfg = FrontEndConfig(features=features, arithmetic=arithmetic)
                compute_features(pcm[:1], cfg)  # instances made outside the timing
                _, seconds = _timed(compute_features, pcm, cfg)
                shape = "x".join(map(str, cfg.input_shape))
                print(f"{features:<9} {arithmetic:<5} {shape:>7} {1e3 * seconds / len(pcm):>8.2f}")
        splits, cold = _timed(load_speech_commands, folder / "quick")
        _, warm = _timed(load_speech_commands, folder / "quick")
        total = len(splits.train) + len(splits.val) + len(splits.test)
        print(f"\nquick 12-class load ({total} clips incl. 1 augmented copy): {cold:.1f} s computed, {warm:.2f} s cached")
        print(f"extrapolated to Speech Commands v0.02 12-class ({SPEECH_COMMANDS_12_CLIPS} clips): "
              f"{cold / total * SPEECH_COMMANDS_12_CLIPS / 60:.1f} min on one core (first load only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
