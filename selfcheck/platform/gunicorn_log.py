"""gunicorn's logger for `gunicorn.conf.py`: its access record built only when something would
write it (issue 18, docs/performance.md, req21).

gunicorn's own access log is off (`accesslog = None`: the app writes the access line), but
`logconfig_dict` makes gunicorn's `Logger.access_log_enabled` true, so for every request it
built the record's atoms (every environ entry, every request and response header, a
`strftime`) and a `LogRecord`, which the `gunicorn.access` logger, with no handler and not
propagated, then dropped: about 40-60 us of every request (round 17, page17). Here the record
is built exactly when logging would hand it to a handler: `gunicorn.access` enabled for INFO
and some handler on its way (its own, or a parent's while it propagates). An `accesslog`, a
syslog, or a handler given to `gunicorn.access` in `logconfig_dict` turn it back on.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger


class QuietAccessLogger(Logger):  # type: ignore[misc]
    def access(self, resp: Any, req: Any, environ: Any, request_time: timedelta) -> None:
        if not access_would_be_written(self.access_log):
            return  # logging would drop the record (no handler, or INFO disabled): not built
        super().access(resp, req, environ, request_time)


def access_would_be_written(logger: logging.Logger) -> bool:
    """Whether an INFO record of `logger` reaches a handler. Without one, logging drops it:
    its last-resort handler only takes WARNING and above."""
    return logger.isEnabledFor(logging.INFO) and logger.hasHandlers()
