"""The reference survey's published figures (references.yaml), typed and checked at load.

`load_references()` reads the packaged file once; any other path can be given (tests, a newer
edition). Every problem is reported as `ReferencesError` naming the file and the field, e.g.
"references.yaml: figures.women.value: must be a number from 0 to 100, got '72%'".

Values are percentages as published (`value`, 0 to 100); `share` gives the proportion.
A figure's `base` says what it is a percentage of: respondents (people) or accompaniments.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

DEFAULT_REFERENCES = Path(__file__).resolve().parent / "references.yaml"


class ReferencesError(ValueError):
    """The references file is missing, unreadable or malformed."""


class Base(enum.StrEnum):
    RESPONDENTS = "respondents"
    ACCOMPANIMENTS = "accompaniments"


@dataclass(frozen=True)
class Document:
    key: str
    title: str
    authors: str
    published: str
    seed: str  # the copy in the domain brief's seeds/ folder
    full_report: str | None = None


@dataclass(frozen=True)
class Source:
    document: Document
    section: str  # the slide's (or chapter's) title: the source has no page numbers
    quote: str  # the source's own words, giving the value


@dataclass(frozen=True)
class Reference:
    key: str
    value: float  # percentage, 0 to 100, as published
    base: Base
    definition: str
    source: Source
    caveat: str | None = None  # where the source's definition may differ from ours

    @property
    def share(self) -> float:
        return self.value / 100


@dataclass(frozen=True)
class Survey:
    title: str
    producer: str
    year: int
    respondents: int
    respondents_source: Source
    sample: str


@dataclass(frozen=True)
class References:
    survey: Survey
    documents: Mapping[str, Document]
    figures: Mapping[str, Reference]
    typology: Mapping[str, Reference]  # profile name -> share of respondents

    def figure(self, key: str) -> Reference | None:
        return self.figures.get(key)


@functools.cache
def load_references(path: Path = DEFAULT_REFERENCES) -> References:
    """Read and check a references file (the packaged one by default), once per path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReferencesError(f"{path.name}: cannot be read ({error.strerror})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ReferencesError(f"{path.name}: not valid YAML ({error})") from error
    return _Reader(path.name).references(data)


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, where: str, message: str) -> ReferencesError:
        return ReferencesError(f"{self.filename}: {where}: {message}")

    def mapping(self, value: Any, where: str, keys: set[str], optional: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        missing = sorted(keys - value.keys())
        if missing:
            raise self.fail(where, f"missing {', '.join(missing)}")
        unknown = sorted(set(value) - keys - optional)
        if unknown:
            raise self.fail(where, f"unknown field {', '.join(map(str, unknown))}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty text, got {value!r}")
        return value.strip()

    def integer(self, value: Any, where: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"must be a whole number from {minimum}, got {value!r}")
        return value

    def percentage(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise self.fail(where, f"must be a number from 0 to 100, got {value!r}")
        return float(value)

    def references(self, data: Any) -> References:
        top = self.mapping(data, "top level", {"survey", "documents", "figures", "typology"}, set())
        documents = self.documents(top["documents"])
        survey_data = self.mapping(
            top["survey"],
            "survey",
            {"title", "producer", "year", "respondents", "respondents_source", "sample"},
            set(),
        )
        survey = Survey(
            title=self.text(survey_data["title"], "survey.title"),
            producer=self.text(survey_data["producer"], "survey.producer"),
            year=self.integer(survey_data["year"], "survey.year", 1900),
            respondents=self.integer(survey_data["respondents"], "survey.respondents", 1),
            respondents_source=self.survey_source(survey_data["respondents_source"], documents),
            sample=self.text(survey_data["sample"], "survey.sample"),
        )
        figures = self.group(top["figures"], "figures", documents)
        typology = self.group(top["typology"], "typology", documents)
        total = sum(reference.value for reference in typology.values())
        if abs(total - 100) > 1:
            raise self.fail("typology", f"shares must add up to 100 (to within 1), got {total:g}")
        return References(
            survey=survey,
            documents=MappingProxyType(documents),
            figures=MappingProxyType(figures),
            typology=MappingProxyType(typology),
        )

    def survey_source(self, value: Any, documents: Mapping[str, Document]) -> Source:
        where = "survey.respondents_source"
        fields = self.mapping(value, where, {"document", "section", "quote"}, set())
        quote = self.text(fields["quote"], f"{where}.quote")
        location = {"document": fields["document"], "section": fields["section"]}
        return self.source(location, where, documents, quote)

    def documents(self, value: Any) -> dict[str, Document]:
        if not isinstance(value, dict) or not value:
            raise self.fail("documents", "must be a non-empty mapping")
        documents = {}
        for key, entry in value.items():
            where = f"documents.{key}"
            fields = self.mapping(
                entry, where, {"title", "authors", "published", "seed"}, {"full_report"}
            )
            full_report = fields.get("full_report")
            documents[str(key)] = Document(
                key=str(key),
                title=self.text(fields["title"], f"{where}.title"),
                authors=self.text(fields["authors"], f"{where}.authors"),
                published=self.text(fields["published"], f"{where}.published"),
                seed=self.text(fields["seed"], f"{where}.seed"),
                full_report=None
                if full_report is None
                else self.text(full_report, f"{where}.full_report"),
            )
        return documents

    def source(
        self, value: Any, where: str, documents: Mapping[str, Document], quote: str
    ) -> Source:
        fields = self.mapping(value, where, {"document", "section"}, set())
        document = fields["document"]
        if document not in documents:
            known = ", ".join(sorted(documents))
            raise self.fail(f"{where}.document", f"unknown document {document!r} (known: {known})")
        return Source(
            document=documents[document],
            section=self.text(fields["section"], f"{where}.section"),
            quote=quote,
        )

    def group(
        self, value: Any, where: str, documents: Mapping[str, Document]
    ) -> dict[str, Reference]:
        if not isinstance(value, dict) or not value:
            raise self.fail(where, "must be a non-empty mapping")
        group = {}
        for key, entry in value.items():
            at = f"{where}.{key}"
            fields = self.mapping(
                entry, at, {"value", "base", "definition", "quote", "source"}, {"caveat"}
            )
            base = fields["base"]
            if base not in {b.value for b in Base}:
                allowed = ", ".join(b.value for b in Base)
                raise self.fail(f"{at}.base", f"must be one of {allowed}, got {base!r}")
            value_ = self.percentage(fields["value"], f"{at}.value")
            quote = self.text(fields["quote"], f"{at}.quote")
            if f"{value_:g}%" not in quote.replace(" %", "%").replace("\u00a0%", "%"):
                raise self.fail(f"{at}.quote", f"does not state the value {value_:g} %")
            caveat = fields.get("caveat")
            group[str(key)] = Reference(
                key=str(key),
                value=value_,
                base=Base(base),
                definition=self.text(fields["definition"], f"{at}.definition"),
                source=self.source(fields["source"], f"{at}.source", documents, quote),
                caveat=None if caveat is None else self.text(caveat, f"{at}.caveat"),
            )
        return group
