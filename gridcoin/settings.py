"""GridCoin settings, all from the environment with safe embedded defaults.

Embedded default (no env): SQLite in the data directory, in-memory channel layer,
Celery tasks run in-process, keys generated into the data directory (never the repo).
Production (GRIDCOIN_ENV=production) refuses to start without its secrets.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
_DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "gridcoin"


def _separate_test_worker(worker: str) -> None:
    """`make test` runs the suite in parallel processes (pytest-xdist names each in
    PYTEST_XDIST_WORKER); pytest-django gives each its own test database, and this gives each its
    own data directory and Redis database. The environment itself is changed, once, so a process
    a test starts inherits the worker's values, and one given other values by its test keeps them."""
    from urllib.parse import urlsplit

    if os.environ.get("GRIDCOIN_TEST_WORKER") == worker:
        return
    os.environ["GRIDCOIN_TEST_WORKER"] = worker
    os.environ["GRIDCOIN_DATA_DIR"] = str(Path(os.environ.get("GRIDCOIN_DATA_DIR") or _DEFAULT_DATA_DIR) / worker)
    if os.environ.get("REDIS_URL"):
        url = urlsplit(os.environ["REDIS_URL"])
        db = (int(url.path.strip("/") or 0) + int(worker.removeprefix("gw"))) % 16
        os.environ["REDIS_URL"] = url._replace(path=f"/{db}").geturl()


if os.environ.get("PYTEST_XDIST_WORKER"):
    _separate_test_worker(os.environ["PYTEST_XDIST_WORKER"])
ENVIRONMENT = os.environ.get("GRIDCOIN_ENV", "embedded")
PRODUCTION = ENVIRONMENT == "production"
DATA_DIR = Path(os.environ.get("GRIDCOIN_DATA_DIR") or _DEFAULT_DATA_DIR)
if not PRODUCTION:
    DATA_DIR.mkdir(parents=True, exist_ok=True)


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when GRIDCOIN_ENV=production")
    return value


def _embedded_secret(name: str, nbytes: int) -> str:
    """A random secret kept in the data directory, created on first use (mode 0600)."""
    import base64
    import secrets

    path = DATA_DIR / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(nbytes)).decode())
    return path.read_text().strip()


def _key32(name: str, value: str) -> str:
    """Refuse at start-up, not at first use, a key that is not base64 of 32 bytes."""
    import base64
    import binascii

    try:
        if len(base64.b64decode(value.encode(), validate=True)) == 32:
            return value
    except (binascii.Error, ValueError):
        pass
    raise ImproperlyConfigured(f"{name} must be 32 random bytes, base64-encoded")


if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    # AES-256-GCM key-encryption key for custodial identity keys (base64, 32 bytes).
    GRIDCOIN_KEK = _key32("GRIDCOIN_KEK", _required("GRIDCOIN_KEK"))
    # Ed25519 orderer (block signing) private key seed (base64, 32 bytes).
    GRIDCOIN_ORDERER_KEY = _key32("GRIDCOIN_ORDERER_KEY", _required("GRIDCOIN_ORDERER_KEY"))
    DEBUG = False
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _embedded_secret("secret_key", 48)
    GRIDCOIN_KEK = os.environ.get("GRIDCOIN_KEK") or _embedded_secret("kek", 32)
    GRIDCOIN_ORDERER_KEY = os.environ.get("GRIDCOIN_ORDERER_KEY") or _embedded_secret(
        "orderer_key", 32
    )
    # Off unless asked for: debug pages list every URL and setting to whoever mistypes a path.
    DEBUG = os.environ.get("DEBUG", "0") == "1"

# Ed25519 seed (base64, 32 bytes) of the configuration admin (``<GRIDCOIN_CONFIG_MSP>/admin``),
# whose key signs the ledger's configuration transactions (membership, keys, accounts) under the
# admin policy; the first one, ``bootstrap``, registers it. Unless set, derived from the orderer
# key (the same operator holds both), so nothing new has to be generated or kept.
GRIDCOIN_CONFIG_ADMIN_KEY = os.environ.get("GRIDCOIN_CONFIG_ADMIN_KEY") or ""
GRIDCOIN_CONFIG_MSP = os.environ.get("GRIDCOIN_CONFIG_MSP", "network")

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
    "ledger",
    "accounts",
    "frontend",
    "meters",
    "wallet",
    "payments",
    "iot_gateway",
    "notifications",
    "charity",
    "billing",
    "demo",
]
# daphne's app does one thing: ``runserver`` serves the ASGI application (websockets included).
# Loading it imports Twisted, about 40 MB in every process that loads the apps (each gateway
# worker, the sealer, Celery), so it is installed for ``runserver`` only; the ``web`` process
# runs the daphne server itself.
if sys.argv[1:2] == ["runserver"]:
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "gridcoin.session_cookie.SessionCookieGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.languages.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
# Views marked ``gridcoin.lean_path.lean_request`` (the webhooks, all csrf_exempt) under these
# paths are served through LEAN_MIDDLEWARE only: the same security and common response
# headers, none of the browser middleware (static files, sessions, CSRF, auth, messages, htmx).
LEAN_PATH_PREFIXES = ["/webhooks/"]
LEAN_MIDDLEWARE = [m for m in MIDDLEWARE if m in {
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}]
MIDDLEWARE.insert(0, "gridcoin.lean_path.LeanPathMiddleware")

ROOT_URLCONF = "gridcoin.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.context_processors.demo_logins",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "gridcoin.asgi.application"

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A psycopg pool per process: a request (or webhook) borrows an open connection instead
        # of connecting anew, which cost more than the work it came to do. Sized for the ASGI
        # thread pool plus the test suite's 32-thread races.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": int(os.environ.get("GRIDCOIN_DB_POOL_MAX", "40")),
            "timeout": 30,
        }
        # The ledger's hot statements (``ledger.selectors.bound_cursor``) are prepared on their
        # fifth use per connection, so PostgreSQL stops parsing and planning them each time
        # (Django leaves psycopg's threshold unset, which never prepares). Django's own
        # cursors bind on the client and are never prepared either way. Every prepared
        # statement looks rows up by key, so its generic plan is the plan: left to choose,
        # PostgreSQL re-plans such statements on every execution for custom plans no better
        # than the generic ones.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
        DATABASES["default"]["OPTIONS"]["options"] = "-c plan_cache_mode=force_generic_plan"
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set when GRIDCOIN_ENV=production")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("GRIDCOIN_SQLITE_PATH", str(DATA_DIR / "gridcoin.sqlite3")),
            "OPTIONS": {
                # One writer at a time: take the write lock up front so web requests and the
                # sealer thread queue instead of failing on a lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": os.environ.get("GRIDCOIN_SQLITE_TEST_PATH") or None},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:home"

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- utility time zone ---
# Residents enter and read times in the utility's time zone (a funding window "18:00–23:00" is
# the utility's evening); the database keeps UTC. It is the site's time zone, so every rendered
# time, every parsed form time and "today" in Celery and commands agree without per-request
# activation. GRIDCOIN_UTILITY_TZ wins over TIME_ZONE; the embedded default is the demo's.
GRIDCOIN_UTILITY_TZ = os.environ.get("GRIDCOIN_UTILITY_TZ") or os.environ.get("TIME_ZONE") or "Asia/Kolkata"
TIME_ZONE = GRIDCOIN_UTILITY_TZ
# --- end utility time zone ---

# --- i18n: the residents' languages ---------------------------------------------------------------
# Each language is named in itself (the switcher shows these names to people who may not read
# English). en-IN reads the English texts; it exists so that number and currency formatting can
# follow Indian conventions for a browser that asks for it.
LANGUAGES = [
    ("en", "English"),
    ("en-in", "English (India)"),
    ("hi", "हिन्दी"),
    ("es", "Español"),
]
# The languages offered in the switcher (en-IN is reached through the browser's Accept-Language).
GRIDCOIN_SWITCHER_LANGUAGES = ["en", "hi", "es"]
LOCALE_PATHS = [BASE_DIR / "locale"]
# A year: the choice outlives the session (a signed-in user's choice is also on their profile).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION
# --- end i18n ------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Outside production files are served from the apps' static folders (runserver_nostatic +
# finders); WhiteNoise need not look for a collected STATIC_ROOT there.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REDIS_URL = os.environ.get("REDIS_URL", "")
MQTT_URL = os.environ.get("MQTT_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "0") == "1"
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# Task states (celery-progress reads a running reconciliation's progress there) in Redis; a task
# stores its return value only when it asks to (``ignore_result=False``).
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600

# Reconciliation: statements uploaded on the page are kept here; beat reconciles, daily at
# GRIDCOIN_RECONCILE_AT (UTC, HH:MM), each inbox <dir>/stripe/ and <dir>/bank/<bank msp id>/.
GRIDCOIN_STATEMENTS_DIR = Path(os.environ.get("GRIDCOIN_STATEMENTS_DIR") or DATA_DIR / "statements")
GRIDCOIN_STATEMENT_MAX_BYTES = int(os.environ.get("GRIDCOIN_STATEMENT_MAX_BYTES", str(512 * 1024 * 1024)))
GRIDCOIN_RECONCILE_AT = os.environ.get("GRIDCOIN_RECONCILE_AT", "03:30")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "gridcoin.openapi.ScopedAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "gridcoin.pagination.StrictLimitOffsetPagination",
    # The API speaks JSON; form encodings would turn every number into a string.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GridCoin API",
    "DESCRIPTION": "Energy coins on a hash-chained, signed ledger.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from this site's own static files (drf-spectacular-sidecar), not a CDN: the
    # Content-Security-Policy allows scripts and styles from 'self' only.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gridcoin.openapi.add_error_responses",
    ],
    # Distinct names for the status enums of different models (ledger transactions, webhooks).
    "ENUM_NAME_OVERRIDES": {
        "TransactionStatusEnum": "ledger.models.TxStatus",
        "DeliveryStatusEnum": "payments.models.DeliveryStatus",
    },
}

# Where phones reach this site (the URL printed in device QR codes); empty: the request's host.
GRIDCOIN_PUBLIC_URL = os.environ.get("GRIDCOIN_PUBLIC_URL", "")
# Who may play the simulated meters: "1" everyone signed in, "0" only utility staff and the
# device's owners; unset: everyone in the embedded demo, owners and the utility elsewhere.
_simulators_open = os.environ.get("GRIDCOIN_SIMULATORS_OPEN", "")
GRIDCOIN_SIMULATORS_OPEN = None if _simulators_open == "" else _simulators_open == "1"

# Block sealing (Fabric's BatchSize / BatchTimeout).
GRIDCOIN_BLOCK_MAX_TX = int(os.environ.get("GRIDCOIN_BLOCK_MAX_TX", "500"))
GRIDCOIN_BLOCK_TIMEOUT = float(os.environ.get("GRIDCOIN_BLOCK_TIMEOUT", "1.0"))
# In the embedded default the sealer runs as a thread inside the web process.
GRIDCOIN_BACKGROUND_SEALER = os.environ.get("GRIDCOIN_BACKGROUND_SEALER", "0") == "1"
# The global log's checkpoint origin (C2SP tlog-checkpoint) and how many witness cosignatures
# the in-browser check and the standalone verifier require (docs/witnesses.md).
GRIDCOIN_LOG_ORIGIN = os.environ.get("GRIDCOIN_LOG_ORIGIN", "gridcoin.example/ledger")
GRIDCOIN_WITNESS_QUORUM = int(os.environ.get("GRIDCOIN_WITNESS_QUORUM", "0"))
# The embedded default also runs the demo organisations' witnesses as threads (docs/witnesses.md).
GRIDCOIN_BACKGROUND_WITNESSES = os.environ.get("GRIDCOIN_BACKGROUND_WITNESSES", "0") == "1"
GRIDCOIN_WITNESS_API = os.environ.get("GRIDCOIN_WITNESS_API", "http://127.0.0.1:8000/api/v1/ledger/")
# ... and ended funded windows are settled by a thread instead of Celery beat.
GRIDCOIN_BACKGROUND_SCHEDULER = os.environ.get("GRIDCOIN_BACKGROUND_SCHEDULER", "0") == "1"
# A campaign with automatic disbursement disburses its pool at most once per this many seconds.
CHARITY_AUTO_DISBURSE_SECONDS = int(os.environ.get("CHARITY_AUTO_DISBURSE_SECONDS", "3600"))
# Stripe's secret API key, for the refunds GridCoin sends (payments.refunds); empty: they wait.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
# Who carries out a refund to a bank payment (a dotted path, see payments.refunds.Sender): the
# simulated bank, which accepts it and sends its return, outside production; none in production
# until a bank's API is wired (refunds then wait, and fail after their retries).
PAYMENTS_BANK_REFUND_SENDER = os.environ.get("PAYMENTS_BANK_REFUND_SENDER",
                                             "" if PRODUCTION else "payments.simulator.simulated_bank_refund")
# Stripe webhook endpoint secrets, comma-separated (several during rotation).
STRIPE_WEBHOOK_SECRETS = [s for s in os.environ.get("STRIPE_WEBHOOK_SECRETS", "").split(",") if s] or ([] if PRODUCTION else ["whsec_" + _embedded_secret("stripe_webhook_secret", 32)])

# --- notifications (in-app, e-mail, Web Push) ---
# E-mail goes through Django's backend: printed to the console in the embedded default, SMTP
# (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS) in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "0") == "1"
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "GridCoin <gridcoin@localhost>")
# Web Push: the VAPID private key (base64url of the 32-byte P-256 scalar). Unset: generated into
# the data directory on first use in the embedded default; push is off in production without it.
GRIDCOIN_VAPID_PRIVATE_KEY = os.environ.get("GRIDCOIN_VAPID_PRIVATE_KEY", "")
GRIDCOIN_VAPID_SUBJECT = os.environ.get("GRIDCOIN_VAPID_SUBJECT", "mailto:gridcoin@localhost")
# The push services a browser subscription may name (host, or ".suffix" for any host under it):
# the server posts to the endpoint, so an arbitrary URL would let a user aim it inside the network.
# Empty outside production: any http(s) endpoint (the tests' local push service).
_push_hosts_default = ("fcm.googleapis.com,updates.push.services.mozilla.com,.push.apple.com,"
                       ".notify.windows.com" if PRODUCTION else "")
GRIDCOIN_PUSH_SERVICE_HOSTS = [h.strip().lower() for h in os.environ.get(
    "GRIDCOIN_PUSH_SERVICE_HOSTS", _push_hosts_default).split(",") if h.strip()]
# A device "runs low" below this many spendable Wh, or below this many minutes at its recent rate.
GRIDCOIN_NOTIFY_LOW_WH = int(os.environ.get("GRIDCOIN_NOTIFY_LOW_WH", "500"))
GRIDCOIN_NOTIFY_LOW_MINUTES = int(os.environ.get("GRIDCOIN_NOTIFY_LOW_MINUTES", "60"))
# --- end notifications ---

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Sign-in safety (issue 13): lockouts, rate limits, API tokens, second factor ----------------
INSTALLED_APPS += ["axes", "django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
# OTP marks a verified session right after the user is known; staff without one are sent to
# their second factor; axes turns a locked-out login into the 429 page (it must come last).
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "django_otp.middleware.OTPMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1,
                  "accounts.middleware.SecondFactorRequiredMiddleware")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Counters live in the cache: Redis when REDIS_URL is set, else a database table (created by
# accounts' post_migrate hook), so every web process sees the same counts.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "gridcoin"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                          "LOCATION": "gridcoin_cache"}}

# Failed logins: locked per username and, separately, per client address.
GRIDCOIN_LOGIN_FAILURE_LIMIT = int(os.environ.get("GRIDCOIN_LOGIN_FAILURE_LIMIT", "5"))
GRIDCOIN_LOGIN_COOLOFF_MINUTES = int(os.environ.get("GRIDCOIN_LOGIN_COOLOFF_MINUTES", "15"))
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = GRIDCOIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=GRIDCOIN_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_VERBOSE = False
LOGGING["loggers"] = {"axes": {"level": "WARNING"}}  # every login at INFO is noise; lockouts are WARNING
# The client address is REMOTE_ADDR unless a proxy in front is trusted to set this header
# (e.g. X-Forwarded-For); then the address GRIDCOIN_TRUSTED_PROXY_COUNT hops from its right end.
GRIDCOIN_CLIENT_IP_HEADER = os.environ.get("GRIDCOIN_CLIENT_IP_HEADER", "")
GRIDCOIN_TRUSTED_PROXY_COUNT = int(os.environ.get("GRIDCOIN_TRUSTED_PROXY_COUNT", "1"))

# Sign-ups and password-reset requests per client address, and failed API token
# authentications per address, within a window of GRIDCOIN_LOGIN_COOLOFF_MINUTES.
GRIDCOIN_SIGNUP_LIMIT = int(os.environ.get("GRIDCOIN_SIGNUP_LIMIT", "5"))
GRIDCOIN_PASSWORD_RESET_LIMIT = int(os.environ.get("GRIDCOIN_PASSWORD_RESET_LIMIT", "5"))
GRIDCOIN_API_AUTH_FAILURE_LIMIT = int(os.environ.get("GRIDCOIN_API_AUTH_FAILURE_LIMIT", "10"))

REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "rest_framework.authentication.SessionAuthentication",
    "accounts.api_auth.ApiTokenAuthentication",
]
REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] = [
    "rest_framework.permissions.IsAuthenticated",
    "accounts.api_auth.TokenHasScope",
]

# Password-reset mail goes through the e-mail settings in the notifications block above.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "GridCoin <noreply@localhost>")
PASSWORD_RESET_TIMEOUT = 3 * 3600

# Second factor: the issuer named in authenticator apps; passkeys are bound to this site.
OTP_TOTP_ISSUER = "GridCoin"
# ---------------------------------------------------------------------------------------------

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- security headers: Content-Security-Policy, HSTS --------------------------------------------
# No 'unsafe-inline' and no 'unsafe-eval': every script and style is a file served from this
# site (templates pass data with json_script or data- attributes; htmx injects no styles, see
# the htmx-config meta in base.html). img-src allows OpenStreetMap tiles for the device map;
# connect-src allows the websockets (live device state, the ledger feed).
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https://tile.openstreetmap.org"],
        "font-src": [SELF],
        "connect-src": [SELF, "ws:", "wss:"],
        "worker-src": [SELF],
        "manifest-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}
# HSTS only in production, and only on HTTPS responses (Django sends it on secure requests;
# behind a proxy, X-Forwarded-Proto says which those are). The redirect to HTTPS is off by
# default: the proxy in front usually does it; turn it on when Django faces the internet.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600))) if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("SECURE_HSTS_INCLUDE_SUBDOMAINS", "1") == "1"
SECURE_HSTS_PRELOAD = os.environ.get("SECURE_HSTS_PRELOAD", "0") == "1"
SECURE_SSL_REDIRECT = os.environ.get("SECURE_SSL_REDIRECT", "0") == "1"
