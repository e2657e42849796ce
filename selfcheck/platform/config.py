"""Typed settings read from environment variables (12-factor), with safe defaults for a laptop."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

ENV_PREFIX = "SELFCHECK_"
SECRET_KEY_FILE = "secret_key"  # older versions: the key in the instance folder
KEY_ID_FILE = "secret_key_id"  # the name of the key kept in key_folder()


class ConfigError(RuntimeError):
    """Raised when an environment variable holds a value we cannot use."""


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name} must be an integer, got {raw!r}") from exc


SYNCHRONOUS_COMMIT = frozenset({"on", "off", "local", "remote_write", "remote_apply"})


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{ENV_PREFIX}{name} must be a boolean (1/0, true/false), got {raw!r}")


def _positive(name: str, default: int) -> int:
    value = _env_int(name, default)
    if value < 1:
        raise ConfigError(f"{ENV_PREFIX}{name} must be at least 1, got {value}")
    return value


def _non_negative(name: str, default: int) -> int:
    value = _env_int(name, default)
    if value < 0:
        raise ConfigError(f"{ENV_PREFIX}{name} must be 0 or more, got {value}")
    return value


def key_folder() -> Path:
    """Where generated secret keys are kept: the user's state folder (XDG), never the instance
    folder, which holds the SQLite database: a copy of that folder (a file backup, whoever
    holds the database's folder) must not hold what unseals its sealed values and signs its
    sessions."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if state and Path(state).is_absolute():
        return Path(state) / "selfcheck" / "keys"
    try:
        home = Path.home()
    except RuntimeError as exc:  # no HOME and no password entry (some containers)
        raise ConfigError(_NOWHERE) from exc
    return home / ".local/state" / "selfcheck" / "keys"


_NOWHERE = (
    f"no folder to keep the generated secret key in: set {ENV_PREFIX}SECRET_KEY (production), "
    "or XDG_STATE_HOME or HOME to a folder this user may write"
)


def _write_once(path: Path, text: str, mode: int) -> bool:
    """Create `path` holding `text`, unless it exists: False when another process made it
    first. Written aside then linked into place: several workers starting at once all end
    up reading one complete file, never an empty or half-written one."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def _read_key(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise ConfigError(f"{path} is empty: delete it or set {ENV_PREFIX}SECRET_KEY")
    return key


def secret_key_path(instance_path: Path) -> Path:
    """The file holding this instance's generated key, made at the first start (mode 0600).

    An instance folder of an older version keeps its `secret_key` (a new key would make every
    sealed value and session unreadable; `selfcheck move-secret-key` takes it out). A new one
    keeps only the key's name (`secret_key_id`, not secret); the key lives in `key_folder()`.
    A name whose key is missing stops the start (moved to another user or machine): never a
    new key in silence. Every app instance behind a load balancer must share one key: in
    production set SELFCHECK_SECRET_KEY instead of relying on these files.
    """
    legacy = instance_path / SECRET_KEY_FILE
    if legacy.exists():
        return legacy
    name_path = instance_path / KEY_ID_FILE
    folder = key_folder()
    if not name_path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(16)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # The key first, then its name: a stop between them leaves an unused key, never
            # a name without its key.
            _write_once(folder / name, secrets.token_urlsafe(48), 0o600)
        except OSError as exc:  # a home that is read-only or not there
            raise ConfigError(f"{folder}: {exc.strerror}; {_NOWHERE}") from exc
        if not _write_once(name_path, name + "\n", 0o644):
            (folder / name).unlink()  # another worker named its key first: use that one
    name = name_path.read_text(encoding="ascii").strip()
    if not re.fullmatch(r"[0-9a-f]{32}", name):
        raise ConfigError(
            f"{name_path} does not name a key: restore it or set {ENV_PREFIX}SECRET_KEY"
        )
    path = folder / name
    if not path.exists():
        raise ConfigError(
            f"the secret key of {instance_path} ({name}) is not in {folder}: copy it there "
            f"from where it was kept, or set {ENV_PREFIX}SECRET_KEY to it. A new key would "
            "make every sealed value (reminders' addresses, two-factor secrets) unreadable"
        )
    return path


def load_or_create_secret_key(instance_path: Path) -> str:
    """This instance's generated key (`secret_key_path`)."""
    return _read_key(secret_key_path(instance_path))


def move_secret_key(instance_path: Path) -> Path | None:
    """Take an older instance's `secret_key` out of the instance folder into `key_folder()`,
    the same key under a new name: None when there is none to move. Checked before the old
    file goes: a stop at any point leaves a key the next start reads."""
    legacy = instance_path / SECRET_KEY_FILE
    if not legacy.exists():
        return None
    key = _read_key(legacy)
    name_path = instance_path / KEY_ID_FILE
    folder = key_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = secrets.token_hex(16)
    _write_once(folder / name, key, 0o600)
    if _read_key(folder / name) != key:
        raise ConfigError(f"{folder / name} does not read back as the key: nothing moved")
    name_path.unlink(missing_ok=True)  # a name left by a start after an earlier move's stop
    _write_once(name_path, name + "\n", 0o644)
    legacy.unlink()
    return folder / name


def beside_the_database(key_file: Path, database_url: str) -> bool:
    """Whether a key file sits in the folder of the SQLite database file it protects."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or ":memory:" in database_url:
        return False
    database = Path(database_url[len(prefix) :].split("?", 1)[0])
    return database.resolve().parent == key_file.resolve().parent


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, parsed once at start-up."""

    database_url: str
    secret_key: str
    # The file the key was read from (None: SELFCHECK_SECRET_KEY).
    secret_key_file: Path | None = None
    # Adding a language: its catalog in translations/ and its code here (or in the variable).
    languages: tuple[str, ...] = ("fr", "en", "es", "ar")
    default_language: str = "fr"
    max_content_length: int = 64 * 1024
    cookie_secure: bool = False
    sqlite_synchronous: str = "NORMAL"
    # PostgreSQL: test a pooled connection before use when it may be dead (platform/db.py).
    postgres_pre_ping: bool = True
    # PostgreSQL synchronous_commit for the app's connections: "on" waits for the WAL flush
    # of each commit; "off" is the counterpart of SQLite's NORMAL (docs/performance.md).
    postgres_synchronous_commit: str = "on"
    # PostgreSQL: whether a page of answers saved while the questionnaire is still open waits
    # for the WAL flush at commit. False (the default): it does not, as no commit waits with
    # SQLite's NORMAL; a crash of the database server may lose the last fraction of a second
    # of such saves (the person answers that page again), never a sending, an erasure or
    # staff work, which always wait (docs/operations.md, docs/performance.md).
    postgres_page_saves_wait: bool = False
    staff_idle_minutes: int = 30
    # Evaluators: smallest group that may be shown or exported (k-anonymity threshold).
    k_anonymity: int = 5
    # GDPR: answers older than this are deleted by `selfcheck purge`.
    retention_months: int = 36
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none).
    proxy_hops: int = 0
    # Outgoing e-mail (invitations, "mot de passe oublié"): off while SMTP_HOST is empty.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # Background jobs (platform/jobs.py): the queue's URL (empty: beside the database), how
    # many jobs one person may have waiting or running, how long a finished file is kept.
    jobs_url: str = ""
    # Where finished files wait for their download (empty: instance/jobs). With workers on
    # several machines, a folder every app instance and worker shares.
    jobs_dir: str = ""
    jobs_per_user: int = 2
    jobs_keep_minutes: int = 60
    # The site's address as people reach it (https://selfcheck.example.org): printed on blank
    # paper forms, which the job worker renders ahead for it (selfcheck/prefill.py). Empty:
    # the address the print page was last asked at.
    site_url: str = ""
    # Where blank paper forms and export codebooks rendered ahead are kept (None: instance/
    # paper-blanks; empty: nowhere). Several instances may share one folder.
    paper_cache_dir: str | None = None
    # The local calendar: which day it is for the people (a follow-up opens at local midnight).
    timezone: str = "Europe/Paris"

    @classmethod
    def from_env(cls, instance_path: Path) -> Settings:
        default_db = f"sqlite:///{instance_path / 'selfcheck.db'}"
        secret = _env("SECRET_KEY", "")
        key_file = None if secret else secret_key_path(instance_path)
        if key_file is not None:
            secret = _read_key(key_file)
        languages = tuple(
            code.strip() for code in _env("LANGUAGES", "fr,en,es,ar").split(",") if code.strip()
        )
        unknown = [code for code in languages if not _is_locale(code)]
        if unknown:
            raise ConfigError(
                f"{ENV_PREFIX}LANGUAGES: {', '.join(unknown)} is not a language code "
                "(use a CLDR code such as fr, en, es, ar, pt_BR)"
            )
        default_language = _env("DEFAULT_LANGUAGE", "fr")
        if default_language not in languages:
            raise ConfigError(
                f"{ENV_PREFIX}DEFAULT_LANGUAGE={default_language!r} is not in "
                f"{ENV_PREFIX}LANGUAGES={','.join(languages)}"
            )
        synchronous = _env("SQLITE_SYNCHRONOUS", "NORMAL").upper()
        if synchronous not in {"NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(f"{ENV_PREFIX}SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA")
        commit = _env("POSTGRES_SYNCHRONOUS_COMMIT", "on").strip().lower()
        if commit not in SYNCHRONOUS_COMMIT:
            raise ConfigError(
                f"{ENV_PREFIX}POSTGRES_SYNCHRONOUS_COMMIT must be one of "
                + ", ".join(sorted(SYNCHRONOUS_COMMIT))
            )
        site_url = _env("SITE_URL", "").strip().rstrip("/")
        if site_url and not site_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"{ENV_PREFIX}SITE_URL must start with https:// (or http://), got {site_url!r}"
            )
        return cls(
            database_url=_env("DATABASE_URL", default_db),
            secret_key=secret,
            secret_key_file=key_file,
            languages=languages,
            default_language=default_language,
            max_content_length=_env_int("MAX_CONTENT_LENGTH", 64 * 1024),
            cookie_secure=_env_bool("COOKIE_SECURE", False),
            sqlite_synchronous=synchronous,
            postgres_pre_ping=_env_bool("POSTGRES_PRE_PING", True),
            postgres_synchronous_commit=commit,
            postgres_page_saves_wait=_env_bool("POSTGRES_PAGE_SAVES_WAIT", False),
            staff_idle_minutes=_env_int("STAFF_IDLE_MINUTES", 30),
            k_anonymity=_positive("K_ANONYMITY", 5),
            retention_months=_positive("RETENTION_MONTHS", 36),
            proxy_hops=_non_negative("PROXY_HOPS", 0),
            smtp_host=_env("SMTP_HOST", ""),
            smtp_port=_positive("SMTP_PORT", 25),
            smtp_from=_env("SMTP_FROM", ""),
            smtp_user=_env("SMTP_USER", ""),
            smtp_password=_env("SMTP_PASSWORD", ""),
            smtp_starttls=_env_bool("SMTP_STARTTLS", False),
            jobs_url=_env("JOBS_URL", "").strip(),
            jobs_dir=_env("JOBS_DIR", "").strip(),
            jobs_per_user=_positive("JOBS_PER_USER", 2),
            jobs_keep_minutes=_positive("JOBS_KEEP_MINUTES", 60),
            timezone=_timezone(_env("TIMEZONE", "Europe/Paris")),
            site_url=site_url,
            paper_cache_dir=os.environ.get(ENV_PREFIX + "PAPER_CACHE_DIR"),
        )

    def flask_config(self) -> dict[str, object]:
        """The subset Flask and its extensions read from app.config."""
        return {
            "SECRET_KEY": self.secret_key,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "MAX_FORM_MEMORY_SIZE": self.max_content_length,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.cookie_secure,
            "SESSION_COOKIE_NAME": "selfcheck_session",
            # A beneficiary's session ends 2 hours after their last page (shared computers);
            # the personal code resumes the questionnaire where it was.
            "PERMANENT_SESSION_LIFETIME": timedelta(hours=2),
            "WTF_CSRF_TIME_LIMIT": None,  # the journey has no time limit (RGAA 2.2.1)
            "BABEL_DEFAULT_LOCALE": self.default_language,
            "SELFCHECK_K_ANONYMITY": self.k_anonymity,
            "SELFCHECK_RETENTION_MONTHS": self.retention_months,
            "SELFCHECK_SMTP": {
                "host": self.smtp_host,
                "port": self.smtp_port,
                "from": self.smtp_from or f"selfcheck@{self.smtp_host or 'localhost'}",
                "user": self.smtp_user,
                "password": self.smtp_password,
                "starttls": self.smtp_starttls,
            },
            "SELFCHECK_JOBS_URL": self.jobs_url,
            "SELFCHECK_JOBS_DIR": self.jobs_dir,
            "SELFCHECK_JOBS_PER_USER": self.jobs_per_user,
            "SELFCHECK_JOBS_KEEP_MINUTES": self.jobs_keep_minutes,
            "SELFCHECK_TIMEZONE": self.timezone,
            "SELFCHECK_SITE_URL": self.site_url,
        }


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(
            f"{ENV_PREFIX}TIMEZONE: {name!r} is not a time zone (e.g. Europe/Paris)"
        ) from exc
    return name


def _is_locale(code: str) -> bool:
    """A code Babel (CLDR) knows: dates, numbers and plural rules exist for it."""
    try:
        Locale.parse(code)
    except (ValueError, TypeError, UnknownLocaleError):
        return False
    return True
