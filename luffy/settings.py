"""All configuration in one place: ``LUFFY_*`` environment variables (and an optional ``.env``).

Each setting is declared once, as a field of ``Settings``: its type, default, bounds and help. The
environment variable is the field's name in capitals after ``LUFFY_``; msgspec converts and checks
the strings, and the README's configuration table is rendered from the same declaration
(``python -m luffy.settings``; ``tests/test_readme.py`` fails when the two differ).

The defaults are the embedded mode (SQLite in ``./var``, no Redis, tasks in-process).
Setting ``LUFFY_DATABASE_URL`` and ``LUFFY_REDIS_URL`` switches to production.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "LUFFY_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
TENCENT_REQUIRED = (
    "tencent_secret_id",
    "tencent_secret_key",
    "tencent_sdk_app_id",
    "tencent_sign_name",
    "tencent_template_id",
)


DAY = 86_400
DEFAULT_TASK_OUTAGE_SECONDS = 120
# A task waiting out an outage holds its message for the budget plus one last attempt, which may
# take up to the database connect timeout (luffy.db.CONNECT_TIMEOUT_SECONDS); redelivery must come later.
OUTAGE_REDELIVERY_MARGIN_SECONDS = 5
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
SmsProvider = Literal["console", "tencent"]
PaymentProvider = Literal["alipay", "simulator"]
ALIPAY_REQUIRED = ("alipay_app_id", "alipay_app_private_key", "alipay_public_key")
ALIPAY_PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
NOTIFY_PATH = "/api/v1/order/success/"


def setting(description: str, *, shown_default: str | None = None, **bounds: Any) -> msgspec.Meta:
    """A setting's help and bounds; ``shown_default`` is what the README says when the default is derived."""
    return msgspec.Meta(description=description, extra={"shown_default": shown_default}, **bounds)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The process's configuration. Build it with ``load_settings()``: some defaults depend on others."""

    data_dir: Annotated[
        Path, setting("embedded mode's SQLite file, cache, secret key, media", shown_default="`./var`")
    ] = Path("./var")
    database_url: Annotated[
        str,
        setting(
            "`postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB` for production",
            shown_default="SQLite in the data dir",
        ),
    ] = ""
    redis_url: Annotated[
        str | None,
        setting("`redis://HOST:PORT/DB`: broker, result backend, cache and limits", shown_default="unset (embedded)"),
    ] = None
    secret_key: Annotated[
        str,
        setting(
            "JWT signing key; required in production",
            shown_default="generated (embedded)",
            min_length=32,
        ),
    ] = ""
    backend_url: Annotated[
        str,
        setting("prefix of absolute media URLs and page links (`next`/`previous`); `https://` also turns on HSTS"),
    ] = "http://127.0.0.1:8000"
    media_root: Annotated[Path, setting("where media files live", shown_default="`$LUFFY_DATA_DIR/media`")] = Path()
    media_prefix: Annotated[str, setting("URL path media is served under")] = "/media/"
    cors_origins: Annotated[tuple[str, ...], setting("comma-separated origins allowed to call the API")] = ("*",)
    trusted_proxies: Annotated[
        tuple[str, ...],
        setting(
            "IPs or CIDRs of the reverse proxies whose `X-Forwarded-For` is trusted (set it behind nginx, "
            "or every user shares one per-IP SMS quota); `*` is refused: it would let any client choose its own IP"
        ),
    ] = ()
    log_level: Annotated[LogLevel, setting("the least severe log records written")] = "INFO"
    db_pool_size: Annotated[
        int,
        setting(
            "most PostgreSQL connections per process for requests (no overflow: requests past it wait for a "
            "free one); `/health` has its own one or two, so it answers while these are busy",
            ge=1,
            le=200,
        ),
    ] = 10
    db_pool_timeout_seconds: Annotated[
        int, setting("how long a request waits for a free PostgreSQL connection before it answers 503", ge=1, le=600)
    ] = 5
    db_echo: Annotated[bool, setting("log every SQL statement")] = False

    banner_count: Annotated[int, setting("banners on the home page", ge=1, le=100)] = 3
    banner_refresh_seconds: Annotated[
        int, setting("how often the scheduler rewrites the banner cache", ge=1, le=DAY)
    ] = 60
    catalogue_cache_seconds: Annotated[
        int,
        setting(
            "production only: the longest a cached category list, course or chapter list is served; "
            "Luffy's own writes clear the cache at once, this bounds how long a direct database edit stays unseen",
            ge=1,
            le=DAY,
        ),
    ] = 300

    result_ttl_seconds: Annotated[int, setting("how long task results are kept", ge=10, le=30 * DAY)] = 3_600
    task_redelivery_seconds: Annotated[
        int,
        setting(
            "a task left unacknowledged this long (its worker died) is delivered again; "
            "keep it above the slowest task plus its retry waits",
            ge=1,
            le=DAY,
        ),
    ] = 180
    task_outage_seconds: Annotated[
        int,
        setting(
            "how long a task waits out a database outage before it fails; at most the redelivery time "
            "minus 5 s (a longer value is refused; left unset it shrinks to fit)",
            ge=0,
            le=DAY,
        ),
    ] = DEFAULT_TASK_OUTAGE_SECONDS
    task_stream_maxlen: Annotated[
        int,
        setting(
            "cap of each queue's Redis stream; keep it above the largest burst (a flash sale)",
            ge=1_000,
            le=100_000_000,
        ),
    ] = 100_000
    worker_shutdown_seconds: Annotated[
        int,
        setting(
            "on SIGTERM, how long a worker lets running tasks finish before leaving them for redelivery",
            ge=1,
            le=3_600,
        ),
    ] = 30

    sms_provider: Annotated[
        SmsProvider,
        setting(
            "`tencent` sends the code; `console` sends nothing (the SMS log keeps the code in embedded mode only); "
            "required in production",
            shown_default="`console` (embedded)",
        ),
    ] = "console"
    sms_code_length: Annotated[int, setting("digits in a code", ge=4, le=10)] = 4
    sms_code_ttl: Annotated[int, setting("seconds a code stays valid", ge=1, le=DAY)] = 300
    sms_mobile_interval_seconds: Annotated[int, setting("one code per mobile per this many seconds", ge=1, le=DAY)] = 60
    sms_mobile_daily_limit: Annotated[int, setting("codes per mobile per day", ge=1, le=10**9)] = 10
    sms_ip_hourly_limit: Annotated[
        int, setting("SMS requests and mobile checks per client IP per hour", ge=1, le=10**9)
    ] = 20
    sms_max_wrong_tries: Annotated[int, setting("wrong tries before a code is void", ge=1, le=100)] = 5
    sms_retry_delay_seconds: Annotated[
        float,
        setting(
            "a transient provider failure is retried after this times the try number "
            "(plus up to 1 s jitter), 3 tries at most",
            gt=0,
        ),
    ] = 2.0
    tencent_secret_id: Annotated[str, setting("Tencent Cloud API SecretId (required with `tencent`)")] = ""
    tencent_secret_key: Annotated[str, setting("Tencent Cloud API SecretKey (required with `tencent`)")] = ""
    tencent_sdk_app_id: Annotated[str, setting("the SMS application's SdkAppId (required with `tencent`)")] = ""
    tencent_sign_name: Annotated[str, setting("the SMS signature (required with `tencent`)")] = ""
    tencent_template_id: Annotated[str, setting("the SMS template (required with `tencent`)")] = ""
    tencent_region: Annotated[str, setting("API region")] = "ap-guangzhou"
    tencent_endpoint: Annotated[str, setting("API endpoint host")] = "sms.tencentcloudapi.com"
    tencent_scheme: Annotated[Literal["http", "https"], setting("API endpoint scheme")] = "https"
    tencent_timeout_seconds: Annotated[float, setting("per-request timeout", gt=0)] = 5.0

    jwt_expiry_seconds: Annotated[int, setting("token lifetime (7 days)", ge=60, le=365 * DAY)] = 7 * DAY
    login_max_failures: Annotated[
        int, setting("failed password logins per account before it is locked", ge=1, le=1_000)
    ] = 5
    login_lock_seconds: Annotated[
        int, setting("the window those failures count in; a locked account answers 429 until it passes", ge=1, le=DAY)
    ] = 900
    login_ip_hourly_limit: Annotated[int, setting("failed password logins per client IP per hour", ge=1, le=10**9)] = (
        100
    )

    payment_provider: Annotated[
        PaymentProvider,
        setting(
            "where buyers pay: Alipay, or Luffy's own offline cashier (see Payments)",
            shown_default="`alipay` when Alipay keys are set, else `simulator`",
        ),
    ] = "simulator"
    alipay_app_id: Annotated[str, setting("the Alipay application's id (required with `alipay`)")] = ""
    alipay_app_private_key: Annotated[
        str,
        setting(
            "the application's RSA private key: PEM text, the bare base64 key Alipay's key tool prints, "
            "or `@/path/to.pem` (required with `alipay`)"
        ),
    ] = ""
    alipay_public_key: Annotated[
        str, setting("**Alipay's** public key (not the app's), in the same forms (required with `alipay`)")
    ] = ""
    alipay_gateway: Annotated[
        str,
        setting("the production gateway; the sandbox's is `https://openapi-sandbox.dl.alipaydev.com/gateway.do`"),
    ] = ALIPAY_PRODUCTION_GATEWAY
    pay_return_url: Annotated[
        str, setting("where the buyer's browser returns after paying (the front end's `/pay/success` page)")
    ] = "http://127.0.0.1:8080/pay/success"
    pay_notify_url: Annotated[
        str,
        setting(
            "where Alipay posts its asynchronous notification; must be reachable from the Internet with `alipay`",
            shown_default=f"`LUFFY_BACKEND_URL` + `{NOTIFY_PATH}`",
        ),
    ] = ""
    order_timeout_seconds: Annotated[
        int,
        setting(
            "an order still unpaid this long after creation is closed (超时取消); Alipay is given the same deadline",
            ge=1,
            le=30 * DAY,
        ),
    ] = 900
    order_sweep_seconds: Annotated[
        int, setting("how often the scheduler sends the sweep that closes such orders", ge=1, le=DAY)
    ] = 60

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


class SettingsError(ValueError):
    """A configuration value is missing or wrong; ``variable`` names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


class Declared(NamedTuple):
    """One field of ``Settings``: its environment variable, type, ``setting()`` metadata and default."""

    name: str
    kind: Any
    meta: msgspec.Meta
    default: Any

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()


def declared_settings() -> list[Declared]:
    """Every setting, in declaration order (the README table's order)."""
    fields = []
    for field in msgspec.structs.fields(Settings):
        kind, meta = get_args(field.type)  # every field is ``Annotated[type, setting(...)]``
        fields.append(Declared(field.name, kind, meta, field.default))
    return fields


def _declared(name: str) -> Declared:
    return next(field for field in declared_settings() if field.name == name)


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


def _as_declared(field: Declared, value: str) -> Any:
    """An environment string in the shape msgspec converts to the field's type (lists, flags, choices)."""
    if get_origin(field.kind) is tuple:
        return [part.strip() for part in value.split(",") if part.strip()]
    if field.kind is bool:
        lowered = value.strip().lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise SettingsError(field.variable, f"expected true or false, got {value!r}")
    if get_origin(field.kind) is Literal:
        for choice in get_args(field.kind):
            if choice.lower() == value.strip().lower():
                return choice
        choices = ", ".join(get_args(field.kind))
        raise SettingsError(field.variable, f"unknown option {value!r}; choose one of {choices}")
    if field.kind in (int, float):
        return value.strip()
    return value


def _environment_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives (an empty value counts as not given), keyed by field name."""
    values: dict[str, Any] = {}
    for field in declared_settings():
        value = env.get(field.variable)
        if value and (converted := _as_declared(field, value)) != []:
            values[field.name] = converted
    return values


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value).expanduser()
    raise NotImplementedError


def _conversion_error(exc: msgspec.ValidationError, values: Mapping[str, Any]) -> SettingsError:
    """msgspec's ``Expected `int` >= 1 - at `$.banner_count``` as ``LUFFY_BANNER_COUNT: expected `int` >= 1``."""
    message, _, where = str(exc).partition(" - at ")
    found = re.match(r"`\$\.(\w+)", where)
    field = _declared(found.group(1) if found else "")
    problem = message[:1].lower() + message[1:].removesuffix(", got `str`")
    # Only numbers are echoed: text settings may be secrets or URLs with passwords.
    if field.kind in (int, float):
        problem += f", got {values[field.name]!r}"
    return SettingsError(field.variable, problem)


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


def _http_url(variable: str, url: str) -> str:
    """An http(s) URL kept exactly as written (a trailing slash included)."""
    _check_http_url(variable, url)
    return url


def _rsa_key(name: str, value: str, *, private: bool) -> str:
    """An RSA key as PEM, from PEM text, a bare base64 body (as Alipay's console shows keys) or ``@path``."""
    from Cryptodome.PublicKey import RSA

    variable = _declared(name).variable
    if value.startswith("@"):
        try:
            value = Path(value[1:]).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(variable, f"cannot read {value[1:]!r}: {exc.__class__.__name__}") from None
    text = value.replace("\\n", "\n").strip()
    try:
        key = RSA.import_key(text if text.startswith("-----BEGIN") else base64.b64decode("".join(text.split())))
    except (ValueError, IndexError, TypeError):
        raise SettingsError(variable, "not an RSA key (expected PEM text, a base64 key or @/path/to.pem)") from None
    if private and not key.has_private():
        raise SettingsError(variable, "is a public key; the app's private key is needed")
    if not private and key.has_private():
        raise SettingsError(variable, "is a private key; give Alipay's public key")
    return key.export_key("PEM").decode("ascii")


def _payment(declared: Settings, given: Mapping[str, Any], backend_url: str) -> dict[str, Any]:
    """The payment settings: the provider by default follows the keys, and the keys are parsed to PEM."""
    provider = declared.payment_provider
    if "payment_provider" not in given and any(name in given for name in ALIPAY_REQUIRED):
        provider = "alipay"
    if provider == "alipay":
        for name in ALIPAY_REQUIRED:
            if name not in given:
                raise SettingsError(_declared(name).variable, "required when LUFFY_PAYMENT_PROVIDER=alipay")
    private_key, public_key = declared.alipay_app_private_key, declared.alipay_public_key
    return {
        "payment_provider": provider,
        "alipay_app_private_key": _rsa_key("alipay_app_private_key", private_key, private=True) if private_key else "",
        "alipay_public_key": _rsa_key("alipay_public_key", public_key, private=False) if public_key else "",
        "alipay_gateway": _check_http_url("LUFFY_ALIPAY_GATEWAY", declared.alipay_gateway),
        "pay_return_url": _http_url("LUFFY_PAY_RETURN_URL", declared.pay_return_url),
        "pay_notify_url": _http_url("LUFFY_PAY_NOTIFY_URL", declared.pay_notify_url or backend_url + NOTIFY_PATH),
    }


def _check_proxy(host: str) -> None:
    if host == "*":
        # Trusting every peer lets any client write its own X-Forwarded-For, so it picks its own IP
        # and every per-IP limit is bypassed.
        raise SettingsError(
            "LUFFY_TRUSTED_PROXIES",
            "'*' would let any client choose its own IP; list the proxies' addresses or networks",
        )
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise SettingsError("LUFFY_TRUSTED_PROXIES", f"{host!r} is not an IP address or network") from None


def _embedded_secret(data_dir: Path) -> str:
    """The embedded mode's signing key: generated once, then kept in the data dir."""
    key_file = data_dir / "secret_key"
    if key_file.is_file():
        return key_file.read_text(encoding="utf-8").strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    if not create_private(key_file, key.encode("utf-8")):
        return key_file.read_text(encoding="utf-8").strip()  # another process made it first: its key wins
    return key


def _outage_budget(declared: Settings, given: Mapping[str, Any]) -> int:
    """How long tasks wait out a database outage; it must end before their message is redelivered.

    A task waiting out an outage keeps its message unacknowledged; were it still waiting when
    ``LUFFY_TASK_REDELIVERY_SECONDS`` ran out, a second worker would run the same message. Left
    unset, the budget shrinks to fit the redelivery time; set explicitly, a budget that does not
    fit is refused.
    """
    redelivery = declared.task_redelivery_seconds
    longest = max(redelivery - OUTAGE_REDELIVERY_MARGIN_SECONDS, 0)
    if "task_outage_seconds" not in given:
        return min(declared.task_outage_seconds, longest)
    if declared.task_outage_seconds > longest:
        raise SettingsError(
            "LUFFY_TASK_OUTAGE_SECONDS",
            f"{declared.task_outage_seconds} s would outlast LUFFY_TASK_REDELIVERY_SECONDS={redelivery} (a message "
            f"still being retried would be delivered a second time); keep it at most the redelivery time minus "
            f"{OUTAGE_REDELIVERY_MARGIN_SECONDS} s ({longest}), or raise LUFFY_TASK_REDELIVERY_SECONDS",
        )
    return declared.task_outage_seconds


def create_private(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` readable by its owner only from the first byte (no chmod after the fact).

    The content is written to a private temporary file first, then linked into place: another
    process never sees a half-written file, and if one made ``path`` first, it is kept (``False``).
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def _completed(declared: Settings, given: Mapping[str, Any]) -> Settings:
    """The derived defaults and the checks that span settings or need more than a type and bounds."""
    data_dir = declared.data_dir.resolve()
    database_url = _check_database_url(declared.database_url or f"sqlite+aiosqlite:///{data_dir / 'luffy.sqlite3'}")
    redis_url = _check_redis_url(declared.redis_url) if declared.redis_url else None
    production = redis_url is not None or not database_url.startswith("sqlite")

    secret_key = declared.secret_key
    if not secret_key:
        if production:
            raise SettingsError("LUFFY_SECRET_KEY", "required in production (a PostgreSQL or Redis URL is set)")
        secret_key = _embedded_secret(data_dir)

    if production and "sms_provider" not in given:
        # The console provider would keep every code in the SMS log: in production it must be chosen on purpose.
        raise SettingsError("LUFFY_SMS_PROVIDER", "required in production (tencent, or console for a test deployment)")
    if declared.sms_provider == "tencent":
        for name in TENCENT_REQUIRED:
            if name not in given:
                raise SettingsError(_declared(name).variable, "required when LUFFY_SMS_PROVIDER=tencent")
    for host in declared.trusted_proxies:
        _check_proxy(host)
    outage_seconds = _outage_budget(declared, given)

    backend_url = _check_http_url("LUFFY_BACKEND_URL", declared.backend_url)
    return msgspec.structs.replace(
        declared,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        backend_url=backend_url,
        **_payment(declared, given, backend_url),
        media_root=declared.media_root.resolve() if "media_root" in given else data_dir / "media",
        media_prefix="/" + declared.media_prefix.strip("/") + "/",
        task_outage_seconds=outage_seconds,
    )


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ`` over ``./.env``)."""
    if environ is None:
        env: dict[str, str] = read_dotenv(dotenv or Path(".env"))
        env.update(os.environ)
    else:
        env = dict(environ)
    given = _environment_values(env)
    try:
        declared = msgspec.convert(given, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise _conversion_error(exc, given) from None
    return _completed(declared, given)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()


def _shown(default: Any) -> str:
    if default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f"`{default:g}`"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`"
    return f"`{default}`" if default != "" else ""


def _accepted(field: Declared) -> str:
    meta = field.meta
    if meta.ge is not None and meta.le is not None:
        return f"{meta.ge:,} – {meta.le:,}"
    if meta.gt is not None:
        return f"> {meta.gt:g}"
    if meta.min_length is not None:
        return f"{meta.min_length}+ characters"
    if get_origin(field.kind) is Literal:
        return ", ".join(f"`{choice}`" for choice in get_args(field.kind))
    if field.kind is bool:
        return "`true`, `false`"
    return ""


def settings_table() -> str:
    """The README's configuration table: one row per setting, in declaration order."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for field in declared_settings():
        shown = (field.meta.extra or {}).get("shown_default") or _shown(field.default)
        rows.append(f"| `{field.variable}` | {shown} | {_accepted(field)} | {field.meta.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
