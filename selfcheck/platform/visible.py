"""Names other users read (a structure's name, a staff account's address): one line of
visible text. A format character (Unicode category Cf: zero-width spaces and joiners, the
bidirectional marks, embeddings, overrides and isolates, the byte order mark, the soft
hyphen) shows nothing or reorders the text around it: one name could pass for another, or
turn another user's screen around it backwards. Refused with a plain message rather than
dropped, so what is kept is what the person sees they typed."""

from __future__ import annotations

import unicodedata
from typing import Any

from wtforms import ValidationError

# Format characters; line and paragraph separators (a line break no check of controls sees);
# lone surrogates (bytes that were not UTF-8 on a command line: PostgreSQL refuses them).
_HIDDEN = frozenset({"Cf", "Zl", "Zp", "Cs"})


def hidden(value: str) -> bool:
    """Whether `value` holds a character that shows nothing or changes the text's order."""
    return any(unicodedata.category(char) in _HIDDEN for char in value)


def one_line(value: str) -> str:
    """A name as kept: composed (NFC, so `é` typed in two code points is the one kept in
    one), without control characters (a NUL was a 500 on PostgreSQL: attack15), trimmed."""
    composed = unicodedata.normalize("NFC", value)
    return "".join(char for char in composed if unicodedata.category(char) != "Cc").strip()


class Visible:
    """WTForms validator: refuses a value that `hidden` finds anything in."""

    def __init__(self, message: Any) -> None:
        self.message = message

    def __call__(self, _form: Any, field: Any) -> None:
        if isinstance(field.data, str) and hidden(field.data):
            raise ValidationError(self.message)
