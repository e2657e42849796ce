"""The evaluation's figures in plain words: the one sentence builder of the dashboard.

Three sentences, one per kind of `statistics` result, over the same pieces (numbers in the
current locale, shares rounded to whole percentages, changes to whole points with a true minus
sign, and the p-value said in words against `statistics.SIGNIFICANCE`):

- `share_sentence`: x people out of n, with its interval (the retention lines of the overview);
- `share_change_sentence`: a paired yes/no before and after, with its interval and McNemar's
  test in words (the change page, `paired`);
- `ladder_sentence`: a paired ladder, who went up, stayed, went down, with the net change and
  the Wilcoxon test in words (the change page, `paired`).

No count under k is ever said. A share under k people is refused outright; a paired change is
refused when `paired.withheld` hid it (it may then concern k people or more, but let a smaller
group be guessed), and its detailed counts are left out when any of them is from 1 to k - 1.
Every sentence is translated (French msgids) and needs Flask-Babel's context.
"""

from __future__ import annotations

from flask_babel import format_decimal, gettext, ngettext

from selfcheck.evaluation import statistics
from selfcheck.evaluation.disclosure import any_small


def number(value: int) -> str:
    """A count in the current locale ("1 327" in French)."""
    return str(format_decimal(value))


def percent(value: float) -> str:
    """A proportion (0 to 1) as whole percentage points, without the sign."""
    return number(round(100 * value))


def points(value: float) -> str:
    """A difference of proportions as signed whole points: "+30", "−15" (a true minus), "0"."""
    rounded = round(100 * value)
    sign = "+" if rounded > 0 else "\u2212" if rounded < 0 else ""
    return sign + number(abs(rounded))


def chance(p_value: float | None) -> str:
    """What the test's p-value means, in words (None: nobody changed, nothing to test)."""
    if p_value is None:
        return str(gettext("Personne n'a changé : il n'y a pas d'écart à tester."))
    if p_value < statistics.SIGNIFICANCE:
        return str(gettext("Un tel écart a peu de chances d'être dû au hasard."))
    return str(gettext("Cet écart peut être dû au hasard."))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def share_sentence(result: statistics.Share | statistics.TooFew, *, k: int, what: str) -> str:
    """A share in plain words, or a refusal when it concerns fewer than k people.

    `what` (translated) is what the "yes" people do, a verb phrase in the plural ("ont
    Internet à domicile"). A share computed with a smaller k is refused all the same.
    """
    _check_k(k)
    if isinstance(result, statistics.TooFew) or result.n < k:
        shown_k = max(k, result.k) if isinstance(result, statistics.TooFew) else k
        return str(
            gettext(
                "Trop peu de personnes (moins de %(k)s) pour donner ce résultat sans risquer "
                "de les reconnaître.",
                k=number(shown_k),
            )
        )
    return str(
        ngettext(
            "Parmi %(count)s personne, %(pct)s\u00a0%% %(what)s (entre %(low)s et "
            "%(high)s\u00a0%% compte tenu de la taille du groupe).",
            "Parmi %(count)s personnes, %(pct)s\u00a0%% %(what)s (entre %(low)s et "
            "%(high)s\u00a0%% compte tenu de la taille du groupe).",
            result.n,
            count=number(result.n),
            pct=percent(result.estimate),
            what=what,
            low=percent(result.low),
            high=percent(result.high),
        )
    )


def _withheld(k: int) -> str:
    return str(
        gettext(
            "Résultat masqué : il porte sur un groupe de moins de %(k)s personnes, ou en "
            "laisserait deviner un.",
            k=number(k),
        )
    )


def ladder_sentence(result: statistics.Result, *, k: int) -> str:
    """A paired ladder: up, same and down (unless one of them is under k), the net change with
    its interval, and the test in words; a refusal when the result is withheld (any other
    than a `LadderChange` of k people or more)."""
    _check_k(k)
    if not isinstance(result, statistics.LadderChange) or result.n < k:
        return _withheld(k)
    if any_small((result.up, result.same, result.down), k):
        moves = ngettext(
            "Parmi %(count)s personne. Le détail des changements n'est pas donné : un des "
            "groupes compte moins de %(k)s personnes.",
            "Parmi %(count)s personnes. Le détail des changements n'est pas donné : un des "
            "groupes compte moins de %(k)s personnes.",
            result.n,
            count=number(result.n),
            k=number(k),
        )
    else:
        moves = ngettext(
            "Parmi %(count)s personne : %(up)s en progrès, %(same)s au même niveau, %(down)s "
            "en recul.",
            "Parmi %(count)s personnes : %(up)s en progrès, %(same)s au même niveau, %(down)s "
            "en recul.",
            result.n,
            count=number(result.n),
            up=number(result.up),
            same=number(result.same),
            down=number(result.down),
        )
    net = gettext(
        "Écart entre progrès et reculs : %(diff)s points sur 100 personnes (entre %(low)s et "
        "%(high)s compte tenu de la taille du groupe).",
        diff=points(result.estimate),
        low=points(result.low),
        high=points(result.high),
    )
    return " ".join((str(moves), str(net), chance(result.p_value)))


def share_change_sentence(result: statistics.Result, *, k: int, what: str) -> str:
    """A paired yes/no: the "yes" share before and after, the change with its interval, the
    moves either way (unless one of the four cells is under k) and the test in words; a
    refusal when the result is withheld (any other than a `PairedShareChange` of k people or
    more). `what` (translated): who the "yes" people are, a verb phrase in the plural ("se
    sentent à l'aise")."""
    _check_k(k)
    if not isinstance(result, statistics.PairedShareChange) or result.n < k:
        return _withheld(k)
    change = ngettext(
        "Parmi %(count)s personne, la part de celles qui %(what)s passe de %(before)s\u00a0%% "
        "à %(after)s\u00a0%%, soit %(diff)s points (entre %(low)s et %(high)s compte tenu de "
        "la taille du groupe).",
        "Parmi %(count)s personnes, la part de celles qui %(what)s passe de %(before)s\u00a0%% "
        "à %(after)s\u00a0%%, soit %(diff)s points (entre %(low)s et %(high)s compte tenu de "
        "la taille du groupe).",
        result.n,
        count=number(result.n),
        what=what,
        before=percent(result.before),
        after=percent(result.after),
        diff=points(result.estimate),
        low=points(result.low),
        high=points(result.high),
    )
    cells = (result.both_yes, result.no_to_yes, result.yes_to_no, result.both_no)
    if any_small(cells, k):
        moves = gettext(
            "Le détail des changements n'est pas donné : un des groupes compte moins de "
            "%(k)s personnes.",
            k=number(k),
        )
    else:
        moves = gettext(
            "%(gained)s de non à oui, %(lost)s de oui à non.",
            gained=number(result.no_to_yes),
            lost=number(result.yes_to_no),
        )
    return " ".join((str(change), str(moves), chance(result.p_value)))
