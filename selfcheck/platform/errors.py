"""Error pages: a translated, plain-words message and the right status, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, has_request_context, render_template
from flask.globals import request_ctx
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response as HttpResponse

log = logging.getLogger(__name__)

# status -> (title, explanation). What is already saved is never lost: say so.
MESSAGES = {
    400: (
        _l("Nous n'avons pas compris la demande"),
        _l(
            "La page envoyée n'était pas complète. Revenez en arrière et réessayez. "
            "Les réponses déjà enregistrées sont conservées."
        ),
    ),
    403: (
        _l("Accès refusé"),
        _l("Vous n'avez pas accès à cette page."),
    ),
    404: (
        _l("Page introuvable"),
        _l("Cette adresse ne correspond à aucune page. Vérifiez l'adresse ou revenez à l'accueil."),
    ),
    405: (
        _l("Action impossible"),
        _l("Cette page ne permet pas cette action. Revenez à l'accueil."),
    ),
    413: (
        _l("Envoi trop volumineux"),
        _l(
            "Ce que vous avez envoyé est trop long. Raccourcissez votre texte et réessayez. "
            "Les réponses déjà enregistrées sont conservées."
        ),
    ),
    429: (
        _l("Trop d'essais"),
        _l("Vous avez fait trop d'essais. Attendez quelques minutes avant de réessayer."),
    ),
    500: (
        _l("Un problème est survenu de notre côté"),
        _l(
            "Ce n'est pas de votre faute. Réessayez dans quelques minutes. "
            "Les réponses déjà enregistrées sont conservées."
        ),
    ),
}
DATABASE_RETRY_AFTER = 30  # seconds: a pool gets connections back within a request's time

OTHER_TAB_MESSAGE = (
    _l("Un autre questionnaire est ouvert"),
    _l(
        "Cette page vient d'un autre onglet ou d'une autre fenêtre, où un autre questionnaire "
        "était ouvert. Rien n'a été enregistré. Fermez les autres onglets, puis continuez ici "
        "avec votre code."
    ),
)
ALREADY_SENT_MESSAGE = (
    _l("Ce questionnaire est déjà envoyé"),
    _l("Vos réponses ont déjà été envoyées : elles ne peuvent plus être modifiées ici."),
)
CSRF_MESSAGE = (
    _l("Votre page a expiré"),
    _l(
        "Pour protéger vos réponses, cette page n'est plus valable (par exemple après avoir "
        "fermé le navigateur). Revenez en arrière, rechargez la page et envoyez-la de nouveau. "
        "Les réponses déjà enregistrées sont conservées ; avec votre code, vous pouvez "
        "reprendre où vous en étiez."
    ),
)


def render_error(status: int, title: object, message: object) -> tuple[str, int]:
    """The error page; a bare one (the same words, no link) when no address can be built
    for this request: Flask refused its host (`TRUSTED_HOSTS`) before routing, so every
    `url_for` of the site's layout would fail, and the error page became a 500."""
    context = {"status": status, "title": title, "message": message}
    if not has_request_context() or request_ctx.url_adapter is not None:
        try:
            return render_template("errors/error.html", **context), status
        except Exception:  # the layout itself failed: the same words, bare
            log.exception("error page failed: shown bare")
    return render_template("errors/bare.html", **context), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> tuple[str, int]:
        return render_error(400, *CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int] | HTTPException:
        status = error.code or 500
        if status < 400:
            return error
        title, message = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
        return render_error(status, title, message)

    @app.errorhandler(PoolTimeout)
    @app.errorhandler(OperationalError)
    def _database_busy(error: Exception) -> HttpResponse:
        """No database connection in time (every one of a pool taken, PostgreSQL's
        max_connections reached, the server restarting, SQLite's lock held too long): 503
        with Retry-After and the words of a 500 ("not your fault, try again in a few
        minutes"), not a 500 taken for a bug (attack16)."""
        # At error level: SQLite says "no such table" with the same class (a migration left).
        log.error("database unavailable: answered 503", exc_info=error)
        body, status = render_error(503, *MESSAGES[500])
        response = HttpResponse(body, status=status, mimetype="text/html")
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        log.exception("unhandled error", exc_info=error)
        return render_error(InternalServerError.code, *MESSAGES[500])
