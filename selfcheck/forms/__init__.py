"""WTForms classes built from the questionnaire definition (validation only)."""

from selfcheck.forms.registry import FIELD_FACTORIES, PageFormFactory

__all__ = ["FIELD_FACTORIES", "PageFormFactory"]
