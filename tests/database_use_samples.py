"""Helpers for tests/test_database_use.py: this module names no database hook itself."""

from __future__ import annotations

from tests.conftest import _worker_database, cached_load_definition
from tests.support import Visitor


def without_hook() -> object:
    return cached_load_definition, Visitor


def through_a_helper() -> str | None:
    return _worker_database(None)  # a function of tests/conftest.py that names one
