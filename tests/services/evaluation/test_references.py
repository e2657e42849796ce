"""The 2023 reference survey's figures: the packaged file, and clear errors on a bad one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfcheck.evaluation.references import (
    DEFAULT_REFERENCES,
    Base,
    ReferencesError,
    load_references,
)

# The published headline figures (percentages), as the source slides state them.
EXPECTED = {
    "aged_60_plus": 75,
    "retired": 70,
    "women": 72,
    "below_bac": 59,
    "urban": 43,
    "internet_at_home": 87,
    "cannot_switch_device_on_off": 15,
    "procedures_among_topics": 54,
    "procedures_only_topic": 12,
    "new_tasks": 93,
    "feeling_of_progress": 97,
    "paper_share": 21,
}


def test_packaged_figures() -> None:
    references = load_references()
    assert {key: ref.value for key, ref in references.figures.items()} == EXPECTED
    assert references.survey.year == 2023
    assert references.survey.respondents == 1327
    women = references.figure("women")
    assert women is not None
    assert women.share == pytest.approx(0.72)
    assert women.base is Base.RESPONDENTS
    assert references.figure("comfort_before") is None  # not stated in the sources
    # Topics are counted in accompaniments by the source, and say so.
    for key in ("procedures_among_topics", "procedures_only_topic"):
        assert references.figures[key].base is Base.ACCOMPANIMENTS
        assert references.figures[key].caveat


def test_packaged_typology() -> None:
    typology = load_references().typology
    assert {key: ref.value for key, ref in typology.items()} == {
        "beginner_seniors": 26,
        "initiated_seniors": 35,
        "improvement_path": 26,
        "integration_path": 13,
    }


def test_every_value_has_its_source() -> None:
    references = load_references()
    for ref in (*references.figures.values(), *references.typology.values()):
        assert ref.definition
        assert ref.source.section
        assert ref.source.document.seed == "002_6ce991056be6eb36.txt"
        assert f"{ref.value:g}%" in ref.source.quote


# --- errors -------------------------------------------------------------------------------------


def packaged() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_REFERENCES.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def write(tmp_path: Path, data: Any, name: str = "references.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_valid_copy_loads(tmp_path: Path) -> None:
    assert load_references(write(tmp_path, packaged())).figures["women"].value == 72


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["figures"]["women"].update(value="72%"),
            "figures.women.value: must be a number from 0 to 100, got '72%'",
        ),
        (
            lambda d: d["figures"]["women"].update(value=172),
            "figures.women.value: must be a number from 0 to 100, got 172",
        ),
        (lambda d: d["figures"]["women"].pop("definition"), "figures.women: missing definition"),
        (
            lambda d: d["figures"]["women"].update(page=3),
            "figures.women: unknown field page",
        ),
        (
            lambda d: d["figures"]["women"]["source"].update(document="insee"),
            "figures.women.source.document: unknown document 'insee' (known: asdo_nec_2024)",
        ),
        (
            lambda d: d["figures"]["women"].update(base="people"),
            "figures.women.base: must be one of respondents, accompaniments, got 'people'",
        ),
        (
            lambda d: d["figures"]["women"].update(value=73),
            "figures.women.quote: does not state the value 73 %",
        ),
        (
            lambda d: d["typology"]["integration_path"].update(
                value=20, quote="Parcours d'insertion (20%)"
            ),
            "typology: shares must add up to 100 (to within 1), got 107",
        ),
        (lambda d: d["survey"].update(respondents=0), "survey.respondents: must be a whole"),
        (lambda d: d.pop("documents"), "top level: missing documents"),
        (lambda d: d["figures"]["women"].update(definition="  "), "figures.women.definition"),
    ],
)
def test_bad_file_is_refused_clearly(tmp_path: Path, change: Any, message: str) -> None:
    data = packaged()
    change(data)
    with pytest.raises(ReferencesError) as raised:
        load_references(write(tmp_path, data))
    assert str(raised.value).startswith("references.yaml: ")
    assert message in str(raised.value)


def test_not_yaml_or_missing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("figures: [unclosed", encoding="utf-8")
    with pytest.raises(ReferencesError, match=r"broken\.yaml: not valid YAML"):
        load_references(broken)
    with pytest.raises(ReferencesError, match=r"absent\.yaml: cannot be read"):
        load_references(tmp_path / "absent.yaml")
    with pytest.raises(ReferencesError, match="top level: must be a mapping, got list"):
        load_references(write(tmp_path, [1, 2], name="list.yaml"))
