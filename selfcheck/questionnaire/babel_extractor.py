"""Babel extractor: lets `pybabel extract` pick up every text of the questionnaire definition.

Registered as the `selfcheck_questionnaire` extractor in pyproject.toml and mapped in
babel.cfg. Each message carries a translator comment naming where it is used (item code,
option code), so translators see context without opening the YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import yaml

TEXT_KEYS = ("label", "title", "hint", "intro")
# The easy-read (FALC) wordings (`label_easy`, ...) are translated too; `titles_easy` holds
# before/after/retro like `titles`. `label_short` is an option's column heading on paper.
TRANSLATABLE_KEYS = frozenset(
    {
        *TEXT_KEYS,
        *(key + "_easy" for key in TEXT_KEYS),
        "short_label",
        "label_short",
        "before",
        "after",
        "retro",
        "followup",
        "followup_late",
    }
)

Message = tuple[int, str | None, str, list[str]]


def extract_definition(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[Message]:
    root = yaml.compose(fileobj.read().decode("utf-8"))
    if root is not None:
        yield from _walk(root, context="")


def _walk(node: yaml.Node, context: str) -> Iterator[Message]:
    if isinstance(node, yaml.MappingNode):
        code = next(
            (
                v.value
                for k, v in node.value
                if k.value == "code" and isinstance(v, yaml.ScalarNode)
            ),
            None,
        )
        here = f"{context} {code}".strip() if code else context
        for key, value in node.value:
            if isinstance(value, yaml.ScalarNode) and key.value in TRANSLATABLE_KEYS:
                yield (value.start_mark.line + 1, None, value.value, [f"questionnaire: {here}"])
            else:
                yield from _walk(value, here if code else f"{here} {key.value}".strip())
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            yield from _walk(child, context)
