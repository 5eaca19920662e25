"""The audit's draw, mix and interval, and the stopping signal, on hand-built inputs with known answers."""
import numpy as np
import pytest

from labelnext.loop.evaluation import (accuracy_interval, agreement, audit_size, draw_audit, mix, stop_set,
                                       stopping_signal)


@pytest.mark.parametrize("budget, share, expected", [(20, 0.1, 10), (200, 0.1, 20), (5, 0.1, 4), (1, 0.1, 0),
                                                     (50, 0.0, 0), (300, 0.25, 75)])
def test_audit_size_is_a_share_with_a_floor_and_leaves_the_strategy_one(budget, share, expected):
    assert audit_size(budget, share) == expected


def test_audit_size_refuses_a_share_out_of_range():
    with pytest.raises(ValueError, match="audit"):
        audit_size(10, 0.95)


def test_draw_is_uniform_over_the_selectable_rows_only():
    selectable = np.zeros(1000, bool)
    selectable[::2] = True
    draws = np.concatenate([draw_audit(selectable, 10, seed) for seed in range(400)])
    assert np.all(draws % 2 == 0)
    counts = np.bincount(draws // 2, minlength=500)
    assert counts.sum() == 4000 and counts.max() < 25  # about 8 each; a biased draw would pile up
    np.testing.assert_array_equal(draw_audit(selectable, 10, 3), draw_audit(selectable, 10, 3))
    assert draw_audit(selectable, 900, 0).size == 500


def test_mix_keeps_the_strategys_order_and_hides_the_audit_at_random_ranks():
    chosen, audit = np.array([5, 3, 9, 1]), np.array([100, 200])
    out = mix(chosen, audit, 0)
    assert sorted(out.tolist()) == [1, 3, 5, 9, 100, 200]
    assert [r for r in out.tolist() if r < 100] == [5, 3, 9, 1]
    ranks = [np.flatnonzero(mix(chosen, audit, s) >= 100).tolist() for s in range(200)]
    assert len({tuple(r) for r in ranks}) > 10 and {0, 5} <= set(sum(ranks, []))


def test_wilson_interval_known_values():
    assert accuracy_interval(0, 0) is None
    assert accuracy_interval(8, 10) == [0.4902, 0.9433]  # by hand: centre 0.7167, half-width 0.2266
    low, high = accuracy_interval(10, 10)
    assert high == 1.0 and 0.69 < low < 0.73
    assert accuracy_interval(500, 1000) == [0.4691, 0.5309]


def test_stop_set_is_fixed_and_covers_small_pools():
    np.testing.assert_array_equal(stop_set(50, 0), np.arange(50))
    a, b = stop_set(10_000, 1, size=100), stop_set(10_000, 1, size=100)
    np.testing.assert_array_equal(a, b)
    assert a.size == 100 and np.all(np.diff(a) > 0)
    assert agreement([0, 1, 2], [0, 1, 2]) == 1.0 and agreement([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0


def _rounds(acc, kappa, step=100):
    return [{"round": i, "n_labeled": 50 + step * i, "accuracy": a, "stop_kappa": k}
            for i, (a, k) in enumerate(zip(acc, kappa))]


def test_stopping_signal_says_still_helping_with_the_gain():
    sig = stopping_signal(_rounds([0.60, 0.70, 0.78], [None, 0.80, 0.90]))
    assert sig["gain_per_100"] == pytest.approx(0.08)
    assert sig["message"] == ("labels are still helping (+0.080 accuracy per 100 labels; kappa 0.900 with the last "
                              "round's predictions on the stop set)")
    assert sig["flat_since"] is None


def test_stopping_signal_says_flattened_since_the_first_stable_round():
    sig = stopping_signal(_rounds([0.60, 0.80, 0.85, 0.851, 0.852, 0.852], [None, 0.7, 0.95, 0.991, 0.995, 0.999]))
    assert sig["flat_since"] == 3
    assert sig["message"].startswith("gains have flattened since round 3: predictions stable for 3 rounds")
    assert stopping_signal(_rounds([0.6], [None])) is None
    unmeasured = stopping_signal(_rounds([None, None], [None, 0.5]))
    assert unmeasured["gain_per_100"] is None and unmeasured["message"].startswith("no clear gain")
