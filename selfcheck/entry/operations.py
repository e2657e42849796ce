"""Typing paper forms in (data entry), blind double entry, and settling the differences.

A mediator types a whole paper form on one screen, in the paper's order and numbering. Each
question is either *typed* (an answer, or "Sans réponse": the person left it blank, stored as
`NO_ANSWER`) or *not typed yet* (no row). Partial entries are saved as they are; finishing
needs every applicable question typed. A required question may be "Sans réponse" on paper:
the paper is what the person wrote, and a form we cannot finish would be lost altogether
(summaries and exports count it as missing, as they do for any unknown value).

Finishing follows `journey.submit`: one conditional UPDATE, so it happens once however often
it is sent, and answers of questions that do not apply are not stored. A structure asks for a
blind second entry of a share of its paper forms (`Structure.double_entry_percent`), drawn
when a form is finished. The second entry is typed by someone else, who never sees the first
one; on completion both are compared field by field: every variable of the form is a compared
field, and each difference is kept (`EntryDiscrepancy`) until a structure administrator picks
the right value, which then becomes the response's answer.

Every change is recorded in the audit trail in the same transaction (services/audit.py).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from werkzeug.datastructures import MultiDict

from selfcheck.accounts.permissions import can_access_structure
from selfcheck.journey import operations as journey
from selfcheck.journey.page_view import input_id, question_numbers
from selfcheck.journey.registry import MSG_NOT_AN_OPTION, PageFormFactory
from selfcheck.platform import audit, codes
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    Channel,
    EntryDiscrepancy,
    Response,
    SecondEntry,
    SecondEntryAnswer,
    StaffUser,
    Status,
    Structure,
    utcnow,
)
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Item,
    Moment,
    Variable,
    Wording,
    variable_code,
)

Values = Mapping[str, Sequence[str]]
Answers = dict[str, tuple[str, ...]]

MSG_BOTH = _l("Choisissez soit une réponse, soit « Sans réponse », pas les deux.")
MSG_NOT_TYPED = _l("Pas encore saisie : tapez la réponse, ou 0 si la personne n'a pas répondu.")
MAX_PERCENT = 100
WEEKS_RANGE = (1, 52)


class EntryError(Exception):
    """A request the entry screens cannot honour; `reason` picks the message and status."""

    def __init__(
        self,
        reason: str,
        response: Response | None = None,
        problem: codes.CodeProblem | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response
        self.problem = problem


# --- finding or creating the record --------------------------------------------------------


def _check_access(user: StaffUser, structure: Structure) -> None:
    if not can_access_structure(user, structure):
        raise EntryError("other_structure")


def find_person(session: Session, user: StaffUser, raw_code: str) -> Beneficiary:
    """The person with this code, if the user may see their structure; or EntryError."""
    try:
        person = journey.find_beneficiary(session, raw_code)
    except codes.InvalidCode as exc:
        raise EntryError("invalid_code", problem=exc.problem) from exc
    except journey.UnknownCode as exc:
        raise EntryError("unknown_code") from exc
    _check_access(user, person.structure)
    return person


def _check_form_allowed(person: Beneficiary, form: FormKind) -> None:
    """Before and after are a pair; a retrospective form stands alone (as online)."""
    forms = {FormKind(r.form) for r in person.responses}
    if form is FormKind.AFTER and FormKind.BEFORE not in forms:
        raise EntryError("after_without_before")
    if form is FormKind.RETRO and forms & {FormKind.BEFORE, FormKind.AFTER}:
        raise EntryError("retro_with_pair")
    if form is not FormKind.RETRO and FormKind.RETRO in forms:
        raise EntryError("pair_with_retro")


def open_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    raw_code: str,
    form: FormKind,
    locale: str,
    wording: Wording = Wording.STANDARD,
) -> Response:
    """The paper response of this code and form: found (to go on typing) or created.

    Never a second response for a person and form: a form already typed in raises
    "already_entered" (with the response, to link to it), one answered online
    "answered_online" or "in_progress_online".
    """
    person = find_person(session, user, raw_code)
    existing = next((r for r in person.responses if r.form == form.value), None)
    if existing is not None:
        if existing.channel != Channel.PAPER.value:
            reason = "answered_online" if existing.is_submitted else "in_progress_online"
            raise EntryError(reason, existing)
        if existing.is_submitted:
            raise EntryError("already_entered", existing)
        return existing
    _check_form_allowed(person, form)
    response = journey.open_form(
        session, definition, person, form, locale, Channel.PAPER, wording=wording
    )
    if response.channel != Channel.PAPER.value:  # the person started online just now
        raise EntryError("in_progress_online", response)
    _record_creation(session, user, response)
    return response


def open_uncoded(
    session: Session,
    definition: Definition,
    user: StaffUser,
    structure: Structure,
    form: FormKind,
    locale: str,
    token: str,
    wording: Wording = Wording.STANDARD,
) -> Response:
    """A paper form printed without a code: a fresh code and its response, once per token."""
    _check_access(user, structure)
    if form is FormKind.AFTER:
        raise EntryError("after_without_before")
    known = session.scalar(select(Response).where(Response.start_token == token))
    response = journey.start_response(
        session, definition, structure, form, locale, token, Channel.PAPER, wording
    )
    if known is None:
        _record_creation(session, user, response, new_code=True)
    return response


def _record_creation(
    session: Session, user: StaffUser, response: Response, new_code: bool = False
) -> None:
    changes: dict[str, dict[str, list[str]]] = {
        "form": {"old": [], "new": [response.form]},
        "channel": {"old": [], "new": [Channel.PAPER.value]},
    }
    if new_code:
        changes["code"] = {"old": [], "new": [response.beneficiary.code]}
    audit.record(session, user, "create", "response", response.id, response.structure_id, changes)
    session.commit()


def load_paper_response(session: Session, user: StaffUser, response_id: int) -> Response:
    """A paper response the user may type; EntryError otherwise (or "not_found")."""
    response = _load_response(session, user, response_id)
    if response.channel != Channel.PAPER.value:
        raise EntryError("not_paper", response)
    if _doing_second_entry(session, user, response):
        raise EntryError("blind", response)
    return response


def _doing_second_entry(session: Session, user: StaffUser, response: Response) -> bool:
    """Whether the user types this form's blind second entry now (so must not see the first)."""
    entry = session.scalar(select(SecondEntry).where(SecondEntry.response_id == response.id))
    return entry is not None and entry.completed_at is None and entry.entered_by_id == user.id


# --- the entry screen ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryOption:
    key: int  # the number typed to choose it; 0 is "Sans réponse"
    code: str
    label: str
    # What the compact screen shows: the short heading printed on the paper grids, if any.
    heading: str
    input_id: str
    checked: bool
    exclusive: bool


@dataclass(frozen=True)
class EntryVariable:
    code: str
    moment: Moment
    options: tuple[EntryOption, ...]  # the item's options, then "Sans réponse" (key 0)
    text: str  # a typed number or text
    no_answer: bool
    errors: tuple[str, ...]

    @property
    def typed(self) -> bool:
        return self.no_answer or bool(self.text) or any(o.checked for o in self.options)

    @property
    def first_input_id(self) -> str:
        return self.options[0].input_id if self.options else input_id(self.code)

    @property
    def focus_id(self) -> str:
        """Where the keyboard lands: the chosen radio button, else the first input."""
        chosen = next((o.input_id for o in self.options if o.checked), None)
        return chosen or self.first_input_id

    @property
    def no_answer_id(self) -> str:
        return input_id(self.code, NO_ANSWER)

    @property
    def max_key(self) -> int:
        return max((o.key for o in self.options), default=0)


@dataclass(frozen=True)
class EntryCondition:
    """ "Only if question N is answered X": shown on screen, evaluated by the script."""

    item: str
    number: int
    accepted: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class EntryQuestion:
    item: Item
    number: int
    kind: str  # radio, checkbox, number or text
    variables: tuple[EntryVariable, ...]
    condition: EntryCondition | None
    applicable: bool
    # In a run of scale questions sharing their answers (as the paper grids): the screen shows
    # the answers' headings once, above the run's first row, and only their numbers per row.
    grid: bool = False
    grid_start: bool = False

    @property
    def paired(self) -> bool:
        return len(self.variables) > 1

    @property
    def errors(self) -> tuple[tuple[EntryVariable, str], ...]:
        return tuple((v, message) for v in self.variables for message in v.errors)


KINDS: Mapping[str, str] = {
    "single": "radio",
    "scale": "radio",
    "multiple": "checkbox",
    "number": "number",
    "text": "text",
}


@dataclass(frozen=True)
class EntryScreen:
    questions: tuple[EntryQuestion, ...]
    focus_id: str | None  # the first applicable question not typed yet

    @property
    def typed(self) -> int:
        return sum(1 for q in self.questions if q.applicable for v in q.variables if v.typed)

    @property
    def to_type(self) -> int:
        return sum(len(q.variables) for q in self.questions if q.applicable)


def build_screen(
    definition: Definition,
    form: FormKind,
    values: Values,
    errors: Mapping[str, Sequence[str]] | None = None,
) -> EntryScreen:
    """Every question of the form, in the paper's order and numbering, with `values` shown."""
    numbers = question_numbers(definition, form)
    errors = errors or {}
    current = {code: tuple(given) for code, given in values.items()}
    questions = []
    for item in definition.items(form):
        variables = tuple(
            _entry_variable(item, variable_code, moment, current, errors)
            for variable_code, moment in _variables_of(item, form)
        )
        condition = None
        if item.show_if is not None:
            source = definition.item(item.show_if.item)
            accepted = item.show_if.accepted()
            condition = EntryCondition(
                item=source.code,
                number=numbers.get(source.code, 0),
                accepted=accepted,
                labels=tuple(o.label for o in source.options if o.code in accepted),
            )
        questions.append(
            EntryQuestion(
                item=item,
                number=numbers[item.code],
                kind=KINDS[item.type],
                variables=variables,
                condition=condition,
                applicable=journey.is_visible(item, current),
            )
        )
    focus = next(
        (v.focus_id for q in questions if q.applicable for v in q.variables if not v.typed),
        None,
    )
    return EntryScreen(_grids(questions), focus)


def _grids(questions: Sequence[EntryQuestion]) -> tuple[EntryQuestion, ...]:
    """Mark runs of two or more unconditional scale questions with the same options."""

    def gridded(q: EntryQuestion) -> bool:
        return q.item.type == "scale" and q.condition is None

    marked: list[EntryQuestion] = []
    index = 0
    while index < len(questions):
        end = index + 1
        if gridded(questions[index]):
            while (
                end < len(questions)
                and gridded(questions[end])
                and questions[end].item.options == questions[index].item.options
            ):
                end += 1
        run = questions[index:end]
        if len(run) > 1:
            marked.extend(
                dataclasses.replace(q, grid=True, grid_start=position == 0)
                for position, q in enumerate(run)
            )
        else:
            marked.extend(run)
        index = end
    return tuple(marked)


def _variables_of(item: Item, form: FormKind) -> list[tuple[str, Moment]]:
    return [(variable_code(item.code, moment), moment) for moment in item.moments(form)]


def _entry_variable(
    item: Item,
    code: str,
    moment: Moment,
    values: Values,
    errors: Mapping[str, Sequence[str]],
) -> EntryVariable:
    given = tuple(values.get(code, ()))
    no_answer = NO_ANSWER in given
    options: tuple[EntryOption, ...] = ()
    if item.options:
        no_answer_option = EntryOption(
            key=0,
            code=NO_ANSWER,
            label="",
            heading="",
            input_id=input_id(code, NO_ANSWER),
            checked=no_answer,
            exclusive=True,
        )
        options = (
            *(
                EntryOption(
                    key=index,
                    code=option.code,
                    label=option.label,
                    heading=option.label_short or option.label,
                    input_id=input_id(code, option.code),
                    checked=option.code in given,
                    exclusive=option.exclusive,
                )
                for index, option in enumerate(item.options, start=1)
            ),
            no_answer_option,
        )
    text = ""
    if not item.options:
        text = next((value for value in given if value != NO_ANSWER), "")
    return EntryVariable(
        code=code,
        moment=moment,
        options=options,
        text=text,
        no_answer=no_answer,
        errors=tuple(errors.get(code, ())),
    )


# --- reading what was typed ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """Posted values: `values` holds the typed variables (valid or not, as posted when not)."""

    values: Answers
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


_FORMS = PageFormFactory()  # one small cached form class per variable: a bounded cache


def parse_values(definition: Definition, form: FormKind, posted: MultiDict[str, str]) -> Parsed:
    """Validate what was typed for every variable of the form (nothing else is read).

    Empty means "not typed yet", never an error here; "Sans réponse" must stand alone; other
    values go through the field registry (options of the scale, number bounds, text length).
    """
    values: Answers = {}
    errors: dict[str, list[str]] = {}
    for variable in definition.variables(form):
        given = [value for value in posted.getlist(variable.code) if value.strip() != ""]
        if not given:
            continue
        if NO_ANSWER in given:
            if len(given) > 1:
                errors[variable.code] = [str(MSG_BOTH)]
                values[variable.code] = tuple(given)
            else:
                values[variable.code] = (NO_ANSWER,)
            continue
        if variable.item.type != "multiple" and len(given) > 1:
            errors[variable.code] = [str(MSG_NOT_AN_OPTION)]
            values[variable.code] = tuple(given)
            continue
        formdata = MultiDict([(variable.code, value) for value in given])
        clean, problems = _FORMS.validate([variable], formdata)
        if problems:
            errors.update(problems)
            values[variable.code] = tuple(given)
        else:
            values[variable.code] = clean[variable.code]
    return Parsed(values, errors)


def applicable_values(definition: Definition, form: FormKind, values: Values) -> Answers:
    """Only the variables of questions that apply, given the answers themselves."""
    current = {code: tuple(given) for code, given in values.items()}
    return {
        variable.code: current[variable.code]
        for variable in definition.variables(form)
        if variable.code in current and journey.is_visible(variable.item, current)
    }


def untyped(definition: Definition, form: FormKind, values: Values) -> list[Variable]:
    """Variables of applicable questions with nothing typed (not even "Sans réponse")."""
    current = {code: tuple(given) for code, given in values.items()}
    return [
        variable
        for variable in definition.variables(form)
        if journey.is_visible(variable.item, current) and not current.get(variable.code)
    ]


def not_typed_errors(missing: Iterable[Variable]) -> dict[str, list[str]]:
    return {variable.code: [str(MSG_NOT_TYPED)] for variable in missing}


# --- saving the first entry --------------------------------------------------------------------


@dataclass(frozen=True)
class SaveResult:
    saved: bool
    submitted_now: bool = False
    missing: tuple[Variable, ...] = ()
    double_entry_wanted: bool = False


def random_percent() -> int:
    return secrets.randbelow(MAX_PERCENT)


def draw_double_entry(percent: int, draw: Callable[[], int] = random_percent) -> bool:
    """0: never, 100: always, otherwise a random share of the finished paper forms."""
    if percent <= 0:
        return False
    if percent >= MAX_PERCENT:
        return True
    return draw() < percent


def _form_codes(definition: Definition, form: FormKind) -> list[str]:
    return [variable.code for variable in definition.variables(form)]


def save_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    response: Response,
    values: Values,
    finish: bool = False,
    draw: Callable[[], int] = random_percent,
) -> SaveResult:
    """Store what was typed (replacing the form's answers), and finish if asked and complete.

    A submitted form stays complete: a change that would leave a question untyped is refused
    (saved=False), nothing written. Answers, the response's entry fields, the submission and
    the audit event are one transaction.
    """
    form = FormKind(response.form)
    kept = applicable_values(definition, form, values)
    missing = tuple(untyped(definition, form, kept))
    # Two saves at once (a double click) are done one after the other, on fresh answers.
    was_submitted = journey.lock_for_writing(session, response) == Status.SUBMITTED.value
    if was_submitted and missing:
        session.rollback()
        return SaveResult(saved=False, missing=missing)
    session.expire(response, ["answers"])
    form_codes = _form_codes(definition, form)
    old = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
    changes: dict[str, dict[str, list[str]]] = audit.answer_changes(old, kept)
    session.execute(
        delete(Answer).where(Answer.response_id == response.id, Answer.variable.in_(form_codes))
    )
    session.add_all(_answer_rows(definition, response.id, form_codes, kept))
    now = utcnow()
    response.channel = Channel.PAPER.value
    if response.entered_by_id is None:
        response.entered_by_id = user.id
    response.entered_at = now
    response.updated_at = now
    submitted_now = wanted = False
    if finish and not missing and not was_submitted:
        structure = session.get(Structure, response.structure_id)
        wanted = draw_double_entry(structure.double_entry_percent if structure else 0, draw)
        session.flush()
        result = session.execute(
            update(Response)
            .where(Response.id == response.id, Response.status == Status.IN_PROGRESS.value)
            .values(
                status=Status.SUBMITTED.value,
                submitted_at=now,
                updated_at=now,
                double_entry_wanted=wanted,
            )
        )
        submitted_now = bool(getattr(result, "rowcount", 0))
        if submitted_now:
            changes["status"] = {"old": [Status.IN_PROGRESS.value], "new": [Status.SUBMITTED.value]}
            if wanted:
                changes["double_entry_wanted"] = {"old": [], "new": ["true"]}
    if changes:
        audit.record(session, user, "edit", "response", response.id, response.structure_id, changes)
    session.commit()
    session.refresh(response)
    session.expire(response, ["answers"])
    return SaveResult(
        saved=True,
        submitted_now=submitted_now,
        missing=missing,
        double_entry_wanted=submitted_now and wanted,
    )


def _answer_rows(
    definition: Definition,
    response_id: int,
    order: Sequence[str],
    values: Mapping[str, Sequence[str]],
) -> list[Answer]:
    return [
        Answer(
            response_id=response_id,
            variable=code,
            value=value,
            definition_version=definition.version,
        )
        for code in order
        for value in dict.fromkeys(values.get(code, ()))  # once each, in the order given
    ]


# --- blind second entry ------------------------------------------------------------------------


def first_entry_typists(session: Session, response_ids: Sequence[int]) -> dict[int, set[int]]:
    """Who typed or edited each first entry (they may not do its blind second entry)."""
    typists: dict[int, set[int]] = {response_id: set() for response_id in response_ids}
    if not response_ids:
        return typists
    rows = session.execute(
        select(Response.id, Response.entered_by_id).where(Response.id.in_(response_ids))
    )
    for response_id, user_id in rows:
        if user_id is not None:
            typists[response_id].add(user_id)
    events = session.execute(
        select(AuditEvent.entity_id, AuditEvent.user_id).where(
            AuditEvent.entity == "response",
            AuditEvent.entity_id.in_(response_ids),
            AuditEvent.action.in_(("create", "edit")),
        )
    )
    for event_response, event_user in events:
        if event_response is not None and event_user is not None:
            typists[event_response].add(event_user)
    return typists


class QueueState:
    AVAILABLE = "available"
    OWN_ENTRY = "own_entry"  # this user typed the first entry: someone else must
    STARTED_BY_YOU = "started_by_you"
    STARTED_BY_OTHER = "started_by_other"


@dataclass(frozen=True)
class QueueLine:
    response: Response
    state: str
    first_by: str
    second_by: str | None

    @property
    def code(self) -> str:
        return self.response.beneficiary.code

    @property
    def form(self) -> FormKind:
        return FormKind(self.response.form)


def _emails(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = session.scalars(select(StaffUser).where(StaffUser.id.in_(wanted)))
    return {user.id: user.email for user in users}


def second_entry_queue(
    session: Session, user: StaffUser, structure_ids: Sequence[int]
) -> list[QueueLine]:
    """Finished paper forms drawn for a second entry that is not complete yet, oldest first."""
    rows = session.execute(
        select(Response, SecondEntry)
        .outerjoin(SecondEntry, SecondEntry.response_id == Response.id)
        .where(
            Response.double_entry_wanted.is_(True),
            Response.status == Status.SUBMITTED.value,
            Response.channel == Channel.PAPER.value,
            Response.structure_id.in_(structure_ids),
            SecondEntry.completed_at.is_(None),
        )
        .order_by(Response.submitted_at, Response.id)
        .options(joinedload(Response.beneficiary))
    ).all()
    typists = first_entry_typists(session, [response.id for response, _entry in rows])
    emails = _emails(
        session,
        [r.entered_by_id for r, _e in rows] + [e.entered_by_id for _r, e in rows if e],
    )
    lines = []
    for response, entry in rows:
        if entry is not None:
            state = (
                QueueState.STARTED_BY_YOU
                if entry.entered_by_id == user.id
                else QueueState.STARTED_BY_OTHER
            )
        elif user.id in typists[response.id]:
            state = QueueState.OWN_ENTRY
        else:
            state = QueueState.AVAILABLE
        lines.append(
            QueueLine(
                response=response,
                state=state,
                first_by=emails.get(response.entered_by_id or 0, "—"),
                second_by=emails.get(entry.entered_by_id) if entry else None,
            )
        )
    return lines


def _load_response(session: Session, user: StaffUser, response_id: int) -> Response:
    response = session.scalar(
        select(Response)
        .where(Response.id == response_id)
        .options(
            selectinload(Response.answers),
            joinedload(Response.beneficiary).joinedload(Beneficiary.structure),
        )
    )
    if response is None:
        raise EntryError("not_found")
    _check_access(user, response.beneficiary.structure)
    return response


def start_second_entry(session: Session, user: StaffUser, response_id: int) -> SecondEntry:
    """Begin (or go back to one's own) blind second entry of a finished paper form."""
    response = _load_response(session, user, response_id)
    if not (
        response.is_submitted
        and response.channel == Channel.PAPER.value
        and response.double_entry_wanted
    ):
        raise EntryError("second_entry_not_wanted", response)
    if user.id in first_entry_typists(session, [response.id])[response.id]:
        raise EntryError("own_entry", response)
    entry = session.scalar(select(SecondEntry).where(SecondEntry.response_id == response.id))
    if entry is None:
        entry = SecondEntry(response_id=response.id, entered_by_id=user.id)
        session.add(entry)
        try:
            session.flush()
        except IntegrityError:  # someone else began at the same moment
            session.rollback()
            entry = session.scalar(
                select(SecondEntry).where(SecondEntry.response_id == response.id)
            )
            assert entry is not None
        else:
            audit.record(session, user, "create", "second_entry", entry.id, response.structure_id)
            session.commit()
            return entry
    if entry.completed_at is not None:
        raise EntryError("second_entry_done", response)
    if entry.entered_by_id != user.id:
        raise EntryError("second_entry_taken", response)
    return entry


def load_second_entry(
    session: Session, user: StaffUser, response_id: int
) -> tuple[Response, SecondEntry]:
    """A second entry the user began and has not finished, with its response."""
    response = _load_response(session, user, response_id)
    entry = session.scalar(
        select(SecondEntry)
        .where(SecondEntry.response_id == response.id)
        .options(selectinload(SecondEntry.answers))
    )
    if entry is None:
        raise EntryError("second_entry_not_started", response)
    if entry.entered_by_id != user.id:
        raise EntryError("second_entry_taken", response)
    if entry.completed_at is not None:
        raise EntryError("second_entry_done", response)
    return response, entry


def second_entry_values(entry: SecondEntry) -> Answers:
    collected: dict[str, list[str]] = {}
    for answer in entry.answers:
        collected.setdefault(answer.variable, []).append(answer.value)
    return {variable: tuple(values) for variable, values in collected.items()}


Difference = tuple[str, tuple[str, ...], tuple[str, ...]]


def compare(
    definition: Definition, form: FormKind, first: Values, second: Values
) -> list[Difference]:
    """(variable, first values, second values) of every field of the form that differs."""
    differences = []
    for variable in definition.variables(form):
        one, two = tuple(first.get(variable.code, ())), tuple(second.get(variable.code, ()))
        if sorted(one) != sorted(two):
            differences.append((variable.code, one, two))
    return differences


def save_second_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    response: Response,
    entry: SecondEntry,
    values: Values,
    finish: bool = False,
) -> SaveResult:
    """Store the second entry; when finished and complete, compare it with the first."""
    form = FormKind(response.form)
    kept = applicable_values(definition, form, values)
    missing = tuple(untyped(definition, form, kept))
    form_codes = _form_codes(definition, form)
    completed_at = session.execute(
        select(SecondEntry.completed_at).where(SecondEntry.id == entry.id).with_for_update()
    ).scalar_one()
    if completed_at is not None:  # finished meanwhile (a double click): nothing to change
        session.rollback()
        raise EntryError("second_entry_done", response)
    session.expire(entry, ["answers"])
    changes: dict[str, dict[str, list[str]]] = audit.answer_changes(
        second_entry_values(entry), kept
    )
    session.execute(delete(SecondEntryAnswer).where(SecondEntryAnswer.second_entry_id == entry.id))
    session.add_all(
        SecondEntryAnswer(second_entry_id=entry.id, variable=code, value=value)
        for code in form_codes
        for value in kept.get(code, ())
    )
    completed = False
    if finish and not missing:
        first = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
        differences = compare(definition, form, first, kept)
        now = utcnow()
        session.flush()
        result = session.execute(
            update(SecondEntry)
            .where(SecondEntry.id == entry.id, SecondEntry.completed_at.is_(None))
            .values(
                completed_at=now,
                compared_fields=len(form_codes),
                differing_fields=len(differences),
                resolved_at=None if differences else now,
            )
        )
        completed = bool(getattr(result, "rowcount", 0))
        if completed:
            session.add_all(
                EntryDiscrepancy(
                    second_entry_id=entry.id,
                    variable=code,
                    first_value=json.dumps(list(one)),
                    second_value=json.dumps(list(two)),
                )
                for code, one, two in differences
            )
            changes["status"] = {"old": ["in_progress"], "new": ["completed"]}
            changes["differing_fields"] = {"old": [], "new": [str(len(differences))]}
    if changes:
        audit.record(
            session, user, "edit", "second_entry", entry.id, response.structure_id, changes
        )
    session.commit()
    session.refresh(entry)
    return SaveResult(saved=True, submitted_now=completed, missing=missing)


# --- settling the differences ------------------------------------------------------------------


@dataclass(frozen=True)
class PendingResolution:
    entry: SecondEntry
    response: Response
    first_by: str
    second_by: str
    open: int


def pending_resolutions(session: Session, structure_ids: Sequence[int]) -> list[PendingResolution]:
    rows = session.execute(
        select(SecondEntry, Response)
        .join(Response, Response.id == SecondEntry.response_id)
        .where(
            Response.structure_id.in_(structure_ids),
            SecondEntry.completed_at.is_not(None),
            SecondEntry.resolved_at.is_(None),
        )
        .order_by(SecondEntry.completed_at, SecondEntry.id)
        .options(joinedload(Response.beneficiary), selectinload(SecondEntry.discrepancies))
    ).all()
    emails = _emails(
        session, [r.entered_by_id for _e, r in rows] + [e.entered_by_id for e, _r in rows]
    )
    return [
        PendingResolution(
            entry=entry,
            response=response,
            first_by=emails.get(response.entered_by_id or 0, "—"),
            second_by=emails.get(entry.entered_by_id, "—"),
            open=sum(1 for d in entry.discrepancies if d.resolved_at is None),
        )
        for entry, response in rows
    ]


@dataclass(frozen=True)
class DiscrepancyView:
    discrepancy: EntryDiscrepancy
    variable: Variable
    number: int
    first: tuple[str, ...]
    second: tuple[str, ...]
    other: EntryVariable  # the widget to type another value

    @property
    def choice_name(self) -> str:
        return "choice-" + self.variable.code

    @property
    def kind(self) -> str:
        return KINDS[self.variable.item.type]


def load_resolution(
    session: Session, user: StaffUser, response_id: int
) -> tuple[SecondEntry, Response]:
    """The completed second entry of a response, to settle its differences."""
    response = _load_response(session, user, response_id)
    entry = session.scalar(
        select(SecondEntry)
        .where(SecondEntry.response_id == response.id)
        .options(selectinload(SecondEntry.discrepancies))
    )
    if entry is None or entry.completed_at is None:
        raise EntryError("second_entry_not_done", response)
    return entry, response


def discrepancy_views(
    definition: Definition,
    response: Response,
    entry: SecondEntry,
    posted: MultiDict[str, str] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
) -> list[DiscrepancyView]:
    """The open differences of a second entry, in the form's order (`posted`: shown again)."""
    form = FormKind(response.form)
    shown = {key: posted.getlist(key) for key in posted} if posted is not None else {}
    numbers = question_numbers(definition, form)
    open_ = {d.variable: d for d in entry.discrepancies if d.resolved_at is None}
    views = []
    for variable in definition.variables(form):
        found = open_.get(variable.code)
        if found is None:
            continue
        views.append(
            DiscrepancyView(
                discrepancy=found,
                variable=variable,
                number=numbers[variable.item.code],
                first=tuple(json.loads(found.first_value)),
                second=tuple(json.loads(found.second_value)),
                other=_entry_variable(
                    variable.item, variable.code, variable.moment, shown, errors or {}
                ),
            )
        )
    return views


CHOICES = ("first", "second", "other")


def parse_resolution(
    definition: Definition,
    response: Response,
    entry: SecondEntry,
    posted: MultiDict[str, str],
) -> tuple[Answers, dict[str, list[str]]]:
    """The values chosen for the open differences (those left unchosen stay open)."""
    form = FormKind(response.form)
    others = parse_values(definition, form, posted)
    chosen: Answers = {}
    errors: dict[str, list[str]] = {}
    for view in discrepancy_views(definition, response, entry):
        code = view.variable.code
        choice = posted.get(view.choice_name, "")
        if choice == "":
            continue
        if choice not in CHOICES:
            errors[code] = [str(MSG_NOT_AN_OPTION)]
        elif choice == "first":
            chosen[code] = view.first
        elif choice == "second":
            chosen[code] = view.second
        elif code in others.errors:
            errors[code] = others.errors[code]
        elif not others.values.get(code):
            errors[code] = [gettext("Tapez l'autre réponse, ou 0 si la personne n'a pas répondu.")]
        else:
            chosen[code] = others.values[code]
    return chosen, errors


def resolve(
    session: Session,
    definition: Definition,
    user: StaffUser,
    entry: SecondEntry,
    response: Response,
    chosen: Mapping[str, Sequence[str]],
) -> int:
    """Apply the chosen values to the response; returns how many differences were settled.

    Answers to questions that no longer apply are removed, and their differences settled as
    empty, unless the question they depend on is itself still open.
    """
    form = FormKind(response.form)
    form_codes = _form_codes(definition, form)
    journey.lock_for_writing(session, response)  # one resolution at a time, on fresh data
    session.expire(response, ["answers"])
    session.expire(entry, ["discrepancies", "resolved_at", "resolved_by_id"])
    open_ = {d.variable: d for d in entry.discrepancies if d.resolved_at is None}
    old = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
    current = dict(old)
    for code, values in chosen.items():
        if code in open_:
            current[code] = tuple(values)
    kept = applicable_values(definition, form, current)
    still_open = {code for code in open_ if code not in chosen}
    now = utcnow()
    settled = 0
    for variable in definition.variables(form):
        found = open_.get(variable.code)
        if found is None:
            continue
        applies = journey.is_visible(variable.item, kept)
        depends_on = variable.item.show_if.item if variable.item.show_if else None
        if applies and variable.code not in chosen:
            continue
        if not applies and depends_on in still_open:
            kept.pop(variable.code, None)
            continue
        found.resolved_value = json.dumps(list(kept.get(variable.code, ())))
        found.resolved_at = now
        found.resolved_by_id = user.id
        settled += 1
        still_open.discard(variable.code)
    changes = audit.answer_changes(old, kept)
    session.execute(
        delete(Answer).where(Answer.response_id == response.id, Answer.variable.in_(form_codes))
    )
    session.add_all(_answer_rows(definition, response.id, form_codes, kept))
    response.updated_at = now
    if all(d.resolved_at is not None for d in entry.discrepancies):
        entry.resolved_at = now
        entry.resolved_by_id = user.id
    settled_codes = [d.variable for d in entry.discrepancies if d.resolved_at == now]
    if settled_codes or changes:
        audit.record(
            session,
            user,
            "resolve",
            "response",
            response.id,
            response.structure_id,
            {**changes, "settled": {"old": [], "new": settled_codes}},
        )
    session.commit()
    session.expire(response, ["answers"])
    return settled


# --- discrepancy rates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    compared: int
    differing: int

    @property
    def percent(self) -> float:
        return 100.0 * self.differing / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class StructureRate:
    structure: Structure
    entries: int
    rate: Rate


@dataclass(frozen=True)
class ItemRate:
    variable: Variable
    rate: Rate


@dataclass(frozen=True)
class Rates:
    structures: tuple[StructureRate, ...]
    items: tuple[ItemRate, ...]

    @property
    def overall(self) -> Rate:
        return Rate(
            sum(s.rate.compared for s in self.structures),
            sum(s.rate.differing for s in self.structures),
        )


def discrepancy_rates(
    session: Session, definition: Definition, structure_ids: Sequence[int]
) -> Rates:
    """Differing / compared fields of the completed second entries, per structure and item."""
    completed = (
        select(SecondEntry.id, Response.structure_id, Response.form)
        .join(Response, Response.id == SecondEntry.response_id)
        .where(SecondEntry.completed_at.is_not(None), Response.structure_id.in_(structure_ids))
        .subquery()
    )
    per_structure = session.execute(
        select(
            Structure,
            func.count(SecondEntry.id),
            func.coalesce(func.sum(SecondEntry.compared_fields), 0),
            func.coalesce(func.sum(SecondEntry.differing_fields), 0),
        )
        .join(completed, completed.c.structure_id == Structure.id)
        .join(SecondEntry, SecondEntry.id == completed.c.id)
        .group_by(Structure.id)
        .order_by(Structure.name)
    ).all()
    per_form: dict[str, int] = {
        form: int(number)
        for form, number in session.execute(
            select(completed.c.form, func.count()).group_by(completed.c.form)
        )
    }
    differing: dict[str, int] = {
        variable: int(number)
        for variable, number in session.execute(
            select(EntryDiscrepancy.variable, func.count())
            .join(completed, completed.c.id == EntryDiscrepancy.second_entry_id)
            .group_by(EntryDiscrepancy.variable)
        )
    }
    compared: dict[str, int] = {}
    order: dict[str, Variable] = {}
    for form in (FormKind.BEFORE, FormKind.AFTER, FormKind.RETRO):
        for variable in definition.variables(form):
            order.setdefault(variable.code, variable)
            compared[variable.code] = compared.get(variable.code, 0) + per_form.get(form.value, 0)
    items = tuple(
        ItemRate(variable, Rate(compared[code], differing.get(code, 0)))
        for code, variable in order.items()
        if compared[code]
    )
    structures = tuple(
        StructureRate(structure, int(entries), Rate(int(fields), int(differ)))
        for structure, entries, fields, differ in per_structure
    )
    return Rates(structures, items)


# --- structure settings ------------------------------------------------------------------------


def update_settings(
    session: Session, user: StaffUser, structure: Structure, percent: int, weeks: int
) -> bool:
    """Set the double-entry share and the "after due" delay; True if anything changed."""
    _check_access(user, structure)
    if not (0 <= percent <= MAX_PERCENT and WEEKS_RANGE[0] <= weeks <= WEEKS_RANGE[1]):
        raise EntryError("bad_settings")
    changes = {}
    for name, new in (("double_entry_percent", percent), ("after_due_weeks", weeks)):
        old = getattr(structure, name)
        if old != new:
            changes[name] = {"old": [str(old)], "new": [str(new)]}
            setattr(structure, name, new)
    if changes:
        audit.record(session, user, "edit", "structure", structure.id, structure.id, changes)
        session.commit()
    return bool(changes)
