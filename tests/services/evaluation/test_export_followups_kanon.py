"""k-anonymity of exports whose people sent follow-up forms, checked from outside.

The demo people (tests/services/evaluation/support.py) send no follow-up. Here some of them
do: 12 a follow-up two months after their end form, and one a second follow-up in a month
nobody else has, and one a first follow-up alone in its month. Every released column but the
pseudonym and the answers (follow-ups' month, channel, wording, version, the forms pattern)
is checked by the independent checker (kanon_check), on one row per person with pycanon too,
in CSV wide and long, XLSX and SPSS.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from pycanon import anonymity  # type: ignore[import-untyped]
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import codebook
from selfcheck.platform.models import Answer, Response, StaffUser, Status
from selfcheck.questionnaire.model import Definition, FormKind
from tests.services.evaluation.kanon_check import (
    group_sizes,
    person_table,
    quasi_identifier_columns,
    read_rows,
)
from tests.services.evaluation.test_export import export

K = 5
FORMATS = [("csv", "wide"), ("csv", "long"), ("xlsx", "long"), ("sav", "wide")]


def add_followups(db: Session, definition: Definition) -> None:
    """Follow-ups copied from people's end forms (their answers to the follow-up's variables),
    sent months later: 12 people two months on, one alone five months on, and one second
    follow-up ten months on."""
    ends = list(
        db.scalars(
            select(Response)
            .where(Response.form == FormKind.AFTER.value, Response.status == "submitted")
            .order_by(Response.id)
        )
    )
    assert len(ends) >= 14
    plan = [(end, FormKind.FOLLOWUP, 61) for end in ends[:12]]
    plan += [(ends[12], FormKind.FOLLOWUP, 150), (ends[0], FormKind.FOLLOWUP_LATE, 300)]
    for end, form, days in plan:
        assert end.submitted_at is not None
        variables = {variable.code for variable in definition.variables(form)}
        sent = Response(
            beneficiary_id=end.beneficiary_id,
            structure_id=end.structure_id,
            form=form.value,
            definition_id=end.definition_id,
            definition_version=end.definition_version,
            channel=end.channel,
            locale=end.locale,
            status=Status.SUBMITTED.value,
            submitted_at=end.submitted_at + timedelta(days=days),
            wording=end.wording,
        )
        db.add(sent)
        db.flush()
        answers = db.execute(
            select(Answer.variable, Answer.value).where(Answer.response_id == end.id)
        ).all()
        rows = [
            {"response_id": sent.id, "variable": variable, "value": value}
            for variable, value in answers
            if variable in variables
        ]
        assert rows
        db.execute(insert(Answer), rows)
    db.commit()


@pytest.mark.usefixtures("request_context")
def test_exports_with_followups_are_k_anonymous_over_every_column(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_followups(populated, definition)
    # The codebook's PDF does not depend on the data (codebook.pdf): not rendered here, 20 s
    # of the test's time on the shared machine; the data file is what is checked.
    monkeypatch.setattr(codebook, "render_ahead", lambda *_args: False)
    monkeypatch.setattr(codebook, "pdf", lambda _book: b"%PDF-1.7\n")
    for fmt, shape in FORMATS:
        result = export(populated, definition, admin, out_dir, fmt, shape, k=K)
        names, _rows = read_rows(result.zip_path)
        columns = quasi_identifier_columns(names)
        # The follow-ups' details are in the file and among the columns checked.
        if shape == "wide":
            assert {"followup_month", "followup_late_month", "followup_channel"} <= set(columns)
        else:
            assert {"form", "month", "channel", "wording", "version"} <= set(columns)
        sizes = group_sizes(result.zip_path)
        assert min(sizes.values()) >= K, (fmt, shape, sorted(sizes.values())[:3])
        table_columns, people = person_table(result.zip_path)
        frame = pd.DataFrame(people, columns=table_columns).fillna("(empty)").astype(str)
        assert anonymity.k_anonymity(frame, table_columns) >= K, (fmt, shape)
        assert len(people) == result.report["people_exported"]
    # The check is not vacuous: without generalisation the follow-ups single people out.
    raw = export(populated, definition, admin, out_dir, "csv", "long", k=1)
    assert min(group_sizes(raw.zip_path).values()) < K
    _table_columns, people = person_table(raw.zip_path)
    assert any(
        value is not None for person in people for c, value in person.items() if "form5_" in c
    )


def bundle_of(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("data.csv", "\n".join(lines) + "\n")
    return path


def test_the_checker_sees_a_column_it_was_never_told_of(tmp_path: Path) -> None:
    """Six people alike in every column but one: the last one's second follow-up month (wide)
    (wide), or a column no checker knows (`new_detail`) of its follow-up row (long). Each file is
    found to single that person out; with the column alike, it is 6-anonymous."""
    own = "structure,department,region,age_band,gender,diploma,status,area,forms"
    head = f"pseudonym,{own},before_month,before_COMFORT,followup_late_month,followup_late_T01"
    person = "1,44,52,3,1,2,1,1,{forms},202601,3,{late},2"
    wide = [head] + [
        f"p{i}," + person.format(forms=17, late=202611 if i == 5 else 202610) for i in range(6)
    ]
    sizes = group_sizes(bundle_of(tmp_path, "wide", wide))
    assert sorted(sizes.values()) == [1, 5]
    assert sorted(group_sizes(bundle_of(tmp_path, "wide-alike", wide[:-1])).values()) == [5]
    long_head = f"pseudonym,{own},form,month,channel,wording,version,variable,value,new_detail"
    long = [long_head]
    for i in range(6):
        mine = f"p{i},1,44,52,3,1,2,1,1,17"
        long += [f"{mine},1,202601,1,1,1.4.0,COMFORT,3,x", f"{mine},1,202601,1,1,1.4.0,T01,2,x"]
        long.append(f"{mine},5,202610,1,1,1.4.0,T01,2,{'y' if i == 5 else 'x'}")
    sizes = group_sizes(bundle_of(tmp_path, "long", long))
    assert sorted(sizes.values()) == [1, 5]
    columns, people = person_table(bundle_of(tmp_path, "long", long))
    assert {"form5_month", "form5_new_detail"} <= set(columns)
    assert sorted(Counter(tuple(p.values()) for p in people).values()) == [1, 5]
    alike = [line.replace(",y", ",x") for line in long]
    assert sorted(group_sizes(bundle_of(tmp_path, "long-alike", alike)).values()) == [6]
