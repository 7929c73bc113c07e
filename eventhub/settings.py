"""EventHub settings, read from the environment (see .env.example for every variable).

Defaults work on a bare machine: SQLite under var/, the embedded broker on
127.0.0.1:19092, Redis on 127.0.0.1:6379. Nothing here connects to anything.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url

from eventhub import env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.text("EVENTHUB_VAR_DIR", str(BASE_DIR / "var")))

# Off unless asked for: `make run` (eventhub/launcher.py) asks for it, nothing else does.
DEBUG = env.boolean("DEBUG", False)
SECRET_KEY = env.text("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise env.ConfigError("SECRET_KEY", "is required when DEBUG is off (DEBUG=true for development)")
    SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS")
for _origin in CSRF_TRUSTED_ORIGINS:
    if "://" not in _origin:
        raise env.ConfigError("CSRF_TRUSTED_ORIGINS", f"entries need a scheme (https://...), not {_origin!r}")

# Daphne is not an app here: the launcher, the tests and the bench run Daphne as `python -m eventhub.webserver`, and
# as an app (only to take over `runserver`) it made every Django process import Twisted, about
# 0.17 s of CPU for each manage.py command and Celery worker.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "eventhub",
    "designer",
    "monitor",
    "deadletters",
    "eventstore",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "eventhub.middleware.RefuseNulCharacters",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "eventhub.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling: 5 failures for one username from one address lock that pair for 15 minutes.
AXES_FAILURE_LIMIT = env.integer("EVENTHUB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.integer("EVENTHUB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

ROOT_URLCONF = "eventhub.urls"
ASGI_APPLICATION = "eventhub.asgi.application"
WSGI_APPLICATION = "eventhub.wsgi.application"

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
                "eventhub.roles.context_processor",
                "monitor.context_processors.bus_status",
            ],
        },
    },
]

_database_url = env.url(
    "DATABASE_URL", f"sqlite:///{VAR_DIR / 'eventhub.sqlite3'}", ("sqlite", "postgres", "postgresql", "pgsql")
)
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, simulators) write: wait for the lock instead of failing.
    # WAL: readers don't block the writer, and a commit costs ~0.2 ms instead of ~20 ms.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the source folders: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True

# --- The bus and Redis -------------------------------------------------------
REDIS_URL = env.url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
KAFKA_BOOTSTRAP_SERVERS = env.host_ports("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
EVENTHUB_BUS = env.choice("EVENTHUB_BUS", "kafka", ("kafka", "redis"))
# `make run` decides these after asking Redis; in production both stay "redis"/"celery".
EVENTHUB_CHANNEL_LAYER = env.choice("EVENTHUB_CHANNEL_LAYER", "redis", ("redis", "memory"))
EVENTHUB_WORKERS = env.choice("EVENTHUB_WORKERS", "celery", ("celery", "inprocess"))
# Is Redis a required part (healthz answers 503 without it)? Not when we run without it.
EVENTHUB_REDIS_REQUIRED = env.boolean("EVENTHUB_REDIS_REQUIRED", EVENTHUB_CHANNEL_LAYER == "redis")


def redis_channel_layer(url: str) -> dict:
    """The channel layer on Redis at `url`: CHANNEL_LAYERS["default"] in production, and in the tests."""
    host = {
        "address": url,
        # redis-py 8 caps a pool at 100 connections and raises (not waits) past that: a burst
        # of dashboards connecting at once (every tab after a restart) overran it, and
        # each handshake over the cap failed with HTTP 500. Connections are opened only
        # while that many commands are in flight, so a high cap costs nothing at rest.
        "max_connections": 2000,
        # Any reply within 5 s (redis-py 8's default, said here): a socket's blocking pop
        # is shorter (eventhub.sockets.RedisChannelLayer).
        "socket_timeout": 5,
    }
    return {
        "BACKEND": "eventhub.sockets.RedisChannelLayer",
        "CONFIG": {"hosts": [host], "capacity": 1500, "expiry": 30},
    }


if EVENTHUB_CHANNEL_LAYER == "redis":
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "eventhub"
# Redrive jobs run for minutes: a queue of their own, so they never hold up the short tasks.
CELERY_TASK_ROUTES = {"deadletters.redrive_run": {"queue": "redrive"}}
CELERY_BEAT_SCHEDULE = {
    # Roll raw samples up to 1-minute points and apply retention (the collector also
    # does it every 30 ticks, so a setup without beat keeps its history bounded).
    "monitor-history-upkeep": {"task": "monitor.tasks.maintain_history", "schedule": 60.0},
    # Redrive jobs whose worker died (stale heartbeat) are taken over and finished.
    "dead-letters-redrive-resume": {"task": "deadletters.redrive_resume", "schedule": 30.0},
    # Indexed events older than their topic's retention (the indexer also purges every 10 minutes).
    "event-store-purge": {"task": "eventstore.purge_expired", "schedule": 600.0},
    # Flow checks (docs/event-store.md): judge the running ones' steps; start the scheduled ones
    # (each flow every EVENTHUB_FLOW_CHECK_EVERY_S; the task decides which are due).
    "flow-checks-evaluate": {"task": "eventstore.evaluate_flow_checks", "schedule": 3.0},
    "flow-checks-schedule": {"task": "eventstore.run_scheduled_flow_checks", "schedule": 30.0},
}

# --- Product limits and knobs ------------------------------------------------
EVENTHUB_MAX_SCHEMA_BYTES = env.integer("EVENTHUB_MAX_SCHEMA_BYTES", 256 * 1024, minimum=1024)
EVENTHUB_MAX_UPLOAD_BYTES = env.integer("EVENTHUB_MAX_UPLOAD_BYTES", 2 * 1024 * 1024, minimum=1024)
EVENTHUB_DLQ_PAYLOAD_CAP = env.integer("EVENTHUB_DLQ_PAYLOAD_CAP", 1024 * 1024, minimum=1024)
EVENTHUB_DLQ_PATTERNS = env.items("EVENTHUB_DLQ_PATTERNS", "*.dlq,*.DLT,*-dlt,*:dlq")
# The topic browser's live tail: messages per second to each browser tab, the excess skipped.
EVENTHUB_TAIL_MAX_PER_S = env.integer("EVENTHUB_TAIL_MAX_PER_S", 20, minimum=1)
EVENTHUB_TICK_SECONDS = env.number("EVENTHUB_TICK_SECONDS", 2.0, minimum=0.2)
EVENTHUB_METRICS_TOKEN = env.text("EVENTHUB_METRICS_TOKEN")
EVENTHUB_ALERT_WEBHOOK_URL = env.text("EVENTHUB_ALERT_WEBHOOK_URL")
EVENTHUB_ALERT_WEBHOOK_BACKOFF_S = env.number("EVENTHUB_ALERT_WEBHOOK_BACKOFF_S", 2.0, minimum=0.1)
# Prefix of the monitor's Redis keys (snapshot, leases) and suffix of its heartbeat reader
# group: give each EventHub installation that shares a Redis or a Kafka cluster its own.
EVENTHUB_MONITOR_NAMESPACE = env.text("EVENTHUB_MONITOR_NAMESPACE", "eventhub:monitor")
# The event store's indexer (docs/event-store.md): which topics it reads (fnmatch patterns;
# dead-letter and heartbeat topics never) and how long it keeps events by default.
EVENTHUB_INDEX_INCLUDE = env.items("EVENTHUB_INDEX_INCLUDE", "*")
EVENTHUB_INDEX_EXCLUDE = env.items("EVENTHUB_INDEX_EXCLUDE", "_*,eventhub*")
EVENTHUB_INDEX_RETENTION_DAYS = env.integer("EVENTHUB_INDEX_RETENTION_DAYS", 7, minimum=1)
# The compatibility check also replays a candidate schema against the last N real events of
# its type (0: never). The registry asks the event store through a dotted path, so the design
# layer does not import it (docs/architecture.md).
EVENTHUB_TRAFFIC_CHECK_EVENTS = env.integer("EVENTHUB_TRAFFIC_CHECK_EVENTS", 1000, minimum=0)
EVENTHUB_TRAFFIC_CHECK = "eventstore.traffic.check"
# Every flow is checked synthetically this often (seconds; 0: only when asked).
EVENTHUB_FLOW_CHECK_EVERY_S = env.integer("EVENTHUB_FLOW_CHECK_EVERY_S", 300, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = EVENTHUB_MAX_UPLOAD_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ?limit= is capped at LimitOffsetPagination.max_limit (eventhub/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "eventhub.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EventHub API",
    "DESCRIPTION": "Design, catalog, monitor and redrive events on Kafka and Redis Streams.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "SchemaVersionStateEnum": "designer.models.SchemaVersion.STATE_CHOICES",
        "RedriveJobStateEnum": "deadletters.models.RedriveJob.STATES",
    },
    # The 400, 403, 404 and 415 answers DRF gives on its own, for every operation (eventhub/openapi.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "eventhub.openapi.add_error_responses"],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from the sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the canvas reads it to send X-CSRFToken
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# EVENTHUB_HTTPS: served through an HTTPS proxy that sets X-Forwarded-Proto (and drops a
# client's own). SESSION_COOKIE_SECURE alone, as before, only marks the cookies.
EVENTHUB_HTTPS = env.boolean("EVENTHUB_HTTPS", False)
SESSION_COOKIE_SECURE = EVENTHUB_HTTPS or env.boolean("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if EVENTHUB_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # No SECURE_SSL_REDIRECT: the proxy redirects, and the healthchecks speak plain HTTP
    # to the container. No includeSubDomains or preload: the rest of the domain is not ours.
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    SECURE_HSTS_PRELOAD = False

# Debug pages and error e-mails: settings named like secrets are masked by Django; these
# also mask the password in any URL (REDIS_URL, DATABASE_URL, CHANNEL_LAYERS hosts...).
DEFAULT_EXCEPTION_REPORTER_FILTER = "eventhub.error_reports.CredentialsFilter"
DEFAULT_EXCEPTION_REPORTER = "eventhub.error_reports.CredentialsReporter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO").upper()},
    "loggers": {"kafka": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
