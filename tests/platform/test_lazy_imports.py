"""Building the app imports no heavy library that only some requests or jobs use.

A web worker (gunicorn's `selfcheck:create_app()`) and the job worker (`selfcheck worker`)
build the whole app before their first request or job. WeasyPrint (PDFs), SciPy (the
dashboard's statistics) and the XLSX libraries are imported by the code that uses them, so
that a process pays their memory (about 140 MB together) and import time only when it
prints, computes figures or writes a workbook (docs/performance.md, "Import costs"; issue 18:
an export stays under 200 MB). Checked in a fresh interpreter: this test process has long
imported them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Imported by the code that uses them, never by building the app.
LAZY = ("weasyprint", "scipy", "openpyxl", "xlsxwriter", "pikepdf", "fontTools")

CHILD = """
import json, sys
from selfcheck import create_app
from selfcheck.platform import jobs

app = create_app()  # as gunicorn's wsgi_app does
with app.app_context():  # as `selfcheck worker` does before it runs
    queue = jobs.queue()
    queue.huey.create_consumer(workers=1, worker_type="thread", periodic=True)
    runners = sorted(jobs.RUNNERS)
    # The worker's prefill watcher looks at what is missing (selfcheck/prefill.py).
    from selfcheck import prefill

    needed = prefill.todo(app)
todo = [needed.blanks, needed.codebooks]
print(json.dumps({"runners": runners, "todo": todo, "modules": sorted(sys.modules)}))
"""


@pytest.mark.slow  # a fresh interpreter builds the app: about 1.5-3 s of CPU
def test_building_the_app_leaves_the_heavy_libraries_unimported(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SELFCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "SELFCHECK_SECRET_KEY": "test-only-secret-key-for-the-lazy-imports-test",
        "SELFCHECK_JOBS_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "SELFCHECK_JOBS_DIR": str(tmp_path / "files"),
        "SELFCHECK_PAPER_CACHE_DIR": str(tmp_path / "rendered"),
        "SELFCHECK_SITE_URL": "https://selfcheck.example.org",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # The job runners are there (so the worker really is ready for an export)...
    assert found["runners"] == ["export", "print_batch"]
    # ...and the app is whole (its blueprints import every domain)...
    modules = set(found["modules"])
    assert {"selfcheck.evaluation.export_job", "selfcheck.paper.batch"} <= modules
    # The prefill watcher has seen every blank form and codebook missing...
    assert found["todo"] == [80, 16]
    # ...without the libraries that only printing, statistics and workbooks need.
    loaded = sorted(
        name for name in modules if name.split(".")[0] in LAZY or name == "selfcheck.platform.weasy"
    )
    assert loaded == []
