"""Differencing between the aggregate views of one evaluator (dashboard, its tables, the
export preview).

Two selections that are each big enough (k people, and k left out of the whole scope) can
still differ by one person: the dashboard of January to June minus the one of January to
May is the person who answered in June, cell by cell. So each selection an evaluator is
shown is remembered (`export_selection`, under an `export_log` row of kind "dashboard"), as
keyed hashes, and a selection whose people differ from an earlier one of theirs by more than
0 and fewer than k is refused (422), as exports are (bundle.check_differencing).

Pairs are not enough: months 1 to 5 minus months 1-2 minus months 4-5 is the people of
month 3, though each pair differs by k or more. So a selection is also refused when it, or
an earlier selection it lies inside, minus the earlier selections inside that one leaves 1
to k - 1 people (`_left_uncovered`), and when sums and differences of it and the earlier
selections isolate a group of 1 to k - 1 people that they did not isolate without it
(`isolates`: January-February plus February-March minus January-March is February). Only
single groups are tested, not a few small groups whose sum alone is isolable: only noise or
fixed publication cells would close every combination.

A person counts as different when they are in one selection only, or in both with other
responses (a form or channel filter that drops one person's "after" form): each line is
`<person hash>:<hash of the person's responses in the selection>`, computed in bulk
(`Hasher`: AES under a key derived from the app secret and the evaluator's id, one call for
every id of a selection; the XOR of a person's response hashes for their responses).
Exports store the same lines. Lines kept before were HMACs (`<person>.<responses>`, or the
person hash alone): such a selection is compared with this one's lines in that format,
computed only when one is met (`_Legacy`).

The lines are kept as binary records (branch dash4, migration 0021): each the person's 12
bytes then the responses' 8 (`RECORD`), sorted, one after the other in one value
(`ExportSelection.lines`; a table's group keeps its name in `people`). They are compared in
that form (numpy fixed-width byte strings: sorted as bytes, they are sorted as their
hexadecimal text). Rows kept before hold the same lines as text
(`<24 hex digits>:<16 hex digits>`, after `<group>|`) and no `lines`: they are read into
records (`_stored`) and compared as ever; `stored_lines` gives any row's lines as text
(exports compare sets of them, `bundle.check_differencing`).

Inside one table (`guard_tables`): two views k people apart can differ by one person inside
a table that reads a sub-group of the selection (the people with an 'after' form, the
pairs). Each table's sub-group is compared with the same sub-group of earlier views as
selections are; a table 1 to k - 1 people away is withheld from the view, the rest shown.

The same filters viewed again are not compared with earlier VIEWS of them: as the data
grows, the dashboard of the same filters changes with the people who answered since, and
refusing it would leave the evaluator without their dashboard. (That change over time is
what any live dashboard shows; docs/security.md says so.) They are compared with earlier
EXPORTS of the same filters: the rows of an export minus the tables of a later view would
describe the few people who answered between them. Nothing here commits.

**Two views of one evaluator at once** (two tabs, two requests; attack6, branch race15).
Each check reads the evaluator's memory, compares, then remembers what it let through: two
checks running side by side each compared with the memory as it was before the other
remembered, and selections (or tables' or figures' groups) 1 to k - 1 apart were both shown.
So the RECORDING is serialised per evaluator, as exports' is (joins.py): each check reads the
memory's stamp as it begins (`memory_stamp`: the newest log row's id, how many rows and the
sum of their ids, over every `export_selection` row of the evaluator), and before it writes
anything `hold_unchanged` holds the evaluator's row until the transaction ends (`joins.hold`:
FOR UPDATE on PostgreSQL; on SQLite, which ignores it, a write that changes nothing, taking
SQLite's one write lock) and reads the stamp again. Moved: another request remembered
something meanwhile, and the check runs again (`_again_if_changed`), this time with the row
held, so against a memory nobody else can change until this view commits (should the stamp
move even then, the view is refused, its tables or figures withheld). Every writer of the
memory holds the row before it writes (views here; exports from `joins.load` on PostgreSQL,
on SQLite from their log row, after which `bundle.run_export` checks this same stamp: a view
remembered meanwhile fails the export's job, as another export does), and a view holds
nothing else of the evaluator's before it: a second request waits for the first to commit,
never a deadlock. Proof: of two checks whose recordings overlap, the one that holds the row second
reads the stamp after the first committed; if the stamp it began with is still the same, the
first's rows were already committed when it read the memory (they were compared); else it
checks again with them. Either way the pair was compared by one of them, as in sequence.
A check that remembers nothing takes no lock: it showed only what the memory already held
(its very lines, `seen`; a sealed verdict, below), committed, which any later recorder
compares with under the row. (tests/services/evaluation/test_attack6_findings.py and
test_views_at_once.py run the other request inside the first's recording, and two threads.)

At 1,000,000 people a view's remembered lines weighed about 260 MB as text (the selection
40 MB, its table groups 176 MB, its figures' groups 47 MB; as records the first two are 20
and 72 MB). So each remembered view also keeps, in its log row's report, the SHA-256 digest
of its lines (`DIGEST`, `DIGESTS`: a digest of keyed hashes, which says no more than they
do), and the earlier ones are first read without their lines: the very same lines are
recognised by their digest and size, a view of the same filters is skipped as above, and
only the lines that must be compared are read (issue 18). The digest is that of the lines
in the form they are kept in (`_Digests`: records, or the text of a row kept before as
text, computed then from this view's records), so the same lines are recognised in either.
Views remembered before digests are read and compared as always.

**Sealed verdicts: no per-person work for a view of unchanged responses** (issue 18, branch
dash1m). The lines of a selection are a function of its set of (response, person, form)
triples and the evaluator's key, nothing else (answers are not hashed). The facts keep, per
structure x month x form x channel, the number of submitted responses and four sums of
32-bit pieces of a pseudo-random permutation (AES) of each triple under a key derived from
the app's secret (`fact_cell`, `facts.cell_parts`, `facts.cell_key`, in the transaction of
every write like the other facts, backfilled by migration 0019_dash1m). The key must be
secret: sums of values anyone can compute are not collision resistant against someone who
chooses the set (attack5 made two sets of 307 responses with the same sums by lattice
reduction). A selection's sums (`cell_sums_of`: a few hundred rows) are equal for the same
triples and differ otherwise but with odds of 2**-128; the count is compared
as well, so a collision cannot pass as the same responses by size. After each full check of
`guard_view` and `guard_tables` that passed, its verdict (the sub-groups withheld, the people
counted) is kept in `dashboard_seal` under an HMAC of (k, sub-groups, sums) with the
evaluator's key, with the evaluator's newest remembered selection then (`last_log`, and how
many there were up to it). A later view with the same filters, k, sub-groups and sums takes
that verdict (`sealed_view`) only when every selection remembered since is a view of the same
filters or figures' groups. Then the full check would give the same verdict: its lines are
the sealed view's; the earlier selections and groups it compares them with are the same
(views of the same filters are never compared, figures' groups only with each other); so
the pairwise comparisons and the rests (`_left_uncovered`) are the same computations, their
verdicts the same, and it would remember nothing new (its lines and groups are already
remembered under their digests). Any other row since (an export, a view of other filters, a
row committed late under an earlier id) and the full check runs and seals again. The seal's
`last_log` and count are the memory's stamp as the check BEGAN (`guard_view_here` reads it
before `guard_view`; `_seal`), not as it ends: a row another request committed while the
check ran is then newer than `last_log`, or changes the count up to it, and `sealed_view`
sees it. A sealed view takes no lock (it remembers nothing: see "Two views at once").
tests/services/evaluation/test_differencing_sealed.py checks, on random sequences of views
and writes, that every sealed verdict found equals the full check's on the same state.
Erasure and purge change the sums (the person's responses leave the cells), so the full
check runs (and they delete the seals of every evaluator who remembered the person:
forgetting.py). What the memory keeps of a person who goes is a stranger's line, the same
in every row: every comparison here is unchanged by an erasure (forgetting.py says why the
lines are not simply deleted). The sums are trusted as the figures are: every figure of
the page is read from the same facts, so unchanged cells mean an unchanged release (data
written around the sessions needs `selfcheck facts rebuild`, facts.py); a seal is written
only when the sums read from the cells equal those of the ids read from the responses.

The sums are those of all the selection's cells and then of its paper cells (branch dash2):
a seal binds too the people with a paper response that the full check counts and keeps with
its verdict (`Seal.paper`, the headline's paper figure, not a verdict). The paper sums only
make two selections "the same" in fewer cases (a response moved between channels): never
a seal where there was none before, so the verdicts are those of the full check as above.

**The changed lines only: a view after new answers INSIDE the selection** (issue 18, branch
dash16). Other sums, so no sealed verdict: the full check runs, and it was linear in the
people (at 1,000,000 people: reading 1.7 M responses, hashing them, writing 20 MB of records
for the selection and up to 72 MB for its table groups, 4 to 6 s). The checks' verdicts and
what they remember are a function of their lines (the selection's and each group's) and of
the memory they read; so only the LINES are made otherwise, exactly the same, and the
checks run on them unchanged. Each full check that seals keeps in the seal's `base`
(`_seal`): its cells' sums S, the newest response id M of the selection it read (every
response it read has an id up to M), the row holding its lines and each group's (a group
too small to be remembered: its few records there, inline), the people and paper people it
counted. A later view of the same filters (`patched_view`) reads only the selection's
responses of an id above M (N, `read_selection(after=M)`) and sums them: when the cells'
sums now are S plus N's (count and four sums, of all cells and of the paper ones), the
selection's responses up to M are exactly those that check read, with the same person, form
and channel (the sums are collision resistant under the secret key, odds 2**-128, as for
seals; a response erased, purged, moved, re-dated, made untimed, or committed late under an
id up to M changes them: the full read runs). Then in every group G (and the whole
selection) a person's responses now are theirs then and theirs in N, apart; the hash of a
person's responses is the XOR of theirs, so their line is then's with its hash XOR that of
their responses of N in G, a person new to G gets the latter, and everyone else keeps their
line (`_xored`). These are the full read's lines, bit for bit; the people are counted from
them, the paper people are then's plus those of N on paper with no paper response up to M
(one small query). `guard_view` and `guard_tables` then run as ever on them, against the
memory as it is now (pairwise, rests, composition, tables, withheld groups, the stamp, the
lock, the seal): the same computations on the same inputs, hence the same verdicts and the
same lines to remember. No verdict is carried over; only lines are. What changes is how
lines are REMEMBERED: a group's lines are written as the records that changed since the row
holding its earlier lines (`ExportSelection.base_id`: the new records of N's people there,
in place of theirs or added; no line ever leaves, as no response up to M did), and every
reader reads a row's whole lines (`remembered_records`: its base's, themselves perhaps
changed lines of another, with its own in place; the views' and tables' comparisons here,
the exports' through `remembered_lines`): every later comparison is with the lines as if
written whole, and the reports' digests are those of the whole lines, so they are
recognised as before. A chain holds at most `DELTA_DEPTH` rows of changed lines, and
changed lines at most a quarter of their base's; else the lines are written whole. Rows are
deleted only with their evaluator (all at once), so a base is always there; they are
updated only by an erasure, a purge or a deletion of people (forgetting.py), which replaces
each such person's line by the same stranger's in every row of the evaluator (a base and
its rows of changed lines alike), computes the digests again and deletes the seals. What
is trusted: the cells, as for seals (written in the transaction of every write;
data written around the sessions needs `selfcheck facts rebuild`). Checked by
tests/services/evaluation/test_differencing_sealed.py: on random writes and views, patched
lines equal a full read's, and the checks on each give the same verdict and remember the
same lines (read back), on SQLite and PostgreSQL. The follow-up figures' check
(`guard_figures`: its groups depend on the day, not
only on the responses) has seals of its own, bound to its groups' digests
(evaluation/figures_seal.py, with its argument).

**Only the records of the people who answered** (issue 18, branch dash17). The patch above
still read every remembered line back (92 MB at 1,000,000 people) and digested them all
(SHA-256) to recognise them. Now rows are remembered with a SET digest instead (`Hasher.mark`,
kept as `MARK_PREFIX` + count + sum under the same report keys, `DIGEST`, `DIGESTS`): the
sum modulo 2**128 of a keyed pseudo-random function (AES-CBC-MAC under a key derived from
the evaluator's) of each record. Two different sets of records have the same sum with odds
of 2**-128 to whoever lacks the key, as for the cells' sums; equal count and set digest mean
the same lines, exactly as equal SHA-256 digests did, so every comparison that recognised
lines by digest recognises the same ones. A patched view (`_patched_group`) reads only the
records of the people of the new responses: in the rows of changed lines of the chain (a
few records each) and, for the rest, in the whole row at its root, around the place their
hash gives them among uniform hashes (`_looked_up`: a `substr` of the stored value, which
PostgreSQL keeps uncompressed and reads by the chunk; a person at a window's edge and the
row is read whole as before). Their records then and now give the changed records (as
`_xored`), the count (plus the people new to the group) and the set digest (the row's, minus
their records' then, plus theirs now): those of the whole lines. The lines themselves are
read whole only when a check compares them with an earlier selection that is not recognised
by its digest (`Lines`: an export, a view of other filters, a row kept with a SHA-256 digest
before dash17, which `_Digests.matches` still compares): then the full comparison runs on the
same lines as before. The verdicts are those of the full check: the same inputs (the lines,
bit for bit, whenever read), the same recognitions (by count and digest), the same rows and
reports remembered (tests/services/evaluation/test_differencing_dash17.py, and the tests
above, which compare the reports of the patched and the full check). Nothing more is stored:
the set digest is a keyed function of keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn, TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    String,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, indicators, joins
from selfcheck.evaluation.disclosure import is_small
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError, response_conditions
from selfcheck.platform.models import (
    Channel,
    DashboardSeal,
    DataVersion,
    ExportLog,
    ExportSelection,
    FactCell,
    Response,
    StaffUser,
)
from selfcheck.questionnaire.model import FormKind

logger = logging.getLogger(__name__)

KIND = "dashboard"
# How long a recording view waits for an export of the same evaluator, which holds their
# memory for its plan and rows, before it is withheld with a "try again" (joins.MemoryBusy).
VIEW_WAIT_SECONDS = 3.0
# The people behind each figure of a view that reads a sub-group of its selection (retention:
# those whose follow-up or end form dates them): compared only with each other (guard_figures).
FIGURES_KIND = "dashboard-figures"


def selection_lines(
    db: Session, filters: EvaluationFilters, user: StaffUser, secret: str | bytes
) -> list[str]:
    """One line per person in the selection: their keyed hash and that of their responses
    (`<24 hex>:<16 hex>`, sorted). Exports (bundle.run_export) store and compare the same."""
    return text_lines(selection_records(db, filters, user, secret))


def selection_records(
    db: Session, filters: EvaluationFilters, user: StaffUser, secret: str | bytes
) -> npt.NDArray[np.bytes_]:
    """The same lines as `selection_lines`, in the binary form they are stored in (`RECORD`:
    the person's 12 bytes, then their responses' 8; sorted)."""
    return Hasher(secret, user.id).lines(read_selection(db, filters))


# --- the selection's ids, hashed in bulk ------------------------------------------------------

FORM_CODES: tuple[str, ...] = tuple(form.value for form in FormKind)
_FORM_INDEX = {code: index for index, code in enumerate(FORM_CODES)}
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
PERSON_BYTES = 12  # 24 hex digits, as the HMACs kept before
RESPONSES_BYTES = 8  # the XOR of the person's response hashes, big-endian
LINE_WIDTH = 2 * PERSON_BYTES + 1 + 2 * RESPONSES_BYTES  # "<person>:<responses>" as text
# A line as stored and compared (branch dash4): the person's hash, then their responses', as
# bytes; sorted as bytes, these are sorted as their text (hexadecimal keeps the order).
RECORD_BYTES = PERSON_BYTES + RESPONSES_BYTES
RECORD = f"S{RECORD_BYTES}"
PERSON = f"S{PERSON_BYTES}"


@dataclass(frozen=True)
class Selection:
    """The submitted responses of a selection: person id, response id and form (an index in
    `FORM_CODES`) per response, in no order. Ids only: one narrow query."""

    person: npt.NDArray[np.int64]
    response: npt.NDArray[np.int64]
    form: npt.NDArray[np.int8]
    # Per response, whether it came on paper (None: not read; `read_selection` reads it).
    paper: npt.NDArray[np.bool_] | None = None

    @property
    def people(self) -> int:
        return int(np.unique(self.person).size)

    @property
    def paper_people(self) -> int | None:
        """The people with a paper response in the selection (the headline's paper figure),
        None when the channels were not read."""
        if self.paper is None:
            return None
        return int(np.unique(self.person[self.paper]).size)


# `read_selection` reads a response's id, form and channel as one integer: the id times this,
# plus twice (its form's index + 1: 0 for a form not in `FORM_CODES`), plus 1 on paper.
_PACKED = 2 * (len(FORM_CODES) + 1)


def read_selection(db: Session, filters: EvaluationFilters, after: int | None = None) -> Selection:
    """The selection's submitted responses (`Selection`), two integers per response read:
    each value costs PostgreSQL a function call per row when it packs them (`_copied`), so
    the response's id, form and channel come as one (branch dash4: 4 values a row cost
    about 0.7 s more than 2 at 1,700,000 responses). `after`: only the responses of a
    greater id (those added since a check, `patched_view`)."""
    form_code = case(_FORM_INDEX, value=Response.form, else_=-1) + 1
    on_paper = case((Response.channel == Channel.PAPER.value, 1), else_=0)
    code = cast(Response.id, BigInteger) * _PACKED + form_code * 2 + on_paper
    query = select(Response.beneficiary_id, code).where(*response_conditions(filters))
    if after is not None:
        query = query.where(Response.id > after)
    table = read_integers(db.connection(), query)
    response, rest = np.divmod(table[:, 1], _PACKED)
    return Selection(
        table[:, 0].copy(),
        response,
        (rest // 2 - 1).astype(np.int8),
        rest % 2 == 1,
    )


def read_integers(connection: Connection, query: Select[*tuple[Any, ...]]) -> npt.NDArray[np.int64]:
    """The rows of `query`, whose columns are all integers, as an array (one row each):
    on PostgreSQL through a binary COPY, elsewhere as Core rows flattened straight into the
    array (the ORM's per-row work is not needed; numpy reading Row objects one by one cost
    seconds at 100,000 people, and Python row tuples at 1,000,000, issue 18)."""
    width = len(query.selected_columns)
    packed = {"postgresql": _copied, "sqlite": _concatenated}.get(connection.dialect.name)
    if packed is not None:
        found = packed(connection, query)
        if found is not None:
            return found
    rows = connection.execute(query).all()
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=width * len(rows))
    return flat.reshape(len(rows), width)


def _concatenated(
    connection: Connection, query: Select[*tuple[Any, ...]]
) -> npt.NDArray[np.int64] | None:
    """SQLite: the rows of `query` (integers) joined by SQLite into one text of decimal
    numbers separated by commas, parsed by numpy in one call: a Python tuple per row cost
    most of the check at 100,000 people (issue 18). None when a value is NULL (its row
    would be left out of the text: the caller reads them as rows)."""
    found = query.subquery()
    columns = list(found.c)
    joined: ColumnElement[Any] = cast(columns[0], String)
    for column in columns[1:]:
        joined = joined.concat(",").concat(cast(column, String))
    count, text = connection.execute(
        select(func.count(), func.group_concat(joined, ",")).select_from(found)
    ).one()
    width = len(columns)
    if not count:
        return np.zeros((0, width), dtype=np.int64)
    if text is None:
        return None
    values = np.fromstring(str(text), dtype=np.int64, sep=",")
    if values.size != width * int(count):
        return None
    return values.reshape(int(count), width)


def _copied(
    connection: Connection, query: Select[*tuple[Any, ...]]
) -> npt.NDArray[np.int64] | None:
    """The rows of `query` (integers) packed by PostgreSQL into one byte string, eight bytes
    (big-endian) per value, read as one array: a COPY or rows still cost a Python call per
    row (seconds at 1,000,000 people). None when a value is NULL (its row would be left out
    of the string: the caller reads them as rows)."""
    found = query.subquery()
    values = [func.int8send(cast(column, BigInteger)) for column in found.c]
    packed: ColumnElement[Any] = values[0]
    for value in values[1:]:
        packed = packed.op("||")(value)
    together = func.string_agg(type_coerce(packed, LargeBinary), literal(b"", LargeBinary))
    count, data = connection.execute(select(func.count(), together).select_from(found)).one()
    width = len(values)
    data = bytes(data or b"")
    if len(data) != 8 * width * int(count):
        return None
    return np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(int(count), width)


class Hasher:
    """Keyed hashes of people and responses for one evaluator, computed in bulk.

    AES-256 (the `cryptography` library) as a pseudo-random function of one 16-byte block
    holding a domain (person or response) and the id, under a key derived from the app's
    secret and the evaluator's id: each block is distinct, so ECB here is exactly a keyed
    pseudo-random permutation of the ids, with no pattern to leak, and one call hashes
    100,000 ids in about a millisecond (an HMAC per person cost more than a second per view at
    100,000 people, issue 18). Without the secret, the hashes say nothing about the ids.
    """

    PERSON = 1
    RESPONSE = 2

    def __init__(self, secret: str | bytes, user_id: int) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        self._key = hashlib.sha256(b"selfcheck-differencing\0%d\0" % user_id + key).digest()

    def seal(self, message: bytes) -> str:
        """A keyed hash (HMAC-SHA-256) of `message` for this evaluator."""
        return hmac.new(self._key, message, "sha256").hexdigest()

    def mark(self, records: npt.NDArray[np.bytes_]) -> int:
        """The sum, modulo 2**128, of a keyed pseudo-random function of each record (`RECORD`):
        the lines' set digest (`_Digests.mark`), which a change of a few records updates
        (minus theirs before, plus theirs after) without the others (branch dash17).

        The function is AES-CBC-MAC of the record's 20 bytes, zero-padded to two blocks, under
        a key derived from this evaluator's (fixed-length messages: a pseudo-random function).
        Two different sets of records have equal sums with odds of 2**-128 for whoever does
        not hold the key (their difference is a sum of independent uniform values), as the
        cells' sums are trusted (`fact_cell`); the count is compared as well."""
        if not records.size:
            return 0
        grid = np.ascontiguousarray(records).view(np.uint8).reshape(records.size, RECORD_BYTES)
        key = hashlib.sha256(b"selfcheck-differencing-set\0" + self._key).digest()
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        first = encryptor.update(np.ascontiguousarray(grid[:, :16]).tobytes())
        chained = np.frombuffer(first, dtype=np.uint8).reshape(records.size, 16).copy()
        chained[:, : RECORD_BYTES - 16] ^= grid[:, 16:]
        second = encryptor.update(chained.tobytes()) + encryptor.finalize()
        pieces = np.frombuffer(second, dtype="<u4").reshape(records.size, 4)
        sums = pieces.sum(axis=0, dtype=np.uint64)
        return sum(int(piece) << (32 * index) for index, piece in enumerate(sums)) % _MARK_MODULUS

    def _blocks(self, domain: int, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        blocks = np.zeros((ids.size, 2), dtype="<u8")
        blocks[:, 0] = domain
        blocks[:, 1] = ids.astype(np.uint64)
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
        return np.frombuffer(out, dtype=np.uint8).reshape(ids.size, 16)

    def persons(self, ids: npt.NDArray[np.int64]) -> list[str]:
        """Each person's hash (24 hexadecimal digits), in the order of `ids`."""
        if not ids.size:
            return []
        hexes = _hex(self._blocks(self.PERSON, ids)[:, :PERSON_BYTES])
        return _decoded(hexes.view(f"S{2 * PERSON_BYTES}").ravel())

    def person_hexes(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bytes_]:
        """Each person's hash (24 hexadecimal digits, as `persons`), in the order of `ids`,
        as fixed-width byte strings."""
        if not ids.size:
            return np.zeros(0, dtype=f"S{2 * PERSON_BYTES}")
        hexes = _hex(self._blocks(self.PERSON, ids)[:, :PERSON_BYTES])
        found: npt.NDArray[np.bytes_] = hexes.view(f"S{2 * PERSON_BYTES}").ravel()
        return found

    def lines(
        self, found: Selection, forms: frozenset[int] | None = None
    ) -> npt.NDArray[np.bytes_]:
        """The sorted lines (person hash, hash of their responses) of the people with a
        response in `found` (of one of `forms`, when given), as binary records (`RECORD`)."""
        return Hashed(self, found).lines(forms)


class Hashed:
    """A selection's keyed hashes, computed once for the whole selection and each of its
    sub-groups: the rows ordered by their person's hash, so that the lines of any sub-group
    come out sorted without sorting them."""

    # The evaluator's forgetting mark (`forgetting_mark`) read before the selection was: a
    # check remembers nothing when their memory was forgotten since (`hold_unchanged`).
    forgotten: int | None = None

    def __init__(self, hasher: Hasher, found: Selection) -> None:
        people, inverse = np.unique(found.person, return_inverse=True)
        raw = np.ascontiguousarray(hasher._blocks(Hasher.PERSON, people)[:, :PERSON_BYTES])
        order = _byte_order(raw)
        rank = np.empty(people.size, dtype=np.int64)
        rank[order] = np.arange(people.size)
        row_rank = rank[np.ravel(inverse)]
        rows = np.argsort(row_rank, kind="stable")
        self.people = int(people.size)
        self._rank = row_rank[rows]
        self._form = found.form[rows]
        hashes = hasher._blocks(Hasher.RESPONSE, found.response)[:, :8].copy().view("<u8")
        self._response = hashes.ravel()[rows]
        self._persons = raw[order]  # the people's hashes, sorted

    def lines(self, forms: frozenset[int] | None = None) -> npt.NDArray[np.bytes_]:
        """The lines of the people with a response (of one of `forms`, when given), as
        binary records (`RECORD`), sorted."""
        rank, response = self._rank, self._response
        if forms is not None:
            keep = np.isin(self._form, np.array(sorted(forms), dtype=np.int8))
            rank, response = rank[keep], response[keep]
        if not rank.size:
            return np.zeros(0, dtype=RECORD)
        starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
        together = np.bitwise_xor.reduceat(response, starts)  # the person's set of responses
        grid = np.empty((starts.size, RECORD_BYTES), dtype=np.uint8)
        grid[:, :PERSON_BYTES] = self._persons[rank[starts]]
        grid[:, PERSON_BYTES:] = together.astype(">u8").view(np.uint8).reshape(-1, 8)
        lines: npt.NDArray[np.bytes_] = grid.view(RECORD).ravel()
        return lines


def _byte_order(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """The stable order of the rows of `raw` sorted as bytes: by their first 8 bytes as a
    big-endian integer (numpy sorts integers several times faster than byte strings), or,
    should two rows share them (odds of about n**2 / 2**65), by the whole rows."""
    high = np.ascontiguousarray(raw[:, :8]).view(">u8").ravel().astype(np.uint64)
    order = np.argsort(high, kind="stable")
    ordered = high[order]
    if raw.shape[1] > 8 and bool((ordered[1:] == ordered[:-1]).any()):
        order = np.argsort(
            np.ascontiguousarray(raw).view(f"S{raw.shape[1]}").ravel(), kind="stable"
        )
    return order


def _hashed(
    db: Session,
    filters: EvaluationFilters,
    user: StaffUser,
    secret: str | bytes,
    found: Selection | Hashed | Sealed | None,
) -> Hashed:
    if isinstance(found, Sealed):
        found = None  # not reached: both checks return a sealed verdict first
    if isinstance(found, Hashed):
        return found
    mark = forgetting_mark(db, user.id) if found is None else None  # before the selection
    hashed = Hashed(
        Hasher(secret, user.id), found if found is not None else read_selection(db, filters)
    )
    hashed.forgotten = mark
    return hashed


def _hex(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Lower-case hexadecimal digits of each row of bytes (twice as wide)."""
    out = np.empty((raw.shape[0], 2 * raw.shape[1]), dtype=np.uint8)
    out[:, 0::2] = _HEX_DIGITS[raw >> 4]
    out[:, 1::2] = _HEX_DIGITS[raw & 15]
    return out


_NIBBLES = np.zeros(256, dtype=np.uint8)
_NIBBLES[_HEX_DIGITS] = np.arange(16, dtype=np.uint8)


def _unhex(digits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The bytes written by `_hex` (half as wide)."""
    nibbles = _NIBBLES[digits]
    out = ((nibbles[:, 0::2] << 4) | nibbles[:, 1::2]).astype(np.uint8)
    return out


def _hex_lines(records: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bytes_]:
    """Binary records (`RECORD`) as the text lines `<person>:<responses>` (`LINE_WIDTH`)."""
    if not records.size:
        return np.zeros(0, dtype=f"S{LINE_WIDTH}")
    raw = records.view(np.uint8).reshape(records.size, RECORD_BYTES)
    grid = np.empty((records.size, LINE_WIDTH), dtype=np.uint8)
    grid[:, : 2 * PERSON_BYTES] = _hex(raw[:, :PERSON_BYTES])
    grid[:, 2 * PERSON_BYTES] = ord(":")
    grid[:, 2 * PERSON_BYTES + 1 :] = _hex(raw[:, PERSON_BYTES:])
    lines: npt.NDArray[np.bytes_] = grid.view(f"S{LINE_WIDTH}").ravel()
    return lines


def text_lines(records: npt.NDArray[np.bytes_]) -> list[str]:
    """Binary records as the text lines `<person hash>:<hash of their responses>`."""
    return _decoded(_hex_lines(records))


def stored_lines(people: str, lines: bytes | None) -> list[str]:
    """The lines of a remembered selection (an `ExportSelection`'s `people` and `lines`) as
    text, whatever form they were kept in: binary records (`lines`, after `people`'s group
    name, if any), or text lines (`people`, kept before branch dash4)."""
    if lines is None:
        return people.split("\n") if people else []
    prefix = people if people.endswith("|") else ""
    return [prefix + line for line in text_lines(_records(lines))]


def _records(blob: bytes) -> npt.NDArray[np.bytes_]:
    """Stored binary records (sorted, distinct when written): a read-only array over `blob`."""
    if len(blob) % RECORD_BYTES:
        raise ValueError("stored lines are not whole records")
    found: npt.NDArray[np.bytes_] = np.frombuffer(blob, dtype=RECORD)
    return found


def _stored(people: str, lines: bytes | None, prefix: str = "") -> npt.NDArray[np.bytes_] | None:
    """A remembered selection's lines as sorted binary records: those kept so (`lines`), or
    text lines of the current format (`people`, each after `prefix`: kept before branch
    dash4); None for lines kept in an earlier format (`_Legacy`)."""
    if lines is not None:
        return _records(lines)
    parsed = _parsed(people, prefix)
    if parsed is None:
        return None
    grid = parsed.view(np.uint8).reshape(parsed.size, LINE_WIDTH)
    raw = np.empty((parsed.size, RECORD_BYTES), dtype=np.uint8)
    raw[:, :PERSON_BYTES] = _unhex(grid[:, : 2 * PERSON_BYTES])
    raw[:, PERSON_BYTES:] = _unhex(grid[:, 2 * PERSON_BYTES + 1 :])
    records: npt.NDArray[np.bytes_] = raw.view(RECORD).ravel()
    return records


def _decoded(lines: npt.NDArray[np.bytes_]) -> list[str]:
    return _text(lines).split("\n") if lines.size else []


def _text(lines: npt.NDArray[np.bytes_]) -> str:
    """The lines joined by newlines, in one pass (what `ExportSelection.people` holds)."""
    if not lines.size:
        return ""
    width = lines.dtype.itemsize
    grid = np.empty((lines.size, width + 1), dtype=np.uint8)
    grid[:, :width] = lines.view(np.uint8).reshape(lines.size, width)
    grid[:, width] = ord("\n")
    return grid.tobytes()[:-1].decode("ascii")


def _parsed(text: str, prefix: str = "") -> npt.NDArray[np.bytes_] | None:
    """Stored lines of this module's current format (`<person>:<responses>`, each after
    `prefix`) as sorted fixed-width byte strings; None for another format (kept before)."""
    if not text:
        return np.zeros(0, dtype=f"S{LINE_WIDTH}")
    width = len(prefix) + LINE_WIDTH
    raw = np.frombuffer(text.encode("ascii", "replace") + b"\n", dtype=np.uint8)
    if raw.size % (width + 1):
        return None
    grid = raw.reshape(-1, width + 1)
    if (grid[:, width] != ord("\n")).any() or (
        grid[:, len(prefix) + 2 * PERSON_BYTES] != ord(":")
    ).any():
        return None
    lines = np.ascontiguousarray(grid[:, len(prefix) : width])
    return np.sort(lines.view(f"S{LINE_WIDTH}").ravel())


def _persons(lines: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bytes_]:
    """The sorted distinct person hashes (binary, `PERSON`) of binary records."""
    if not lines.size:
        return np.zeros(0, dtype=PERSON)
    grid = lines.view(np.uint8).reshape(lines.size, RECORD_BYTES)
    persons: npt.NDArray[np.bytes_] = np.unique(
        np.ascontiguousarray(grid[:, :PERSON_BYTES]).view(PERSON).ravel()
    )
    return persons


def differing(mine: npt.NDArray[np.bytes_], theirs: npt.NDArray[np.bytes_]) -> int:
    """`people_differing` on binary records (sorted, distinct), in bulk."""
    return int(_persons(np.setxor1d(mine, theirs, assume_unique=True)).size)


def _person_hashes(key: bytes, user_id: int, people: list[int]) -> list[str]:
    """Each person's HMAC, in the order of `people`: the format kept before `Hasher`, for
    comparisons with what was kept then (`_legacy_lines`, `guard_figures`)."""
    return [
        hmac.digest(key, f"selection:{user_id}:{b}".encode(), "sha256").hex()[:24] for b in people
    ]


def _legacy_lines(
    db: Session, filters: EvaluationFilters, user: StaffUser, secret: str | bytes
) -> list[str]:
    """The lines as kept before (an HMAC per person and per person's responses), to compare a
    selection with those stored in that format."""
    query = select(Response.beneficiary_id, Response.id).where(*response_conditions(filters))
    responses: dict[int, list[int]] = defaultdict(list)
    for person, response in db.execute(query):
        responses[person].append(response)
    people = sorted(responses)
    key = secret.encode() if isinstance(secret, str) else secret
    hashed = dict(zip(people, _person_hashes(key, user.id, people), strict=True))
    lines = []
    for person in people:
        ids = ",".join(str(r) for r in sorted(responses[person]))
        message = f"responses:{user.id}:{person}:{ids}".encode()
        lines.append(f"{hashed[person]}.{hmac.digest(key, message, 'sha256').hex()[:16]}")
    return sorted(lines)


def person_of(line: str) -> str:
    """The person's hash of a stored line (`<person>:<responses>`, `<person>.<responses>`
    as kept before, or a bare person hash)."""
    return line.partition(":")[0] if ":" in line else line.partition(".")[0]


def people_differing(mine: set[str], theirs: set[str]) -> int:
    """How many people are in one selection only, or in both with other responses."""

    def bare(line: str) -> bool:
        return "." not in line and ":" not in line

    if any(bare(line) for line in theirs) or any(bare(line) for line in mine):
        return len({person_of(x) for x in mine} ^ {person_of(x) for x in theirs})
    return len({person_of(x) for x in mine ^ theirs})


def guard_view(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
    found: Selection | Hashed | Sealed | None = None,
) -> int | None:
    """ScopeError (422) when this selection differs from an earlier one of this evaluator
    (with other filters) by more than 0 and fewer than k people; else remember it.
    `found`: the selection's ids (`read_selection`), or their hashes, when the caller has them
    (`Patched`: built from the lines of an earlier check and the responses added since, the
    same lines); or the verdict of the same responses sealed by an earlier full check
    (`sealed_view`), which this check would give again (the module doc): nothing to do.
    Returns the id of the row that holds these lines (remembered now or before), if any."""
    if isinstance(found, Sealed):
        return None
    hashed = _hashed(db, filters, user, secret, found)
    lines = hashed.held(None) if isinstance(hashed, Patched) else hashed.lines()
    delta = hashed.delta(None) if isinstance(hashed, Patched) else None
    row: int | None = _again_if_changed(
        lambda stamp: _guard_view(
            db, user, filters, k, secret, lines, stamp, delta, hashed.forgotten
        ),
        db,
        user,
        lambda: _refuse(user, k, "the evaluator's memory moved while held"),
    )
    return row


def _guard_view(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
    held: npt.NDArray[np.bytes_] | Lines,
    stamp: MemoryStamp,
    delta: Delta | None = None,
    forgotten: int | None = None,
) -> int | None:
    """`guard_view`'s check against the memory as it is from `stamp` on: the id of the row
    that holds `held` (`delta`: remembered as the lines changed since a row, `Patched`; then
    the lines are read whole only if an earlier selection must be compared with them;
    `forgotten`: the forgetting mark read before the lines were, `hold_unchanged`)."""
    size = int(held.size)
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    digests = _Digests({"": held}, Hasher(secret, user.id))
    # First each earlier selection's size, filters, kind and digest, without its people: one
    # with this one's digest is this very selection, a view of the same filters is not
    # compared; only the others are read (40 MB a view at 1,000,000 people, issue 18).
    scope = (
        ExportSelection.user_id == user.id,
        ExportLog.kind.not_in((FIGURES_KIND, TABLES_KIND)),
    )
    seen: int | None = None  # the row of this very selection
    wanted: list[int] = []
    for row_id, count, their_filters, kind, report, as_text in db.execute(
        select(
            ExportSelection.id,
            ExportSelection.count,
            ExportLog.filters,
            ExportLog.kind,
            ExportLog.report,
            ExportSelection.lines.is_(None),
        )
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(*scope)
    ):
        digest = _stored_digest(report) if kind == KIND else None
        if digest is None:
            wanted.append(row_id)  # an export, or kept before digests: read as always
        elif digests.matches("", digest, count, as_text=bool(as_text)):
            seen = row_id
        elif not _same_filters(their_filters, described):
            wanted.append(row_id)
    earlier: Sequence[Any] = (
        db.execute(
            select(
                ExportSelection.count,
                ExportSelection.people,
                ExportSelection.lines,
                ExportLog.filters,
                ExportLog.kind,
                ExportSelection.id,
                ExportSelection.base_id,
            )
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportSelection.id.in_(wanted))
            .order_by(ExportSelection.id.desc())
        ).all()
        if wanted
        else []
    )
    others: list[frozenset[Hashable]] = []  # people of earlier selections with other filters
    legacy = _Legacy(db, filters, user, secret)  # selections kept in the earlier format
    for count, stored, blob, their_filters, kind, row_id, base in earlier:
        lines = _whole(held)
        theirs = _stored(stored, blob) if base is None else remembered_records(db, row_id)[0]
        if theirs is None:
            if legacy.compare(stored, count, their_filters, kind, described, k) and seen is None:
                seen = 0  # this selection, kept in an earlier format: no row to start from
            continue
        if count == size and np.array_equal(theirs, lines):
            seen = row_id
            continue
        if kind == KIND and _same_filters(their_filters, described):
            # The same dashboard again as the data grows (see the module doc). Not an
            # export with these filters: its rows minus this view's tables would describe
            # the few people who answered since.
            continue
        others.append(frozenset(_persons(theirs).tolist()))
        if abs(count - size) >= k:
            continue  # the sizes alone differ by k or more: so do the people
        if is_small(differing(lines, theirs), k):
            _refuse(user, k, "differs from an earlier selection by fewer than k people")
    if seen is not None:
        return seen or None
    checks = [(frozenset(_persons(_whole(held)).tolist()), others)] if others else []
    if legacy.others:
        checks.append((legacy.persons, legacy.others))
    for persons, earlier_people in checks:
        if _left_uncovered(persons, earlier_people, k):
            _refuse(user, k, "the rest of a selection once its parts are taken out is under k")
        if isolates(persons, linked(persons, earlier_people), k):
            _refuse(user, k, "with earlier selections, isolates fewer than k people")
    return _record(
        db,
        user,
        KIND,
        described,
        _whole(held) if delta is None else delta.records,
        rows=size,
        count=size,
        k=k,
        report={DIGEST: digests.mark("")},
        expected=stamp,
        delta=delta,
        forgotten=forgotten,
    )


class _Legacy:
    """Comparisons with the selections kept before lines took their current format (an HMAC
    per person): this selection's lines in that format are computed only if one is met."""

    def __init__(
        self, db: Session, filters: EvaluationFilters, user: StaffUser, secret: str | bytes
    ) -> None:
        self._args = (db, filters, user, secret)
        self._mine: set[str] | None = None
        self.others: list[frozenset[Hashable]] = []

    @property
    def mine(self) -> set[str]:
        if self._mine is None:
            self._mine = set(_legacy_lines(*self._args))
        return self._mine

    @property
    def persons(self) -> frozenset[Hashable]:
        return frozenset(person_of(line) for line in self.mine)

    def compare(
        self, stored: str, count: int, their_filters: str, kind: str, described: str, k: int
    ) -> bool:
        """Whether `stored` is this very selection (ScopeError when one to k - 1 apart)."""
        user = self._args[2]
        theirs = set(stored.split("\n")) if stored else set()
        if theirs == self.mine:
            return True
        if kind == KIND and _same_filters(their_filters, described):
            return False
        self.others.append(frozenset(person_of(line) for line in theirs))
        if abs(count - len(self.mine)) < k and is_small(people_differing(self.mine, theirs), k):
            _refuse(user, k, "differs from an earlier selection by fewer than k people")
        return False


# The people behind the dashboard's tables that read a sub-group of the selection (the tables of
# one form, the paired tables): one `ExportSelection` per group, each line "<group>|<line>".
TABLES_KIND = "dashboard-tables"


def guard_tables(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    groups: Mapping[str, Iterable[str]],
    k: int,
    secret: str | bytes,
    found: Selection | Hashed | Sealed | None = None,
    seal: Seal | None = None,
    since: MemoryStamp | None = None,
) -> frozenset[str]:
    """The groups whose tables must be withheld from this view (the rest may be shown).

    `found` as for `guard_view` (a `Sealed` verdict is returned as it is). `seal`: the
    selection's cells (`cell_sums_of`) once `guard_view` passed with the same `found`: the
    verdict is then sealed for the next views of the same responses (`sealed_view`).

    `groups`: group name -> the forms whose responses in the selection make it (a table of
    'after' forms reads the people with an 'after' form in it). Two selections k people
    apart or more can still differ by one person inside one group (four people who only
    started in June, one who ended then: the 'after' tables of May and of June differ by
    that person's answers). So each group is compared, as `guard_figures` compares figures,
    with the same group in the evaluator's earlier views with other filters: refused when
    both have k people or more and differ by 1 to k - 1 (a person with other responses in
    the group counts), or when it minus the same groups inside it leaves 1 to k - 1. The
    groups not refused are remembered; a log line names each refused one. Nothing commits.
    """
    if isinstance(found, Sealed):
        return found.refused
    hashed = _hashed(db, filters, user, secret, found)
    mine: dict[str, npt.NDArray[np.bytes_] | Lines] = {
        name: (
            hashed.held(frozenset(_FORM_INDEX[form] for form in forms))
            if isinstance(hashed, Patched)
            else hashed.lines(frozenset(_FORM_INDEX[form] for form in forms))
        )
        for name, forms in groups.items()
    }
    deltas = (
        {
            name: hashed.delta(frozenset(_FORM_INDEX[form] for form in forms))
            for name, forms in groups.items()
        }
        if isinstance(hashed, Patched)
        else {}
    )
    before = memory_stamp(db, user) if since is None else since
    rows: dict[str, int] = {}
    refused = _again_if_changed(
        lambda stamp: _guard_tables(
            db, user, filters, k, hashed, mine, stamp, deltas, rows, Hasher(secret, user.id)
        ),
        db,
        user,
        lambda: frozenset(mine),
    )
    if seal is not None:
        described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
        # Groups too small to be shown are not remembered: their few lines go with the seal.
        small = {
            name: _whole(lines)
            for name, lines in mine.items()
            if name not in rows and lines.size < k
        }
        _seal(db, user, described, k, secret, seal, hashed.people, refused, before, rows, small)
    return refused


def _guard_tables(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    hashed: Hashed,
    mine: Mapping[str, npt.NDArray[np.bytes_] | Lines],
    stamp: MemoryStamp,
    deltas: Mapping[str, Delta | None] | None = None,
    rows: dict[str, int] | None = None,
    hasher: Hasher | None = None,
) -> frozenset[str]:
    """`guard_tables`' check of the groups `mine` against the memory as it is from `stamp`
    on: the groups withheld; the others remembered (`deltas`: as the records changed since a
    row, `Patched`). `rows`: filled with the row that holds each group's lines."""
    if rows is None:
        rows = {}
    rows.clear()  # a check run again (`_again_if_changed`) fills it anew
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    digests = _Digests(mine, hasher)
    # First what each earlier group is (its name, size, filters and digest), without its
    # people: a group with this one's digest is this very group, and one of the same filters
    # or too small to have been shown is not compared; only the others are read (at
    # 1,000,000 people a view's groups hold 3.6 million lines, 176 MB, issue 18).
    heads = db.execute(
        select(
            ExportSelection.id,
            ExportSelection.count,
            func.substr(ExportSelection.people, 1, _HEAD),
            ExportLog.filters,
            ExportLog.report,
            ExportSelection.lines.is_(None),
        )
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportLog.kind == TABLES_KIND)
    )
    others: dict[str, list[npt.NDArray[np.bytes_]]] = defaultdict(list)
    kept: set[str] = set()  # groups already remembered as they are now
    wanted: list[int] = []  # the earlier groups whose people must be read
    for row_id, count, head, their_filters, report, as_text in heads:
        name, bar, _rest = (head or "").partition("|")
        digest = _stored_digests(report).get(name) if bar else None
        if digest is None:
            wanted.append(row_id)  # kept before digests: read and compared as always
            continue
        if name not in mine:
            continue
        if digests.matches(name, digest, count, as_text=bool(as_text)):
            kept.add(name)
            rows.setdefault(name, row_id)
            continue
        if _same_filters(their_filters, described):
            continue  # the same filters as the data grows: as guard_view
        if count >= k:  # a table that could have been shown
            wanted.append(row_id)
    earlier: Sequence[Any] = (
        db.execute(
            select(
                ExportSelection.people,
                ExportSelection.lines,
                ExportLog.filters,
                ExportSelection.id,
                ExportSelection.base_id,
            )
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportSelection.id.in_(wanted))
        ).all()
        if wanted
        else []
    )
    for stored, blob, their_filters, row_id, base in earlier:
        name = stored.partition("|")[0]
        if name not in mine:
            continue
        theirs = (
            _stored(stored, blob, name + "|") if base is None else remembered_records(db, row_id)[0]
        )
        if theirs is None:
            continue
        if theirs.size == mine[name].size and np.array_equal(theirs, _whole(mine[name])):
            kept.add(name)
            rows.setdefault(name, row_id)
            continue
        if _same_filters(their_filters, described):
            continue  # the same filters as the data grows: as guard_view
        if theirs.size >= k:  # a table that could have been shown
            others[name].append(theirs)
    refused: set[str] = set()
    for name, held in mine.items():
        if held.size < k:
            continue  # its cells are all under k: hidden anyway (disclosure.protect)
        near = [other for other in others[name] if abs(int(other.size) - int(held.size)) < k]
        # A rest needs two parts at least (`_left_uncovered`): sets are built only then.
        if any(is_small(differing(_whole(held), other), k) for other in near) or (
            len(others[name]) >= 2
            and _left_uncovered(
                frozenset(_persons(_whole(held)).tolist()),
                [frozenset(_persons(other).tolist()) for other in others[name]],
                k,
            )
        ):
            refused.add(name)
            logger.warning(
                "table withheld: its people differ from an earlier view's by fewer than k",
                extra={"user_id": user.id, "k": k, "group": name},
            )
    remembered = {
        name: lines
        for name, lines in mine.items()
        if name not in refused and name not in kept and lines.size >= k
    }
    if remembered:
        hold_unchanged(db, user, stamp, hashed.forgotten)
        log = ExportLog(
            user_id=user.id,
            kind=TABLES_KIND,
            filters=described,
            row_count=hashed.people,
            k=k,
            report=json.dumps(
                {
                    "k": k,
                    "groups": sorted(remembered),
                    DIGESTS: {name: digests.mark(name) for name in sorted(remembered)},
                }
            ),
        )
        db.add(log)
        db.flush()
        added: dict[str, ExportSelection] = {}
        for name, lines in sorted(remembered.items()):
            # The group's name, then its lines as binary records (`stored_lines`), or only
            # those changed since a row (`Patched`).
            delta = (deltas or {}).get(name)
            added[name] = ExportSelection(
                export_id=log.id,
                user_id=user.id,
                count=int(lines.size),
                people=f"{name}|",
                lines=_blob(_whole(lines) if delta is None else delta.records),
                base_id=None if delta is None else delta.base,
            )
            db.add(added[name])
        db.flush()
        rows.update({name: row.id for name, row in added.items()})
    return frozenset(refused)


# An earlier group's name is read from the first characters of its lines (`<group>|...`).
_HEAD = 200
# In the report of a log row of groups: each group's digest (`_Digests`).
DIGESTS = "digests"


class Lines:
    """A selection's or group's lines (sorted binary records) known by their number and, when
    given, their set digest (`Hasher.mark`), read whole only when a comparison needs them
    (`Patched`, branch dash17: the lines of a view after new answers, whose whole records are
    those remembered with a few changed)."""

    def __init__(
        self,
        size: int,
        whole: Callable[[], npt.NDArray[np.bytes_]],
        mark: int | None = None,
    ) -> None:
        self.size = size
        self.mark = mark
        self._whole = whole
        self._found: npt.NDArray[np.bytes_] | None = None

    @classmethod
    def of(cls, lines: npt.NDArray[np.bytes_] | Lines) -> Lines:
        if isinstance(lines, Lines):
            return lines
        return cls(int(lines.size), lambda: lines)

    def whole(self) -> npt.NDArray[np.bytes_]:
        if self._found is None:
            found = self._whole()
            if found.size != self.size:
                raise AssertionError("lines read whole are not as many as known")
            self._found = found
        return self._found


def _whole(lines: npt.NDArray[np.bytes_] | Lines) -> npt.NDArray[np.bytes_]:
    return lines.whole() if isinstance(lines, Lines) else lines


class _Digests:
    """Each group's digest, computed when first needed: SHA-256 of its name and its sorted
    lines (`of`), or its set digest (`mark`: the count and `Hasher.mark` of the records).
    Equal digests and sizes mean the same lines, that is the same people with the same
    responses (a collision of SHA-256 is out of reach; of the set digest, 2**-128 without the
    evaluator's key).

    Rows are remembered with their set digest since branch dash17 (`MARK_PREFIX`): it is
    that of the whole lines however they were made, and a view patched from remembered lines
    (`Patched`) updates it from the few records that changed instead of reading every line.
    Rows remembered before carry SHA-256 digests, which `matches` still compares (reading the
    lines whole for it).

    The lines SHA-256 digests are those stored: binary records since branch dash4, text lines
    before (`as_text`: the digest of the same lines as text, `_hex_lines`, for a row kept then;
    the width of a line is digested too, so the two kinds of digest never meet)."""

    def __init__(
        self,
        lines: Mapping[str, npt.NDArray[np.bytes_] | Lines],
        hasher: Hasher | None = None,
    ) -> None:
        self._lines = lines
        self._hasher = hasher
        self._found: dict[tuple[str, bool], str] = {}

    def of(self, name: str, *, as_text: bool = False) -> str:
        if (name, as_text) not in self._found:
            digest = hashlib.sha256(name.encode("utf-8") + b"|")
            lines = _whole(self._lines[name])
            if as_text:
                lines = _hex_lines(lines)
            digest.update(b"%d:%d|" % (lines.size, lines.dtype.itemsize))
            digest.update(lines.tobytes())
            self._found[name, as_text] = digest.hexdigest()
        return self._found[name, as_text]

    def mark(self, name: str) -> str:
        """The set digest of the group's lines, as kept in reports (`MARK_PREFIX`)."""
        held = self._lines[name]
        known = held.mark if isinstance(held, Lines) else None
        if known is None:
            if self._hasher is None:
                raise ValueError("a set digest needs the evaluator's key")
            known = self._hasher.mark(_whole(held))
        return marked(int(held.size), known)

    def matches(self, name: str, stored: str, count: int, *, as_text: bool = False) -> bool:
        """Whether a row of `count` lines whose digest is `stored` holds these very lines."""
        if count != self._lines[name].size:
            return False
        if stored.startswith(MARK_PREFIX):  # of the records, however the row keeps them
            return stored == self.mark(name)
        return stored == self.of(name, as_text=as_text)


# A set digest as kept in a report: the prefix, the number of lines, the sum (`Hasher.mark`).
MARK_PREFIX = "set1:"
_MARK_MODULUS = 2**128


def marked(count: int, mark: int) -> str:
    return f"{MARK_PREFIX}{count}:{mark % _MARK_MODULUS:032x}"


def _mark_of(stored: str | None, count: int) -> int | None:
    """The sum of a set digest kept in a report for `count` lines (None: not one)."""
    if not stored or not stored.startswith(MARK_PREFIX):
        return None
    kept, _colon, total = stored.removeprefix(MARK_PREFIX).partition(":")
    try:
        if int(kept) != count:
            return None
        return int(total, 16) % _MARK_MODULUS
    except ValueError:
        return None


# In the report of a log row of figures' groups: the SHA-256 digest of its text.
DIGEST = "digest"


def _stored_digest(report: str | None) -> str | None:
    try:
        found = json.loads(report or "{}").get(DIGEST)
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _stored_digests(report: str | None) -> dict[str, str]:
    try:
        found = json.loads(report or "{}").get(DIGESTS)
    except (ValueError, AttributeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(name): str(digest) for name, digest in found.items()}


def guard_figures(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    groups: dict[str, frozenset[int]],
    k: int,
    secret: str | bytes,
    forgotten: int | None = None,
) -> bool:
    """Whether figures about sub-groups of a selection may be shown (else withheld: False).

    `guard_view` compares whole selections; a figure about a sub-group of one (the kept gains
    of the people whose follow-up is in it) can still differ from the same figure of an earlier
    view by one person while the selections differ by k or more (June's "before" forms and one
    June follow-up). So each figure's group (`groups`: figure name -> people) is compared, as
    `guard_view` compares selections, with that figure's groups in the evaluator's earlier
    views with other filters: refused when both could be shown (k people or more) and they
    differ by 1 to k - 1 people, or when one minus those inside it leaves 1 to k - 1. Else the
    groups are remembered (nothing here commits).

    The groups are sorted arrays of person hashes (numpy, as `guard_tables`): at 1,000,000
    people, Python sets of hash strings and the sorted text built from them cost seconds
    (issue 18). The sets compared are the same."""
    everyone = np.unique(
        np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [np.fromiter(people, dtype=np.int64, count=len(people)) for people in groups.values()]
        )
    )
    hexes = Hasher(secret, user.id).person_hexes(everyone)
    mine = {
        name: np.unique(hexes[np.searchsorted(everyone, _ids(people))])
        for name, people in groups.items()
    }
    shown: bool = _again_if_changed(
        lambda stamp: _guard_figures(
            db, user, filters, groups, k, secret, everyone, mine, stamp, forgotten
        ),
        db,
        user,
        lambda: False,
    )
    return shown


def _guard_figures(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    groups: dict[str, frozenset[int]],
    k: int,
    secret: str | bytes,
    everyone: npt.NDArray[np.int64],
    mine: Mapping[str, npt.NDArray[np.bytes_]],
    stamp: MemoryStamp,
    forgotten: int | None = None,
) -> bool:
    """`guard_figures`' check against the memory as it is from `stamp` on (`forgotten`: the
    forgetting mark read before the groups were, `hold_unchanged`)."""
    legacy: dict[str, frozenset[str]] | None = None  # the same, as HMACs (kept before)
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    text, count = _figures_text(mine)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # First each earlier view's filters and digest (of its text, `_figures_text`), without its
    # people: one with this digest is this very view, one of the same filters is not
    # compared; only the others are read (47 MB a view at 1,000,000 people, issue 18).
    seen = False
    wanted: list[int] = []
    for row_id, their_filters, report in db.execute(
        select(ExportSelection.id, ExportLog.filters, ExportLog.report)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportLog.kind == FIGURES_KIND)
    ):
        their_digest = _stored_digest(report) if HASHED_BY in (report or "") else None
        if their_digest is None:
            wanted.append(row_id)  # kept before digests (or as HMACs): read as always
        elif their_digest == digest:
            seen = True
        elif not _same_filters(their_filters, described):
            wanted.append(row_id)
    earlier: Sequence[Any] = (
        db.execute(
            select(ExportSelection.people, ExportLog.filters, ExportLog.report)
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportSelection.id.in_(wanted))
        ).all()
        if wanted
        else []
    )
    shown = {name: people for name, people in mine.items() if people.size}
    # Earlier groups with other filters, by figure: hashed by `Hasher`, or as HMACs.
    others: dict[str, list[npt.NDArray[np.bytes_]]] = defaultdict(list)
    legacy_others: dict[str, list[frozenset[str]]] = defaultdict(list)
    for stored, their_filters, report in earlier:
        if HASHED_BY not in (report or ""):
            if legacy is None:
                key = secret.encode() if isinstance(secret, str) else secret
                ids = everyone.tolist()
                hashed = dict(zip(ids, _person_hashes(key, user.id, ids), strict=True))
                legacy = _figure_groups(groups, hashed)
            theirs = _split_figures(stored)
            if theirs == {name: people for name, people in legacy.items() if people}:
                seen = True
                continue
            if _same_filters(their_filters, described):
                continue  # the same filters as the data grows: as guard_view
            for name, members in theirs.items():
                if len(members) >= k:  # a figure that could have been shown
                    legacy_others[name].append(members)
            continue
        parsed = _parsed_figures(stored)
        if parsed.keys() == shown.keys() and all(
            np.array_equal(parsed[name], people) for name, people in shown.items()
        ):
            seen = True
            continue
        if _same_filters(their_filters, described):
            continue  # the same filters as the data grows: as guard_view
        for name, hashes in parsed.items():
            if hashes.size >= k:  # a figure that could have been shown
                others[name].append(hashes)
    for name, group in mine.items():
        if group.size < k:
            continue  # withheld anyway (retention.guarded_share)
        theirs_arrays = others[name]
        if any(
            is_small(int(np.setxor1d(group, other, assume_unique=True).size), k)
            for other in theirs_arrays
        ):
            _refuse_figures(user, k, name)
            return False
        # A rest needs two parts at least (`_left_uncovered`): sets are built only then.
        if len(theirs_arrays) >= 2 and _left_uncovered(
            frozenset(group.tolist()), [frozenset(other.tolist()) for other in theirs_arrays], k
        ):
            _refuse_figures(user, k, name)
            return False
    for name, old in (legacy or {}).items():
        if len(old) < k:
            continue
        if any(is_small(len(old ^ other), k) for other in legacy_others[name]):
            _refuse_figures(user, k, name)
            return False
        if _left_uncovered(old, legacy_others[name], k):
            _refuse_figures(user, k, name)
            return False
    if seen:
        return True
    _record(
        db,
        user,
        FIGURES_KIND,
        described,
        text,
        rows=int(everyone.size),
        count=count,
        k=k,
        report={"hashed": HASHED_BY, DIGEST: digest},
        expected=stamp,
        forgotten=forgotten,
    )
    return True


def _ids(people: frozenset[int]) -> npt.NDArray[np.int64]:
    return np.fromiter(people, dtype=np.int64, count=len(people))


def _split_figures(stored: str) -> dict[str, frozenset[str]]:
    """Stored figures' lines (`<figure>|<person>`) as each figure's people."""
    theirs: dict[str, set[str]] = defaultdict(set)
    for line in stored.split("\n") if stored else []:
        name, _, person = line.rpartition("|")
        theirs[name].add(person)
    return {name: frozenset(members) for name, members in theirs.items()}


def _parsed_figures(stored: str) -> dict[str, npt.NDArray[np.bytes_]]:
    """Stored figures' lines (`<figure>|<person>`) as each figure's sorted distinct person
    hashes. Lines hashed by `Hasher` (24 hex digits) are read in bulk: a run of lines whose
    names have the same length is a grid of fixed width, compared with numpy; any other
    shape line by line (`_split_figures`)."""
    if not stored:
        return {}
    raw = np.frombuffer(stored.encode("utf-8") + b"\n", dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    starts = np.r_[0, ends[:-1] + 1]
    width = 2 * PERSON_BYTES
    lengths = ends - starts - width - 1  # each line's name, when its person is 24 digits
    if (lengths < 0).any() or (raw[starts + lengths] != ord("|")).any():
        return _as_arrays(_split_figures(stored))
    parts: dict[str, list[npt.NDArray[np.bytes_]]] = defaultdict(list)
    changes = np.flatnonzero(np.diff(lengths)) + 1
    for first, last in zip(np.r_[0, changes], np.r_[changes, lengths.size], strict=True):
        size = int(lengths[first])
        line = size + 1 + width + 1
        grid = raw[starts[first] : starts[first] + (last - first) * line].reshape(-1, line)
        names = grid[:, :size]
        new = np.r_[0, np.flatnonzero((names[1:] != names[:-1]).any(axis=1)) + 1]
        hashes = np.ascontiguousarray(grid[:, size + 1 : size + 1 + width])
        if (hashes == ord("|")).any() or (hashes >= 128).any():
            return _as_arrays(_split_figures(stored))  # not a hash of 24 digits: as text
        flat = hashes.view(f"S{width}").ravel()
        for run_first, run_last in zip(new, np.r_[new[1:], grid.shape[0]], strict=True):
            name = names[run_first].tobytes().decode("utf-8")
            parts[name].append(flat[run_first:run_last])
    return {name: np.unique(np.concatenate(chunks)) for name, chunks in parts.items()}


def _as_arrays(groups: Mapping[str, frozenset[str]]) -> dict[str, npt.NDArray[np.bytes_]]:
    return {
        name: np.unique(np.array([person.encode() for person in people], dtype=np.bytes_))
        for name, people in groups.items()
    }


def _figures_text(groups: Mapping[str, npt.NDArray[np.bytes_]]) -> tuple[str, int]:
    """The lines `<figure>|<person>` of every figure's people, sorted as text, and how many:
    each figure's lines are a block (its people sorted), the blocks in the order of their
    names followed by "|" (a name holds no "|": `_split_figures` reads the last one)."""
    blocks = []
    count = 0
    for name in sorted(groups, key=lambda name: name + "|"):
        people = groups[name]
        if not people.size:
            continue
        prefix = np.frombuffer((name + "|").encode("utf-8"), dtype=np.uint8)
        width = people.dtype.itemsize
        grid = np.empty((people.size, prefix.size + width + 1), dtype=np.uint8)
        grid[:, : prefix.size] = prefix
        grid[:, prefix.size : -1] = people.view(np.uint8).reshape(people.size, width)
        grid[:, -1] = ord("\n")
        blocks.append(grid.tobytes())
        count += int(people.size)
    return b"".join(blocks)[:-1].decode("utf-8"), count


# Marks the figures' groups hashed by `Hasher` in their log row's report (lines kept before as
# HMACs have the same shape: those are compared with this view's groups hashed that way).
HASHED_BY = "aes-1"


def _figure_groups(
    groups: Mapping[str, frozenset[int]], hashed: Mapping[int, str]
) -> dict[str, frozenset[str]]:
    return {name: frozenset(hashed[p] for p in people) for name, people in groups.items()}


def _refuse_figures(user: StaffUser, k: int, figure: str) -> None:
    logger.warning(
        "figures withheld: their group differs from an earlier view's by fewer than k people",
        extra={"user_id": user.id, "k": k, "figure": figure},
    )


def _left_uncovered(
    mine: frozenset[Hashable], others: Sequence[frozenset[Hashable]], k: int
) -> bool:
    """Whether a selection minus the earlier selections inside it leaves 1 to k - 1 people,
    with this one counted among the earlier ones too: months 1 to 5 minus months 1-2 and
    4-5 is the people of month 3, though each pair differs by k or more."""
    everyone = [*others, mine]
    for whole in everyone:
        parts = [part for part in everyone if part < whole]
        if whole is not mine and mine not in parts:
            continue  # neither the whole nor one of its parts: checked when it was shown
        if len(parts) < 2:
            continue  # one part: the pairwise check above
        rest = whole.difference(*parts)
        if is_small(len(rest), k):
            return True
    return False


# Earlier selections weighed in the composition check (`isolates`), the most recent first
# among those linked to the new one (`linked`): it stays a fraction of a second; older ones
# are still compared pairwise.
COMPOSITION_WINDOW = 100


def linked(
    mine: frozenset[Hashable],
    earlier: Sequence[frozenset[Hashable]],
    window: int = COMPOSITION_WINDOW,
) -> list[frozenset[Hashable]]:
    """The earlier selections (most recent first) that share people with `mine`, directly
    or through other earlier selections, at most `window` of them.

    Only these can matter to `isolates`: a selection with nobody in common with them adds
    rows and atoms of its own (the selections-by-atoms matrix is block diagonal), which
    change no leverage of theirs. Without this, the most recent `window` selections were
    weighed whatever they were: January-February, then 100 views of other structures,
    then February-March and January-March isolated February unseen.
    """
    reached = set(mine)
    chosen: set[int] = set()
    grown = True
    while grown and len(chosen) < window:
        grown = False
        for index, selection in enumerate(earlier):
            if index in chosen or not selection or reached.isdisjoint(selection):
                continue
            chosen.add(index)
            reached.update(selection)
            grown = True
            if len(chosen) >= window:
                break
    return [earlier[index] for index in sorted(chosen)]


_ONE = 1.0 - 1e-9


def isolates(mine: frozenset[Hashable], earlier: Sequence[frozenset[Hashable]], k: int) -> bool:
    """Whether adding `mine` to the `earlier` selections lets sums and differences of
    their aggregates isolate 1 to k - 1 people that they did not isolate before.

    The people of all the selections fall into atoms: people in exactly the same
    selections. An aggregate (a count, a total of answers) over a set of atoms is known for
    each selection; adding and subtracting them gives the aggregate of an atom exactly when
    the atom's indicator is a linear combination of the selections' indicators, that is
    when its leverage in the selections-by-atoms matrix is 1. This covers composition
    (structure A, then A and B together, then B: the overlap of A and B), and time (the
    same filters after a few new answers: the new people). Only single atoms are checked:
    a few small atoms whose SUM is isolable (each not) are not (finding the sparsest
    combination is NP-hard in general); docs/PRIVACY.md says so.
    """
    others = [s for s in earlier if s]
    if not others or not mine:
        return False
    selections = [*others, mine]
    signature: dict[Hashable, int] = {}
    for bit, selection in enumerate(selections):
        for person in selection:
            signature[person] = signature.get(person, 0) | (1 << bit)
    atoms = Counter(signature.values())
    small = [mask for mask, size in atoms.items() if size < k]
    if not small:
        return False
    masks = list(atoms)
    column = {mask: index for index, mask in enumerate(masks)}
    matrix = np.array(
        [[(mask >> bit) & 1 for mask in masks] for bit in range(len(selections))],
        dtype=np.float64,
    )
    with_mine = _leverage(matrix)
    without = _leverage(matrix[:-1])
    return any(with_mine[column[mask]] >= _ONE and without[column[mask]] < _ONE for mask in small)


def _leverage(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per column, the squared norm of its projection on the row space: 1 when its unit
    vector is a combination of the rows."""
    if not matrix.size:
        return np.zeros(matrix.shape[1])
    _, values, rows = np.linalg.svd(matrix, full_matrices=False)
    rank = int((values > values.max() * max(matrix.shape) * 1e-12).sum()) if values.size else 0
    basis = rows[:rank]
    leverage: npt.NDArray[np.float64] = (basis**2).sum(axis=0)
    return leverage


def _refuse(user: StaffUser, k: int, why: str) -> NoReturn:
    logger.warning("view refused: %s", why, extra={"user_id": user.id, "k": k})
    raise ScopeError(_refused(k), 422)


def _busy() -> object:
    return _l(
        "Une de vos exportations est en cours de préparation : cette vue sera disponible dès "
        "qu'elle sera prête. Réessayez dans un moment."
    )


def _refused(k: int) -> object:
    return _l(
        "Cette sélection diffère d'une sélection que vous avez déjà consultée de moins de "
        "%(k)s personnes : comparer les deux permettrait de reconnaître ces personnes. Rien "
        "n'est affiché. Reprenez la même sélection ou élargissez-la.",
        k=k,
    )


def _same_filters(stored: str, described: str) -> bool:
    try:
        parsed = json.loads(stored or "{}")
    except ValueError:
        return False
    return json.dumps(parsed, ensure_ascii=False, sort_keys=True) == described


def viewed_before(db: Session, user_id: int, filters: EvaluationFilters) -> bool:
    """Whether this evaluator's memory holds a dashboard view of these very filters. If not,
    their next view of them runs the whole check (`guard_view` with nothing sealed nor
    patched: the selection read, hashed and remembered, seconds at a million people), which
    the dashboard announces first (evaluation/first_view.py)."""
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    remembered = db.scalars(
        select(ExportLog.filters)
        .join(ExportSelection, ExportSelection.export_id == ExportLog.id)
        .where(ExportSelection.user_id == user_id, ExportLog.kind == KIND)
        .distinct()
    )
    return any(_same_filters(stored, described) for stored in remembered)


class Checked:
    """Views already checked and remembered, keyed by evaluator, selection and data stamp
    (bounded, thread-safe), with what the check found (the sub-groups withheld): the same
    view on the same data again needs no new check, since every selection remembered after
    it was compared with it then (the check is symmetric).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._keys: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key) is not None

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return self._keys[key]
            return None

    def add(self, key: Hashable, found: object = True) -> None:
        with self._lock:
            self._keys[key] = found
            self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)


def forgetting_mark(db: Session, user_id: int) -> int:
    """How many times a forgetting rewrote this evaluator's memory (forgetting.py,
    `forgetting.mark_forgotten`): one row of `data_version`, under the evaluator's id
    negated (row 1 is the data version). Read before a check's selection, compared once the
    memory is held (`hold_unchanged`)."""
    found = db.scalar(select(DataVersion.n).where(DataVersion.id == -user_id))
    return int(found or 0)


@dataclass(frozen=True)
class MemoryStamp:
    """What an evaluator's memory (their remembered selections and groups, every
    `export_selection` row of theirs) holds, in three numbers: the newest log row's id, how
    many rows, the sum of their ids. A row remembered or forgotten since changes it (one
    committed late under an earlier id changes the count and the sum)."""

    last: int
    count: int
    total: int


def memory_stamp(db: Session, user: StaffUser) -> MemoryStamp:
    """The evaluator's memory as it is now (`MemoryStamp`): one aggregate query."""
    last, count, total = db.execute(
        select(func.max(ExportLog.id), func.count(), func.sum(ExportSelection.id))
        .select_from(ExportSelection)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id)
    ).one()
    return MemoryStamp(int(last or 0), int(count or 0), int(total or 0))


def hold_unchanged(
    db: Session, user: StaffUser, expected: MemoryStamp, forgotten: int | None = None
) -> None:
    """Before remembering what a check let through: hold the evaluator's row until the
    transaction ends (`joins.hold`, as exports do: every other writer of their memory waits
    for it), then read their memory's stamp again: joins.MemoryChanged when it is not
    `expected` (read as the check began): another view or export of theirs was remembered
    meanwhile, which the check did not compare with (the caller checks again).

    `forgotten`: the evaluator's forgetting mark read before the check's selection (or
    groups) was. Moved: an erasure, purge or deletion rewrote their memory in between
    (forgetting.py), whose lines no longer compare with this selection's, read before it
    (the person's own hash here, a stranger's there: attack9 A9-1). Checking again would
    not help (the selection is stale too): ScopeError 503, try again, as when an export
    holds the memory; never shown unchecked."""
    try:
        joins.hold(db, user, write=True, wait=VIEW_WAIT_SECONDS)
    except joins.MemoryBusy:
        logger.info("view withheld: an export holds the memory", extra={"user_id": user.id})
        raise ScopeError(_busy(), 503) from None
    if forgotten is not None and forgetting_mark(db, user.id) != forgotten:
        logger.info(
            "view withheld: the evaluator's memory was forgotten meanwhile",
            extra={"user_id": user.id},
        )
        raise ScopeError(_busy(), 503)
    if memory_stamp(db, user) != expected:
        raise joins.MemoryChanged("another view or export of this evaluator was remembered")


_Verdict = TypeVar("_Verdict")


def _again_if_changed(
    check: Callable[[MemoryStamp], _Verdict],
    db: Session,
    user: StaffUser,
    refused: Callable[[], _Verdict],
) -> _Verdict:
    """`check` against the evaluator's memory as it is now; once more when it changed before
    the check could remember its selection (`hold_unchanged`). The second time the
    evaluator's row is already held (the first took it): nobody else can remember anything
    of theirs until this transaction ends, so the memory cannot move again; should it, the
    verdict is `refused()` (the view refused, its tables or figures withheld), never a view
    shown unchecked."""
    for _attempt in range(2):
        try:
            return check(memory_stamp(db, user))
        except joins.MemoryChanged:
            logger.info("memory changed during a check: checked again", extra={"user_id": user.id})
    logger.warning("memory changed while held: refused", extra={"user_id": user.id})
    return refused()


def _record(
    db: Session,
    user: StaffUser,
    kind: str,
    described: str,
    lines: Sequence[str] | str | npt.NDArray[np.bytes_],
    *,
    rows: int,
    count: int,
    k: int,
    report: Mapping[str, object] | None = None,
    expected: MemoryStamp | None = None,
    delta: Delta | None = None,
    forgotten: int | None = None,
) -> int:
    """Remember a selection shown to `user` (keyed hashes only), for later comparisons:
    binary records (`RECORD`, sorted) as they are, text lines (the figures' groups) as text;
    `delta`: only the records changed since a row (`Patched`). Returns the row's id.
    `expected`: the memory as the check began (`hold_unchanged`: MemoryChanged when
    another view or export of this evaluator was remembered since)."""
    if expected is not None:
        hold_unchanged(db, user, expected, forgotten)
    log = ExportLog(
        user_id=user.id,
        kind=kind,
        filters=described,
        row_count=rows,
        k=k,
        report=json.dumps({"k": k, **(report or {})}),
    )
    db.add(log)
    db.flush()
    if isinstance(lines, np.ndarray):
        row = ExportSelection(
            export_id=log.id,
            user_id=user.id,
            count=count,
            people="",
            lines=_blob(lines if delta is None else delta.records),
            base_id=None if delta is None else delta.base,
        )
    else:
        people = lines if isinstance(lines, str) else "\n".join(lines)
        row = ExportSelection(export_id=log.id, user_id=user.id, count=count, people=people)
    db.add(row)
    db.flush()
    return row.id


def _blob(records: npt.NDArray[np.bytes_]) -> bytes:
    """Binary records as stored (`ExportSelection.lines`): one after the other."""
    if records.dtype != np.dtype(RECORD):
        raise TypeError(f"lines to keep must be {RECORD} records")
    return records.tobytes()


# --- the same responses as a view already checked (issue 18) ---------------------------------

# Rows of the evaluator's memory looked at, newest first, after a seal: past this many, the
# full check runs (it would read them all anyway).
SEAL_WINDOW = 200


@dataclass(frozen=True)
class Seal:
    """A selection's cells (`cell_sums_of`: responses and four sums, of all its cells then of
    its paper cells) and the sub-groups checked. `paper`: the people with a paper response,
    counted by the full check (kept with its verdict: not part of the hashed message, which
    the paper cells' sums already bind it to)."""

    sums: tuple[int, ...]
    groups: Mapping[str, Iterable[str]]
    paper: int | None = None
    # The newest response id of the selection checked (every one of its responses has an id
    # up to it), and the row of its lines (`guard_view`'s): kept with the seal, so that a
    # later view after new answers starts from them (`patched_view`). None: not kept.
    newest: int | None = None
    row: int | None = None

    def message(self, k: int) -> bytes:
        groups = {name: sorted(forms) for name, forms in self.groups.items()}
        return json.dumps([k, groups, list(self.sums)], sort_keys=True).encode()


@dataclass(frozen=True)
class Sealed:
    """The verdict of a full check of the same responses, valid now (`sealed_view`)."""

    refused: frozenset[str]
    people: int
    # The people with a paper response (None: sealed before it was kept).
    paper: int | None = None


def cell_sums_of(db: Session, filters: EvaluationFilters) -> tuple[int, ...] | None:
    """(responses, four sums) of the selection's cells in `fact_cell`, then the same of its
    paper cells: equal for two selections of the same responses of the same people, forms
    and channels, different otherwise but with odds of 2**-128. None when the filters are not
    whole months (no cells)."""
    try:
        conditions = indicators.fact_conditions(filters, FactCell)
    except indicators.NotWholeMonths:
        return None
    paper = FactCell.channel == Channel.PAPER.value
    columns = [getattr(FactCell, name) for name in facts.CELL_SUMS]
    found = db.execute(
        select(
            *(func.coalesce(func.sum(column), 0) for column in columns),
            *(func.coalesce(func.sum(case((paper, column), else_=0)), 0) for column in columns),
        ).where(*conditions)
    ).one()
    return tuple(int(value) for value in found)


def selection_sums(found: Selection, key: bytes) -> tuple[int, ...]:
    """The same sums as `cell_sums_of`, from the selection's ids read from the responses
    (with no channels read, the paper sums are -1: never equal to the cells'; `key`: the
    app's digest key, `facts.session_cell_key`)."""
    parts = facts.cell_parts(found.response, found.person, found.form.astype(np.int64), key)
    every = (int(found.response.size), *(int(total) for total in parts.sum(axis=0)))
    if found.paper is None:
        return (*every, *(-1 for _ in every))
    paper = parts[found.paper]
    return (*every, int(paper.shape[0]), *(int(total) for total in paper.sum(axis=0)))


def _seal(
    db: Session,
    user: StaffUser,
    described: str,
    k: int,
    secret: str | bytes,
    seal: Seal,
    people: int,
    refused: frozenset[str],
    before: MemoryStamp,
    rows: Mapping[str, int] | None = None,
    small: Mapping[str, npt.NDArray[np.bytes_]] | None = None,
) -> None:
    """Keep the verdict of this full check (`sealed_view`), in place of the evaluator's
    earlier ones for these filters. `before`: the evaluator's memory as the check began
    (a row remembered by another request while it ran is then newer than the seal's
    `last_log`, or changes the count up to it: `sealed_view` sees it). `rows`: the row of
    each group's lines; with the selection's (`Seal.row`), where a later view after new
    answers starts from (`patched_view`), when every one of them is remembered or, fewer than
    k, in `small` (their records kept here, as hexadecimal text)."""
    base = None
    every = {"": seal.row, **(rows or {})}
    inline = {name: lines.tobytes().hex() for name, lines in (small or {}).items()}
    if seal.newest is not None and all(
        every.get(name) or name in inline for name in ("", *seal.groups)
    ):
        base = json.dumps(
            {
                "sums": list(seal.sums),
                "newest": seal.newest,
                "rows": {name: row for name, row in every.items() if row},
                "lines": inline,
                "people": people,
                "paper": seal.paper,
            },
            sort_keys=True,
        )
    db.execute(
        delete(DashboardSeal).where(
            DashboardSeal.user_id == user.id, DashboardSeal.filters == described
        )
    )
    db.add(
        DashboardSeal(
            user_id=user.id,
            filters=described,
            seal=Hasher(secret, user.id).seal(seal.message(k)),
            refused=json.dumps(sorted(refused)),
            people=people,
            paper=seal.paper,
            last_log=before.last,
            remembered=before.count,
            base=base,
        )
    )
    db.flush()


def sealed_view(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
    seal: Seal,
) -> Sealed | None:
    """The verdict of the full check of an earlier view of the same filters, same k and same
    responses (`seal`), when the full check now would give it again; else None.

    It would when nothing the checks read has been remembered since that check but views of
    the same filters and figures' groups (which `guard_view` and `guard_tables` do not
    compare with this selection): with the same lines (the same responses of the same people
    and forms, `Seal.sums`), the same earlier selections and groups, both checks compute the
    same thing. Any other row since (an export, a view of other filters) and the full check
    runs again (and seals its verdict)."""
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    found = db.execute(
        select(
            DashboardSeal.refused,
            DashboardSeal.people,
            DashboardSeal.paper,
            DashboardSeal.last_log,
            DashboardSeal.remembered,
        ).where(
            DashboardSeal.user_id == user.id,
            DashboardSeal.filters == described,
            DashboardSeal.seal == Hasher(secret, user.id).seal(seal.message(k)),
        )
    ).first()
    if found is None:
        return None
    refused, people, paper, last, remembered = found
    # What the checks read: the evaluator's remembered selections (`export_selection`).
    mine = (
        select(ExportLog.kind, ExportLog.filters)
        .select_from(ExportSelection)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id)
    )
    before = db.scalar(
        select(func.count()).select_from(mine.where(ExportLog.id <= last).subquery())
    )
    if before != remembered:
        return None  # one committed since under an earlier id
    since = db.execute(
        mine.where(ExportLog.id > last).order_by(ExportLog.id).limit(SEAL_WINDOW + 1)
    ).all()
    if len(since) > SEAL_WINDOW:
        return None
    for kind, their_filters in since:
        if kind == FIGURES_KIND:
            continue  # compared with figures' groups only
        if kind not in (KIND, TABLES_KIND) or not _same_filters(their_filters, described):
            return None  # remembered since, and read by the checks: they must run
    try:
        names = json.loads(refused or "[]")
    except ValueError:
        return None
    return Sealed(
        frozenset(str(name) for name in names),
        int(people),
        None if paper is None else int(paper),
    )


# --- after new answers inside the selection: the changed lines only (issue 18, dash16) -------

# Rows of changed lines on one whole row at most; past it, the lines are remembered whole.
DELTA_DEPTH = 8


@dataclass(frozen=True)
class Delta:
    """A group's lines to remember as those changed since the row `base`: the new records
    of the people whose lines changed or who are new (`ExportSelection.base_id`)."""

    base: int
    records: npt.NDArray[np.bytes_]


def _located(
    base: npt.NDArray[np.bytes_], changed: npt.NDArray[np.bytes_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each record of `changed` (sorted, one per person) goes in `base` (the same):
    the index of the same person's record, or where it would be inserted, and whether the
    person is there. Found by the records themselves (a person's record is the first at or
    after their hash followed by zeros): nothing of `base` is copied."""
    grid = changed.view(np.uint8).reshape(changed.size, RECORD_BYTES)
    keys = grid.copy()
    keys[:, PERSON_BYTES:] = 0
    at = np.searchsorted(base, keys.view(RECORD).ravel())
    hit = at < base.size
    found = base[at[hit]].view(np.uint8).reshape(-1, RECORD_BYTES)[:, :PERSON_BYTES]
    hit[hit] = (found == grid[hit, :PERSON_BYTES]).all(axis=1)
    return at, hit


def _replaced(
    base: npt.NDArray[np.bytes_], changed: npt.NDArray[np.bytes_]
) -> npt.NDArray[np.bytes_]:
    """The records of `base` (sorted, one per person) with those of `changed` (the same) in
    place of the same person's, or added, still sorted: a copy or two, no sort."""
    if not changed.size:
        return base
    if not base.size:
        return changed
    at, hit = _located(base, changed)
    whole = np.array(base, copy=True)
    whole[at[hit]] = changed[hit]
    if hit.all():
        return whole
    merged: npt.NDArray[np.bytes_] = np.insert(whole, at[~hit], changed[~hit])
    return merged


def _xored(
    base: npt.NDArray[np.bytes_], added: npt.NDArray[np.bytes_]
) -> tuple[npt.NDArray[np.bytes_], npt.NDArray[np.bytes_]]:
    """`base`'s records once the responses `added` (a record per person: the XOR of the hashes
    of their responses added) are added to them: a person's responses' hash is the XOR of
    their responses' hashes, so it is XORed with the added ones (a person new to the lines
    gets theirs). Returns the whole records and the changed ones (sorted)."""
    if not added.size:
        return base, np.zeros(0, dtype=RECORD)
    changed = np.array(added, copy=True)
    if base.size:
        at, hit = _located(base, added)
        old = base[at[hit]].view(np.uint8).reshape(-1, RECORD_BYTES)[:, PERSON_BYTES:]
        grid = changed.view(np.uint8).reshape(changed.size, RECORD_BYTES)
        grid[hit, PERSON_BYTES:] ^= old
    return _replaced(base, changed), changed


def _remembered_row(db: Session, row_id: int) -> tuple[str, bytes | None, int | None]:
    """A remembered row's `people`, `lines` and `base_id`. On PostgreSQL its lines come in
    binary (psycopg's binary results): as text, a bytea is sent in hexadecimal, twice its
    size, and decoded (about 0.5 s for a selection's 20 MB at 1,000,000 people)."""
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        cursor_of = getattr(driver, "cursor", None)
        if cursor_of is not None:
            with cursor_of(binary=True) as cursor:
                cursor.execute(
                    "SELECT people, lines, base_id FROM export_selection WHERE id = %s",
                    (row_id,),
                )
                found = cursor.fetchone()
            if found is None:
                raise LookupError(f"remembered row {row_id} not found")
            people, blob, base = found
            return str(people), None if blob is None else bytes(blob), base
    people, blob, base = db.execute(
        select(ExportSelection.people, ExportSelection.lines, ExportSelection.base_id).where(
            ExportSelection.id == row_id
        )
    ).one()
    return people, None if blob is None else bytes(blob), base


def remembered_records(db: Session, row_id: int) -> tuple[npt.NDArray[np.bytes_] | None, int]:
    """A remembered row's whole lines as sorted binary records (None: kept in an earlier text
    format, `_Legacy`), and how many rows of changed lines it is from a whole row: its base's
    lines (themselves perhaps changed lines of another) with its own in place."""
    chain: list[npt.NDArray[np.bytes_]] = []
    current: int | None = row_id
    while current is not None:
        people, blob, base = _remembered_row(db, current)
        if base is None:
            name, bar, _rest = people.partition("|")
            whole = _stored(people, blob, name + bar)
            if whole is None:
                return None, 0
            for changed in reversed(chain):
                whole = _replaced(whole, changed)
            return whole, len(chain)
        chain.append(_records(bytes(blob or b"")))
        current = base
    raise AssertionError("not reached")


def remembered_lines(db: Session, row: ExportSelection) -> list[str]:
    """`stored_lines` of a remembered row, whether it holds its lines whole or changed ones."""
    return row_lines(db, row.id, row.people, row.lines, row.base_id)


def row_lines(
    db: Session, row_id: int, people: str, lines: bytes | None, base_id: int | None
) -> list[str]:
    """`remembered_lines` from a row's columns (a streamed read that maps no rows)."""
    if base_id is None:
        return stored_lines(people, lines)
    records, _depth = remembered_records(db, row_id)
    prefix = people if people.endswith("|") else ""
    return [prefix + line for line in text_lines(records if records is not None else _records(b""))]


class Patched(Hashed):
    """A selection's lines (and its groups') as `Hashed` gives them after a full read, made
    from the lines remembered by an earlier check and the responses added since
    (`patched_view`): the same records, read and hashed for the new responses only. Each
    group's lines are known by their number and set digest (`held`) and read whole only when
    a check compares them (`Lines`)."""

    def __init__(
        self,
        people: int,
        lines: Mapping[frozenset[int] | None, Lines],
        deltas: Mapping[frozenset[int] | None, Delta | None],
        paper: int | None,
        newest: int,
    ) -> None:
        self.people = people
        self._lines = lines
        self._deltas = deltas
        self.paper = paper
        self.newest = newest

    def lines(self, forms: frozenset[int] | None = None) -> npt.NDArray[np.bytes_]:
        return self._lines[forms].whole()

    def held(self, forms: frozenset[int] | None = None) -> Lines:
        """The lines of `forms`' group, read whole only if needed."""
        return self._lines[forms]

    def delta(self, forms: frozenset[int] | None) -> Delta | None:
        """The lines of `forms`' group to remember as changed lines (None: whole)."""
        return self._deltas.get(forms)


@dataclass(frozen=True)
class _Link:
    """A remembered row of a chain of changed lines (`ExportSelection.base_id`)."""

    base: int | None
    count: int  # its whole lines
    kind: str
    report: str | None
    name: str  # its group ("": the selection)
    changed: npt.NDArray[np.bytes_] | None  # a row of changed lines: them
    stored: int | None  # a whole row: the bytes of its records (None: kept as text)


def _chains(db: Session, rows: Iterable[int]) -> dict[int, _Link]:
    """The rows `rows` and those their changed lines stand on, down to whole rows: for each,
    its base, size, report and changed lines (a few records), not the lines of a whole row."""
    links: dict[int, _Link] = {}
    wanted = set(rows)
    for _level in range(DELTA_DEPTH + 2):
        if not wanted:
            break
        for row_id, base, count, kind, report, head, changed, stored in db.execute(
            select(
                ExportSelection.id,
                ExportSelection.base_id,
                ExportSelection.count,
                ExportLog.kind,
                ExportLog.report,
                func.substr(ExportSelection.people, 1, _HEAD),
                case((ExportSelection.base_id.is_not(None), ExportSelection.lines)),
                func.length(ExportSelection.lines),
            )
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportSelection.id.in_(sorted(wanted)))
        ):
            links[row_id] = _Link(
                base,
                int(count),
                str(kind),
                report,
                (head or "").partition("|")[0] if "|" in (head or "") else "",
                None if base is None else _records(bytes(changed or b"")),
                None if stored is None else int(stored),
            )
        wanted = {
            link.base for link in links.values() if link.base is not None and link.base not in links
        }
    return links


# The records read around each person's expected place (`_looked_up`): WINDOW_SCALE sqrt(n)
# + WINDOW_EXTRA either side; the whole row is read instead when the windows would hold more
# than 1 / WINDOW_SHARE of it.
WINDOW_SCALE = 3
WINDOW_EXTRA = 32
WINDOW_SHARE = 4


def _looked_up(
    db: Session, row_id: int, stored: int, keys: npt.NDArray[np.bytes_]
) -> tuple[npt.NDArray[np.bytes_], npt.NDArray[np.bool_]] | None:
    """The records of the people of `keys` (sorted records, one per person) in the whole row
    `row_id` (`stored` bytes of sorted records), and which are there; None when they could
    not be found in the few records read (the row is then read whole).

    The people's hashes are uniform (AES), so a person's record lies near the share of the
    row their hash is of all hashes: about sqrt(n) / 2 records away at most for one in a
    hundred million. A window of 3 sqrt(n) + 32 records either side is read (a `substr` of
    the value, kept uncompressed: PostgreSQL reads only its chunks), and a person counts as
    there or not only when the window holds the place their record has or would have, not
    at its edge; else None."""
    total = stored // RECORD_BYTES
    found = np.zeros(keys.size, dtype=RECORD)
    there = np.zeros(keys.size, dtype=bool)
    if not keys.size or not total:
        return found, there
    half = WINDOW_SCALE * math.isqrt(total) + WINDOW_EXTRA
    grid = keys.view(np.uint8).reshape(keys.size, RECORD_BYTES)
    lead = np.ascontiguousarray(grid[:, :8]).view(">u8").ravel()
    centre = (lead.astype(np.float64) / 2.0**64 * total).astype(np.int64)
    starts = np.clip(centre - half, 0, total)
    ends = np.clip(centre + half + 1, 0, total)
    if int((ends - starts).sum()) * WINDOW_SHARE > total:
        return None  # about as much as the whole row: read it whole
    windows = [
        select(
            literal(index).label("at"),
            func.substr(
                ExportSelection.lines,
                int(start) * RECORD_BYTES + 1,
                int(end - start) * RECORD_BYTES,
            ),
        ).where(ExportSelection.id == row_id)
        for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    ]
    query = windows[0] if len(windows) == 1 else union_all(*windows)
    read: dict[int, bytes] = {int(at): blob for at, blob in db.execute(query)}
    for index in range(keys.size):
        blob = read.get(index)
        start, end = int(starts[index]), int(ends[index])
        if blob is None or len(blob) != (end - start) * RECORD_BYTES:
            return None
        window = _records(bytes(blob))
        at, hit = _located(window, keys[index : index + 1])
        place = int(at[0])
        if hit[0]:
            found[index], there[index] = window[place], True
        elif not ((place > 0 or start == 0) and (place < window.size or end == total)):
            return None  # at the window's edge: the person may be beyond it
    return found, there


def _patched_group(
    db: Session,
    hasher: Hasher,
    row: int,
    links: Mapping[int, _Link],
    added: npt.NDArray[np.bytes_],
) -> tuple[Lines, Delta | None] | None:
    """The lines of a group remembered in `row` (whole or changed lines) once the responses
    `added` are added (`_xored`'s), known by their number and set digest without reading the
    row's lines whole: only the records of the people of `added`, in the rows of changed
    lines of the chain (a few records each) and then in the whole row (`_looked_up`). The set
    digest is the row's (its report, `_Digests.mark`) minus that of their records there, plus
    that of their new ones. None when the row has no set digest, is kept as text, or the
    records could not be found so (the row is then read whole)."""
    top = links.get(row)
    if top is None:
        return None
    stored = (
        _stored_digest(top.report)
        if top.kind == KIND
        else _stored_digests(top.report).get(top.name)
    )
    mark = _mark_of(stored, top.count)
    if mark is None:
        return None
    chain: list[npt.NDArray[np.bytes_]] = []  # changed lines, newest first
    current: int | None = row
    while current is not None:
        link = links.get(current)
        if link is None:
            return None
        if link.base is None:
            break
        chain.append(link.changed if link.changed is not None else np.zeros(0, dtype=RECORD))
        current = link.base
    if current is None:
        return None
    root = links[current]
    if root.stored is None:
        return None  # kept as text (before dash4): read whole
    then = np.zeros(added.size, dtype=RECORD)  # each person's record in `row`, if any
    there = np.zeros(added.size, dtype=bool)
    for changed in chain:
        pending = np.flatnonzero(~there)
        if not pending.size or not changed.size:
            continue
        at, hit = _located(changed, added[pending])
        then[pending[hit]] = changed[at[hit]]
        there[pending[hit]] = True
    pending = np.flatnonzero(~there)
    if pending.size:
        looked = _looked_up(db, current, root.stored, added[pending])
        if looked is None:
            return None
        then[pending], there[pending] = looked
    changed = np.array(added, copy=True)
    grid = changed.view(np.uint8).reshape(changed.size, RECORD_BYTES)
    grid[there, PERSON_BYTES:] ^= (
        then[there].view(np.uint8).reshape(-1, RECORD_BYTES)[:, PERSON_BYTES:]
    )
    size = top.count + int((~there).sum())
    mark = (mark - hasher.mark(then[there]) + hasher.mark(changed)) % _MARK_MODULUS

    def whole() -> npt.NDArray[np.bytes_]:
        records, _depth = remembered_records(db, row)
        if records is None:
            raise AssertionError("a whole row kept as records is read as records")
        return _xored(records, added)[0]

    delta = (
        Delta(row, changed) if len(chain) < DELTA_DEPTH and changed.size * 4 <= top.count else None
    )
    return Lines(size, whole, mark), delta


def patched_view(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    secret: str | bytes,
    sums: tuple[int, ...],
    groups: Mapping[str, Iterable[str]],
    key: bytes,
) -> Patched | None:
    """The selection's lines and its groups' (`Patched`), from those remembered by the
    evaluator's last full check of these filters (`DashboardSeal.base`) and the responses
    added since; None when they cannot be (the full read then runs).

    They can when the selection's responses up to that check's newest id are exactly those
    it read: the cells' sums now (`sums`, `cell_sums_of`) are that check's plus those of the
    responses of a greater id read now (`read_selection(after=...)`), count and four sums,
    of all the cells and of the paper ones. A response removed, moved, or added under an
    older id changes the sums of the older ones (odds of 2**-128 otherwise, as for seals):
    no patch. Then every person's responses are theirs then plus theirs added, so the hash
    of their responses is that check's XOR the hash of those added (`_xored`), and every
    other line is the same: the lines are exactly those of a full read."""
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    stored = db.scalar(
        select(DashboardSeal.base).where(
            DashboardSeal.user_id == user.id,
            DashboardSeal.filters == described,
            DashboardSeal.base.is_not(None),
        )
    )
    try:
        base = json.loads(stored or "null")
        base_sums = tuple(int(value) for value in base["sums"])
        newest = int(base["newest"])
        rows = {str(name): int(row) for name, row in base["rows"].items()}
        inline = {str(name): bytes.fromhex(str(text)) for name, text in base["lines"].items()}
        paper_then = None if base["paper"] is None else int(base["paper"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    # Per group (None: the whole selection), the row of its lines, or its lines (too few to
    # be remembered).
    wanted: dict[frozenset[int] | None, int | bytes | None] = {None: rows.get("")}
    for name, forms in groups.items():
        wanted[frozenset(_FORM_INDEX[form] for form in forms)] = rows.get(name, inline.get(name))
    if len(base_sums) != len(sums) or any(row is None for row in wanted.values()):
        return None
    added = read_selection(db, filters, after=newest)
    if added.paper is None:
        return None
    if any(
        now != then + new
        for now, then, new in zip(sums, base_sums, selection_sums(added, key), strict=True)
    ):
        return None  # other responses up to `newest` than the check read: read them all
    hasher = Hasher(secret, user.id)
    hashed = Hashed(hasher, added)
    links = _chains(db, [row for row in wanted.values() if isinstance(row, int)])
    lines: dict[frozenset[int] | None, Lines] = {}
    deltas: dict[frozenset[int] | None, Delta | None] = {}
    for wanted_forms, row in wanted.items():
        new = hashed.lines(wanted_forms)
        if isinstance(row, int):
            # The records of the people who answered only, and the set digest updated.
            found = _patched_group(db, hasher, row, links, new)
            if found is not None:
                lines[wanted_forms], deltas[wanted_forms] = found
                continue
        then: npt.NDArray[np.bytes_] | None
        if isinstance(row, bytes):
            then, depth = np.array(_records(row)), DELTA_DEPTH  # no row: written whole
        elif isinstance(row, int):
            then, depth = remembered_records(db, row)  # read whole
        else:
            return None
        if then is None:
            return None
        whole, changed = _xored(then, new)
        lines[wanted_forms] = Lines.of(whole)
        # Remembered as changed lines while few, on a short chain; else whole.
        if isinstance(row, int) and depth < DELTA_DEPTH and changed.size * 4 <= then.size:
            deltas[wanted_forms] = Delta(row, changed)
        else:
            deltas[wanted_forms] = None
    paper = None
    if paper_then is not None:
        mine = np.unique(added.person[added.paper])
        before: set[int] = set()
        if mine.size:
            before = set(
                db.scalars(
                    select(Response.beneficiary_id)
                    .where(
                        *response_conditions(filters),
                        Response.id <= newest,
                        Response.channel == Channel.PAPER.value,
                        Response.beneficiary_id.in_(mine.tolist()),
                    )
                    .distinct()
                )
            )
        paper = paper_then + int(mine.size) - len(before)
    top = int(added.response.max()) if added.response.size else newest
    return Patched(int(lines[None].size), lines, deltas, paper, max(newest, top))
