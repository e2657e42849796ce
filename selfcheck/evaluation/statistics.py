"""Uncertainty for the dashboard's figures: intervals and paired tests.

Pure functions over counts (no Flask, no database); `sentences` says their results in plain
words. Three kinds of figure:

- a **share** (`share`): x people out of n, with a 95 % interval, Wilson score or
  Clopper-Pearson exact (`scipy.stats.binomtest(...).proportion_ci`);
- a **paired yes/no** before and after (`paired_share_change`, e.g. "can switch a device on"):
  the change of the "yes" share, after minus before, with Tango's score interval for the
  difference of paired proportions, and McNemar's test (exact binomial test on the discordant
  pairs when there are fewer than `MCNEMAR_EXACT_BELOW` of them, the asymptotic chi-square
  without continuity correction otherwise; Fagerland, Lydersen & Laake, BMC Med Res Methodol
  2013, 13:91);
- a **paired ladder** (`ladder_change`, rungs such as 1-4 before and after): how many people
  went up, stayed, went down; the net share (up minus down, over n) with Tango's score interval
  (it depends only on the two discordant counts and n, so it applies as is to "up" against
  "down"); and the Wilcoxon signed-rank test (`scipy.stats.wilcoxon`). Zero differences are
  dropped ("wilcox") or ranked ("pratt"); the p-value is exact (every sign pattern enumerated,
  ties included) when at most `WILCOXON_EXACT_UP_TO` differences are ranked, asymptotic (with
  the tie correction) above.

Tango's interval (Tango, Stat Med 1998;17:891-908; recommended by Fagerland, Lydersen & Laake,
Stat Methods Med Res 2014;23:3) is the set of differences d whose score statistic stays
within +/- z; its limits are found with `scipy.optimize.brentq`.

Every function takes k, the smallest group the dashboard may describe: under k, no number is
computed and a `TooFew` is returned instead (it keeps no count, like a hidden dashboard cell).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# numpy and SciPy are imported by the functions that use them (about 70 MB of resident memory
# and 1.5 s of CPU with SciPy's stats): only a process that computes figures pays for them,
# not every web and job worker that builds the app (docs/performance.md, "Import costs";
# tests/platform/test_lazy_imports.py).

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # a p-value under this reads "unlikely to be chance" (sentences.chance)
MCNEMAR_EXACT_BELOW = 25  # discordant pairs: exact binomial test below, chi-square from here
WILCOXON_EXACT_UP_TO = 13  # ranked differences: exact enumeration (2**13 sign patterns) up to here

ZeroMethod = Literal["wilcox", "pratt"]


class Method(enum.StrEnum):
    WILSON = "wilson"
    CLOPPER_PEARSON = "clopper_pearson"
    MCNEMAR_EXACT = "mcnemar_exact"
    MCNEMAR_ASYMPTOTIC = "mcnemar_asymptotic"
    WILCOXON_EXACT = "wilcoxon_exact"
    WILCOXON_ASYMPTOTIC = "wilcoxon_asymptotic"
    TANGO_SCORE = "tango_score"
    TOO_FEW = "too_few"


@dataclass(frozen=True)
class TooFew:
    """Fewer than k people: nothing computed, no count kept."""

    k: int
    method: Method = Method.TOO_FEW


@dataclass(frozen=True)
class Share:
    """`successes` of `n` people; estimate, low, high are proportions (0 to 1)."""

    n: int
    successes: int
    estimate: float
    low: float
    high: float
    method: Method  # the interval's method
    p_value: float | None = None  # no test on a single share


@dataclass(frozen=True)
class PairedShareChange:
    """Yes/no asked before and after of the same n people.

    estimate = after share - before share = (no_to_yes - yes_to_no) / n, with Tango's interval
    (`interval_method`); p_value from McNemar's test (`method`), None when nobody changed.
    """

    n: int
    both_yes: int
    yes_to_no: int
    no_to_yes: int
    both_no: int
    estimate: float
    low: float
    high: float
    p_value: float | None
    method: Method
    interval_method: Method = Method.TANGO_SCORE

    @property
    def before(self) -> float:
        return (self.both_yes + self.yes_to_no) / self.n

    @property
    def after(self) -> float:
        return (self.both_yes + self.no_to_yes) / self.n


@dataclass(frozen=True)
class LadderChange:
    """Rungs before and after of the same n people.

    estimate = (up - down) / n, the net share going up, with Tango's interval
    (`interval_method`); p_value from the Wilcoxon signed-rank test (`method`), None when
    nobody changed rung.
    """

    n: int
    up: int
    same: int
    down: int
    estimate: float
    low: float
    high: float
    p_value: float | None
    method: Method
    zero_method: ZeroMethod = "wilcox"
    interval_method: Method = Method.TANGO_SCORE


Result = Share | PairedShareChange | LadderChange | TooFew


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def load_scipy() -> None:
    """Import the SciPy modules this file uses (each function imports them when first called,
    so that processes that never compute statistics do not pay for them): 0.6-1.8 s and about
    60 MB the first time in a process. A web worker does it in the background at start
    (evaluation/warmup.py), not in an evaluator's first dashboard view."""
    import scipy.optimize
    import scipy.stats  # noqa: F401


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    from scipy import stats

    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


# --- one share -------------------------------------------------------------------------------


def share(
    successes: int,
    n: int,
    *,
    k: int,
    method: Literal[Method.WILSON, Method.CLOPPER_PEARSON] = Method.WILSON,
    confidence: float = CONFIDENCE,
) -> Share | TooFew:
    """The share successes / n with its interval (Wilson score or Clopper-Pearson exact)."""
    _check_k(k)
    _check_count("successes", successes)
    _check_count("n", n)
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    _z(confidence)
    if n < k:
        return TooFew(k)
    from scipy import stats

    test = stats.binomtest(successes, n)
    if method is Method.WILSON:
        interval = test.proportion_ci(confidence, method="wilson")
    else:
        interval = test.proportion_ci(confidence, method="exact")
    return Share(
        n=n,
        successes=successes,
        estimate=successes / n,
        low=float(interval.low),
        high=float(interval.high),
        method=method,
    )


# --- Tango's score interval for a paired difference --------------------------------------------


def tango_interval(
    gained: int, lost: int, n: int, *, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval for (gained - lost) / n, where gained and lost are the two discordant counts.

    For a difference d, the constrained maximum-likelihood estimate of the "lost" probability
    is the positive root q of 2n q^2 + B q + C = 0, with B = -gained - lost + (2n - gained +
    lost) d and C = -lost d (1 - d); the score statistic is
    T(d) = (gained - lost - n d) / sqrt(n (2 q + d (1 - d))). The limits solve T(d) = +z and
    T(d) = -z; an estimate of -1 or +1 is its own limit on that side.
    """
    if n < 1:
        raise ValueError("Tango's interval needs at least one pair")
    if gained + lost > n:
        raise ValueError(f"discordant pairs ({gained} + {lost}) exceed n ({n})")
    z = _z(confidence)
    estimate = (gained - lost) / n

    def statistic(d: float) -> float:
        b = -gained - lost + (2 * n - gained + lost) * d
        c = -lost * d * (1 - d)
        q = (math.sqrt(max(b * b - 8 * n * c, 0.0)) - b) / (4 * n)
        variance = n * (2 * q + d * (1 - d))
        return (gained - lost - n * d) / math.sqrt(max(variance, 1e-300))

    from scipy import optimize

    edge = 1e-12
    low = (
        -1.0
        if estimate <= -1
        else optimize.brentq(lambda d: statistic(d) - z, -1 + edge, estimate, xtol=1e-14)
    )
    high = (
        1.0
        if estimate >= 1
        else optimize.brentq(lambda d: statistic(d) + z, estimate, 1 - edge, xtol=1e-14)
    )
    return float(low), float(high)


# --- paired yes/no ----------------------------------------------------------------------------


def paired_share_change(
    *,
    both_yes: int,
    yes_to_no: int,
    no_to_yes: int,
    both_no: int,
    k: int,
    confidence: float = CONFIDENCE,
) -> PairedShareChange | TooFew:
    """Change of a yes/no answer between before and after, over the same people."""
    _check_k(k)
    for name, value in (
        ("both_yes", both_yes),
        ("yes_to_no", yes_to_no),
        ("no_to_yes", no_to_yes),
        ("both_no", both_no),
    ):
        _check_count(name, value)
    n = both_yes + yes_to_no + no_to_yes + both_no
    if n < k:
        return TooFew(k)
    low, high = tango_interval(no_to_yes, yes_to_no, n, confidence=confidence)
    p_value, method = _mcnemar(yes_to_no, no_to_yes)
    return PairedShareChange(
        n=n,
        both_yes=both_yes,
        yes_to_no=yes_to_no,
        no_to_yes=no_to_yes,
        both_no=both_no,
        estimate=(no_to_yes - yes_to_no) / n,
        low=low,
        high=high,
        p_value=p_value,
        method=method,
    )


def _mcnemar(yes_to_no: int, no_to_yes: int) -> tuple[float | None, Method]:
    from scipy import stats

    discordant = yes_to_no + no_to_yes
    if discordant < MCNEMAR_EXACT_BELOW:
        if discordant == 0:
            return None, Method.MCNEMAR_EXACT
        test = stats.binomtest(min(yes_to_no, no_to_yes), discordant, 0.5)
        return min(1.0, float(test.pvalue)), Method.MCNEMAR_EXACT
    chi_square = (yes_to_no - no_to_yes) ** 2 / discordant
    return float(stats.chi2.sf(chi_square, 1)), Method.MCNEMAR_ASYMPTOTIC


# --- paired ladder ----------------------------------------------------------------------------


def ladder_change(
    pairs: Mapping[tuple[int, int], int],
    *,
    k: int,
    zero_method: ZeroMethod = "wilcox",
    confidence: float = CONFIDENCE,
) -> LadderChange | TooFew:
    """Change on an ordinal ladder: pairs maps (rung before, rung after) to a number of people.

    Rungs are ranks (1 = "I can't yet" ... 4 = "on my own and I can help others"); leave out
    "does not concern me" and missing answers before calling.
    """
    _check_k(k)
    if zero_method not in ("wilcox", "pratt"):
        raise ValueError(f"zero_method must be 'wilcox' or 'pratt', got {zero_method!r}")
    differences: list[int] = []
    counts: list[int] = []
    for (before, after), number in pairs.items():
        _check_count(f"pairs[{before}, {after}]", number)
        differences.append(after - before)
        counts.append(number)
    import numpy as np
    from scipy import stats

    diffs = np.repeat(np.array(differences, dtype=float), np.array(counts, dtype=int))
    n = int(diffs.size)
    if n < k:
        return TooFew(k)
    up = int(np.count_nonzero(diffs > 0))
    down = int(np.count_nonzero(diffs < 0))
    low, high = tango_interval(up, down, n, confidence=confidence)
    p_value: float | None = None
    ranked = diffs[diffs != 0] if zero_method == "wilcox" else diffs
    exact = ranked.size <= WILCOXON_EXACT_UP_TO
    if ranked.size == 1:
        # One difference not zero: scipy refuses a sample of one; exactly, its sign is + or -
        # with probability 1/2 each under the null, so the two-sided p-value is 1.
        p_value = 1.0
    elif up + down > 0:
        test = stats.wilcoxon(
            ranked,
            zero_method=zero_method,
            method=stats.PermutationMethod() if exact else "approx",
        )
        p_value = min(1.0, float(test.pvalue))
    return LadderChange(
        n=n,
        up=up,
        same=n - up - down,
        down=down,
        estimate=(up - down) / n,
        low=low,
        high=high,
        p_value=p_value,
        method=Method.WILCOXON_EXACT if exact else Method.WILCOXON_ASYMPTOTIC,
        zero_method=zero_method,
    )
