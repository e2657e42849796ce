"""The item bank: one definition file drives every form, summary and export."""

from selfcheck.questionnaire.loader import DefinitionError, load_definition, parse_definition
from selfcheck.questionnaire.model import Definition, FormKind, Item, Moment, Page, Variable

__all__ = [
    "Definition",
    "DefinitionError",
    "FormKind",
    "Item",
    "Moment",
    "Page",
    "Variable",
    "load_definition",
    "parse_definition",
]
