"""Meaning is declared once, in the item bank: no Python outside the questionnaire package
names an item code (AGE, T01, COMFORT_PRE) or a distinctive option code (soixante_dix_plus).

Code finds items by role (`Definition.item_with_role`) and options by tag or ladder instead,
so that adding or renaming a question is a change to definition.yaml alone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from selfcheck.questionnaire.loader import load_definition
from selfcheck.questionnaire.model import PRE_SUFFIX

PACKAGE = Path(__file__).resolve().parents[2] / "selfcheck"
CORE = PACKAGE / "questionnaire"
# Option codes that are also ordinary words or values elsewhere in the code, and so prove
# nothing about item-bank knowledge.
GENERIC = frozenset(
    {
        "email",  # a staff account's column
        "documents",  # the reference figures' source documents (evaluation/references.py)
        # A structure's own territory type (platform.models) shares these words.
        "urbain",
        "periurbain",
        "rural",
    }
)
# The demo generates a synthetic population calibrated on the reference survey: its weights
# are keyed by option codes (item codes are still forbidden there; it finds items by role).
OPTION_CODES_ALLOWED_IN = frozenset({PACKAGE / "demo.py"})


def forbidden() -> tuple[frozenset[str], frozenset[str]]:
    definition = load_definition()
    items = {item.code for item in definition.items()}
    items |= {code + PRE_SUFFIX for code in items}
    options = {option.code for item in definition.items() for option in item.options}
    options |= {option.code for scale in definition.scales.values() for option in scale.options}
    for item in definition.quasi_identifiers():
        if item.quasi_identifier is not None:
            options |= {group.code for group in item.quasi_identifier.groups()}
    distinctive = {code for code in options if len(code) > 3 and code not in GENERIC}
    return frozenset(items), frozenset(distinctive)


def python_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if CORE not in path.parents:
            yield path


def literals(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_item_or_option_code_outside_the_questionnaire_package() -> None:
    items, options = forbidden()
    found = []
    for path in python_files():
        check_options = path not in OPTION_CODES_ALLOWED_IN
        for line, value in literals(path):
            if value in items or (check_options and value in options):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r}")
    assert not found, "Find these by role or tag in the definition instead:\n" + "\n".join(found)


def scale_names_compared(path: Path) -> Iterator[int]:
    """Lines comparing an item's `scale` with a literal name (`item.scale == "coop_topic"`)."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if any(isinstance(s, ast.Attribute) and s.attr == "scale" for s in sides) and any(
            isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides
        ):
            yield node.lineno


def test_no_scale_name_outside_the_questionnaire_package() -> None:
    """The scales the code relies on are named once, in the core (COMPETENCE_SCALE…)."""
    found = [
        f"{p.relative_to(PACKAGE.parent)}:{n}"
        for p in python_files()
        for n in scale_names_compared(p)
    ]
    assert found == []


# Templates (web and paper) and scripts: a quoted word (`item("AGE")`, `== 'sans_emploi'`), or
# an item code standing alone (`answers.AGE`).
TEMPLATE_SUFFIXES = frozenset({".html", ".js", ".css", ".txt", ".svg"})
QUOTED = re.compile(r"""["']([A-Za-z0-9_]+)["']""")
BARE = re.compile(r"\b[A-Z][A-Z0-9_]+\b")


def template_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in TEMPLATE_SUFFIXES and CORE not in path.parents:
            yield path


def template_codes(text: str, items: frozenset[str], options: frozenset[str]) -> Iterator[str]:
    for quoted in QUOTED.findall(text):
        if quoted in items or quoted in options:
            yield quoted
    yield from (bare for bare in BARE.findall(text) if bare in items)


def test_no_item_or_option_code_in_templates_or_scripts() -> None:
    items, options = forbidden()
    found = []
    for path in template_files():
        lines = path.read_text("utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            for code in template_codes(line, items, options):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {code!r}")
    assert not found, "Pass what the template needs from a role or tag instead:\n" + "\n".join(
        found
    )


def test_the_check_would_see_a_code() -> None:
    items, options = forbidden()
    assert {"AGE", "COMFORT_PRE", "T01"} <= items
    assert {"soixante_dix_plus", "sans_emploi", "60_plus"} <= options
    tree = ast.parse('x = definition.item("AGE")\ny = "soixante_dix_plus"')
    seen = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert "AGE" in seen & items and "soixante_dix_plus" in seen & options
    template = "{% if answers.T01 and value == 'soixante_dix_plus' %}{{ item('AGE') }}{% endif %}"
    assert set(template_codes(template, items, options)) == {"T01", "soixante_dix_plus", "AGE"}
