"""Settings for the whole service, driven by environment variables.

Every variable is documented in `.env.example`. With nothing set, the service runs locally on a SQLite
file and an embedded broker, with development keys; with `DJANGO_DEBUG=0` it refuses to start unless
the secrets are set.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Local state: the SQLite database, the embedded broker's file, the beat schedule, collected static files.
# VAR_DIR moves all of it (the soak runs a whole stack in a temporary folder this way).
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_or(name: str, default: str) -> str:
    """The variable's value, or `default` when it is unset or empty (as in a copied .env.example)."""
    return os.environ.get(name) or default


DEBUG = env.bool("DJANGO_DEBUG", default=True)

# Development defaults: safe only because production (DEBUG off) refuses to start with them.
_DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
_DEV_SERVICE_KEY = "dev-service-key"
_DEV_CLIENT_SECRET = "dev-client-secret"

SECRET_KEY = env_or("DJANGO_SECRET_KEY", _DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- IFTTT -----------------------------------------------------------------------------------------
IFTTT_SERVICE_SLUG = env_or("IFTTT_SERVICE_SLUG", "smarthome")
IFTTT_SERVICE_KEY = env_or("IFTTT_SERVICE_KEY", _DEV_SERVICE_KEY)
# IFTTT's staging copy of a service has a key of its own; both are accepted.
IFTTT_STAGING_SERVICE_KEY = env.str("IFTTT_STAGING_SERVICE_KEY", default="")
IFTTT_CLIENT_ID = env_or("IFTTT_CLIENT_ID", "ifttt")
IFTTT_CLIENT_SECRET = env_or("IFTTT_CLIENT_SECRET", _DEV_CLIENT_SECRET)
IFTTT_REDIRECT_URI = f"https://ifttt.com/channels/{IFTTT_SERVICE_SLUG}/authorize"
# Development (DEBUG, or the development service key) never talks to the real IFTTT by accident: unless
# these are set explicitly, Realtime notifications are off and Connect calls go to a local port where
# nothing listens (they fail at once, naming IFTTT_CONNECT_URL). Production keeps IFTTT's own URLs.
# An empty IFTTT_REALTIME_URL turns Realtime notifications off. `manage.py serve` prints where both go.
IFTTT_DEVELOPMENT = DEBUG or IFTTT_SERVICE_KEY == _DEV_SERVICE_KEY
IFTTT_REAL_REALTIME_URL = "https://realtime.ifttt.com/v1/notifications"
IFTTT_REAL_CONNECT_URL = "https://connect.ifttt.com"
IFTTT_NOWHERE_CONNECT_URL = "http://127.0.0.1:9"  # the discard port: refused at once
IFTTT_REALTIME_URL = env.str("IFTTT_REALTIME_URL", default="" if IFTTT_DEVELOPMENT else IFTTT_REAL_REALTIME_URL)
IFTTT_CONNECT_URL = env_or(
    "IFTTT_CONNECT_URL", IFTTT_NOWHERE_CONNECT_URL if IFTTT_DEVELOPMENT else IFTTT_REAL_CONNECT_URL
)
# Connect API client: per-attempt timeout (s), retries (reads only; an action run that may have run is never
# re-sent), first backoff delay (s, doubling, with jitter).
IFTTT_CONNECT_TIMEOUT = env.float("IFTTT_CONNECT_TIMEOUT", default=10.0)
IFTTT_CONNECT_RETRIES = env.int("IFTTT_CONNECT_RETRIES", default=3)
IFTTT_CONNECT_BACKOFF = env.float("IFTTT_CONNECT_BACKOFF", default=0.5)
# Connection runtime scripts: IFTTT's 10 s limit, and a V8 heap cap per run.
CONNECTIONS_SCRIPT_TIMEOUT = env.float("CONNECTIONS_SCRIPT_TIMEOUT", default=10.0)
CONNECTIONS_SCRIPT_MEMORY_MB = env.int("CONNECTIONS_SCRIPT_MEMORY_MB", default=64)
# The script task's soft time limit (s), a backstop above the script's own: a run it stops ends as
# failed and is never re-run. The hard limit is 10 s more; a claimed run's lease 30 s more again.
CONNECTIONS_SCRIPT_TASK_SOFT_LIMIT = env.float("CONNECTIONS_SCRIPT_TASK_SOFT_LIMIT", default=60.0)
# --- The service's identity: every page, the banner, the landing page and `ifttt_review` use these.
SERVICE_NAME = env_or("SERVICE_NAME", "Smart Home")
SERVICE_DESCRIPTION = env_or(
    "SERVICE_DESCRIPTION",
    "Smart Home connects your lights, plugs, thermostats and motion sensors to the apps and devices you use.",
)
SERVICE_SUPPORT_EMAIL = env_or("SERVICE_SUPPORT_EMAIL", "support@example.com")
SERVICE_BRAND_COLOR = env_or("SERVICE_BRAND_COLOR", "#1f6feb")
# An SVG file: IFTTT wants a white vector logo on a transparent background.
SERVICE_LOGO = Path(env_or("SERVICE_LOGO", str(BASE_DIR / "static" / "brand" / "logo.svg")))
# The public base URL of this service, used for links IFTTT shows (action results, user/info url).
SITE_URL = env_or("SITE_URL", f"http://127.0.0.1:{env_or('PORT', '8000')}").rstrip("/")
# The largest JSON body the Service API and the device API accept.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1_000_000)
IFTTT_TRIGGER_DEFAULT_LIMIT = 50
# The API log (every call IFTTT makes under /ifttt/, for support) and how long its rows are kept.
IFTTT_API_LOG_ENABLED = env.bool("IFTTT_API_LOG_ENABLED", default=True)
# Each call's detail is kept this long (IFTTT's own platform keeps 48 hours); failed calls longer, and
# per day, user and endpoint summaries longer still (the support pages read them). See README
# "What it keeps" and `manage.py retention`.
API_LOG_DETAIL_HOURS = env.float("API_LOG_DETAIL_HOURS", default=48)
API_LOG_FAILURE_RETENTION_DAYS = env.float("API_LOG_FAILURE_RETENTION_DAYS", default=7)
API_LOG_SUMMARY_RETENTION_DAYS = env.float("API_LOG_SUMMARY_RETENTION_DAYS", default=30)

# --- Retention of everything else (days; see each app's retention.py) -------------------------------
# Finished work: Realtime deliveries, action runs, Connect webhooks, fired triggers and script runs.
REALTIME_DELIVERY_RETENTION_DAYS = env.float("REALTIME_DELIVERY_RETENTION_DAYS", default=7)
ACTION_RUN_RETENTION_DAYS = env.float("ACTION_RUN_RETENTION_DAYS", default=14)
CONNECTIONS_RETENTION_DAYS = env.float("CONNECTIONS_RETENTION_DAYS", default=30)
# Trigger identities IFTTT deleted (or stopped polling), kept a while for support, then removed.
TRIGGER_IDENTITY_RETENTION_DAYS = env.float("TRIGGER_IDENTITY_RETENTION_DAYS", default=30)
# A feed keeps this many newest events per identity; a poll for more reads the history instead.
TRIGGER_FEED_KEEP = env.int("TRIGGER_FEED_KEEP", default=50)
# The events IFTTT's endpoint tests cause on the isolated test account (not its sample history).
TEST_ACCOUNT_EVENT_RETENTION_DAYS = env.float("TEST_ACCOUNT_EVENT_RETENTION_DAYS", default=7)
# Sign-in attempts and lockouts (django-axes), and expired sessions.
LOGIN_RECORD_RETENTION_DAYS = env.float("LOGIN_RECORD_RETENTION_DAYS", default=30)
SESSION_RETENTION_DAYS = env.float("SESSION_RETENTION_DAYS", default=0)
# API-log rows are written in batches, at most this many seconds after the call (0: each at once).
API_LOG_FLUSH_SECONDS = env.float("API_LOG_FLUSH_SECONDS", default=1.0)

# --- Security: secrets checked at start-up, HTTPS ---------------------------------------------------
# Words that mark a value copied from documentation rather than generated.
_PLACEHOLDER_MARKS = ("changeme", "change-me", "change_me", "example", "insecure", "placeholder", "do-not-use")


def _weak_secret(value: str, dev: str, minimum: int) -> str:
    """Why `value` is no production secret ("" when it will do)."""
    lowered = value.lower()
    if not value or value == dev:
        return "is not set"
    if len(value) < minimum:
        return f"is {len(value)} characters long; use at least {minimum} random characters"
    if len(set(value)) < 8:
        return "repeats a few characters; use a random value"
    if lowered.startswith("django-insecure") or any(mark in lowered for mark in _PLACEHOLDER_MARKS):
        return "looks like a placeholder; use a random value"
    return ""


if not DEBUG:
    # Django's own rule for the secret key (50 characters); IFTTT's keys are long random strings; the
    # client secret is ours to generate (python -c "import secrets; print(secrets.token_urlsafe(32))").
    _checked = [
        ("DJANGO_SECRET_KEY", SECRET_KEY, _DEV_SECRET_KEY, 50),
        ("IFTTT_SERVICE_KEY", IFTTT_SERVICE_KEY, _DEV_SERVICE_KEY, 20),
        ("IFTTT_CLIENT_SECRET", IFTTT_CLIENT_SECRET, _DEV_CLIENT_SECRET, 32),
    ]
    if IFTTT_STAGING_SERVICE_KEY:
        _checked.append(("IFTTT_STAGING_SERVICE_KEY", IFTTT_STAGING_SERVICE_KEY, _DEV_SERVICE_KEY, 20))
    _weak = [f"{name} {why}" for name, value, dev, minimum in _checked if (why := _weak_secret(value, dev, minimum))]
    if _weak:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off, so real secrets are required (see .env.example): " + "; ".join(_weak) + "."
        )

# --- Django ----------------------------------------------------------------------------------------
INSTALLED_APPS = [
    # The admin as the support console: branded, organised by support's questions (support/site.py).
    "support.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "protocol",
    "accounts",
    "devices",
    "triggers",
    "actions",
    "queries",
    "support",
    "localifttt",
    "connections",
]

MIDDLEWARE = [
    # First: every log line of a request, and every task it enqueues, carries its X-Request-ID.
    "core.observability.RequestIdMiddleware",
    # Next: a request that cannot reach the database gets 503 + Retry-After, not a 500 and a traceback.
    "core.db.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "protocol.middleware.ApiLogMiddleware",
    # Text no database can store (NUL, lone surrogates) in a URL or form is a 400 before any view runs.
    "core.http.TextGuardMiddleware",
    "accounts.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes requires: it turns a throttled sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "iftttsvc.urls"
WSGI_APPLICATION = "iftttsvc.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Failed sign-ins are throttled (django-axes): 5 failures for one username from one address pause
# that pair for 15 minutes, so guessing a password is slow while others can still sign in.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# More attempts while locked out do not extend the pause: the page can say exactly when it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_VERBOSE = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.service",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(env_or("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A persistent connection is checked before a request (or task) reuses it, so one that a database
# restart broke is replaced instead of failing the request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# People's passwords use Django's default hashers; OAuth client secrets (long random strings, checked
# on every token call) use one salted SHA-256 instead: see protocol/hashers.py. Never list it first.
PASSWORD_HASHERS = [*global_settings.PASSWORD_HASHERS, "protocol.hashers.ClientSecretHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date and time format everywhere (the admin too): see iftttsvc/formats/en/formats.py.
FORMAT_MODULE_PATH = "iftttsvc.formats"

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Production is HTTPS only (IFTTT requires it): plain HTTP is redirected, except the probes and the
# scraper that call the service directly, and browsers are told to use HTTPS (HSTS) for a year.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Asking browsers to preload the domain is its owner's decision, so it is off unless set; `check
# --deploy` would otherwise flag it on every run.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- REST framework and OpenAPI --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.http.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.http.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Smart-home IFTTT service",
    "DESCRIPTION": (
        "The IFTTT Service API as IFTTT calls it, and the device API. Trigger, action and query "
        "endpoints are generated from the catalog registry."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "protocol.schema.ifttt_paths"],
}


# --- OAuth2 provider -------------------------------------------------------------------------------
def _pkce_required(client_id: str) -> bool:
    """IFTTT sends no PKCE, so only its client is exempt; every other client must use it."""
    return client_id != IFTTT_CLIENT_ID


# IFTTT requires tokens it holds not to expire by time: access tokens last a century, refresh
# tokens never expire, and a rotated refresh token stays usable for a grace period because IFTTT
# may lose the refresh response and retry with the old one.
OAUTH2_PROVIDER = {
    "SCOPES": {
        "ifttt": "See your devices and their history, switch devices on and off, "
        "change thermostat temperatures and light colours"
    },
    "DEFAULT_SCOPES": ["ifttt"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 100 * 365 * 24 * 3600,
    "REFRESH_TOKEN_EXPIRE_SECONDS": None,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": env.int("OAUTH_REFRESH_GRACE_SECONDS", default=7 * 24 * 3600),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 600,
    "PKCE_REQUIRED": _pkce_required,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if not DEBUG else ["http", "https"],
    # Exact redirect-URI matching, revocation limited to the caller's own tokens and covering the
    # whole grant, and Deny never redirecting to an unregistered URI (see accounts/oauth.py).
    "OAUTH2_VALIDATOR_CLASS": "protocol.oauth.ServiceOAuth2Validator",
    "OAUTH2_BACKEND_CLASS": "protocol.oauth.ServiceOAuthLibCore",
}
# A used authorization code's digest is kept this long: presenting it again revokes what it issued.
OAUTH_SPENT_CODE_RETENTION_DAYS = env.float("OAUTH_SPENT_CODE_RETENTION_DAYS", default=1)

# --- Celery ----------------------------------------------------------------------------------------
# Unset CELERY_BROKER_URL means "embedded": a broker in one SQLite file under var/ (core/broker.py),
# served by the worker that `make run` starts beside the web process, so nothing extra has to be
# installed. Why this one and not kombu's filesystem or SQLAlchemy transports: README, "The embedded broker".
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_EMBEDDED_BROKER = not CELERY_BROKER_URL
if CELERY_EMBEDDED_BROKER:
    CELERY_BROKER_URL = f"sqlite://localhost/{VAR_DIR.resolve() / 'broker.sqlite3'}"
if CELERY_BROKER_URL.startswith("sqlite://"):
    # The embedded broker reaches only the processes on this machine: no remote control to offer.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.1, "lease_seconds": 30.0}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
CELERY_BEAT_SCHEDULE["retention-prune"] = {"task": "core.retention_prune", "schedule": 24 * 3600}
# Lets several deployments (or test runs) share one broker without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# --- Realtime notifications --------------------------------------------------------------------------
# Events for one identity within this many seconds are one notification, and an identity is notified
# at most once per window. It is also the delay before the first notification, so keep it well under 1 s.
REALTIME_COALESCE_SECONDS = env.float("REALTIME_COALESCE_SECONDS", default=0.3)
# How often the sweep looks for identities whose notification was never enqueued (broker or worker
# down) and for deliveries whose retry is due or whose worker died mid-send.
REALTIME_SWEEP_SECONDS = env.float("REALTIME_SWEEP_SECONDS", default=5.0)
REALTIME_TIMEOUT_SECONDS = env.float("REALTIME_TIMEOUT_SECONDS", default=10.0)
# A worker owns a delivery this long per attempt; past it, the sweep assumes the worker died and resends.
REALTIME_LEASE_SECONDS = env.float("REALTIME_LEASE_SECONDS", default=30.0)
# Retries back off exponentially from this base (with jitter) up to this cap, and never give up: after
# an outage of any length every pending identity is notified, at most one cap after IFTTT recovers.
# While a delivery waits to retry, new marks wait on their identities (coalesced), so an outage costs
# one request per backoff step.
REALTIME_BACKOFF_SECONDS = env.float("REALTIME_BACKOFF_SECONDS", default=2.0)
REALTIME_RETRY_CAP_SECONDS = env.float("REALTIME_RETRY_CAP_SECONDS", default=60.0)
# Realtime tasks have a queue of their own, so a notification or a retry never waits behind a flood
# of other work. A worker started without -Q consumes every queue in CELERY_TASK_QUEUES; one started
# with -Q should name CELERY_WORKER_QUEUES.
CELERY_REALTIME_QUEUE = env.str("CELERY_REALTIME_QUEUE", default=f"{CELERY_TASK_DEFAULT_QUEUE}.realtime")
CELERY_WORKER_QUEUES = [CELERY_TASK_DEFAULT_QUEUE, CELERY_REALTIME_QUEUE]
CELERY_TASK_QUEUES = [Queue(name) for name in CELERY_WORKER_QUEUES]
CELERY_TASK_ROUTES = {"triggers.tasks.realtime_*": {"queue": CELERY_REALTIME_QUEUE}}
# Identities IFTTT has not polled for this long are retired (never notified again until polled).
TRIGGER_IDENTITY_RETIRE_DAYS = env.int("TRIGGER_IDENTITY_RETIRE_DAYS", default=30)
CELERY_BEAT_SCHEDULE["realtime-sweep"] = {
    "task": "triggers.tasks.realtime_sweep",
    "schedule": REALTIME_SWEEP_SECONDS,
    "options": {"expires": max(REALTIME_SWEEP_SECONDS, 1.0)},
}
CELERY_BEAT_SCHEDULE["oauth-rotated-tokens-prune"] = {
    "task": "protocol.oauth_rotated_tokens_prune",
    "schedule": 24 * 3600.0,
}
CELERY_BEAT_SCHEDULE["connections-work-sweep"] = {"task": "connections.work_sweep", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["trigger-identities-retire"] = {
    "task": "triggers.tasks.trigger_identities_retire",
    "schedule": 24 * 3600.0,
}

# --- Logging ---------------------------------------------------------------------------------------
# --- Operations: logs, health, metrics, error reporting --------------------------------------------
# Readable text by default; LOG_FORMAT=json writes one JSON object a line (for a log pipeline). Every
# line carries the request id (X-Request-ID) of the request or task it belongs to.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
# Readiness (/readyz) gives each check this long, and tells a refused caller when to come back.
HEALTH_TIMEOUT_SECONDS = env.float("HEALTH_TIMEOUT_SECONDS", default=2.0)
HEALTH_RETRY_AFTER_SECONDS = env.int("HEALTH_RETRY_AFTER_SECONDS", default=10)
# /metrics (Prometheus' format): only this machine may scrape it, unless METRICS_TOKEN is set, which a
# scraper then sends as a bearer token.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if not DEBUG and METRICS_TOKEN and (_why := _weak_secret(METRICS_TOKEN, "", 20)):
    raise ImproperlyConfigured(f"DJANGO_DEBUG is off, so real secrets are required: METRICS_TOKEN {_why}.")
# Error reporting (Sentry or a compatible service) when a DSN is set; tokens, keys and bodies are scrubbed.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production")
if SENTRY_DSN:
    from core.observability import error_reporting_init

    error_reporting_init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=env.str("RELEASE", default=""))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.observability.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own default config gives "django" a console handler of its own (in DEBUG): with the root's,
        # every 4xx ("Not Found: …") was printed twice. One handler, the root's, for everything.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # django-axes writes 4-5 INFO lines per sign-in; its warnings (lockouts, repeated failures) stay.
        "axes": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        # The Realtime sweep runs every few seconds: one "received"/"succeeded" line per task would
        # drown everything else. Failures and retries are still logged (WARNING and up).
        "celery.app.trace": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.worker.strategy": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.beat": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
    },
}
