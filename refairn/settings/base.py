"""Settings read from the environment (twelve-factor).

With nothing set, Refairn runs on a SQLite file under ``var/`` and runs projections in process
after each commit: the embedded default. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch it to
PostgreSQL and Redis with real workers.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("REFAIRN_DATA_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: a key kept in the data folder so sessions survive restarts.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "refairn.apps.RefairnAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ingestion",
    "agents",
    "attribution",
    "commissions",
    "refairn.apps.RefairnConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "refairn.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "refairn.urls"
# Error reports (mailed to ADMINS, shown by DEBUG) also hide provider secret headers (Verif-Hash).
DEFAULT_EXCEPTION_REPORTER_FILTER = "refairn.middleware.SecretSafeExceptionReporterFilter"
WSGI_APPLICATION = "refairn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "refairn" / "templates"],
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


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "refairn.sqlite3",
            # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of
            # failing with "database is locked" halfway through a transaction.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    # No per-request health check (a "SELECT 1" round trip on every request, ~12 % of a webhook's
    # time): a persistent connection broken while the database was away fails one request with
    # 503 (providers and clients retry), Django then discards it, and the next request reconnects,
    # so the service still resumes by itself. CONN_HEALTH_CHECKS=true restores the check.
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
                                   conn_health_checks=env_bool("CONN_HEALTH_CHECKS", False))
    config.setdefault("OPTIONS", {})
    if config["ENGINE"].endswith("postgresql"):
        # An unreachable database must fail a request (503) quickly, never hang a worker.
        config["OPTIONS"].setdefault("connect_timeout", int(os.environ.get("DB_CONNECT_TIMEOUT", "5")))
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "refairn" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"
# In development the static files are served straight from the apps (no collectstatic step).
WHITENOISE_USE_FINDERS = DEBUG
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGIN_URL = "/agent/login/"
LOGIN_REDIRECT_URL = "/agent/"

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Without a broker, projections run in process after commit (see ingestion.projections).
REFAIRN_RUN_PROJECTIONS_INLINE = not CELERY_BROKER_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# A worker killed mid-task must leave the task to be redelivered, not lose it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing a wake-up must never hold a request hostage when Redis is down.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 0.5,
    "socket_timeout": 1,
    "max_retries": 0,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE = {
    "catch-up-projections": {
        "task": "ingestion.tasks.run_projections",
        "schedule": float(os.environ.get("REFAIRN_CATCH_UP_SECONDS", "2")),
    },
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ingestion.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["ingestion.auth.HasWorkspaceKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ingestion.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # One shared rate per API key (ingestion.throttling); the cache decides how widely it is shared:
    # per process with the default local-memory cache, across processes with CACHE_URL (Redis).
    "DEFAULT_THROTTLE_CLASSES": ["ingestion.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("REFAIRN_API_RATE", "6000/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Refairn API",
    "DESCRIPTION": "Attribution and commission engine for partner-led SaaS growth.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc assets are served from drf-spectacular-sidecar, so /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/",
    "SORT_OPERATIONS": False,
    # Choice sets that several components share get one stable enum name each.
    "ENUM_NAME_OVERRIDES": {
        "EnrollmentStatusEnum": "agents.models.Enrollment.Status",
        "CustomerStatusEnum": "attribution.models.Customer.Status",
        "ReferralTypeEnum": "agents.models.Program.ReferralType",
        "EventSourceEnum": "ingestion.models.Event.Source",
    },
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"],
         # A Redis that is down or hung must fail a cache call fast, never hold a request.
         "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Refairn --------------------------------------------------------------------------------
REFAIRN_BASE_CURRENCY = os.environ.get("REFAIRN_BASE_CURRENCY", "USD")
REFAIRN_MAX_BODY_BYTES = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
# Events per projection transaction. Each batch pays fixed costs (prefetch queries, one flush per
# table); bench/replay.py measured the rebuild at 2,474 events/s with 1,000, 3,900 with 5,000 and
# 3,553 with 10,000 on a 2-core machine. A live worker's batches are simply what is there.
REFAIRN_PROJECTION_BATCH_SIZE = int(os.environ.get("REFAIRN_PROJECTION_BATCH_SIZE", "5000"))
# Rows a projector may keep in memory from one batch of a run to the next (attribution's
# customers, payments, clicks and codes; ``ingestion.projections.Run``). Past it, the projector
# forgets them and reads the database again: a bound on a worker's memory during a rebuild.
REFAIRN_PROJECTION_CARRY_ROWS = int(os.environ.get("REFAIRN_PROJECTION_CARRY_ROWS", "400000"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
