"""The one float<->int16 rule and the one loudest-window rule that every part of earshot uses."""

from __future__ import annotations

import numpy as np

from earshot import audio, wavio


def test_float_int16_rule_is_x32768_half_even_saturating_and_inverts_exactly() -> None:
    x = np.array([0.0, 0.5 / 32768, 1.5 / 32768, -0.5 / 32768, 1.0, -1.0, 2.0, 32767 / 32768])
    np.testing.assert_array_equal(audio.to_int16(x), [0, 0, 2, 0, 32767, -32768, 32767, 32767])
    every = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(audio.to_int16(audio.to_float(every)), every)


def test_written_wav_holds_the_same_int16_as_the_rule(tmp_path) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 4000).astype(np.float32)
    wavio.write_wav(tmp_path / "a.wav", x)
    back = wavio.read_wav(tmp_path / "a.wav")
    np.testing.assert_array_equal(audio.to_int16(back), audio.to_int16(x))


def test_loudest_window_ignores_a_dc_offset() -> None:
    x = np.full(1000, 0.5, np.float32)  # DC offset: the largest |x| is everywhere
    x[700] = 0.9  # the one real event, 0.4 above the offset
    x[100] = 0.2  # 0.3 below it
    start = audio.loudest_start(x, 100)
    assert start <= 700 < start + 100
