"""Augmentation: reproducible from a seed, and each kind does to the clip what it says."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_data import tone

from trainer.augment import AugmentConfig, augment, augment_batch, room_bank

OFF = AugmentConfig(
    shift_prob=0.0, gain_prob=0.0, silence_prob=0.0, background_prob=0.0, noise_prob=0.0,
    reverb_prob=0.0, colour_prob=0.0,
)


def _only(**kw) -> AugmentConfig:
    return AugmentConfig(**{**OFF.__dict__, **kw})


def _db(power_ratio: float) -> float:
    return float(10 * np.log10(power_ratio))


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _burst() -> np.ndarray:
    x = np.zeros(16000, np.float32)
    x[6000:10000] = tone(700.0, 0.25, 0.4)
    return x


@pytest.fixture
def noise_bank() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [0.2 * rng.standard_normal(40000).astype(np.float32), tone(120.0, 3.0, 0.3)]


def test_batch_is_originals_then_copies_and_deterministic_per_seed(noise_bank) -> None:
    rng = np.random.default_rng(0)
    X = (0.3 * rng.standard_normal((6, 16000))).astype(np.float32)
    y = np.arange(6)
    cfg = AugmentConfig(silence_prob=0.5)
    a, ya = augment_batch(X, y, cfg, noise_bank, seed=11, copies=2, progress=False)
    b, yb = augment_batch(X, y, cfg, noise_bank, seed=11, copies=2, progress=False)
    c, _ = augment_batch(X, y, cfg, noise_bank, seed=12, copies=2, progress=False)
    assert a.shape == (18, 16000) and a.dtype == np.float32
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a[6:], c[6:])
    assert np.array_equal(a[:6], X)
    assert list(ya) == list(y) * 3
    assert all(not np.array_equal(a[6 + i], X[i]) for i in range(6))  # copies really changed


def test_gain_multiplies_by_the_drawn_decibels() -> None:
    x = _burst()
    out = augment(x, np.random.default_rng(1), _only(gain_prob=1.0, gain_db=(6.0, 6.0)))
    assert _db(_power(out) / _power(x)) == pytest.approx(6.0, abs=0.01)
    for seed in range(5):
        out = augment(x, np.random.default_rng(seed), _only(gain_prob=1.0, gain_db=(-9.0, 3.0)))
        ratio = out[6000:10000] / np.where(x[6000:10000] == 0, 1, x[6000:10000])
        nz = np.abs(x[6000:10000]) > 0.05
        assert np.ptp(ratio[nz]) < 1e-4  # one gain for the whole clip
        assert -9.0 - 1e-3 <= 20 * np.log10(np.median(ratio[nz])) <= 3.0 + 1e-3


def test_time_shift_moves_the_clip_and_zero_fills() -> None:
    x = _burst()
    shifts = set()
    for seed in range(8):
        out = augment(x, np.random.default_rng(seed), _only(shift_prob=1.0, shift_max_s=0.1))
        k = int(np.flatnonzero(out)[0]) - int(np.flatnonzero(x)[0])
        assert abs(k) <= 1600
        assert np.array_equal(out[6000 + k : 10000 + k], x[6000:10000])
        assert np.count_nonzero(out) == np.count_nonzero(x)
        shifts.add(k)
    assert len(shifts) > 4 and min(shifts) < 0 < max(shifts)
    edge = np.ones(16000, np.float32)  # content shifted out is gone, not wrapped around
    out = augment(edge, np.random.default_rng(3), _only(shift_prob=1.0, shift_max_s=0.1))
    assert 0 < np.count_nonzero(out == 0) <= 1600
    zeros = np.flatnonzero(out == 0)
    assert zeros[0] == 0 or zeros[-1] == 15999


def test_background_mixed_at_the_drawn_snr(noise_bank) -> None:
    x = tone(500.0, 1.0, 0.3)
    for snr in (0.0, 10.0, 20.0):
        cfg = _only(background_prob=1.0, snr_db=(snr, snr))
        out = augment(x, np.random.default_rng(2), cfg, noise_bank)
        added = out - x
        assert _db(_power(x) / _power(added)) == pytest.approx(snr, abs=0.05)
    cfg = _only(background_prob=1.0, snr_db=(3.0, 12.0))
    for seed in range(5):
        out = augment(x, np.random.default_rng(seed), cfg, noise_bank)
        assert 3.0 - 0.05 <= _db(_power(x) / _power(out - x)) <= 12.0 + 0.05


def test_silent_clip_gets_background_at_an_absolute_level(noise_bank) -> None:
    cfg = _only(background_prob=1.0, silent_background_dbfs=(-30.0, -30.0))
    out = augment(np.zeros(16000, np.float32), np.random.default_rng(0), cfg, noise_bank)
    assert _db(_power(out)) == pytest.approx(-30.0, abs=0.05)


def test_no_background_clips_means_no_mixing() -> None:
    x = _burst()
    out = augment(x, np.random.default_rng(0), _only(background_prob=1.0), [])
    assert np.array_equal(out, x)


def test_white_noise_at_the_drawn_level_and_flat() -> None:
    x = np.zeros(16000, np.float32)
    out = augment(x, np.random.default_rng(4), _only(noise_prob=1.0, noise_dbfs=(-40.0, -40.0)))
    assert _db(_power(out)) == pytest.approx(-40.0, abs=0.2)
    spec = np.abs(np.fft.rfft(out)) ** 2
    low, high = spec[1:4000].mean(), spec[4000:8000].mean()
    assert 0.8 < low / high < 1.25  # white: as much power per Hz up high as down low
    for seed in range(5):
        out = augment(x, np.random.default_rng(seed), _only(noise_prob=1.0, noise_dbfs=(-60, -35)))
        assert -60.3 <= _db(_power(out)) <= -34.7


def test_random_silence_zeroes_one_stretch_of_the_drawn_length() -> None:
    x = tone(300.0, 1.0, 0.5) + 0.01
    for seed in range(6):
        cfg = _only(silence_prob=1.0, silence_fraction=(0.2, 0.3))
        out = augment(x, np.random.default_rng(seed), cfg)
        zero = np.flatnonzero(out == 0)
        assert 3200 <= zero.size <= 4800
        assert zero[-1] - zero[0] + 1 == zero.size  # one contiguous stretch
        keep = np.ones(16000, bool)
        keep[zero] = False
        assert np.array_equal(out[keep], x[keep])  # the rest untouched
    whole = _only(silence_prob=1.0, silence_whole_prob=1.0)
    assert not np.any(augment(x, np.random.default_rng(0), whole))


@pytest.mark.parametrize(
    "field,value",
    [("noise_prob", 1.5), ("gain_db", (6.0, -6.0)), ("silence_fraction", (0.5, 1.2))],
)
def test_bad_config_names_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=f"AugmentConfig.{field}"):
        AugmentConfig(**{field: value})


def test_late_fitted_shift_moves_a_word_towards_the_right_edge_without_cutting_it() -> None:
    """``shift_late_s`` + ``shift_fit`` (the keyword trainer's setting): the burst (6000-10000 over
    a faint noise floor) may move at most 1600 samples earlier and up to the right edge later."""
    x = _burst() + np.float32(1e-4) * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    cfg = _only(shift_prob=1.0, shift_max_s=0.1, shift_late_s=0.5, shift_fit=True)
    shifts = []
    for seed in range(40):
        out = augment(x, np.random.default_rng(seed), cfg)
        k = int(np.argmax(np.abs(out) > 0.1)) - int(np.argmax(np.abs(x) > 0.1))
        assert -1600 <= k <= 6000
        np.testing.assert_array_equal(out[6000 + k : 10000 + k], x[6000:10000])  # whole burst kept
        shifts.append(k)
    assert max(shifts) > 4000 and sum(k > 0 for k in shifts) > 30  # mostly later, near the edge
    edge = np.zeros(16000, np.float32)
    edge[12000:] = tone(700.0, 0.25, 0.4)  # already ends at the edge: only earlier shifts
    for seed in range(10):
        out = augment(edge, np.random.default_rng(seed), cfg)
        assert np.count_nonzero(out) == np.count_nonzero(edge) and not np.any(out[:10400])
    with pytest.raises(ValueError, match="AugmentConfig.shift_late_s"):
        AugmentConfig(shift_late_s=-0.1)


def test_edge_fragments_of_keywords_become_the_unknown_class() -> None:
    """``CutConfig``: some copies of keyword clips keep only a share of the word at one edge of
    the window and get the ``_unknown_`` label; other classes are never cut."""
    from trainer.augment import CutConfig

    X = np.stack([_burst(), _burst()])
    y = np.array([2, 0])  # a keyword (2) and _silence_ (0); _unknown_ is 1
    cut = CutConfig(to=1, labels=frozenset({2}), prob=0.5, keep=(0.2, 0.4))
    xa, ya = augment_batch(X, y, OFF, [], seed=0, copies=40, progress=False, cut=cut)
    frags = np.flatnonzero(ya == 1)
    assert 10 < len(frags) < 30 and all(ya[i] == 2 for i in range(2, len(ya), 2) if i not in frags)
    assert all(i % 2 == 0 for i in frags)  # only the keyword's copies
    for i in frags:
        nz = np.flatnonzero(xa[i])
        assert nz[0] == 0 or nz[-1] == 15999  # at an edge
        assert 0.2 * 4000 - 160 <= nz.size <= 0.4 * 4000 + 160  # 20-40 % of the burst, +-10 ms
    plain, _ = augment_batch(X, y, OFF, [], seed=0, copies=40, progress=False)
    keep = [i for i in range(len(ya)) if i not in frags]
    np.testing.assert_array_equal(xa[keep], plain[keep])  # the rest as without cut
    with pytest.raises(ValueError, match="CutConfig.keep"):
        CutConfig(to=1, labels=frozenset({2}), keep=(0.5, 1.0))


def test_rooms_add_a_reverberant_tail_and_keep_the_level() -> None:
    rooms = room_bank(0)
    assert len(rooms) == 48 and rooms == room_bank(0)  # made once per seed, reproducibly
    assert not np.array_equal(rooms[0], room_bank(1)[0])
    x = _burst()
    tails = []
    for seed in range(6):
        out = augment(x, np.random.default_rng(seed), _only(reverb_prob=1.0), (), rooms)
        assert _db(_power(out) / _power(x)) == pytest.approx(0.0, abs=0.01)
        tails.append(_power(out[10000:12000]) / _power(out))  # after the burst has stopped
    assert min(tails) > 1e-4 and len(set(np.round(tails, 6))) > 3  # a tail, room by room


def test_device_colouring_cuts_the_low_end_and_keeps_the_level() -> None:
    low, high = tone(60.0, 1.0, 0.3), tone(1000.0, 1.0, 0.3)
    x = (low + high).astype(np.float32)
    for seed in range(6):
        out = augment(x, np.random.default_rng(seed), _only(colour_prob=1.0))
        assert _db(_power(out) / _power(x)) == pytest.approx(0.0, abs=0.01)
        spec = np.abs(np.fft.rfft(out[4000:]))
        f = np.fft.rfftfreq(12000, 1 / 16000)
        hum, beep = (spec[np.argmin(np.abs(f - hz))] for hz in (60.0, 1000.0))
        assert hum < beep / 2  # a high-pass at 60-400 Hz takes the hum down
