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
Wilcoxon), computed only for groups of at least k people, with a sentence in plain words
(`sentences`) in which no count under k appears.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask_babel import format_decimal, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, indicators, sentences, statistics
from selfcheck.evaluation.disclosure import any_small
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


def withheld(result: Result, k: int) -> Result:
    """A paired yes/no whose share before or after is a dashboard cell that would be hidden
    (its count, or its complement, from 1 to k - 1) is not published (TooFew); a ladder is
    published from k people on, its detailed counts only when none is under k (sentences)."""
    if isinstance(result, statistics.PairedShareChange):
        before = result.both_yes + result.yes_to_no
        after = result.both_yes + result.no_to_yes
        if any_small((before, result.n - before, after, result.n - after), k):
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
                sentences.ladder_sentence(ladder, k=k),
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
                sentences.share_change_sentence(share, k=k, what=gettext("se sentent à l'aise")),
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
                sentences.share_change_sentence(
                    share, k=k, what=gettext("allument et éteignent leur appareil seules")
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
                sentences.ladder_sentence(ladder, k=k),
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
