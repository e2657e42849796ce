"""Before and after of the same people: answer matrices in SQL, paired change with uncertainty.

Two sources of "before", never mixed (docs/evaluation.md):
- **pairs**: a submitted 'after' in scope and the same person's submitted 'before' (the 'after'
  dates the pair, as in `indicators.evolution`);
- **retrospective**: a retrospective form in scope, "before" being its `_PRE` answers. These
  measure *perceived* change, said in one go, and are shown apart.

`matrices` reads, in two SQL queries per source, the number of people for each (answer before,
answer after) of the comfort item and of every task, and, per competence type, of each (sum of
rungs before, sum of rungs after) over the tasks of that type the person placed on the ladder
both times. `changes` turns them into `statistics` results (Tango interval, McNemar or
Wilcoxon), computed only for groups of at least k people, with a sentence in plain words in
which no count under k appears.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask_babel import format_decimal, gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, indicators, statistics
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Indicator,
    Item,
    Role,
    Tag,
)

ALONE_RANK = 3  # "on my own" and above on the autonomy ladder (as indicators.ALONE_RANK)
EASE_TAGS = frozenset({Tag.EASE_FAIR, Tag.EASE_HIGH})  # "rather" or "very" at ease

# (value before, value after) -> people
ValueMatrix = Mapping[tuple[str, str], int]
# (rank before, rank after) -> people
RankMatrix = Mapping[tuple[int, int], int]


@dataclass(frozen=True)
class Matrices:
    by_item: Mapping[str, ValueMatrix]  # item code -> its before x after answers
    by_competence: Mapping[str, RankMatrix]  # competence type -> sums of rungs before x after


def matrices_of(tally: indicators.Tally, kind: FormKind) -> Matrices:
    """The matrices of pairs (kind AFTER) or retrospective forms (RETRO), from the facts'
    lines (`facts.PAIR`, `facts.RANK_SUM`), kept on the 'after' or retrospective form."""
    by_item: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    by_competence: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    for (form, _channel, key, value), number in tally.items():
        if form != kind.value or key not in (facts.PAIR, facts.RANK_SUM):
            continue
        code, _colon, cell = value.partition(":")
        then_value, _arrow, now_value = cell.partition(">")
        if key == facts.PAIR:
            matrix = by_item[code]
            matrix[(then_value, now_value)] = matrix.get((then_value, now_value), 0) + number
        else:
            ranks = by_competence[code]
            cell_key = (int(then_value), int(now_value))
            ranks[cell_key] = ranks.get(cell_key, 0) + number
    return Matrices(dict(by_item), dict(by_competence))


def read_matrices(db: Session, filters: EvaluationFilters) -> tuple[Matrices, Matrices]:
    """The matrices of pairs and of retrospective forms: one query over the facts."""
    tally = indicators.read_tally(db, filters, [facts.PAIR, facts.RANK_SUM])
    return matrices_of(tally, FormKind.AFTER), matrices_of(tally, FormKind.RETRO)


def matrices(
    db: Session, definition: Definition, filters: EvaluationFilters, kind: FormKind
) -> Matrices:
    """The before x after matrices of the comfort item and the tasks, from the facts.

    For each item, the people per (answer before, answer after); per competence type, the
    people per (sum of rungs before, sum after) over the tasks of that type they placed on the
    ladder both times. (`definition`: the facts were kept with it.)"""
    return matrices_of(indicators.read_tally(db, filters, [facts.PAIR, facts.RANK_SUM]), kind)


def ranked(matrix: ValueMatrix, item: Item) -> dict[tuple[int, int], int]:
    """The matrix on the item's ranks, without "does not concern me" nor missing answers."""
    ranks = {o.code: o.rank for o in item.options if o.rank is not None}
    found: dict[tuple[int, int], int] = defaultdict(int)
    for (then_value, now_value), number in matrix.items():
        if then_value in ranks and now_value in ranks:
            found[(ranks[then_value], ranks[now_value])] += number
    return dict(found)


def yes_no(ranks: RankMatrix, yes: frozenset[int]) -> dict[str, int]:
    """A ranked matrix cut into yes/no before and after (the four cells of McNemar's table)."""
    cells = {"both_yes": 0, "yes_to_no": 0, "no_to_yes": 0, "both_no": 0}
    for (then_rank, now_rank), number in ranks.items():
        key = {
            (True, True): "both_yes",
            (True, False): "yes_to_no",
            (False, True): "no_to_yes",
            (False, False): "both_no",
        }[(then_rank in yes, now_rank in yes)]
        cells[key] += number
    return cells


# --- change figures ---------------------------------------------------------------------------


Result = statistics.LadderChange | statistics.PairedShareChange | statistics.TooFew


@dataclass(frozen=True)
class Change:
    """One paired figure: the statistics result and its sentence (counts under k left out)."""

    key: str
    group: str  # "headline" or "competence"
    title: object
    result: Result
    sentence: str
    note: object | None = None

    @property
    def computed(self) -> bool:
        return not isinstance(self.result, statistics.TooFew)

    @property
    def p_text(self) -> str:
        """ "p = 0,042" or "p < 0,001" in the current language ("" without a test)."""
        p_value = None if isinstance(self.result, statistics.TooFew) else self.result.p_value
        if p_value is None:
            return ""
        if p_value < 0.001:
            return "p < " + str(format_decimal(0.001, format="0.000"))
        return "p = " + str(format_decimal(p_value, format="0.000"))


@dataclass(frozen=True)
class Changes:
    pairs: tuple[Change, ...]
    retro: tuple[Change, ...]
    k: int


def _any_small(values: tuple[int, ...], k: int) -> bool:
    return any(0 < value < k for value in values)


def _detail_withheld(n: int, k: int) -> str:
    return str(
        ngettext(
            "Parmi %(count)s personne. Le détail des changements n'est pas donné : un des "
            "groupes compte moins de %(k)s personnes.",
            "Parmi %(count)s personnes. Le détail des changements n'est pas donné : un des "
            "groupes compte moins de %(k)s personnes.",
            n,
            count=format_decimal(n),
            k=format_decimal(k),
        )
    )


def _points(value: float) -> str:
    rounded = round(100 * value)
    sign = "+" if rounded > 0 else "\u2212" if rounded < 0 else ""
    return sign + str(format_decimal(abs(rounded)))


def _percent(value: float) -> str:
    return str(format_decimal(round(100 * value)))


def _chance(p_value: float | None) -> str:
    if p_value is None:
        return str(gettext("Personne n'a changé : il n'y a pas d'écart à tester."))
    if p_value < statistics.SIGNIFICANCE:
        return str(gettext("Un tel écart a peu de chances d'être dû au hasard."))
    return str(gettext("Cet écart peut être dû au hasard."))


def _too_few(k: int) -> str:
    return str(
        gettext(
            "Résultat masqué : il porte sur un groupe de moins de %(k)s personnes, ou en "
            "laisserait deviner un.",
            k=format_decimal(k),
        )
    )


def ladder_sentence(result: Result, k: int) -> str:
    if not isinstance(result, statistics.LadderChange):
        return _too_few(k)
    if _any_small((result.up, result.same, result.down), k):
        moves = _detail_withheld(result.n, k)
    else:
        moves = ngettext(
            "Parmi %(count)s personne : %(up)s en progrès, %(same)s au même niveau, %(down)s "
            "en recul.",
            "Parmi %(count)s personnes : %(up)s en progrès, %(same)s au même niveau, %(down)s "
            "en recul.",
            result.n,
            count=format_decimal(result.n),
            up=format_decimal(result.up),
            same=format_decimal(result.same),
            down=format_decimal(result.down),
        )
    net = gettext(
        "Écart entre progrès et reculs : %(diff)s points sur 100 personnes (entre %(low)s et "
        "%(high)s compte tenu de la taille du groupe).",
        diff=_points(result.estimate),
        low=_points(result.low),
        high=_points(result.high),
    )
    return " ".join((moves, net, _chance(result.p_value)))


def share_change_sentence(result: Result, k: int, what: str) -> str:
    """`what`: who the "yes" people are, translated ("se sentent à l'aise")."""
    if not isinstance(result, statistics.PairedShareChange):
        return _too_few(k)
    change = ngettext(
        "Parmi %(count)s personne, la part de celles qui %(what)s passe de %(before)s\u00a0%% "
        "à %(after)s\u00a0%%, soit %(diff)s points (entre %(low)s et %(high)s compte tenu de "
        "la taille du groupe).",
        "Parmi %(count)s personnes, la part de celles qui %(what)s passe de %(before)s\u00a0%% "
        "à %(after)s\u00a0%%, soit %(diff)s points (entre %(low)s et %(high)s compte tenu de "
        "la taille du groupe).",
        result.n,
        count=format_decimal(result.n),
        what=what,
        before=_percent(result.before),
        after=_percent(result.after),
        diff=_points(result.estimate),
        low=_points(result.low),
        high=_points(result.high),
    )
    cells = (result.both_yes, result.no_to_yes, result.yes_to_no, result.both_no)
    if _any_small(cells, k):
        moves = gettext(
            "Le détail des changements n'est pas donné : un des groupes compte moins de "
            "%(k)s personnes.",
            k=format_decimal(k),
        )
    else:
        moves = gettext(
            "%(gained)s de non à oui, %(lost)s de oui à non.",
            gained=format_decimal(result.no_to_yes),
            lost=format_decimal(result.yes_to_no),
        )
    return " ".join((change, moves, _chance(result.p_value)))


def withheld(result: Result, k: int) -> Result:
    """A paired yes/no whose share before or after is a dashboard cell that would be hidden
    (its count, or its complement, from 1 to k - 1) is not published (TooFew); a ladder is
    published from k people on, its detailed counts only when none is under k (sentences)."""
    if isinstance(result, statistics.PairedShareChange):
        before = result.both_yes + result.yes_to_no
        after = result.both_yes + result.no_to_yes
        if _any_small((before, result.n - before, after, result.n - after), k):
            return statistics.TooFew(k)
    return result


def _changes(definition: Definition, found: Matrices, k: int) -> tuple[Change, ...]:
    out: list[Change] = []
    comfort = definition.item_with_role(Role.COMFORT)
    if comfort is not None:
        ranks = ranked(found.by_item.get(comfort.code, {}), comfort)
        ladder = withheld(statistics.ladder_change(ranks, k=k), k)
        out.append(
            Change(
                "comfort",
                "headline",
                _l("Aisance avec le numérique (quatre niveaux)"),
                ladder,
                ladder_sentence(ladder, k),
            )
        )
        at_ease = frozenset(
            o.rank for o in comfort.options if o.rank is not None and o.tags & EASE_TAGS
        )
        share = withheld(statistics.paired_share_change(**yes_no(ranks, at_ease), k=k), k)
        out.append(
            Change(
                "at_ease",
                "headline",
                _l("À l'aise avec le numérique (plutôt ou très)"),
                share,
                share_change_sentence(share, k, gettext("se sentent à l'aise")),
            )
        )
    switch = definition.item_with_indicator(Indicator.SWITCH_DEVICE)
    if switch is not None:
        ranks = ranked(found.by_item.get(switch.code, {}), switch)
        alone = frozenset(o.rank for o in switch.options if o.rank and o.rank >= ALONE_RANK)
        share = withheld(statistics.paired_share_change(**yes_no(ranks, alone), k=k), k)
        out.append(
            Change(
                "switch_device",
                "headline",
                _l("Allume et éteint son appareil seul·e"),
                share,
                share_change_sentence(
                    share, k, gettext("allument et éteignent leur appareil seules")
                ),
            )
        )
    for code, option in definition.competences.items():
        ladder = withheld(statistics.ladder_change(found.by_competence.get(code, {}), k=k), k)
        out.append(
            Change(
                f"competence_{code}",
                "competence",
                gettext(option.label),
                ladder,
                ladder_sentence(ladder, k),
            )
        )
    return tuple(out)


def changes(
    db: Session, definition: Definition, filters: EvaluationFilters, k: int
) -> tuple[Changes, Matrices, Matrices]:
    """The paired figures of pairs and of retrospective forms, and the matrices they read."""
    pairs, retro = read_matrices(db, filters)
    return (
        Changes(_changes(definition, pairs, k), _changes(definition, retro, k), k),
        pairs,
        retro,
    )


# --- CSV ----------------------------------------------------------------------------------------


def _cell(value: float | None, scale: float = 100) -> str:
    return "" if value is None else f"{scale * value:.1f}"


def changes_csv(changes: Sequence[Change], k: int) -> str:
    """The paired figures as CSV: n, estimate and interval in points, p-value, method; empty
    where the figure is withheld (fewer than k people, or a count under k showing through)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            gettext("code"),
            gettext("Indicateur"),
            gettext("Base (effectif)"),
            gettext("Avant (%)"),
            gettext("Après (%)"),
            gettext("Écart (points)"),
            gettext("IC 95 % bas"),
            gettext("IC 95 % haut"),
            gettext("p"),
            gettext("Méthode"),
            gettext("En clair"),
        ]
    )
    for change in changes:
        result = change.result
        if isinstance(result, statistics.TooFew):
            empty = [""] * 7
            hidden = gettext("masqué")
            writer.writerow([change.key, str(change.title), hidden, *empty, change.sentence])
            continue
        before = after = None
        if isinstance(result, statistics.PairedShareChange):
            before, after = result.before, result.after
        writer.writerow(
            [
                change.key,
                str(change.title),
                str(result.n),
                _cell(before),
                _cell(after),
                _cell(result.estimate),
                _cell(result.low),
                _cell(result.high),
                "" if result.p_value is None else f"{result.p_value:.4f}",
                f"{result.method.value} / {result.interval_method.value}",
                change.sentence,
            ]
        )
    return out.getvalue()
