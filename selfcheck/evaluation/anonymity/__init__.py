"""k-anonymity of records with the least information lost (no Flask, no database).

`anonymise(records, quasi_identifiers, k)` chooses a generalisation level per
quasi-identifier and masks a few cells locally (`MASKED`, never None), leaving people out
only as a last resort; the `Release` carries the records and a `UtilityReport`. See
`engine` for the method and why it is not a library's.
"""

from selfcheck.evaluation.anonymity.engine import (
    anonymise,
    combination_ids,
    combination_sizes,
)
from selfcheck.evaluation.anonymity.model import (
    MASKED,
    CategoryShift,
    ColumnReport,
    Columns,
    Masked,
    QuasiIdentifier,
    Release,
    UtilityReport,
)

__all__ = [
    "MASKED",
    "CategoryShift",
    "ColumnReport",
    "Columns",
    "Masked",
    "QuasiIdentifier",
    "Release",
    "UtilityReport",
    "anonymise",
    "combination_ids",
    "combination_sizes",
]
