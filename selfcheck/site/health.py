"""`/healthz`: for load balancers, container HEALTHCHECK and systemd watchdogs.

200 `{"status": "ok"}` when the database answers `SELECT 1`, else 503
`{"status": "unavailable"}` and nothing more (no error text, no version). Public, no session
cookie, no CSRF token, logged at DEBUG only (see selfcheck.platform.log.QUIET_ENDPOINTS).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from selfcheck.accounts.permissions import public
from selfcheck.platform import health
from selfcheck.platform.db import get_db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@public
def healthz() -> tuple[Response, int]:
    if health.database_ok(get_db().engine):
        return jsonify(status="ok"), 200
    return jsonify(status="unavailable"), 503
