"""All configuration in one place: ``LUFFY_*`` environment variables (and an optional ``.env``).

The defaults are the embedded mode (SQLite in ``./var``, no Redis, tasks in-process).
Setting ``LUFFY_DATABASE_URL`` and ``LUFFY_REDIS_URL`` switches to production.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "LUFFY_"
SMS_PROVIDERS = ("console", "tencent")
TENCENT_REQUIRED = (
    "TENCENT_SECRET_ID",
    "TENCENT_SECRET_KEY",
    "TENCENT_SDK_APP_ID",
    "TENCENT_SIGN_NAME",
    "TENCENT_TEMPLATE_ID",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_TASK_OUTAGE_SECONDS = 120
# A task waiting out an outage holds its message for the budget plus one last attempt, which may
# take up to the database connect timeout (luffy.db.CONNECT_TIMEOUT_SECONDS); redelivery must come later.
OUTAGE_REDELIVERY_MARGIN_SECONDS = 5


class SettingsError(ValueError):
    """A configuration value is missing or wrong; ``variable`` names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    backend_url: str
    media_root: Path
    media_prefix: str
    cors_origins: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    log_level: str
    db_pool_size: int
    db_pool_timeout_seconds: float
    db_echo: bool

    banner_count: int
    banner_refresh_seconds: int

    result_ttl_seconds: int
    task_redelivery_seconds: int
    task_outage_seconds: int
    task_stream_maxlen: int
    worker_shutdown_seconds: int

    sms_provider: str
    sms_code_length: int
    sms_code_ttl: int
    sms_mobile_interval_seconds: int
    sms_mobile_daily_limit: int
    sms_ip_hourly_limit: int
    sms_max_wrong_tries: int
    sms_retry_delay_seconds: float
    tencent_secret_id: str
    tencent_secret_key: str
    tencent_sdk_app_id: str
    tencent_sign_name: str
    tencent_template_id: str
    tencent_region: str
    tencent_endpoint: str
    tencent_scheme: str
    tencent_timeout_seconds: float

    jwt_expiry_seconds: int

    @property
    def is_embedded(self) -> bool:
        """Embedded mode: no Redis, so tasks run in-process and the cache lives in the data dir."""
        return self.redis_url is None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def media_base_url(self) -> str:
        return self.backend_url.rstrip("/") + self.media_prefix

    def media_url(self, path: str | None) -> str | None:
        """A stored relative media path as the absolute URL the front end loads; ``None`` when empty."""
        if not path:
            return None
        return self.media_base_url + path.lstrip("/")


def read_dotenv(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a ``.env`` file (comments, blanks and ``export`` prefixes allowed)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(ENV_PREFIX + name)
        return value if value not in (None, "") else None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 10**9) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(ENV_PREFIX + name, f"expected a whole number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise SettingsError(ENV_PREFIX + name, f"must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(ENV_PREFIX + name, f"expected a number, got {value!r}") from None
        if number <= 0:
            raise SettingsError(ENV_PREFIX + name, f"must be positive, got {number}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(ENV_PREFIX + name, f"expected true or false, got {value!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        normalised = value.upper() if choices == LOG_LEVELS else value.lower()
        if normalised not in choices:
            raise SettingsError(ENV_PREFIX + name, f"unknown option {value!r}; choose one of {', '.join(choices)}")
        return normalised


def _check_database_url(url: str) -> str:
    if url.startswith("sqlite+aiosqlite:///") and len(url) > len("sqlite+aiosqlite:///"):
        return url
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        parts = urlsplit("postgresql+asyncpg://" + url.split("://", 1)[1])
    has_host = bool(parts.hostname) or "host=" in parts.query
    if parts.scheme == "postgresql+asyncpg" and has_host and parts.path.strip("/"):
        return parts.geturl()
    raise SettingsError(
        "LUFFY_DATABASE_URL",
        f"not a usable URL (scheme {parts.scheme or 'missing'!r}); "
        "expected postgresql+asyncpg://USER:PASSWORD@HOST/DB or sqlite+aiosqlite:///PATH",
    )


def _check_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise SettingsError(
            "LUFFY_REDIS_URL",
            f"not a usable URL (scheme {parts.scheme or 'missing'!r}); expected redis://[:PASSWORD@]HOST:PORT/DB",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise SettingsError("LUFFY_REDIS_URL", "not a usable URL: the port is not a number") from None
    return url


def _check_http_url(variable: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(variable, f"cannot use {url!r}; expected an http(s):// URL")
    return url.rstrip("/")


def _check_proxy(host: str) -> None:
    if host == "*":
        return
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise SettingsError("LUFFY_TRUSTED_PROXIES", f"{host!r} is not an IP address or network (or *)") from None


def _embedded_secret(data_dir: Path) -> str:
    """The embedded mode's signing key: generated once, then kept in the data dir."""
    key_file = data_dir / "secret_key"
    if key_file.is_file():
        return key_file.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return key


def _outage_budget(read: _Reader, redelivery_seconds: int) -> int:
    """How long tasks wait out a database outage; it must end before their message is redelivered.

    A task waiting out an outage keeps its message unacknowledged; were it still waiting when
    ``LUFFY_TASK_REDELIVERY_SECONDS`` ran out, a second worker would run the same message. Left
    unset, the budget shrinks to fit the redelivery time; set explicitly, a budget that does not
    fit is refused.
    """
    longest = max(redelivery_seconds - OUTAGE_REDELIVERY_MARGIN_SECONDS, 0)
    if read.raw("TASK_OUTAGE_SECONDS") is None:
        return min(DEFAULT_TASK_OUTAGE_SECONDS, longest)
    budget = read.integer("TASK_OUTAGE_SECONDS", DEFAULT_TASK_OUTAGE_SECONDS, minimum=0, maximum=86_400)
    if budget > longest:
        raise SettingsError(
            "LUFFY_TASK_OUTAGE_SECONDS",
            f"{budget} s would outlast LUFFY_TASK_REDELIVERY_SECONDS={redelivery_seconds} (a message still being "
            f"retried would be delivered a second time); keep it at most the redelivery time minus "
            f"{OUTAGE_REDELIVERY_MARGIN_SECONDS} s ({longest}), or raise LUFFY_TASK_REDELIVERY_SECONDS",
        )
    return budget


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ`` over ``./.env``)."""
    if environ is None:
        env: dict[str, Any] = read_dotenv(dotenv or Path(".env"))
        env.update(os.environ)
    else:
        env = dict(environ)
    read = _Reader(env)

    data_dir = Path(read.text("DATA_DIR", "./var")).expanduser().resolve()
    database_url = _check_database_url(read.text("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'luffy.sqlite3'}"))
    redis_raw = read.raw("REDIS_URL")
    redis_url = _check_redis_url(redis_raw) if redis_raw else None
    production = redis_url is not None or not database_url.startswith("sqlite")

    secret_key = read.raw("SECRET_KEY")
    if secret_key is None:
        if production:
            raise SettingsError("LUFFY_SECRET_KEY", "required in production (a PostgreSQL or Redis URL is set)")
        secret_key = _embedded_secret(data_dir)
    elif len(secret_key) < 32:
        raise SettingsError("LUFFY_SECRET_KEY", "must be at least 32 characters")

    media_prefix = "/" + read.text("MEDIA_PREFIX", "/media/").strip("/") + "/"
    sms_provider = read.choice("SMS_PROVIDER", "console", SMS_PROVIDERS)
    if sms_provider == "tencent":
        for name in TENCENT_REQUIRED:
            if read.raw(name) is None:
                raise SettingsError(ENV_PREFIX + name, "required when LUFFY_SMS_PROVIDER=tencent")
    cors = tuple(origin.strip() for origin in read.text("CORS_ORIGINS", "*").split(",") if origin.strip())
    proxies = tuple(host.strip() for host in read.text("TRUSTED_PROXIES", "").split(",") if host.strip())
    for host in proxies:
        _check_proxy(host)
    redelivery_seconds = read.integer("TASK_REDELIVERY_SECONDS", 180, minimum=1, maximum=86_400)

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        backend_url=_check_http_url("LUFFY_BACKEND_URL", read.text("BACKEND_URL", "http://127.0.0.1:8000")),
        media_root=Path(read.text("MEDIA_ROOT", str(data_dir / "media"))).expanduser().resolve(),
        media_prefix=media_prefix,
        cors_origins=cors or ("*",),
        trusted_proxies=proxies,
        log_level=read.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
        db_pool_size=read.integer("DB_POOL_SIZE", 10, minimum=1, maximum=200),
        db_pool_timeout_seconds=read.number("DB_POOL_TIMEOUT_SECONDS", 5.0),
        db_echo=read.flag("DB_ECHO", False),
        banner_count=read.integer("BANNER_COUNT", 3, minimum=1, maximum=100),
        banner_refresh_seconds=read.integer("BANNER_REFRESH_SECONDS", 60, minimum=1, maximum=86_400),
        result_ttl_seconds=read.integer("RESULT_TTL_SECONDS", 3_600, minimum=10, maximum=30 * 86_400),
        task_redelivery_seconds=redelivery_seconds,
        task_outage_seconds=_outage_budget(read, redelivery_seconds),
        task_stream_maxlen=read.integer("TASK_STREAM_MAXLEN", 100_000, minimum=1_000, maximum=100_000_000),
        worker_shutdown_seconds=read.integer("WORKER_SHUTDOWN_SECONDS", 30, minimum=1, maximum=3_600),
        sms_provider=sms_provider,
        sms_code_length=read.integer("SMS_CODE_LENGTH", 4, minimum=4, maximum=10),
        sms_code_ttl=read.integer("SMS_CODE_TTL", 300, minimum=1, maximum=86_400),
        sms_mobile_interval_seconds=read.integer("SMS_MOBILE_INTERVAL_SECONDS", 60, minimum=1, maximum=86_400),
        sms_mobile_daily_limit=read.integer("SMS_MOBILE_DAILY_LIMIT", 10, minimum=1),
        sms_ip_hourly_limit=read.integer("SMS_IP_HOURLY_LIMIT", 20, minimum=1),
        sms_max_wrong_tries=read.integer("SMS_MAX_WRONG_TRIES", 5, minimum=1, maximum=100),
        sms_retry_delay_seconds=read.number("SMS_RETRY_DELAY_SECONDS", 2.0),
        tencent_secret_id=read.text("TENCENT_SECRET_ID", ""),
        tencent_secret_key=read.text("TENCENT_SECRET_KEY", ""),
        tencent_sdk_app_id=read.text("TENCENT_SDK_APP_ID", ""),
        tencent_sign_name=read.text("TENCENT_SIGN_NAME", ""),
        tencent_template_id=read.text("TENCENT_TEMPLATE_ID", ""),
        tencent_region=read.text("TENCENT_REGION", "ap-guangzhou"),
        tencent_endpoint=read.text("TENCENT_ENDPOINT", "sms.tencentcloudapi.com"),
        tencent_scheme=read.choice("TENCENT_SCHEME", "https", ("http", "https")),
        tencent_timeout_seconds=read.number("TENCENT_TIMEOUT_SECONDS", 5.0),
        jwt_expiry_seconds=read.integer("JWT_EXPIRY_SECONDS", 7 * 86_400, minimum=60, maximum=365 * 86_400),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
