"""SQLAlchemy 2.0 typed models.

Answers are stored long (one row per response, variable and chosen value) rather than one
column per item: a new item in the definition needs no migration, a multiple choice is
several rows, and aggregates are plain GROUP BY queries. See docs/architecture.md, "Storage".
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from selfcheck.platform import clock
from selfcheck.questionnaire.model import FormKind, Wording

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, from the application's clock (platform.clock: fixed in tests)."""
    return clock.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Channel(enum.StrEnum):
    ONLINE = "online"
    PAPER = "paper"
    PHONE = "phone"


class Status(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


class TerritoryType(enum.StrEnum):
    URBAN = "urbain"
    PERIURBAN = "periurbain"
    RURAL = "rural"


class Role(enum.StrEnum):
    MEDIATOR = "mediator"
    STRUCTURE_ADMIN = "structure_admin"
    EVALUATOR = "evaluator"
    PLATFORM_ADMIN = "platform_admin"


def typed(kind: type[enum.StrEnum], name: str, length: int) -> Enum:
    """A column holding one value of `kind`: VARCHAR(length) with a CHECK constraint.

    Not a native PostgreSQL ENUM (adding a value would need ALTER TYPE outside transactions):
    a string column whose allowed values are checked by the database (CHECK constraint
    ck_<table>_<name>, migration 0007) and by SQLAlchemy before it writes (validate_strings).
    Values read back are plain strings, as before. A new value in `kind` needs a migration.
    """
    return Enum(
        *(member.value for member in kind),
        name=name,
        length=length,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
    )


FORM_KIND = typed(FormKind, "form_kind", 16)
CHANNEL = typed(Channel, "channel", 16)
STATUS = typed(Status, "status", 16)
WORDING = typed(Wording, "wording", 16)
ROLE = typed(Role, "role", 32)


class Structure(Base):
    """A place of mediation (town hall, library, social centre…); owns its responses."""

    __tablename__ = "structure"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    territory_type: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Share (0-100 %) of paper forms typed a second time, blind, to measure entry quality.
    double_entry_percent: Mapped[int] = mapped_column(default=0, server_default="0")
    # A 'before' older than this many weeks without an 'after' is shown as "after due".
    after_due_weeks: Mapped[int] = mapped_column(default=6, server_default="6")
    # The follow-up months after the end form (issue 15): the first one, and an optional
    # second one (None: no second follow-up). See followup/schedule.py.
    followup_months: Mapped[int] = mapped_column(default=3, server_default="3")
    second_followup_months: Mapped[int | None] = mapped_column()
    # Archived places take no new people and are hidden from lists; their data stays.
    archived_at: Mapped[datetime | None] = mapped_column()
    # Every staff member of the place must use a second factor (accounts/totp.required_for).
    totp_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    # People may leave one e-mail address for a single follow-up reminder (issue 15; off by
    # default). See journey/reminders.py and FollowupReminder.
    followup_reminder: Mapped[bool] = mapped_column(default=False, server_default=false())


class StaffUser(Base):
    """A mediator, administrator or evaluator. Beneficiaries never have accounts."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(ROLE)
    # Mediators and structure administrators belong to one structure; others to none.
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Account lockout after repeated wrong passwords (see services/auth).
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column()
    # Evaluators only: may export free-text answers (never by default).
    can_read_free_text: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Kept in the staff session and checked on every request: raised by sign-out, a password
    # change and "sign out everywhere", which ends every session of the account at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # Two-factor sign-in (TOTP, RFC 6238): the base32 secret once enrolment is confirmed, and
    # the last time step accepted (a code is never accepted twice).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column()

    structure: Mapped[Structure | None] = relationship()
    grants: Mapped[list[Grant]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Grant(Base):
    """What an evaluator may see: one structure, or every structure of a department."""

    __tablename__ = "evaluator_grant"
    __table_args__ = (
        UniqueConstraint("user_id", "structure_id", "department", name="uq_grant_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"))
    department: Mapped[str | None] = mapped_column(String(3))

    user: Mapped[StaffUser] = relationship(back_populates="grants")


class OneTimeLink(Base):
    """An invitation or a password reset: a link used once, within its time; only its hash
    is kept (the link itself is shown once, to the person who asked for it)."""

    __tablename__ = "one_time_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))  # "invitation" or "reset"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )

    user: Mapped[StaffUser] = relationship(foreign_keys=[user_id])


class RecoveryCode(Base):
    """A single-use code that replaces a second-factor code (ten per enrolment), hashed."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    """Append-only record of every change made in the back office (who, when, what)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # create, edit, resolve, delete, …
    entity: Mapped[str] = mapped_column(String(32))  # an audit.Entity value
    entity_id: Mapped[int | None] = mapped_column()
    # JSON text: {"variable": {"old": [...], "new": [...]}, ...}
    changes: Mapped[str] = mapped_column(Text, default="{}")
    # The person the event is about (no foreign key: the event outlives a deletion). Erasing
    # the person redacts every such event (selfcheck/privacy/operations.py).
    beneficiary_id: Mapped[int | None] = mapped_column(index=True)

    user: Mapped[StaffUser | None] = relationship()


# The largest id a row can have (a signed 32-bit integer: PostgreSQL's `integer`). A larger
# number in an address (a person's page) is nobody, answered without asking the database:
# SQLite refuses more than 64 bits and PostgreSQL more than 32, both as errors.
MAX_ROW_ID = 2**31 - 1


class Beneficiary(Base):
    """A person, known only by a random code: no name, e-mail or phone, ever."""

    __tablename__ = "beneficiary"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    structure: Mapped[Structure] = relationship()
    responses: Mapped[list[Response]] = relationship(
        back_populates="beneficiary", order_by="Response.id"
    )


class FollowupReminder(Base):
    """One consented e-mail address for a single reminder when the person's follow-up opens.

    Kept apart from the answers, linked to the person's id only: never exported, never
    backed up (platform/backup.NOT_BACKED_UP), never written to the logs or the audit trail;
    deleted once the reminder is sent, when the follow-up is done, or when the person is
    erased (journey/reminders.py, privacy/operations.py).
    """

    __tablename__ = "followup_reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiary.id"), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8))
    # Where to come back: the code page of the site the person answered on (no personal data).
    link: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    beneficiary: Mapped[Beneficiary] = relationship()


class Response(Base):
    """One filled-in questionnaire (before, after or retrospective) of one beneficiary."""

    __tablename__ = "response"
    __table_args__ = (UniqueConstraint("beneficiary_id", "form", name="uq_response_person_form"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiary.id"))
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"), index=True)
    form: Mapped[str] = mapped_column(FORM_KIND)
    definition_id: Mapped[str] = mapped_column(String(64))
    definition_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(CHANNEL, default=Channel.ONLINE.value)
    locale: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(STATUS, default=Status.IN_PROGRESS.value, index=True)
    # Random token of the start form: a resent "start" POST finds this row instead of a new one.
    start_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    furthest_page: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    # Paper forms: who typed the answers in, and when.
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    entered_at: Mapped[datetime | None] = mapped_column()
    # Whether this paper form was drawn for a blind second entry.
    double_entry_wanted: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Which wording the person read: "standard" or "easy" (easy-read / FALC). Same items and
    # codes either way; recorded so analyses can compare.
    wording: Mapped[str] = mapped_column(
        WORDING, default=Wording.STANDARD.value, server_default=Wording.STANDARD.value
    )

    beneficiary: Mapped[Beneficiary] = relationship(back_populates="responses")
    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", order_by="Answer.id"
    )

    @property
    def is_submitted(self) -> bool:
        return self.status == Status.SUBMITTED.value


class SecondEntry(Base):
    """A blind, independent second typing of a paper form, compared field by field."""

    __tablename__ = "second_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("response.id", ondelete="CASCADE"), unique=True
    )
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    compared_fields: Mapped[int] = mapped_column(default=0)
    differing_fields: Mapped[int] = mapped_column(default=0)

    answers: Mapped[list[SecondEntryAnswer]] = relationship(
        cascade="all, delete-orphan", order_by="SecondEntryAnswer.id"
    )
    discrepancies: Mapped[list[EntryDiscrepancy]] = relationship(
        cascade="all, delete-orphan", order_by="EntryDiscrepancy.id"
    )


class SecondEntryAnswer(Base):
    __tablename__ = "second_entry_answer"
    __table_args__ = (Index("ix_second_entry_answer_entry", "second_entry_id", "variable"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    second_entry_id: Mapped[int] = mapped_column(ForeignKey("second_entry.id", ondelete="CASCADE"))
    variable: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(Text)


class EntryDiscrepancy(Base):
    """A field on which the blind second entry differed from the first, and how it was settled.

    Kept once settled: the discrepancy rate per item (differing / compared) is data quality.
    Values are JSON lists of stored answer values, as typed at the time of the comparison.
    """

    __tablename__ = "entry_discrepancy"
    __table_args__ = (
        UniqueConstraint("second_entry_id", "variable", name="uq_entry_discrepancy_field"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    second_entry_id: Mapped[int] = mapped_column(ForeignKey("second_entry.id", ondelete="CASCADE"))
    variable: Mapped[str] = mapped_column(String(40))
    first_value: Mapped[str] = mapped_column(Text)
    second_value: Mapped[str] = mapped_column(Text)
    resolved_value: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class Answer(Base):
    """One value given to one variable (several rows for a multiple choice)."""

    __tablename__ = "answer"
    __table_args__ = (
        # Also the index for reading a response's answers (its prefix).
        UniqueConstraint("response_id", "variable", "value", name="uq_answer_value"),
        # Covering for the dashboard: answers of a few variables counted by value, per
        # response in scope, read from the index alone (migration 0006).
        Index("ix_answer_variable_response_value", "variable", "response_id", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    variable: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(Text)
    # The questionnaire definition version this answer was given under (a response resumed
    # after an upgrade holds answers of two versions). Older rows: their response's version.
    definition_version: Mapped[str | None] = mapped_column(String(32))

    response: Mapped[Response] = relationship(back_populates="answers")


class ResponseFact(Base):
    """What one submitted response contributes to the dashboard (evaluation/facts.py).

    Derived data, rebuilt from the answers: one row per submitted response, written in the
    transaction of every change to the person's responses, answers or second entries (a
    session hook, `facts.install`). No foreign key: the row must outlive its response until
    the hook, at commit, takes its contribution out of `fact_tally`.

    Per-person columns, read by role (never by item code): the profile answers of a 'before'
    or retrospective form (option codes), comfort ranks and tasks done alone "then" and "now"
    (then: the person's 'before' for an 'after', the "before" answers for a retrospective
    form), whether the before/after pair is complete, the typology profile, and the blind
    second entry's counts. `tally` holds the (key, value, n) lines this response adds to
    `fact_tally`, so that a change subtracts exactly what was added.
    """

    __tablename__ = "response_fact"
    __table_args__ = (
        # Covering for the number of distinct people in scope.
        Index(
            "ix_response_fact_scope", "structure_id", "month", "form", "channel", "beneficiary_id"
        ),
        # Covering for the follow-up figures: the rows are read without their long tally.
        Index(
            "ix_response_fact_followup",
            "form",
            "structure_id",
            "month",
            "channel",
            "ended_at",
            "beneficiary_id",
            "followed",
            "kept",
        ),
        # The end forms sent on one day before a bound (retention.count: the day a follow-up
        # opening falls on is read one by one, the days before it from fact_followup).
        Index("ix_response_fact_ended_at", "ended_at"),
    )

    response_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    beneficiary_id: Mapped[int] = mapped_column(index=True)
    structure_id: Mapped[int] = mapped_column()
    form: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime | None] = mapped_column()
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of submitted_at, UTC, or 0000-00
    age: Mapped[str | None] = mapped_column(String(40))
    gender: Mapped[str | None] = mapped_column(String(40))
    diploma: Mapped[str | None] = mapped_column(String(40))
    internet_home: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str | None] = mapped_column(String(40))
    prescribed: Mapped[str | None] = mapped_column(String(40))
    comfort_then: Mapped[int | None] = mapped_column()  # rank on the comfort scale
    comfort_now: Mapped[int | None] = mapped_column()
    tasks_then: Mapped[int | None] = mapped_column()  # tasks done alone or better
    tasks_now: Mapped[int | None] = mapped_column()
    tasks_ranked: Mapped[int | None] = mapped_column()  # tasks ranked then and now
    paired: Mapped[bool] = mapped_column(default=False)
    profile: Mapped[str | None] = mapped_column(String(32))
    compared_fields: Mapped[int | None] = mapped_column()
    differing_fields: Mapped[int | None] = mapped_column()
    # The follow-up figures (evaluation/retention.py), on every row of the person: when their
    # first end form was sent (None: no end form sent), whether they sent a follow-up; on the
    # row of the follow-up that is read (the latest sent), per competence with a gain whether
    # every gain was kept ("competence:1,other:0"; facts.followup_facts).
    ended_at: Mapped[datetime | None] = mapped_column()
    followed: Mapped[bool] = mapped_column(default=False, server_default=false())
    kept: Mapped[str | None] = mapped_column(String(200))
    tally: Mapped[str] = mapped_column(Text, default="")


class FactTally(Base):
    """Counts added up from `response_fact.tally` per structure, month, form and channel.

    Each count is also kept with `month` "" (every month): what a view without dates reads.
    The dashboard's filters select whole months, structures, forms and channels, so every
    figure but the number of distinct people is a SUM over these rows. `key` is a variable
    code (its answer values) or a derived measure starting with "@" (facts.py).
    """

    __tablename__ = "fact_tally"

    structure_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class DataVersion(Base):
    """One row (`id` 1): a number raised by every transaction that changes the dashboard's
    facts (facts.settle, facts.rebuild), in that transaction. The evaluators' pages key their
    in-process memories (checks already run, dashboards built) by it: reading it is one row,
    where counting the responses took 0.35 s at 1,000,000 people (issue 18). Rows of a
    negative id are evaluators' forgetting marks (id = -their id: how many times a forgetting
    rewrote their memory, differencing.forgetting_mark; no migration)."""

    __tablename__ = "data_version"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class FactCell(Base):
    """Per structure, month, form and channel (and for all months, `month` ""): how many
    submitted responses, and four sums of 32-bit pieces of a fixed pseudo-random function of
    each one's (response, person, form) (facts.cell_parts): a 128-bit order-independent
    digest of the cell's responses, kept like `fact_tally` in every writing transaction.

    Two selections with the same number and the same four sums hold the same responses of the
    same people (differencing.py's fast path): the dashboard's differencing check then need
    not read 1.7 million ids again at 1,000,000 people (issue 18). No person can be read back
    from sums over thousands of responses; the evaluators' memories keep only a keyed hash of
    them.
    """

    __tablename__ = "fact_cell"

    structure_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    d0: Mapped[int] = mapped_column(BigInteger, default=0)
    d1: Mapped[int] = mapped_column(BigInteger, default=0)
    d2: Mapped[int] = mapped_column(BigInteger, default=0)
    d3: Mapped[int] = mapped_column(BigInteger, default=0)


__all__ = [
    "Answer",
    "AuditEvent",
    "Base",
    "Beneficiary",
    "Channel",
    "DashboardSeal",
    "DataVersion",
    "EntryDiscrepancy",
    "FactCell",
    "FactFollowup",
    "FactTally",
    "FiguresSeal",
    "Grant",
    "Job",
    "OneTimeLink",
    "RecoveryCode",
    "Response",
    "ResponseFact",
    "Role",
    "SecondEntry",
    "SecondEntryAnswer",
    "StaffUser",
    "Status",
    "Structure",
    "TerritoryType",
    "utcnow",
]


class ExportLog(Base):
    """One row per anonymised export or table download: who, when, what, how many rows."""

    __tablename__ = "export_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "csv-wide", "xlsx-long", "table"
    filters: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    row_count: Mapped[int] = mapped_column(default=0)
    k: Mapped[int] = mapped_column(default=5)
    report: Mapped[str] = mapped_column(Text, default="{}")  # JSON: generalised / suppressed

    user: Mapped[StaffUser | None] = relationship()


class ExportSelection(Base):
    """The people released by one export or view, as keyed hashes (never ids nor codes).

    One line per person: their keyed hash (under the app secret, with the evaluator's id) and
    that of their responses (evaluation/differencing.py), sorted: enough to refuse a later
    export or view by the same evaluator whose people differ from this one by fewer than k
    (differencing), nothing more. Since branch dash4 (migration 0021) the lines are kept in
    `lines`, 20 bytes each (`differencing.RECORD`), and `people` holds only the name of a
    table's group followed by "|" (or nothing); rows kept before hold text lines in `people`
    and no `lines` (`differencing.stored_lines` reads both).
    """

    __tablename__ = "export_selection"

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(
        ForeignKey("export_log.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(default=0)
    people: Mapped[str] = mapped_column(Text, default="")
    lines: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # Set: `lines` holds only the lines that changed since the row `base_id` (their new
    # records, in place of the same people's there, or added; branch dash16, migration
    # 0023): the whole lines are that row's with these (`differencing.remembered_records`).
    base_id: Mapped[int | None] = mapped_column(default=None)


class FactFollowup(Base):
    """The follow-up figures' cells (evaluation/retention.py), kept like `fact_cell` in the
    transaction of every write (facts.followup_sums): per structure, month, form and channel
    of a `response_fact` row, with

    - for an end form (after, retrospective) of a person whose first end form was sent:
      `ended_on`, the UTC day of that first sending (`response_fact.ended_at`), and
      `followed` (they sent a follow-up); `kept` is "";
    - for a follow-up of such a person: `ended_on` "", and `kept` the person's verdicts
      (`response_fact.kept`, "" when they had no gain or this follow-up is not the one read);

    how many rows (`n`, people: a person has one end form, and one follow-up read) and four
    sums of 32-bit pieces of a keyed pseudo-random function of each row's person
    (facts.figure_parts): the digest of each figure's group of people, so that the follow-up
    figures' differencing check can recognise the very groups it already checked
    (evaluation/figures_seal.py). `person` is 0, except for someone with two end forms (which
    the journey does not allow, `FORM_RULES`): their rows keep their id, so that they are
    counted once.
    """

    __tablename__ = "fact_followup"

    structure_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    form: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    ended_on: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, or ""
    followed: Mapped[bool] = mapped_column(primary_key=True)
    kept: Mapped[str] = mapped_column(String(200), primary_key=True)
    person: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    d0: Mapped[int] = mapped_column(BigInteger, default=0)
    d1: Mapped[int] = mapped_column(BigInteger, default=0)
    d2: Mapped[int] = mapped_column(BigInteger, default=0)
    d3: Mapped[int] = mapped_column(BigInteger, default=0)


class FiguresSeal(Base):
    """The verdict of a full check of the follow-up figures' groups that let them be shown
    (evaluation/figures_seal.py): under a keyed hash of k and the groups' digests
    (`fact_followup` sums), valid while the evaluator's remembered figures' groups have grown
    by nothing but views of the same filters since `last_log`."""

    __tablename__ = "figures_seal"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    filters: Mapped[str] = mapped_column(Text, default="")
    seal: Mapped[str] = mapped_column(String(64))
    last_log: Mapped[int] = mapped_column(default=0)
    # How many of the evaluator's remembered figures' groups had an id up to `last_log` then.
    remembered: Mapped[int] = mapped_column(default=0)


class DashboardSeal(Base):
    """The verdict of a full differencing check of a dashboard view (evaluation/differencing.py,
    `sealed_view`): the sub-groups refused and the people counted, under a keyed hash of the
    view's k, sub-groups and cells (`fact_cell` sums); valid while the evaluator's memory has
    grown by nothing the check reads since `last_log`."""

    __tablename__ = "dashboard_seal"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    filters: Mapped[str] = mapped_column(Text, default="")
    seal: Mapped[str] = mapped_column(String(64))
    refused: Mapped[str] = mapped_column(Text, default="")
    people: Mapped[int] = mapped_column(default=0)
    # The people with a paper response, counted by the same check (the headline's paper
    # figure, bound to the paper cells' sums in `seal`); None in seals kept before 0020.
    paper: Mapped[int | None] = mapped_column(default=None)
    last_log: Mapped[int] = mapped_column(default=0)
    # How many of the evaluator's remembered selections had an id up to `last_log` then: one
    # committed later under a smaller id (two requests at once) is seen by this number.
    remembered: Mapped[int] = mapped_column(default=0)
    # Where this check's lines are remembered, and what they were made of (JSON: the sums,
    # the newest response id, the row of each group's lines, the people counted): a later
    # view after new answers inside the selection starts from them
    # (`differencing.patched_view`); None in seals kept before 0023 or when a group's lines
    # were not remembered (too small, withheld).
    base: Mapped[str | None] = mapped_column(Text, default=None)


class JoinMemory(Base):
    """What one evaluator was released about one person, for joins of their exports
    (evaluation/joins.py): a keyed hash of the person and a chain of keyed hashes of the
    quasi-identifier vectors released about them, never ids, codes nor values.

    `person` is an HMAC (app secret, evaluator id, person id); `digest` an HMAC chain over
    the vectors released by each export that had the person: two people share a digest
    exactly when every export of this evaluator released them alike (or both left them out).
    """

    __tablename__ = "join_memory"
    __table_args__ = (UniqueConstraint("user_id", "person", name="uq_join_memory_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    person: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))


class RateLimitHit(Base):
    """Counters for rate limits shared by every app instance (login, code entry).

    One row per key and fixed window; `key` holds a hash, never a raw IP address or code.
    """

    __tablename__ = "rate_limit_hit"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class Job(Base):
    """A background job (platform/jobs.py): an export or a print batch, run by a worker.

    The queue (huey) only carries the job's id; what the job is, who asked, how far it got and
    where its file is live here, so a restart of the web process or of a worker loses nothing
    the page shows. `error` is a key of jobs.ERRORS (plain words, translated when shown).
    """

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_user_status", "user_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON: validated form data
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(default=0, server_default="0")
    total: Mapped[int] = mapped_column(default=1, server_default="1")
    result_path: Mapped[str | None] = mapped_column(String(500))  # under the jobs folder
    filename: Mapped[str | None] = mapped_column(String(200))  # as downloaded
    error: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    # When its message was last handed to huey, or is due (None: at created_at); how many
    # times its runner put it back in the queue (jobs.JobDeferred). Migration 0024_jobs21.
    queued_at: Mapped[datetime | None] = mapped_column()
    deferrals: Mapped[int] = mapped_column(default=0, server_default="0")

    user: Mapped[StaffUser] = relationship()
