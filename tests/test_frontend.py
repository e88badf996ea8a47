"""The audio front end: CMSIS-DSP features in Python, the generated features.c, their parity, memory figures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mcunas.data.wav import read_wav
from mcunas.frontend import (
    FrontEndConfig,
    InputQuantization,
    compute_features,
    features_to_float,
    frontend_c_sources,
    frontend_memory,
    frontend_memory_bytes,
    frontend_tables,
    quantize_features,
    write_frontend_sources,
)
from mcunas.frontend.features import _engine, frame_buffer, input_quantizer
from mcunas.frontend.host_build import build_host_frontend, run_host_frontend
from mcunas.frontend.memory import BITREV_TABLE_VALUES_F32, BITREV_TABLE_VALUES_FIXED

MODES = [(features, arithmetic) for features in ("mfcc", "log_mel") for arithmetic in ("q15", "f32")]


def _clips(folder: Path, cfg: FrontEndConfig, count: int) -> np.ndarray:
    """``count`` real speech clips of the espeak dataset (every word), int16 (N, clip_samples)."""
    paths = sorted(folder.glob("*/*_nohash_0.wav"))
    paths = [p for p in paths if not p.parent.name.startswith("_")][:: max(1, len(paths) // count)][:count]
    return np.stack([read_wav(path, cfg.sample_rate_hz) for path in paths])


def _quant(raw: np.ndarray, cfg: FrontEndConfig) -> InputQuantization:
    real = features_to_float(raw, cfg)
    # a scale that spreads the normalized features over most of the int8 range (some saturate)
    return InputQuantization(mean=float(real.mean()), std=float(real.std()), scale=0.03, zero_point=-5)


def test_defaults_are_mlperf_tiny_kws_geometry():
    cfg = FrontEndConfig()
    assert (cfg.sample_rate_hz, cfg.frame_samples, cfg.stride_samples, cfg.fft_samples) == (16000, 480, 320, 512)
    assert cfg.input_shape == (49, 10) and cfg.mel_filters == 40
    assert FrontEndConfig(window_ms=40.0).fft_samples == 1024 and FrontEndConfig(window_ms=40.0).num_frames == 49
    assert FrontEndConfig(features="log_mel").input_shape == (49, 40)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_ms": 30.03}, "window_ms: 30.03 ms is not a whole number of samples"),
        ({"fft_length": 256}, "fft_length: 256 is shorter than the window"),
        ({"fft_length": 500}, "fft_length: 500 is not one of"),
        ({"fmax_hz": 8000.0}, "fmin_hz < fmax_hz < 8000"),
        ({"mfcc_coefficients": 41}, "mfcc_coefficients: 41 is more than mel_filters"),
        ({"mel_filters": 128, "fmin_hz": 0.0}, "mel_filters: filter 0 .* contains no FFT bin"),
        ({"window_ms": 2000.0}, "longer than the clip"),
    ],
)
def test_config_errors_name_the_setting(options, message):
    with pytest.raises(ValidationError, match=message):
        FrontEndConfig(**options)


def test_tables_are_cmsis_packed_and_zero_pad_the_window():
    cfg = FrontEndConfig()
    tables = frontend_tables(cfg)
    assert tables.window.dtype == np.int16 and tables.window.shape == (512,)
    assert np.all(tables.window[480:] == 0) and tables.window[240] == 32767  # periodic Hann peak at N/2
    assert tables.filter_pos.shape == tables.filter_lengths.shape == (40,)
    assert tables.filter_coefs.shape == (int(tables.filter_lengths.sum()),)
    assert np.all(np.diff(tables.filter_pos.astype(int)) >= 0) and tables.filter_lengths.min() >= 1
    assert int(tables.filter_pos[-1] + tables.filter_lengths[-1]) <= 512 // 2  # never the Nyquist bin
    assert tables.dct.shape == (400,)
    f32 = frontend_tables(FrontEndConfig(arithmetic="f32"))
    np.testing.assert_allclose(f32.dct, tables.dct / 32768.0, atol=2 ** -15)


@pytest.mark.parametrize("arithmetic", ["q15", "f32"])
def test_log_mel_steps_reproduce_arm_mfcc_before_the_dct(espeak_dataset: Path, arithmetic: str):
    """The step-by-step cmsisdsp calls of the log-mel path times the DCT give arm_mfcc_* exactly."""
    import cmsisdsp as dsp

    mfcc_cfg = FrontEndConfig(arithmetic=arithmetic)
    log_mel_cfg = FrontEndConfig(arithmetic=arithmetic, features="log_mel")
    clips = _clips(espeak_dataset, mfcc_cfg, 6)
    dct = frontend_tables(mfcc_cfg).dct.reshape(mfcc_cfg.mfcc_coefficients, mfcc_cfg.mel_filters)
    multiply = dsp.arm_mat_vec_mult_q15 if arithmetic == "q15" else dsp.arm_mat_vec_mult_f32
    mfcc = compute_features(clips, mfcc_cfg)
    log_mel = compute_features(clips, log_mel_cfg)
    rebuilt = np.array([[multiply(dct, frame) for frame in clip] for clip in log_mel])
    np.testing.assert_array_equal(rebuilt, mfcc)


def test_q15_and_float_features_agree(espeak_dataset: Path):
    """The two arithmetics compute nearly the same MFCCs, but not the same ones.

    Quiet frames differ most in c0 (the float path logs ``energy + 1e-6``, q15 has no such floor and
    less resolution), so a model must be deployed with the arithmetic it was trained on.
    """
    clips = _clips(espeak_dataset, FrontEndConfig(), 6)
    q15 = features_to_float(compute_features(clips, FrontEndConfig()), FrontEndConfig())
    f32 = compute_features(clips, FrontEndConfig(arithmetic="f32"))
    assert q15.shape == f32.shape == (6, 49, 10)
    assert np.median(np.abs(q15 - f32)) < 0.05
    assert np.abs(q15 - f32)[..., 0].mean() < 0.05 * np.abs(f32[..., 0]).mean()
    assert np.corrcoef(q15.ravel(), f32.ravel())[0, 1] > 0.99
    assert not np.allclose(q15, f32, atol=0.1)


def test_frames_are_zero_padded_copies_of_the_clip():
    cfg = FrontEndConfig()
    pcm = np.arange(cfg.clip_samples, dtype=np.int16)
    frame = frame_buffer(pcm, 2 * cfg.stride_samples, cfg)
    np.testing.assert_array_equal(frame[:480], pcm[640:1120])
    assert np.all(frame[480:] == 0)
    with pytest.raises(ValueError, match=r"expected int16 PCM of shape \(N, 16000\)"):
        compute_features(np.zeros(8000, dtype=np.int16), cfg)


@pytest.mark.parametrize("arithmetic", ["q15", "f32"])
def test_quantization_matches_the_real_formula(arithmetic: str):
    cfg = FrontEndConfig(arithmetic=arithmetic)
    quant = InputQuantization(mean=-3.25, std=6.5, scale=0.045, zero_point=7)
    rng = np.random.default_rng(0)
    raw = (rng.integers(-4000, 2000, size=5000).astype(np.int16) if arithmetic == "q15"
           else rng.uniform(-30, 15, size=5000).astype(np.float32))
    exact = np.clip(np.floor((features_to_float(raw, cfg).astype(np.float64) - quant.mean) / quant.std / quant.scale
                             + quant.zero_point + 0.5), -128, 127)
    q = quantize_features(raw, cfg, quant)
    assert q.dtype == np.int8
    assert np.abs(q.astype(int) - exact).max() <= 1 and np.mean(q == exact) > 0.99
    fixed = input_quantizer(FrontEndConfig(), quant)
    assert 1 << 30 <= fixed.multiplier < 1 << 31
    with pytest.raises(ValueError, match="std > 0 and scale > 0"):
        input_quantizer(cfg, InputQuantization(mean=0.0, std=0.0, scale=0.1, zero_point=0))


def test_generated_c_names_its_config_and_uses_size_specific_init():
    cfg = FrontEndConfig(window_ms=40.0)
    sources = frontend_c_sources(cfg, InputQuantization(mean=0.0, std=1.0, scale=0.1, zero_point=0))
    header, source = sources["mcunas_features.h"], sources["features.c"]
    assert "#define FEATURES_FFT_LENGTH 1024" in header and "#define FEATURES_NUM_FRAMES 49" in header
    assert "arm_mfcc_init_1024_q15(" in source and '"window_ms": 40.0' in source
    window = re.search(r"k_window\[(\d+)\]", source)
    assert window is not None and window.group(1) == "1024"


@pytest.mark.parametrize(("features", "arithmetic"), MODES)
def test_features_c_on_the_host_equals_the_python_path(
    espeak_dataset: Path, cmsis_dsp_dir: Path, cmsis_library: Path, tmp_path: Path, features: str, arithmetic: str,
):
    """Feature parity: features.c compiled by gcc against CMSIS-DSP's C sources vs cmsisdsp in Python.

    q15: bit-exact raw features and int8 inputs. f32: raw features within float32 rounding (the C
    library and the cmsisdsp wrapper are separate -O3 -ffast-math builds), int8 within 1 step.
    """
    cfg = FrontEndConfig(features=features, arithmetic=arithmetic)
    clips = _clips(espeak_dataset, cfg, 16)
    clips[-1] = 0  # digital silence: the frame normalization's zero case
    raw = compute_features(clips, cfg)
    quant = _quant(raw, cfg)
    write_frontend_sources(tmp_path / "src", cfg, quant)
    executable = build_host_frontend(tmp_path / "src", cmsis_dsp_dir, cmsis_library, tmp_path / "build")
    c_raw, c_int8 = run_host_frontend(executable, clips, cfg)
    int8 = quantize_features(raw, cfg, quant)
    assert len(np.unique(int8)) > 50  # the check covers most of the int8 range
    if arithmetic == "q15":
        np.testing.assert_array_equal(c_raw, raw)
        np.testing.assert_array_equal(c_int8, int8)
    else:
        np.testing.assert_allclose(c_raw, raw, rtol=1e-5, atol=1e-4)
        assert np.abs(c_int8.astype(int) - int8).max() <= 1 and np.mean(c_int8 == int8) > 0.999


def test_bitrev_table_lengths_match_cmsis_header(cmsis_dsp_dir: Path):
    header = (cmsis_dsp_dir / "Include" / "arm_common_tables.h").read_text(encoding="utf-8", errors="replace")
    for pattern, table in ((r"ARMBITREVINDEXTABLE_FIXED_(\d+)_TABLE_LENGTH \(\(uint16_t\)(\d+)\)", BITREV_TABLE_VALUES_FIXED),
                           (r"ARMBITREVINDEXTABLE_(\d+)_TABLE_LENGTH \(\(uint16_t\)(\d+)\)", BITREV_TABLE_VALUES_F32)):
        found = {int(n): int(length) for n, length in re.findall(pattern, header)}
        assert found == table


def test_memory_figures_add_up():
    cfg = FrontEndConfig()
    memory = frontend_memory(cfg)
    tables = frontend_tables(cfg)
    assert memory.table_bytes == 2 * 512 + 8 * 40 + 2 * len(tables.filter_coefs) + 2 * 400
    assert memory.buffer_bytes == 2 * 512 + 4 * 512 and memory.pcm_bytes == 32000
    assert memory.fft_table_bytes > 2 * 2 * 8192  # q15: the shared realCoefA/BQ15 tables
    assert memory.code_bytes > 1000 and memory.stack_bytes > 0
    flash, ram = frontend_memory_bytes(cfg)
    assert (flash, ram) == (memory.flash_bytes, memory.ram_bytes)
    assert frontend_memory_bytes(FrontEndConfig(window_ms=40.0))[0] > flash  # longer FFT, bigger tables
    f32 = frontend_memory(FrontEndConfig(arithmetic="f32"))
    assert f32.fft_table_bytes < memory.fft_table_bytes and f32.buffer_bytes > memory.buffer_bytes


def test_engine_is_shared_per_config():
    assert _engine(FrontEndConfig()) is _engine(FrontEndConfig())
