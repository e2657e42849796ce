"""Typing paper forms into the database: first and second entry, discrepancies.

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

One module a job; callers import from the module that does the job:

- lookup: find the person by code, open (or create) the paper response, check access;
- screen: build the entry screen (questions in the paper's order and numbering);
- values: parse posted values, keep those that apply, list those not typed yet;
- saving: save and finish the first entry, draw it for a blind second entry;
- second: the second-entry queue, typing it blind, comparing it with the first;
- resolution: settle the differences (structure administrators);
- rates: discrepancy rates per item and structure, and the structure's settings.

None of them commits: the view (or CLI command) that calls them commits once.
"""
