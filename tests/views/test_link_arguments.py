"""Links and redirects built from a request's query keep none of url_for's own arguments
(`_method`, `_external`, `_scheme`, `_anchor`: security.link_arguments, round 24): the
evaluation's links between pages, the export download's redirect, the old code addresses'."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.support import Visitor
from tests.views import test_first_view

evaluator = test_first_view.evaluator  # the same evaluator fixture: department 44, 60 people


@pytest.mark.parametrize(
    "query", ["_method=POST", "_external=1", "_anchor=x", "_scheme=javascript"]
)
def test_url_for_s_own_arguments_change_no_link(evaluator: Visitor, query: str) -> None:
    """The evaluation's links keep the filters only (`_method=POST` made them fail: a 500)."""
    for page in ("/evaluate/", "/evaluate/exports/"):
        response = evaluator.get(f"{page}?{query}&territory=periurbain")
        assert response.status_code == 200, (page, query)
        html = response.get_data(as_text=True)
        assert 'href="/evaluate/?territory=periurbain"' in html
        assert 'href="/evaluate/exports/?territory=periurbain"' in html
        assert "http://localhost/evaluate" not in html


def test_the_export_download_address_drops_url_for_s_own_arguments(evaluator: Visitor) -> None:
    response = evaluator.get("/evaluate/exports/download?_method=POST&_external=1&territory=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/evaluate/exports/?territory=x"


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("/staff/people/?q=ABC&_method=POST&state=open", "/staff/people/?state=open"),
        ("/staff/entry/?code=ABC&_external=1", "/staff/entry/"),
        ("/staff/audit?person=ABC&_scheme=javascript&_external=1", "/staff/audit"),
    ],
)
def test_an_old_code_address_with_url_for_s_arguments_is_no_500(
    app: Flask, address: str, kept: str
) -> None:
    """permissions.without_code_argument drops the code before any sign-in check: url_for's
    own arguments beside it made the redirect fail to build (a 500 for anyone)."""
    response = app.test_client().get(address)
    assert response.status_code == 302
    assert response.headers["Location"] == kept
