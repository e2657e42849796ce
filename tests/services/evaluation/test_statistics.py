"""Intervals and paired tests against values worked out by hand.

Notation: z = 1.959964 (95 %), z² = 3.841459. Wilson score interval for x of n:
centre (x + z²/2) / (n + z²), half-width z / (n + z²) · sqrt(x (n - x) / n + z²/4).
Clopper-Pearson: the p where P(X ≥ x) = 0.025 (low) and P(X ≤ x) = 0.025 (high), X ~ Bin(n, p).
Tango's score interval for the paired difference (gained - lost) / n has closed forms in the
cases used here (derived in the comments). Exact McNemar = two-sided binomial test on the
discordant pairs, p = 2 · P(X ≤ min(b, c)), X ~ Bin(b + c, 1/2). Exact Wilcoxon = all 2^m sign
patterns of the m ranked differences, equally likely; p = 2 · P(T⁻ ≤ observed T⁻).
"""

from __future__ import annotations

import math

import pytest

from selfcheck.evaluation.statistics import (
    LadderChange,
    Method,
    PairedShareChange,
    Share,
    TooFew,
    ladder_change,
    paired_share_change,
    share,
    tango_interval,
)

Z2 = 1.959963984540054**2  # 3.841459


def test_wilson_mixed_case() -> None:
    # x = 4, n = 10: centre = (4 + 1.920730) / 13.841459 = 0.427753;
    # half = 1.959964 / 13.841459 · sqrt(2.4 + 0.960365) = 0.141601 · 1.833130 = 0.259573
    # -> 0.168180 to 0.687326
    result = share(4, 10, k=1)
    assert isinstance(result, Share)
    assert result.method is Method.WILSON
    assert (result.n, result.successes, result.estimate) == (10, 4, 0.4)
    assert result.low == pytest.approx(0.168180, abs=1e-5)
    assert result.high == pytest.approx(0.687326, abs=1e-5)
    assert result.p_value is None


def test_wilson_all_successes_and_none() -> None:
    # x = n = 5: half-width = z²/(2 (n + z²)), centre = (n + z²/2)/(n + z²), so
    # high = 1 and low = n / (n + z²) = 5 / 8.841459 = 0.565518.
    # x = 0: low = 0, high = z² / (n + z²) = 3.841459 / 8.841459 = 0.434482.
    full = share(5, 5, k=1)
    assert isinstance(full, Share)
    assert full.estimate == 1.0
    assert full.low == pytest.approx(5 / (5 + Z2))
    assert full.high == pytest.approx(1.0)
    empty = share(0, 5, k=1)
    assert isinstance(empty, Share)
    assert empty.low == pytest.approx(0.0)
    assert empty.high == pytest.approx(Z2 / (5 + Z2))


def test_clopper_pearson_by_hand() -> None:
    # x = 1, n = 2: high solves P(X ≤ 1) = 1 - p² = 0.025 -> p = sqrt(0.975) = 0.987421;
    # low solves P(X ≥ 1) = 1 - (1 - p)² = 0.025 -> p = 1 - sqrt(0.975) = 0.012579.
    middle = share(1, 2, k=1, method=Method.CLOPPER_PEARSON)
    assert isinstance(middle, Share)
    assert middle.method is Method.CLOPPER_PEARSON
    assert middle.low == pytest.approx(1 - math.sqrt(0.975))
    assert middle.high == pytest.approx(math.sqrt(0.975))
    # x = n = 5: low solves p^5 = 0.025 -> 0.025^(1/5) = 0.478176; high = 1.
    full = share(5, 5, k=1, method=Method.CLOPPER_PEARSON)
    assert isinstance(full, Share)
    assert full.low == pytest.approx(0.025 ** (1 / 5))
    assert full.high == 1.0
    # x = 0, n = 5: high solves (1 - p)^5 = 0.025 -> 1 - 0.478176 = 0.521824.
    empty = share(0, 5, k=1, method=Method.CLOPPER_PEARSON)
    assert isinstance(empty, Share)
    assert (empty.low, empty.high) == (0.0, pytest.approx(1 - 0.025 ** (1 / 5)))


def test_under_k_nothing_is_computed() -> None:
    # n = 0 is under any k (k ≥ 1); 4 people are under k = 5. No count is kept.
    assert share(0, 0, k=1) == TooFew(k=1)
    assert share(3, 4, k=5) == TooFew(k=5)
    assert share(3, 5, k=5) != TooFew(k=5)
    assert paired_share_change(both_yes=1, yes_to_no=1, no_to_yes=1, both_no=1, k=5) == TooFew(5)
    assert ladder_change({}, k=1) == TooFew(1)
    assert ladder_change({(1, 2): 4}, k=5) == TooFew(5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: share(3, 2, k=1), "cannot exceed"),
        (lambda: share(-1, 2, k=1), "must not be negative"),
        (lambda: share(1, 2, k=0), "k must be at least 1"),
        (lambda: share(1, 2, k=1, confidence=1.5), "confidence"),
        (lambda: ladder_change({(1, 2): -1}, k=1), "must not be negative"),
        (lambda: ladder_change({(1, 2): 1}, k=1, zero_method="zsplit"), "zero_method"),  # type: ignore[arg-type]
        (lambda: tango_interval(3, 3, 5), "exceed n"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# --- Tango's interval ---------------------------------------------------------------------------


def test_tango_published_example() -> None:
    # Cavo et al. 2012 (Fagerland, Lydersen & Laake, Statistical analysis of contingency
    # tables, ch. 8): 59 both, 6 first only, 16 second only, 80 neither, n = 161. Published
    # Tango score interval for first - second: -0.0621 (-0.1240 to -0.0054); ours is second -
    # first, so +0.0621 (0.0054 to 0.1240).
    low, high = tango_interval(16, 6, 161)
    assert low == pytest.approx(0.0054, abs=5e-5)
    assert high == pytest.approx(0.1240, abs=5e-5)


def test_tango_closed_forms() -> None:
    # No discordant pair: q̃ = 0 for d > 0, so T(d) = -n d / sqrt(n d (1 - d)) = -z gives
    # n d = z² (1 - d), d = z² / (n + z²) = 3.841459 / 13.841459 = 0.277533 (n = 10);
    # symmetric below.
    low, high = tango_interval(0, 0, 10)
    assert low == pytest.approx(-Z2 / (10 + Z2), abs=1e-9)
    assert high == pytest.approx(Z2 / (10 + Z2), abs=1e-9)
    # All 10 gained: q̃ = (1 - d) / 2, T(d) = sqrt(n (1 - d) / (1 + d)) = z gives
    # d = (n - z²) / (n + z²) = 6.158541 / 13.841459 = 0.444934; the upper limit is 1.
    low, high = tango_interval(10, 0, 10)
    assert low == pytest.approx((10 - Z2) / (10 + Z2), abs=1e-9)
    assert high == 1.0
    low, high = tango_interval(0, 10, 10)
    assert (low, high) == (-1.0, pytest.approx(-(10 - Z2) / (10 + Z2), abs=1e-9))


# --- paired yes/no ------------------------------------------------------------------------------


def test_paired_share_change_small_case() -> None:
    # 3 yes both times, 1 yes -> no, 4 no -> yes, 2 no both times: n = 10.
    # before = (3 + 1) / 10 = 0.4, after = (3 + 4) / 10 = 0.7, change = (4 - 1) / 10 = +0.3.
    # Exact McNemar: 5 discordant, min = 1: P(X ≤ 1) = (1 + 5) / 32, p = 12 / 32 = 0.375.
    result = paired_share_change(both_yes=3, yes_to_no=1, no_to_yes=4, both_no=2, k=5)
    assert isinstance(result, PairedShareChange)
    assert result.n == 10
    assert (result.before, result.after) == (pytest.approx(0.4), pytest.approx(0.7))
    assert result.estimate == pytest.approx(0.3)
    assert result.p_value == pytest.approx(0.375)
    assert result.method is Method.MCNEMAR_EXACT
    assert result.interval_method is Method.TANGO_SCORE
    assert result.low < result.estimate < result.high


def test_paired_share_change_all_discordant_one_way() -> None:
    # 10 people, all no -> yes: change +1; exact McNemar p = 2 · (1/2)^10 = 2 / 1024.
    # Tango: lower (n - z²) / (n + z²) = 0.444934, upper 1 (see test_tango_closed_forms).
    result = paired_share_change(both_yes=0, yes_to_no=0, no_to_yes=10, both_no=0, k=5)
    assert isinstance(result, PairedShareChange)
    assert result.estimate == 1.0
    assert result.p_value == pytest.approx(2 / 1024)
    assert result.low == pytest.approx((10 - Z2) / (10 + Z2), abs=1e-9)
    assert result.high == 1.0


def test_paired_share_change_published_example_and_exact_mcnemar() -> None:
    # Cavo et al. 2012: b = 6, c = 16, 22 discordant (< 25: exact).
    # P(X ≤ 6 | 22, 1/2) = (1 + 22 + 231 + 1540 + 7315 + 26334 + 74613) / 2^22
    #                    = 110056 / 4194304, p = 2 · that = 0.052479.
    result = paired_share_change(both_yes=59, yes_to_no=6, no_to_yes=16, both_no=80, k=5)
    assert isinstance(result, PairedShareChange)
    assert result.p_value == pytest.approx(2 * 110056 / 2**22)
    assert result.estimate == pytest.approx(10 / 161)
    assert (result.low, result.high) == (
        pytest.approx(0.0054, abs=5e-5),
        pytest.approx(0.1240, abs=5e-5),
    )


def test_mcnemar_asymptotic_from_25_discordant_pairs() -> None:
    # b = 5, c = 20: X² = (5 - 20)² / 25 = 9, p = P(χ²₁ > 9) = P(|Z| > 3) = 0.0026998.
    result = paired_share_change(both_yes=0, yes_to_no=5, no_to_yes=20, both_no=5, k=5)
    assert isinstance(result, PairedShareChange)
    assert result.method is Method.MCNEMAR_ASYMPTOTIC
    assert result.p_value == pytest.approx(math.erfc(3 / math.sqrt(2)))


def test_nobody_changed_has_no_test() -> None:
    # No discordant pair: nothing to test (p None); change 0 with a symmetric interval.
    result = paired_share_change(both_yes=6, yes_to_no=0, no_to_yes=0, both_no=4, k=5)
    assert isinstance(result, PairedShareChange)
    assert result.p_value is None
    assert result.estimate == 0.0
    assert result.high == pytest.approx(Z2 / (10 + Z2), abs=1e-9)


# --- ladders ------------------------------------------------------------------------------------


def test_ladder_counts_and_exact_wilcoxon() -> None:
    # Differences: +1 ×3 (1→2), +1 (2→3), +2 (1→3), -1 (3→2), 0 ×2 (2→2); n = 8,
    # up 5, same 2, down 1, net (5 - 1) / 8 = 0.5.
    # Zeros dropped: |d| = 1,1,1,1,1,2 -> ranks 3,3,3,3,3,6; observed T⁻ = 3.
    # Of the 64 sign patterns, T⁻ ≤ 3 in 1 (none negative) + 5 (one rank 3): 6 / 64;
    # p = 12 / 64 = 0.1875.
    result = ladder_change({(1, 2): 3, (2, 3): 1, (1, 3): 1, (3, 2): 1, (2, 2): 2}, k=5)
    assert isinstance(result, LadderChange)
    assert (result.n, result.up, result.same, result.down) == (8, 5, 2, 1)
    assert result.estimate == 0.5
    assert result.p_value == pytest.approx(12 / 64)
    assert result.method is Method.WILCOXON_EXACT
    assert result.low < 0.5 < result.high


def test_ladder_all_up_exact() -> None:
    # 5 people up one rung: ranks 3,3,3,3,3, T⁻ = 0: only 1 of 32 patterns, p = 2 / 32.
    result = ladder_change({(2, 3): 5}, k=5)
    assert isinstance(result, LadderChange)
    assert (result.up, result.same, result.down) == (5, 0, 0)
    assert result.p_value == pytest.approx(2 / 32)
    assert result.high == 1.0
    assert result.low == pytest.approx((5 - Z2) / (5 + Z2), abs=1e-9)


def test_ladder_all_down() -> None:
    result = ladder_change({(4, 1): 3, (3, 2): 2}, k=5)
    assert isinstance(result, LadderChange)
    assert (result.up, result.down, result.estimate) == (0, 5, -1.0)
    assert result.low == -1.0
    assert result.p_value == pytest.approx(2 / 32)  # signs only: same as all up


def test_ladder_asymptotic_with_ties() -> None:
    # 14 up one rung (> 13 ranked: asymptotic). Ranks all 7.5, T⁺ = 105, mean n(n+1)/4 = 52.5,
    # variance n(n+1)(2n+1)/24 - Σ(t³ - t)/48 = 253.75 - (2744 - 14)/48 = 196.875,
    # z = 52.5 / sqrt(196.875) = 3.741657, p = erfc(z / sqrt 2) = 0.000183.
    result = ladder_change({(1, 2): 14}, k=5)
    assert isinstance(result, LadderChange)
    assert result.method is Method.WILCOXON_ASYMPTOTIC
    z = 52.5 / math.sqrt(196.875)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))


def test_ladder_zero_method() -> None:
    # 'wilcox' drops the 10 zeros: 10 ranked differences, exact, p = 2 / 1024 (all up).
    wilcox = ladder_change({(1, 2): 10, (3, 3): 10}, k=5)
    assert isinstance(wilcox, LadderChange)
    assert wilcox.method is Method.WILCOXON_EXACT
    assert wilcox.p_value == pytest.approx(2 / 1024)
    assert wilcox.same == 10
    # 'pratt' ranks the zero then drops its rank: |d| = 0,1,1,1 -> ranks (1),3,3,3, T⁻ = 0;
    # signs of the three ranked ones: 1 pattern of 8 gives T⁻ ≤ 0, p = 2 / 8 = 0.25.
    pratt = ladder_change({(1, 2): 3, (2, 2): 1}, k=1, zero_method="pratt")
    assert isinstance(pratt, LadderChange)
    assert pratt.zero_method == "pratt"
    assert pratt.p_value == pytest.approx(0.25)


def test_ladder_nobody_moved() -> None:
    result = ladder_change({(2, 2): 6, (3, 3): 4}, k=5)
    assert isinstance(result, LadderChange)
    assert (result.up, result.same, result.down, result.p_value) == (0, 10, 0, None)


def test_a_ladder_with_one_change_among_many_still_answers() -> None:
    # One person moved, five stayed: scipy's Wilcoxon refuses a sample of one (the dashboard
    # answered 500 for such a selection); exactly, the two-sided p-value of one sign is 1.
    result = ladder_change({(1, 2): 1, (2, 2): 5}, k=5)
    assert isinstance(result, LadderChange)
    assert (result.up, result.same, result.down) == (1, 5, 0)
    assert result.p_value == 1.0
