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

Every change is recorded in the audit trail in the same transaction (platform/audit.py).

The package is split by job, one module each; this module gathers their public names for the
views, the demo and the tests (`from selfcheck.entry import operations as entry`):

- lookup: find the person by code, open (or create) the paper response, check access;
- screen: build the entry screen (questions in the paper's order and numbering);
- values: parse posted values, keep those that apply, list those not typed yet;
- saving: save and finish the first entry, draw it for a blind second entry;
- second: the second-entry queue, typing it blind, comparing it with the first;
- resolution: settle the differences (structure administrators);
- rates: discrepancy rates per item and structure, and the structure's settings.

None of them commits: the view (or CLI command) that calls them commits once.
"""

from __future__ import annotations

from selfcheck.entry.lookup import (
    EntryError,
    load_paper_response,
    open_entry,
    open_uncoded,
)
from selfcheck.entry.rates import (
    discrepancy_rates,
    set_followup_reminder,
    update_settings,
)
from selfcheck.entry.resolution import (
    discrepancy_views,
    load_resolution,
    parse_resolution,
    pending_resolutions,
    resolve,
)
from selfcheck.entry.saving import (
    SaveResult,
    draw_double_entry,
    random_percent,
    save_entry,
)
from selfcheck.entry.screen import (
    build_screen,
)
from selfcheck.entry.second import (
    QueueState,
    load_second_entry,
    save_second_entry,
    second_entry_queue,
    second_entry_values,
    start_second_entry,
)
from selfcheck.entry.values import (
    Answers,
    Values,
    not_typed_errors,
    parse_values,
)

__all__ = [
    "Answers",
    "EntryError",
    "QueueState",
    "SaveResult",
    "Values",
    "build_screen",
    "discrepancy_rates",
    "discrepancy_views",
    "draw_double_entry",
    "load_paper_response",
    "load_resolution",
    "load_second_entry",
    "not_typed_errors",
    "open_entry",
    "open_uncoded",
    "parse_resolution",
    "parse_values",
    "pending_resolutions",
    "random_percent",
    "resolve",
    "save_entry",
    "save_second_entry",
    "second_entry_queue",
    "second_entry_values",
    "set_followup_reminder",
    "start_second_entry",
    "update_settings",
]
