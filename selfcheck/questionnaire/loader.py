"""Load, validate and freeze the questionnaire definition.

Validation happens in two passes: the JSON Schema checks shape and types, then
`_check_semantics` checks what a schema cannot (unique codes, references, conditions that
point backwards). Every problem names the file, the item or page, and what is wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from selfcheck.questionnaire.answer_types import ANSWER_TYPES
from selfcheck.questionnaire.model import (
    COMPETENCE_SCALE,
    COOP_TOPIC_SCALE,
    PRE_SUFFIX,
    SAME_ITEMS_AS,
    SHARED_ROLES,
    TAG_ROLES,
    AnalysisFocus,
    Condition,
    Definition,
    Disclosure,
    DisclosureStep,
    FormKind,
    Geography,
    Indicator,
    Item,
    LadderStep,
    Moment,
    Option,
    OptionGroup,
    Page,
    Period,
    QuasiIdentifier,
    Role,
    Scale,
    Section,
    Tag,
    TextPair,
    Wording,
)

DEFAULT_DEFINITION = Path(str(resources.files("selfcheck.questionnaire") / "definition.yaml"))


class DefinitionError(ValueError):
    """The definition file cannot be used; `problems` lists every reason found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: the questionnaire definition is invalid:\n{listing}")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = (resources.files("selfcheck.questionnaire") / "schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_definition(path: Path | str = DEFAULT_DEFINITION) -> Definition:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    return parse_definition(text, source=str(path))


# libyaml's safe loader when PyYAML was built with it (its wheels are): the same safe subset,
# 13 ms for the item bank instead of 76 ms in pure Python, at every app start (each gunicorn
# worker, CLI command and job worker, and each test's app).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_definition(text: str, source: str = "<string>") -> Definition:
    try:
        raw = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise DefinitionError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise DefinitionError(source, ["the top level must be a mapping (id, version, ...)"])
    problems = _schema_problems_of(text, raw)
    if problems:
        raise DefinitionError(source, problems)
    problems = _check_semantics(raw)
    if problems:
        raise DefinitionError(source, problems)
    texts = tuple(_text_pairs(raw))
    standard = _build(raw, source, Wording.STANDARD, texts)
    standard.with_variant(_build(raw, source, Wording.EASY, texts))
    return standard


def _where(raw: Mapping[str, Any], path: Iterable[Any]) -> str:
    """Turn a JSON path into words a questionnaire author recognises: item T01 › option 9."""
    parts = list(path)
    node: Any = raw
    labels: list[str] = []
    kinds = {
        "sections": "section",
        "pages": "page",
        "items": "item",
        "options": "option",
        "groups": "group",
    }
    for index, key in enumerate(parts):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        parent = str(parts[index - 1]) if index else ""
        if isinstance(node, dict) and isinstance(node.get("code"), str) and parent in kinds:
            labels.append(f"{kinds[parent]} {node['code']}")
        elif parent == "scales":
            labels.append(f"scale {key}")
    trail = ".".join(str(part) for part in parts)
    label = " › ".join(labels) or "top level"
    return f"{label} ({trail})" if trail else label


# The schema's verdict on a text already checked in this process (25 ms for the item bank):
# the same text parses to the same mapping, so to the same problems.
_SCHEMA_CHECKED: dict[bytes, tuple[str, ...]] = {}
_SCHEMA_CHECKED_MAX = 64


def _schema_problems_of(text: str, raw: dict[str, Any]) -> list[str]:
    key = hashlib.sha256(text.encode()).digest()
    known = _SCHEMA_CHECKED.get(key)
    if known is None:
        known = tuple(_schema_problems(raw))
        if len(_SCHEMA_CHECKED) >= _SCHEMA_CHECKED_MAX:
            _SCHEMA_CHECKED.clear()
        _SCHEMA_CHECKED[key] = known
    return list(known)


def _schema_problems(raw: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema())
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.path))):
        problems.append(f"{_where(raw, error.absolute_path)}: {error.message}")
    return problems


def _iter_raw_items(raw: Mapping[str, Any]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for section in raw["sections"]:
        for page in section["pages"]:
            for item in page["items"]:
                yield page, item


def _check_semantics(raw: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    limits = _suppression_limits((raw.get("disclosure") or {}).get("max_suppressed"))
    if len({people for people, _share in limits}) != len(limits) or any(
        s2 > s1 for (_n1, s1), (_n2, s2) in itertools.pairwise(limits)
    ):
        problems.append(
            "disclosure.max_suppressed: one share per number of people, never growing with it"
        )
    scales = raw["scales"]
    competences = {option["code"] for option in scales[COMPETENCE_SCALE]["options"]}
    topics = {option["code"] for option in scales[COOP_TOPIC_SCALE]["options"]}
    seen_items: dict[str, dict[str, Any]] = {}
    seen_pages: set[str] = set()
    page_of: dict[str, str] = {}

    for name, scale in scales.items():
        problems += _duplicate_options(f"scale {name}", scale["options"])
    for section in raw["sections"]:
        for page in section["pages"]:
            if page["code"] in seen_pages:
                problems.append(f"page {page['code']}: this page code is used twice")
            seen_pages.add(page["code"])

    for page, item in _iter_raw_items(raw):
        code = item["code"]
        where = f"item {code}"
        if code in seen_items or code.endswith(PRE_SUFFIX):
            problems.append(
                f"{where}: item codes must be unique and must not end in {PRE_SUFFIX} "
                "(reserved for answers about 'before' in the retrospective form)"
            )
        if "options" in item:
            problems += _duplicate_options(where, item["options"])
        if "scale" in item and item["scale"] not in scales:
            problems.append(f"{where}: unknown scale {item['scale']!r}")
        if item.get("competence") and item["competence"] not in competences:
            problems.append(f"{where}: unknown competence type {item['competence']!r}")
        if item.get("coop_topic") and item["coop_topic"] not in topics:
            problems.append(f"{where}: unknown Coop topic {item['coop_topic']!r}")
        if bool(item.get("competence")) != bool(item.get("coop_topic")):
            problems.append(f"{where}: a task item needs both a competence and a coop_topic")
        if "min" in item and "max" in item and item["min"] > item["max"]:
            problems.append(f"{where}: min ({item['min']}) is greater than max ({item['max']})")
        answer_type = ANSWER_TYPES[item["type"]]
        if item.get("ask_before_in_retro") and (
            "retro" not in item["forms"] or not answer_type.can_ask_before
        ):
            problems.append(
                f"{where}: ask_before_in_retro needs a single-choice or scale item "
                "in the retro form"
            )
        if item.get("max_choices") and not answer_type.several:
            problems.append(f"{where}: max_choices only applies to multiple-choice items")
        if any(o.get("exclusive") for o in item.get("options", [])) and not answer_type.several:
            problems.append(f"{where}: exclusive options only apply to multiple-choice items")
        if "show_if" in item:
            problems += _condition_problems(item, page, seen_items, page_of, scales)
        seen_items[code] = item
        page_of[code] = page["code"]
    problems += _role_problems(raw)
    problems += _layout_problems(raw)
    return problems


MOMENT_SUFFIXES: Mapping[Moment, str] = {Moment.PRE: "_before", Moment.NOW: "_today"}


def _screen_codes(screen: Mapping[str, Any]) -> list[str]:
    """The page codes (URLs) of one `retro_layout` screen: two for a screen by moment."""
    code = str(screen.get("code", screen["pages"][0]))
    if screen.get("by_moment"):
        return [code + suffix for suffix in MOMENT_SUFFIXES.values()]
    return [code]


def _layout_problems(raw: dict[str, Any]) -> list[str]:
    """The retrospective form's screens must ask every retro item exactly once."""
    layout = raw.get("retro_layout")
    if layout is None:
        return []
    problems: list[str] = []
    pages = {page["code"]: page for section in raw["sections"] for page in section["pages"]}
    retro_pages = [
        code for code, page in pages.items() if any("retro" in i["forms"] for i in page["items"])
    ]
    placed: dict[str, int] = {}
    codes: list[str] = []
    for index, screen in enumerate(layout["screens"]):
        where = f"retro_layout › screen {index + 1} (retro_layout.screens.{index})"
        codes += _screen_codes(screen)
        for code in screen["pages"]:
            if code not in pages:
                problems.append(f"{where}: unknown page {code!r}")
                continue
            if code in placed:
                problems.append(f"{where}: page {code!r} is already on screen {placed[code] + 1}")
            placed.setdefault(code, index)
            for item in pages[code]["items"]:
                if (
                    screen.get("by_moment")
                    and "retro" in item["forms"]
                    and not item.get("ask_before_in_retro")
                ):
                    problems.append(
                        f"{where}: item {item['code']} is not asked before and today "
                        "(ask_before_in_retro), so it cannot be on a screen by_moment"
                    )
    for code in retro_pages:
        if code not in placed:
            problems.append(
                f"retro_layout: page {code!r} has items of the retro form but is on no screen"
            )
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        problems.append(f"retro_layout: screen code {code!r} is used twice")
    screen_of = {
        item["code"]: placed.get(code, -1) for code, page in pages.items() for item in page["items"]
    }
    for page in pages.values():
        for item in page["items"]:
            target = item.get("show_if", {}).get("item")
            if (
                "retro" in item["forms"]
                and target in screen_of
                and screen_of[target] >= screen_of[item["code"]]
            ):
                problems.append(
                    f"retro_layout: item {item['code']} depends on {target}, which must be "
                    "on an earlier screen"
                )
    return problems


def _role_problems(raw: dict[str, Any]) -> list[str]:
    """Roles, option tags, quasi-identifier ladders and the disclosure steps (see model)."""
    problems: list[str] = []
    scales = raw["scales"]
    role_of: dict[str, str] = {}
    indicator_of: dict[str, str] = {}
    ladders: dict[str, list[str]] = {}
    quasi: list[str] = []
    for _page, item in _iter_raw_items(raw):
        where = f"item {item['code']}"
        role = item.get("role")
        if role is not None:
            if role in role_of and Role(role) not in SHARED_ROLES:
                problems.append(
                    f"{where}: role {role!r} is already the role of item {role_of[role]}; "
                    "it can belong to one item only"
                )
            role_of.setdefault(role, item["code"])
        indicator = item.get("indicator")
        if indicator is not None:
            if indicator in indicator_of:
                problems.append(
                    f"{where}: indicator {indicator!r} is already the indicator of item "
                    f"{indicator_of[indicator]}; it can belong to one item only"
                )
            indicator_of.setdefault(indicator, item["code"])
        own = "options" in item
        options = item.get("options") or scales.get(item.get("scale", ""), {}).get("options", [])
        for option in options:
            for tag in option.get("tags", ()):
                allowed = TAG_ROLES[Tag(tag)]
                if role not in {needed.value for needed in allowed}:
                    wanted = " or ".join(repr(needed.value) for needed in allowed)
                    place = "" if own else f" of scale {item['scale']}"
                    problems.append(
                        f"{where}: option {option['code']!r}{place} has tag {tag!r}, which "
                        f"needs an item with role {wanted}"
                    )
        if "quasi_identifier" in item:
            quasi.append(item["quasi_identifier"]["column"])
            problems += _ladder_problems(where, item, options, ladders)
    for name, scale in scales.items():
        users = [i for _p, i in _iter_raw_items(raw) if i.get("scale") == name]
        tagged = [o["code"] for o in scale["options"] if o.get("tags")]
        if tagged and not users:
            problems.append(f"scale {name}: tagged options but no item uses this scale")
    disclosure = raw.get("disclosure")
    if disclosure is None:
        if quasi:
            problems.append(
                "top level: items have a quasi_identifier, so a `disclosure:` section "
                "(geography, period, steps) is needed"
            )
        return problems
    if sorted(disclosure["columns"]) != sorted(quasi):
        problems.append(
            "disclosure (disclosure.columns): must list the column of every item with a "
            f"quasi_identifier, once each: {', '.join(quasi) or 'none'}"
        )
    known = {*quasi, "place", "month", *(c["column"] for c in disclosure.get("context", ()))}
    for index, focus in enumerate(disclosure.get("focus", ())):
        for column in focus["columns"]:
            if column not in known:
                problems.append(
                    f"disclosure › focus {focus['code']} (disclosure.focus.{index}): "
                    f"{column!r} is not a quasi-identifying column ({', '.join(sorted(known))})"
                )
    for index, (geography, step) in enumerate(disclosure.get("steps", ())):
        where = f"disclosure › step {index + 1} (disclosure.steps.{index})"
        if geography not in disclosure["geography"]:
            problems.append(f"{where}: geography {geography!r} is not in disclosure.geography")
        for code, names in ladders.items():
            if step not in names:
                problems.append(
                    f"{where}: {step!r} is not a step of the ladder of item {code} "
                    f"({', '.join(names)})"
                )
    return problems


def _ladder_problems(
    where: str,
    item: dict[str, Any],
    options: list[dict[str, Any]],
    ladders: dict[str, list[str]],
) -> list[str]:
    problems: list[str] = []
    ladder = item["quasi_identifier"].get("ladder")
    if ladder is None:
        return problems
    if not options:
        return [f"{where}: quasi_identifier.ladder needs an item with options"]
    codes = [option["code"] for option in options]
    names = [step["step"] for step in ladder]
    ladders[item["code"]] = names
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: quasi_identifier.ladder: step {name!r} is used twice")
    if ladder[0].get("groups") or ladder[0].get("masked"):
        problems.append(
            f"{where}: quasi_identifier.ladder.0: the first step releases the answer as "
            "given (no groups, not masked)"
        )
    for index, step in enumerate(ladder):
        if "groups" not in step:
            continue
        here = f"{where}: quasi_identifier.ladder.{index} ({step['step']})"
        grouped = [code for group in step["groups"] for code in group["options"]]
        group_codes = [group["code"] for group in step["groups"]]
        for code in sorted({c for c in group_codes if group_codes.count(c) > 1}):
            problems.append(f"{here}: group code {code!r} is used twice")
        for code in sorted({c for c in group_codes if c in codes}):
            problems.append(f"{here}: group code {code!r} is also an option code of the item")
        for code in grouped:
            if code not in codes:
                problems.append(f"{here}: {code!r} is not an option of the item")
        for code in codes:
            if grouped.count(code) == 0:
                problems.append(f"{here}: option {code!r} is in no group")
            elif grouped.count(code) > 1:
                problems.append(f"{here}: option {code!r} is in more than one group")
    return problems


def _duplicate_options(where: str, options: list[dict[str, Any]]) -> list[str]:
    codes = [option["code"] for option in options]
    return [
        f"{where}: option code {c!r} is used twice"
        for c in sorted({c for c in codes if codes.count(c) > 1})
    ]


def _condition_problems(
    item: dict[str, Any],
    page: dict[str, Any],
    earlier: Mapping[str, dict[str, Any]],
    page_of: Mapping[str, str],
    scales: Mapping[str, Any],
) -> list[str]:
    where = f"item {item['code']}"
    condition = item["show_if"]
    target = earlier.get(condition["item"])
    if target is None:
        return [f"{where}: show_if refers to {condition['item']!r}, which is not an earlier item"]
    problems = []
    if "show_if" in target:
        # Visibility is decided from answers alone; a chain would keep the stale answer of a
        # question that has since been hidden.
        problems.append(f"{where}: show_if refers to {target['code']}, which has a show_if itself")
    if page_of[target["code"]] == page["code"]:
        # Without JavaScript a page cannot react to its own answers.
        problems.append(f"{where}: show_if must refer to an item on an earlier page")
    missing = set(item["forms"]) - set(target["forms"])
    if missing:
        problems.append(
            f"{where}: show_if refers to {target['code']}, absent from form(s) "
            + ", ".join(sorted(missing))
        )
    options = target.get("options") or scales.get(target.get("scale", ""), {}).get("options", [])
    valid = {option["code"] for option in options}
    wanted = [condition["equals"]] if "equals" in condition else condition["any_of"]
    for value in wanted:
        if value not in valid:
            problems.append(
                f"{where}: show_if value {value!r} is not an option of {target['code']}"
            )
    return problems


EASY_SUFFIX = "_easy"
TEXT_KEYS = ("title", "label", "hint", "intro")


def _text(node: Mapping[str, Any], key: str, wording: Wording) -> Any:
    """The text under `key` in `wording`: the easy one falls back to the standard one."""
    if wording is Wording.EASY and key + EASY_SUFFIX in node:
        return node[key + EASY_SUFFIX]
    return node.get(key)


def _text_pairs(raw: Mapping[str, Any]) -> Iterable[TextPair]:
    """Every beneficiary-facing text with its easy wording, named like validation problems."""
    for kind, title in raw["titles"].items():
        yield TextPair(f"titles.{kind}", title, raw.get("titles_easy", {}).get(kind))

    def walk(node: Any, path: list[Any]) -> Iterable[TextPair]:
        if isinstance(node, dict):
            for key in TEXT_KEYS:
                if isinstance(node.get(key), str):
                    where = _where(raw, path) + f" {key}"
                    yield TextPair(where, node[key], node.get(key + EASY_SUFFIX))
            for key, value in node.items():
                if key == "quasi_identifier":  # group labels are for evaluators, not read here
                    continue
                yield from walk(value, [*path, key])
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, [*path, index])

    yield from walk(raw["scales"], ["scales"])
    yield from walk(raw["sections"], ["sections"])
    if "retro_layout" in raw:
        yield from walk(raw["retro_layout"], ["retro_layout"])


def _options(raw: list[dict[str, Any]], wording: Wording = Wording.STANDARD) -> tuple[Option, ...]:
    return tuple(
        Option(
            code=o["code"],
            label=_text(o, "label", wording),
            rank=o.get("rank"),
            exclusive=o.get("exclusive", False),
            tags=frozenset(Tag(tag) for tag in o.get("tags", ())),
            # Short headings serve the standard paper grids; the easy-read form has none.
            label_short=o.get("label_short") if wording is Wording.STANDARD else None,
            pictogram=o.get("pictogram"),
        )
        for o in raw
    )


def _build(
    raw: dict[str, Any], source: str, wording: Wording, texts: tuple[TextPair, ...]
) -> Definition:
    scales = {
        name: Scale(name, _options(s["options"], wording)) for name, s in raw["scales"].items()
    }
    sections = []
    for raw_section in raw["sections"]:
        pages = []
        for raw_page in raw_section["pages"]:
            items = tuple(
                _build_item(raw_item, scales, raw_section["code"], raw_page["code"], wording)
                for raw_item in raw_page["items"]
            )
            pages.append(
                Page(
                    code=raw_page["code"],
                    title=_text(raw_page, "title", wording),
                    section=raw_section["code"],
                    items=items,
                    intro=_text(raw_page, "intro", wording),
                    pictogram=raw_page.get("pictogram"),
                )
            )
        title = _text(raw_section, "title", wording)
        sections.append(Section(raw_section["code"], title, tuple(pages)))
    titles = raw.get("titles_easy", {}) if wording is Wording.EASY else {}
    return Definition(
        id=raw["id"],
        version=raw["version"],
        language=raw["language"],
        source=source,
        sections=tuple(sections),
        scales=scales,
        competences={o.code: o for o in scales[COMPETENCE_SCALE].options},
        coop_topics={o.code: o for o in scales[COOP_TOPIC_SCALE].options},
        titles={FormKind(kind): titles.get(kind, title) for kind, title in raw["titles"].items()},
        wording=wording,
        texts=texts,
        disclosure=_disclosure(raw.get("disclosure"), wording),
        retro_screens=_retro_screens(raw.get("retro_layout"), sections, wording),
    )


def _retro_screens(
    raw: Mapping[str, Any] | None, sections: list[Section], wording: Wording
) -> tuple[Page, ...]:
    """The retrospective form's screens (`retro_layout:`), built from the pages."""
    if raw is None:
        return ()
    pages = {page.code: page for section in sections for page in section.pages}
    screens: list[Page] = []
    for screen in raw["screens"]:
        parts = tuple(pages[code] for code in screen["pages"])
        first = parts[0]
        joined = len(parts) > 1
        moments: tuple[Moment | None, ...] = (
            (Moment.PRE, Moment.NOW) if screen.get("by_moment") else (None,)
        )
        for code, moment in zip(_screen_codes(screen), moments, strict=True):
            text = raw["moments"][moment.value] if moment is not None else {}
            screens.append(
                Page(
                    code=code,
                    title=_text(screen, "title", wording) or first.title,
                    section=first.section,
                    items=tuple(item for part in parts for item in part.items),
                    # A screen by moment says which moment; a joined screen has no one intro.
                    intro=_text(text, "intro", wording)
                    if moment
                    else (None if joined else first.intro),
                    pictogram=first.pictogram,
                    moment=moment,
                    moment_title=_text(text, "title", wording) if moment else None,
                    parts=parts,
                )
            )
    return tuple(screens)


def _suppression_limits(raw: Any) -> tuple[tuple[int, float], ...]:
    """`max_suppressed` as (people, share) points: none for one share for every selection
    (a number), else the listed points in order of people (checked by `_check_semantics`)."""
    if not isinstance(raw, list):
        return ()
    return tuple(sorted((int(p["people"]), float(p["share"])) for p in raw))


def _max_suppressed(limits: tuple[tuple[int, float], ...], raw: Any) -> float:
    return limits[0][1] if limits else float(raw)


def _disclosure(raw: Mapping[str, Any] | None, wording: Wording = Wording.STANDARD) -> Disclosure:
    if raw is None:
        return Disclosure()
    context = (_quasi_identifier(c, wording) for c in raw.get("context", ()))
    limits = _suppression_limits(raw.get("max_suppressed", 0.05))
    return Disclosure(
        geography=tuple(Geography(name) for name in raw["geography"]),
        period=tuple(Period(name) for name in raw["period"]),
        columns=tuple(raw["columns"]),
        steps=tuple(DisclosureStep(Geography(g), step) for g, step in raw.get("steps", ())),
        max_suppressed=_max_suppressed(limits, raw.get("max_suppressed", 0.05)),
        suppression_limits=limits,
        weights=tuple((name, float(w)) for name, w in raw.get("weights", {}).items()),
        context=tuple(c for c in context if c is not None),
        focus=tuple(
            AnalysisFocus(
                code=f["code"],
                label=_text(f, "label", wording),
                columns=tuple(f["columns"]),
                weight=float(f["weight"]),
            )
            for f in raw.get("focus", ())
        ),
    )


def _quasi_identifier(raw: Mapping[str, Any] | None, wording: Wording) -> QuasiIdentifier | None:
    if raw is None:
        return None
    ladder = tuple(
        LadderStep(
            name=step["step"],
            groups=tuple(
                OptionGroup(g["code"], _text(g, "label", wording), tuple(g["options"]))
                for g in step.get("groups", ())
            ),
            masked=step.get("masked", False),
        )
        for step in raw.get("ladder", ())
    )
    return QuasiIdentifier(column=raw["column"], ladder=ladder)


def _forms(raw: list[str]) -> frozenset[FormKind]:
    """The forms an item is in, with those that share another form's items (SAME_ITEMS_AS)."""
    forms = {FormKind(kind) for kind in raw}
    forms |= {kind for kind, same in SAME_ITEMS_AS.items() if same in forms}
    return frozenset(forms)


def _build_item(
    raw: dict[str, Any],
    scales: Mapping[str, Scale],
    section: str,
    page: str,
    wording: Wording = Wording.STANDARD,
) -> Item:
    options = (
        scales[raw["scale"]].options
        if "scale" in raw
        else _options(raw.get("options", []), wording)
    )
    condition = None
    if "show_if" in raw:
        cond = raw["show_if"]
        condition = Condition(
            item=cond["item"], equals=cond.get("equals"), any_of=tuple(cond.get("any_of", ()))
        )
    return Item(
        code=raw["code"],
        type=ANSWER_TYPES[raw["type"]],
        label=_text(raw, "label", wording),
        hint=_text(raw, "hint", wording),
        forms=_forms(raw["forms"]),
        options=options,
        scale=raw.get("scale"),
        required=raw.get("required", False),
        show_if=condition,
        ask_before_in_retro=raw.get("ask_before_in_retro", False),
        competence=raw.get("competence"),
        coop_topic=raw.get("coop_topic"),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        max_length=raw.get("max_length"),
        max_choices=raw.get("max_choices"),
        section=section,
        page=page,
        role=Role(raw["role"]) if "role" in raw else None,
        indicator=Indicator(raw["indicator"]) if "indicator" in raw else None,
        short_label=raw.get("short_label"),
        quasi_identifier=_quasi_identifier(raw.get("quasi_identifier"), wording),
    )
