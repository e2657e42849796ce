"""The impact dashboard: the reference survey's indicators as protected tables.

`build_dashboard` checks the population (fewer than k people: `ScopeError` 422, nothing is
shown), collects the raw counts from the maintained facts (`indicators.collect`, one query
over `fact_tally`; `facts.py` keeps them up to date in every writing transaction), turns them
into tables in the order of the reference survey (respondent, path, evolution, typology,
data quality) and passes every table through `disclosure.protect` before returning it. Each
table is registered under a key (`TABLES`), which is also its CSV download name.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import indicators, typology
from selfcheck.evaluation.disclosure import Cell, Column, Hidden, Row, Table, protect
from selfcheck.evaluation.scope import EvaluationFilters, require_at_least_k
from selfcheck.platform.labels import CHANNEL_LABELS, FORM_PLURAL_LABELS, capitalised
from selfcheck.platform.models import DataVersion
from selfcheck.questionnaire.model import Definition, FormKind, Item, Role, Tag

PROFILE_FORMS = (FormKind.BEFORE, FormKind.RETRO)
PATH_FORMS = (FormKind.AFTER, FormKind.RETRO)
# The paired tables' two sources: pairs (the 'after' dates a pair) and retrospective forms.
PAIRED_FORMS = ((FormKind.AFTER,), (FormKind.RETRO,))
# Number of sessions, in bands (SESSIONS is a number from 1 to 200).
SESSION_BANDS: tuple[tuple[str, object, int, int], ...] = (
    ("1", _l("1 fois"), 1, 1),
    ("2_3", _l("2 ou 3 fois"), 2, 3),
    ("4_6", _l("4 à 6 fois"), 4, 6),
    ("7_10", _l("7 à 10 fois"), 7, 10),
    ("11_plus", _l("11 fois ou plus"), 11, 10**6),
)
FORM_LABELS = FORM_PLURAL_LABELS
PEOPLE = Column("people", _l("Personnes"))


class UnknownTable(KeyError):
    """A CSV download asked for a table that does not exist."""


@dataclass(frozen=True)
class Context:
    definition: Definition
    raw: indicators.RawIndicators


Builder = Callable[[Context], Table]


@dataclass(frozen=True)
class TableSpec:
    key: str
    section: str
    build: Builder
    # The roles of the items whose distributions the table reads, and of the other items it
    # needs; a table whose items the definition does not have is left out.
    reads: tuple[Role, ...] = ()
    needs: tuple[Role, ...] = ()
    # The forms behind each of its columns: the people with such a form in the selection are
    # a sub-group compared with earlier views (differencing.guard_tables, `TABLE_GROUPS`).
    forms: tuple[tuple[FormKind, ...], ...] = ()

    def available(self, definition: Definition) -> bool:
        roles = (*self.reads, *self.needs)
        return all(definition.item_with_role(role) is not None for role in roles)


@dataclass(frozen=True)
class Section:
    key: str
    title: object
    intro: object | None
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class Dashboard:
    people: int
    people_by_form: Mapping[str, int]
    k: int
    sections: tuple[Section, ...]
    # Tables withheld from this view (`withhold`): their people differ from those of the same
    # table in an earlier view of the evaluator by 1 to k - 1 (differencing.guard_tables).
    withheld: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()  # the sub-groups refused (`withhold`)

    def table(self, key: str) -> Table:
        for section in self.sections:
            for table in section.tables:
                if table.key == key:
                    return table
        raise UnknownTable(key)


# --- building tables --------------------------------------------------------------------


def _cells(counts: Sequence[int], base: int) -> tuple[Cell, ...]:
    return tuple(Cell(count, base) for count in counts)


def _item_rows(item: Item, columns: Sequence[tuple[Mapping[str, int], int]]) -> tuple[Row, ...]:
    """One row per option of the item; one cell per (counts, base) column."""
    return tuple(
        Row(
            option.code,
            gettext(option.label),
            tuple(Cell(int(counts.get(option.code, 0)), base) for counts, base in columns),
        )
        for option in item.options
    )


def _item(context: Context, role: Role) -> Item:
    item = context.definition.item_with_role(role)
    if item is None:  # TableSpec.available keeps such tables out
        raise UnknownTable(role.value)
    return item


def item_table(
    key: str,
    role: Role,
    title: object,
    forms: Sequence[FormKind],
    note: object | None = None,
) -> Builder:
    """A single or multiple choice item over the people who answered it."""

    def build(context: Context) -> Table:
        item = _item(context, role)
        code = item.code
        counts = context.raw.counts(code, forms)
        single = not item.type.several
        base = sum(counts.get(c, 0) for c in item.option_codes) if single else None
        base = base if base is not None else context.raw.base(code, forms)
        multiple_note = _l("Plusieurs réponses possibles : le total dépasse 100 %.")
        return Table(
            key=key,
            title=title,
            row_header=_l("Réponse"),
            columns=(PEOPLE,),
            rows=_item_rows(item, [(counts, base)]),
            additive=single,
            note=note if single else (note or multiple_note),
        )

    return build


def device_use(context: Context) -> Table:
    """How often each device is used, among the people who have it (one column per device)."""
    items = context.definition.items_with_role(Role.DEVICE_USE)
    columns = []
    for item in items:
        counts = context.raw.counts(item.code, PROFILE_FORMS)
        columns.append((counts, sum(counts.get(c, 0) for c in item.option_codes)))
    return Table(
        key="device_use",
        title=_l("Fréquence d'usage de chaque appareil"),
        row_header=_l("Fréquence"),
        columns=tuple(
            Column(item.code.lower(), gettext(item.short_label or item.label)) for item in items
        ),
        rows=_item_rows(items[0], columns),
        additive=True,
        note=_l("Parmi les personnes qui ont cet appareil."),
    )


def sessions(context: Context) -> Table:
    counts = context.raw.counts(_item(context, Role.SESSIONS).code, PATH_FORMS)
    banded = []
    for key, label, low, high in SESSION_BANDS:
        total = sum(
            n for value, n in counts.items() if value.isdigit() and low <= int(value) <= high
        )
        banded.append((key, label, total))
    base = sum(total for _k, _l2, total in banded)
    return Table(
        key="sessions",
        title=_l("Nombre de séances"),
        row_header=_l("Séances"),
        columns=(PEOPLE,),
        rows=tuple(Row(key, label, (Cell(total, base),)) for key, label, total in banded),
        additive=True,
    )


COMFORT_COLUMNS = (
    Column("pairs_before", _l("Avant (départ/fin)")),
    Column("pairs_now", _l("Aujourd'hui (départ/fin)")),
    Column("retro_before", _l("Avant (rétrospectif)")),
    Column("retro_now", _l("Aujourd'hui (rétrospectif)")),
)


def comfort(context: Context) -> Table:
    item = _item(context, Role.COMFORT)
    columns = []
    for evolution in (context.raw.pairs, context.raw.retro):
        base = sum(evolution.comfort.values())
        then: dict[str, int] = {}
        now: dict[str, int] = {}
        for (before_rank, now_rank), number in evolution.comfort.items():
            then[str(before_rank)] = then.get(str(before_rank), 0) + number
            now[str(now_rank)] = now.get(str(now_rank), 0) + number
        by_code = {o.rank: o.code for o in item.options if o.rank is not None}
        columns.append(({by_code[int(r)]: n for r, n in then.items()}, base))
        columns.append(({by_code[int(r)]: n for r, n in now.items()}, base))
    return Table(
        key="comfort",
        title=_l("Aisance avec le numérique, avant et aujourd'hui"),
        row_header=_l("Aisance"),
        columns=COMFORT_COLUMNS,
        rows=_item_rows(item, columns),
        additive=True,
        note=_l(
            "« Départ/fin » : les mêmes personnes, qui ont rempli un questionnaire de départ "
            "puis un questionnaire de fin. « Rétrospectif » : des personnes qui ont dit en une "
            "seule fois comment elles étaient avant et comment elles sont aujourd'hui."
        ),
    )


def comfort_change(context: Context) -> Table:
    rows: list[tuple[str, object, list[int]]] = [
        ("more", _l("Plus à l'aise qu'avant"), []),
        ("same", _l("Aussi à l'aise qu'avant"), []),
        ("less", _l("Moins à l'aise qu'avant"), []),
    ]
    bases = []
    for evolution in (context.raw.pairs, context.raw.retro):
        more = sum(n for (b, a), n in evolution.comfort.items() if a > b)
        same = sum(n for (b, a), n in evolution.comfort.items() if a == b)
        less = sum(n for (b, a), n in evolution.comfort.items() if a < b)
        for (_key, _label, values), number in zip(rows, (more, same, less), strict=True):
            values.append(number)
        bases.append(more + same + less)
    return Table(
        key="comfort_change",
        title=_l("Évolution de l'aisance de chaque personne"),
        row_header=_l("Évolution"),
        columns=(
            Column("pairs", _l("Départ/fin (mêmes personnes)")),
            Column("retro", _l("Rétrospectif")),
        ),
        rows=tuple(
            Row(key, label, tuple(Cell(v, b) for v, b in zip(values, bases, strict=True)))
            for key, label, values in rows
        ),
        additive=True,
    )


def progress_felt(context: Context) -> Table:
    item = _item(context, Role.PROGRESS)
    counts = context.raw.counts(item.code, PATH_FORMS)
    yes = sum(counts.get(code, 0) for code in item.tagged(Tag.PROGRESS_YES))
    no = sum(counts.get(code, 0) for code in item.tagged(Tag.PROGRESS_NO))
    return Table(
        key="progress_felt",
        title=_l("Sentiment d'avoir progressé"),
        row_header=_l("Réponse"),
        columns=(PEOPLE,),
        rows=(
            Row("yes", _l("Oui (tout à fait ou un peu)"), (Cell(yes, yes + no),)),
            Row("no", _l("Non (pas vraiment ou pas du tout)"), (Cell(no, yes + no),)),
        ),
        additive=True,
    )


def competences(context: Context) -> Table:
    rows = []
    for code, option in context.definition.competences.items():
        cells = tuple(
            Cell(
                evolution.competence_progressed.get(code, 0),
                evolution.competence_people.get(code, 0),
            )
            for evolution in (context.raw.pairs, context.raw.retro)
        )
        rows.append(Row(code, gettext(option.label), cells))
    return Table(
        key="competences",
        title=_l("Progrès par type de compétence"),
        row_header=_l("Type de compétence"),
        columns=(
            Column("pairs", _l("Départ/fin (mêmes personnes)")),
            Column("retro", _l("Rétrospectif")),
        ),
        rows=tuple(rows),
        base_per_cell=True,
        note=_l(
            "Personnes qui ont monté d'au moins un échelon sur une des tâches de ce type "
            "(de « je ne sais pas encore » à « seul·e et je peux aider »), parmi celles qui "
            "ont répondu à ces tâches avant et aujourd'hui."
        ),
    )


def typology_table(context: Context) -> Table:
    counts = context.raw.typology
    base = sum(counts.values())
    return Table(
        key="typology",
        title=_l("Les quatre profils de l'enquête de référence"),
        row_header=_l("Profil"),
        columns=(PEOPLE,),
        rows=tuple(
            Row(
                profile.value,
                label,
                (Cell(counts.get(profile.value, 0), base),),
                reference=100 * typology.REFERENCE_SHARES[profile]
                if profile in typology.REFERENCE_SHARES
                else None,
            )
            for profile, label in typology.PROFILE_LABELS.items()
        ),
        additive=True,
        reference_label=_l("Enquête de référence 2023 (%)"),
        note=_l(
            "Profils calculés par une règle écrite (voir la documentation) à partir de l'âge, "
            "de la situation, du diplôme, de qui a conseillé de venir, de l'aisance et des "
            "gestes de base avant, et d'une aide rapide en une fois. Les parts sont calculées "
            "sur toutes les personnes, y compris celles qu'une réponse manquante empêche de "
            "classer (ligne « Non classé ») ; l'enquête de référence donne ses parts parmi "
            "les personnes classées."
        ),
    )


def pairs_completed(context: Context) -> Table:
    q = context.raw.quality
    return Table(
        key="pairs_completed",
        title=_l("Questionnaires de départ suivis d'un questionnaire de fin"),
        row_header=_l("Questionnaire de départ"),
        columns=(Column("forms", _l("Questionnaires")),),
        rows=(
            Row(
                "with_after",
                _l("Avec un questionnaire de fin"),
                (Cell(q.befores_with_after, q.befores),),
            ),
            Row(
                "without_after",
                _l("Sans questionnaire de fin (pas encore ou jamais)"),
                (Cell(q.befores - q.befores_with_after, q.befores),),
            ),
        ),
        additive=True,
        unit="forms",
    )


def channels(context: Context) -> Table:
    q = context.raw.quality
    forms = [form.value for form in FormKind]
    bases = [sum(n for (f, _c), n in q.channels.items() if f == form) for form in forms]
    return Table(
        key="channels",
        title=_l("Mode de passation"),
        row_header=_l("Mode"),
        columns=tuple(Column(form, FORM_LABELS[form]) for form in forms),
        rows=tuple(
            Row(
                channel,
                label,
                tuple(
                    Cell(q.channels.get((form, channel), 0), base)
                    for form, base in zip(forms, bases, strict=True)
                ),
            )
            for channel, label in ((c, capitalised(n)) for c, n in CHANNEL_LABELS.items())
        ),
        additive=True,
        unit="forms",
    )


def assistance(context: Context) -> Table:
    item = _item(context, Role.ASSISTANCE)
    forms = list(FormKind)
    columns = []
    for form in forms:
        counts = context.raw.counts(item.code, [form])
        columns.append((counts, sum(counts.get(c, 0) for c in item.option_codes)))
    return Table(
        key="assistance",
        title=_l("Rempli seul·e ou avec de l'aide"),
        row_header=_l("Qui a rempli"),
        columns=tuple(Column(form.value, FORM_LABELS[form.value]) for form in forms),
        rows=_item_rows(item, columns),
        additive=True,
        unit="forms",
    )


def double_entry(context: Context) -> Table:
    q = context.raw.quality
    return Table(
        key="double_entry",
        title=_l("Double saisie des questionnaires papier"),
        row_header=_l("Mesure"),
        columns=(Column("fields", _l("Champs comparés")),),
        rows=(
            Row(
                "differing",
                _l("Champs différents entre les deux saisies (taux d'écart)"),
                (Cell(q.differing_fields, q.compared_fields),),
            ),
        ),
        unit="fields",
        note=_l(
            "%(entries)s questionnaires papier saisis deux fois, à l'aveugle.",
            entries=q.second_entries,
        )
        if q.second_entries >= 1
        else _l("Aucun questionnaire papier n'a encore été saisi deux fois."),
    )


def item_spec(section: str, role: Role, title: object, forms: Sequence[FormKind]) -> TableSpec:
    """The distribution table of the item with `role` (its key is the role's value)."""
    build = item_table(role.value, role, title, forms)
    return TableSpec(role.value, section, build, (role,), forms=(tuple(forms),))


SPECS: tuple[TableSpec, ...] = (
    item_spec("profile", Role.AGE, _l("Âge"), PROFILE_FORMS),
    item_spec("profile", Role.GENDER, _l("Genre"), PROFILE_FORMS),
    item_spec("profile", Role.DIPLOMA, _l("Diplôme"), PROFILE_FORMS),
    item_spec("profile", Role.STATUS, _l("Situation"), PROFILE_FORMS),
    item_spec("profile", Role.AREA, _l("Lieu de vie"), PROFILE_FORMS),
    item_spec("profile", Role.INTERNET_HOME, _l("Internet à la maison"), PROFILE_FORMS),
    item_spec("profile", Role.DEVICES, _l("Équipement"), PROFILE_FORMS),
    TableSpec("device_use", "profile", device_use, (Role.DEVICE_USE,), forms=(PROFILE_FORMS,)),
    item_spec("path", Role.REASONS, _l("Raisons de venir"), PROFILE_FORMS),
    item_spec("path", Role.PRESCRIBER, _l("Qui a conseillé de venir"), PROFILE_FORMS),
    item_spec("path", Role.MODALITY, _l("Modalité"), PATH_FORMS),
    TableSpec("sessions", "path", sessions, (Role.SESSIONS,), forms=(PATH_FORMS,)),
    item_spec("path", Role.SESSION_LENGTH, _l("Durée d'une séance"), PATH_FORMS),
    item_spec("path", Role.TOPICS, _l("Sujets travaillés"), PATH_FORMS),
    TableSpec("comfort", "evolution", comfort, needs=(Role.COMFORT,), forms=PAIRED_FORMS),
    TableSpec("comfort_change", "evolution", comfort_change, forms=PAIRED_FORMS),
    item_spec(
        "evolution",
        Role.NEW_THINGS,
        _l("Arrive à faire des choses qu'elle ne savait pas faire avant"),
        PATH_FORMS,
    ),
    item_spec(
        "evolution",
        Role.NEW_THINGS_WHICH,
        _l("Ce que les personnes arrivent à faire maintenant"),
        PATH_FORMS,
    ),
    TableSpec("progress_felt", "evolution", progress_felt, (Role.PROGRESS,), forms=(PATH_FORMS,)),
    item_spec("evolution", Role.PROGRESS, _l("Sentiment de progrès, en détail"), PATH_FORMS),
    item_spec(
        "evolution",
        Role.PROGRESS_DOMAINS,
        _l("Domaines où les personnes disent avoir progressé"),
        PATH_FORMS,
    ),
    item_spec("evolution", Role.CHANGES, _l("Ce qui a changé pour les personnes"), PATH_FORMS),
    TableSpec("competences", "evolution", competences, forms=PAIRED_FORMS),
    TableSpec("typology", "typology", typology_table, forms=(PROFILE_FORMS,)),
    TableSpec("pairs_completed", "quality", pairs_completed, forms=((FormKind.BEFORE,),)),
    TableSpec("channels", "quality", channels, forms=tuple((form,) for form in FormKind)),
    TableSpec(
        "assistance",
        "quality",
        assistance,
        (Role.ASSISTANCE,),
        forms=tuple((form,) for form in FormKind),
    ),
    TableSpec("double_entry", "quality", double_entry),
)
TABLE_KEYS = frozenset(spec.key for spec in SPECS)


def group_of(forms: Iterable[FormKind]) -> str:
    """The name of the sub-group of people with a response of one of `forms` in a selection."""
    return "+".join(sorted(form.value for form in forms))


# Each table's sub-groups (differencing.guard_tables): one per distinct set of forms of its
# columns. The whole selection is compared apart (guard_view).
TABLE_GROUPS: Mapping[str, tuple[str, ...]] = {
    spec.key: tuple(dict.fromkeys(group_of(forms) for forms in spec.forms)) for spec in SPECS
}


def withhold(board: Dashboard, refused: frozenset[str]) -> Dashboard:
    """The dashboard without the tables that read a refused sub-group: each keeps its title
    and key, with no row (the page says why instead, and its CSV is refused)."""
    withheld = frozenset(key for key, groups in TABLE_GROUPS.items() if refused & set(groups))
    if not withheld:
        return replace(board, refused=refused)
    sections = tuple(
        replace(
            section,
            tables=tuple(
                replace(table, rows=(), bases=(), hidden_cells=0, note=None)
                if table.key in withheld
                else table
                for table in section.tables
            ),
        )
        for section in board.sections
    )
    return replace(board, sections=sections, withheld=withheld, refused=refused)


SECTIONS: tuple[tuple[str, object, object | None], ...] = (
    ("profile", _l("Les personnes qui ont répondu"), None),
    ("path", _l("Leur accompagnement"), None),
    (
        "evolution",
        _l("Ce qui a changé"),
        _l(
            "Chaque tableau dit d'où vient l'« avant » : un questionnaire de départ suivi d'un "
            "questionnaire de fin (les mêmes personnes), ou un questionnaire rétrospectif."
        ),
    ),
    ("typology", _l("Profils"), None),
    ("quality", _l("Qualité des données"), None),
)


def variables(definition: Definition, specs: Iterable[TableSpec] = SPECS) -> tuple[str, ...]:
    """Every item whose distribution these tables read (one query reads them all)."""
    roles = {role for spec in specs for role in spec.reads}
    return tuple(item.code for item in definition.items() if item.role in roles)


class DashboardCache:
    """Recently built dashboards, reused while the data has not changed (per app instance).

    Aggregating every answer of 100,000 people takes seconds; evaluators mostly look at the
    same few selections again (switching sections, downloading a table). An entry is keyed by
    the selection, k, the language and a *data stamp* read on every request with one cheap
    query (`data_stamp`: the data version, one row): any new, changed or deleted submitted
    response gives a new stamp, so a cached figure is never stale.
    Bounded (least recently used entries go first); thread-safe.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Dashboard] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Dashboard | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, board: Dashboard) -> None:
        with self._lock:
            self._entries[key] = board
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def data_stamp(db: Session) -> tuple[object, ...]:
    """Changes whenever a submitted response, its answers or second entries, or a person
    with one, is added, changed or deleted: the data version (models.DataVersion), raised in
    the transaction of every write that changes the dashboard's facts (facts.settle). One
    row: counting the responses took 0.35 s at 1,000,000 people (issue 18)."""
    return (db.scalar(select(DataVersion.n).where(DataVersion.id == 1)),)


def _selection(filters: EvaluationFilters) -> tuple[object, ...]:
    return (
        filters.structure_ids,
        filters.date_from,
        filters.date_to,
        filters.forms,
        filters.channels,
    )


def build_dashboard(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    k: int,
    only: Iterable[str] | None = None,
    cache: DashboardCache | None = None,
    language: str = "",
    people: int | None = None,
) -> Dashboard:
    """Every table, protected; ScopeError (422) when fewer than k people are in scope.

    `only` limits the tables built (a CSV download needs one); UnknownTable for a bad key.
    With a `cache`, the whole dashboard is built once per selection and data stamp.
    `people`: the people in scope when the caller has counted them in this transaction (the
    differencing check does: one `COUNT(DISTINCT)` over 1.7 million facts less at 1,000,000
    people, issue 18).
    """
    wanted = set(only) if only is not None else set(TABLE_KEYS)
    unknown = wanted - TABLE_KEYS
    if unknown:
        raise UnknownTable(sorted(unknown)[0])
    if cache is None:
        return _build(db, definition, filters, k, wanted, people)
    key = (_selection(filters), k, language, id(definition), data_stamp(db))
    board = cache.get(key)
    if board is None:
        board = _build(db, definition, filters, k, set(TABLE_KEYS))
        cache.put(key, board)
    return board


def _build(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    k: int,
    wanted: set[str],
    counted: int | None = None,
) -> Dashboard:
    count = indicators.count_people if counted is None else (lambda _db, _filters: counted)
    people = require_at_least_k(db, filters, k, count)
    specs = [spec for spec in SPECS if spec.key in wanted and spec.available(definition)]
    raw = indicators.collect(db, definition, filters, variables(definition, specs), people)
    context = Context(definition, raw)
    sections = []
    for key, title, intro in SECTIONS:
        tables = tuple(protect(spec.build(context), k) for spec in specs if spec.section == key)
        if tables:
            sections.append(Section(key, title, intro, tables))
    return Dashboard(people, raw.people_by_form, k, tuple(sections))


# --- CSV ----------------------------------------------------------------------------------


def cell_text(cell: Cell, k: int) -> str:
    if cell.hidden is Hidden.SMALL or cell.hidden is Hidden.SMALL_BASE:
        return f"< {k}"
    if cell.hidden is Hidden.SECONDARY:
        return str(gettext("masqué"))
    return str(cell.count)


def share_text(cell: Cell) -> str:
    share = cell.share
    return "" if share is None else f"{share:.1f}"


def table_csv(table: Table, k: int) -> str:
    """The protected table as CSV (UTF-8, comma): the same cells as on screen."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [gettext("code"), str(table.row_header)]
    for column in table.columns:
        header += [
            gettext("%(column)s : nombre", column=column.label),
            gettext("%(column)s : %%", column=column.label),
        ]
        if table.base_per_cell:
            header.append(gettext("%(column)s : base", column=column.label))
    if table.has_reference:
        header.append(str(table.reference_label))
    writer.writerow(header)
    for row in table.rows:
        line = [row.key, str(row.label)]
        for cell in row.cells:
            line += [cell_text(cell, k), share_text(cell)]
            if table.base_per_cell:
                line.append("" if cell.base is None else str(cell.base))
        if table.has_reference:
            line.append("" if row.reference is None else f"{row.reference:.0f}")
        writer.writerow(line)
    if not table.base_per_cell:
        bases = ["" if b is None else str(b) for b in table.bases]
        writer.writerow(
            ["_base", gettext("Base (effectif)")] + [part for b in bases for part in (b, "")]
        )
    writer.writerows(legend_rows(k))
    return out.getvalue()


def legend_rows(k: int) -> list[list[str]]:
    """The closing rows of a table's CSV: a blank one, then what its hidden cells mean."""
    legend = gettext(
        "« < %(k)s » : moins de %(k)s, masqué pour protéger l'anonymat. « masqué » : "
        "caché pour qu'on ne puisse pas le recalculer à partir du total.",
        k=k,
    )
    return [[], [str(legend)]]
