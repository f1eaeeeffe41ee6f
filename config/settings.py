"""Cardex settings: one module, every deployment knob read from the environment.

Defaults serve `make run` on a bare machine (SQLite under var/, a broker that needs no server,
sandbox channels, console e-mail). With DEBUG off the process refuses to start without real
secrets.
"""

import os
import warnings
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789abcdef"
# A fixed development key so demo data survives restarts; production must supply its own.
DEV_VAULT_KEY = "ZGV2LW9ubHktY2FyZC12YXVsdC1rZXktY2hhbmdlLW0="

env = environ.Env(
    DEBUG=(bool, True),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "testserver"]),
    SECURE_SSL_REDIRECT=(bool, True),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Whether SITE_URL was said (environment or .env): seed_demo only repoints the demo channel
# accounts at an address someone gave, never at the default.
SITE_URL_CONFIGURED = "SITE_URL" in os.environ

CARD_VAULT_KEYS = env.list("CARD_VAULT_KEYS", default=[])
CARD_VAULT_FINGERPRINT_KEY = env("CARD_VAULT_FINGERPRINT_KEY", default="")
# --- Sandbox gating -------------------------------------------------------------------------
# The simulators approve payments without a log-in: on with DEBUG, off without unless asked for
# (load tests under `make serve`). Off, the app is not installed and /sandbox/ is not mounted;
# `check --deploy` warns when it is on with DEBUG off (payments.checks).
PAYMENTS_SANDBOX = env.bool("PAYMENTS_SANDBOX", default=DEBUG)
# Where the simulators are served when they run as a process of their own (`make serve` sets
# it); empty: on this site, at SITE_URL.
SANDBOX_URL = env("SANDBOX_URL", default="").rstrip("/")

if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a real secret (50+ random characters) when DEBUG is off."
        )
    if not CARD_VAULT_KEYS:
        raise ImproperlyConfigured(
            "CARD_VAULT_KEYS must hold at least one Fernet key when DEBUG is off."
        )
if not CARD_VAULT_KEYS:
    CARD_VAULT_KEYS = [DEV_VAULT_KEY]
    warnings.warn(
        "CARD_VAULT_KEYS is not set: card secrets are encrypted with the public DEVELOPMENT key. "
        "Never run like this with real cards.",
        stacklevel=1,
    )
# Keyed fingerprints of codes (duplicate detection) use their own key; by default derived
# from SECRET_KEY so it never changes when vault keys rotate.
CARD_VAULT_FINGERPRINT_KEY = CARD_VAULT_FINGERPRINT_KEY or SECRET_KEY
# Channel credentials are encrypted with the same rotating keys unless told otherwise.
CHANNEL_CREDENTIAL_KEYS = env.list("CHANNEL_CREDENTIAL_KEYS", default=CARD_VAULT_KEYS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "django_celery_beat",
    "auditlog",
    "axes",  # log-in lock-outs (docs/security.md)
    "django_otp",  # staff's second factor in admin (accounts/staff_otp.py)
    "django_otp.plugins.otp_totp",
    "accounts",
    "risk",
    "payments",
    *(["payments.sandbox"] if PAYMENTS_SANDBOX else []),
    "marketplace",
    "reconciliation",
    "backoffice",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.device.DeviceIdMiddleware",  # the first-party device id risk scores
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "accounts.staff_otp.StaffOTPMiddleware",  # admin only after the staff's TOTP code
    "django.contrib.messages.middleware.MessageMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Log-in throttling: the per-address rate first, then axes turns its lock-out flag into
    # the lock-out page (it must come last).
    "accounts.middleware.LoginRateMiddleware",
    "axes.middleware.AxesMiddleware",
]

# `make serve` runs the simulators apart with config.sandbox_urls (only /sandbox/ and /healthz).
ROOT_URLCONF = env("ROOT_URLCONF", default="config.urls")
# The simulators' own process serves the providers' endpoints and pages only: no sessions,
# log-ins, staff pages or forms of the shop, so none of their middleware.
SANDBOX_PROCESS_MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
]
if ROOT_URLCONF == "config.sandbox_urls":
    MIDDLEWARE = SANDBOX_PROCESS_MIDDLEWARE
# The audit trail (docs/backoffice.md): django-auditlog records who changed what, with the
# fields before and after, for the records staff decide on or configure. High-volume rows
# written by checkout, callbacks and beat (payments, attempts, notifications, journal, alerts)
# are not tracked here: the journal is itself immutable, and staff actions on them are
# recorded as "access" entries by accounts.audit. Secrets are excluded, never masked-and-stored.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "payments.channelaccount", "exclude_fields": ["credentials_encrypted", "updated_at"]},
    "payments.errorcode",
    {"model": "payments.refund", "exclude_fields": ["created_at"]},
    "marketplace.brand",
    {"model": "marketplace.listing", "exclude_fields": ["updated_at"]},
    "marketplace.dispute",
    "marketplace.payout",
    {"model": "marketplace.payoutdestination", "mask_fields": ["account"]},
    "risk.rule",
    "risk.listentry",
    "risk.monitor",
    "reconciliation.discrepancy",
    {
        "model": "accounts.user",
        "exclude_fields": ["password", "last_login"],
        "m2m_fields": ["groups"],
    },
    {"model": "auth.group", "m2m_fields": ["permissions"]},
    "django_celery_beat.periodictask",
)
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# --- Database connections ------------------------------------------------------------------
# On PostgreSQL each process keeps a psycopg pool (Django's `pool` option) sized to its
# threads, so web workers × threads and the Celery pools never open more connections than the
# server allows (docs/deploy.md sizes them). DB_POOL=false falls back to persistent
# per-thread connections (e.g. behind PgBouncer in transaction mode).
DB_POOL = IS_POSTGRES and env.bool("DB_POOL", default=not DEBUG)
# A connection is checked before it is used (one round trip; Django passes the pool its
# check_connection), so after PostgreSQL restarts no request is given a dead one
# (docs/reliability.md, pg-restart).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool owns connection lifetime
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=env.int("WEB_THREADS", default=8)),
        # a request that cannot get a connection in this time fails cleanly (503/500)
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        "max_idle": 300,
    }
else:
    DATABASES["default"].setdefault(
        "CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if not DEBUG else 0)
    )
# Parameters bound by the server, and a statement a connection has run five times prepared
# there: PostgreSQL then plans the hot reads (risk's windows, the payment and order lookups)
# once per connection instead of at every request (bench/risk_bench.py). Behind PgBouncer in
# transaction mode this needs PgBouncer 1.21+ with max_prepared_statements, or
# DB_SERVER_SIDE_BINDING=false (docs/deploy.md).
if IS_POSTGRES and env.bool("DB_SERVER_SIDE_BINDING", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env.int(
        "DB_PREPARE_THRESHOLD", default=5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web server and the embedded worker share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Authentication: lock-outs, throttles, API tokens (docs/security.md) ---------------------
# django-axes records failed log-ins in the database (shared by every web process) and locks
# a username from an address after AXES_FAILURE_LIMIT failures; while locked, even the right
# password is refused. Staff unlock from admin (Users → "unlock log-in", or Access attempts).
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Staff's second factor (accounts/staff_otp.py): staff with a TOTP device always pass it to
# enter admin; with this on, staff without one must enrol one first.
STAFF_TOTP_REQUIRED = env.bool("STAFF_TOTP_REQUIRED", default=False)
OTP_TOTP_ISSUER = "Cardex"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "payments.client.request_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
AXES_SENSITIVE_PARAMETERS = ["password"]
# Cache-based rates (DRF's rate syntax: N/s, N/min, N/hour, N/day). Keys: <action>-user and
# <action>-ip. Override any of them with THROTTLE_RATES="order-ip=10000/min,pay-ip=10000/min".
# The cache must be shared by all web processes (CACHE_URL=redis://…) for these to hold.
THROTTLE_RATES = {
    "login-ip": "100/hour",
    "signup-ip": "10/hour",
    "password-reset-ip": "10/hour",
    "challenge-user": "20/hour",
    "challenge-ip": "60/hour",
    "order-user": "30/min",
    "order-ip": "300/min",
    "pay-user": "30/min",
    "pay-ip": "300/min",
    **env.dict("THROTTLE_RATES", default={}),
}
# API tokens: deleted on every password change; with a TTL (seconds) a token older than
# that is refused and a new one must be fetched from /api/v1/auth/token/. 0 = no expiry.
API_TOKEN_TTL = env.int("API_TOKEN_TTL", default=0)
# --- end of authentication block ------------------------------------------------------------

# --- Request size (docs/security.md): no body over this is read; code files stay ≤ 2 MB ----
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Dispute screenshots: outside MEDIA_ROOT, which nothing serves; only the checked view
    # (the order's buyer and seller, staff) hands them out.
    "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env.path("EVIDENCE_ROOT", default=str(VAR_DIR / "private" / "evidence"))
        },
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Cardex <no-reply@cardex.local>")
ADMINS = [("Cardex staff", a) for a in env.list("ADMIN_EMAILS", default=[])]

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://cardex")}
# The API's catalogue pages are kept this long in the cache (0: never): read far more often
# than they change, and ordering checks the real stock (docs/deploy.md).
CATALOGUE_CACHE_SECONDS = env.int("CATALOGUE_CACHE_SECONDS", default=0 if DEBUG else 2)

# Second factor by SMS (risk/sms.py): the sender class, and the provider's HTTP API for
# risk.sms.HttpSender. In sandbox mode on this site the simulator at /sandbox/sms/ speaks it.
RISK_SMS_SENDER = env("RISK_SMS_SENDER", default="risk.sms.ConsoleSender")
RISK_SMS_URL = env("RISK_SMS_URL", default="")
RISK_SMS_API_KEY = env("RISK_SMS_API_KEY", default="sandbox-sms-key")
RISK_SMS_SENDER_NAME = env("RISK_SMS_SENDER_NAME", default="Cardex")
RISK_SMS_TIMEOUT = env.float("RISK_SMS_TIMEOUT", default=5.0)
RISK_SMS_HTTP_TRANSPORT = None  # an httpx transport factory (tests)

# Security: production values; `manage.py check --deploy` is clean with DEBUG off and the
# production variables of docs/deploy.md.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
# The checkout page's card panel runs the acquirer's Payment Element: Stripe.js
# (script-src), its iframes — the card fields and the 3-D Secure modal — (frame-src) and its
# API (connect-src), as Stripe documents for Elements. In sandbox mode with the simulators in
# their own process (SANDBOX_URL), their stand-in scripts and APIs are on that origin.
_SANDBOX_ORIGIN = f" {SANDBOX_URL}" if PAYMENTS_SANDBOX and SANDBOX_URL else ""
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    f"script-src 'self' https://js.stripe.com https://*.js.stripe.com{_SANDBOX_ORIGIN}; "
    "frame-src 'self' https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; "
    f"connect-src 'self' https://api.stripe.com{_SANDBOX_ORIGIN}; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'self'"
)
# PayPal's JS SDK buttons (docs/channels/paypal.md): the sources PayPal lists for the SDK
# (developer.paypal.com/sdk/js/best-practices), added only to the order page that shows the
# buttons, with a per-response nonce in script-src for the scripts the SDK writes into the
# page instead of 'unsafe-inline'. Venmo is switched off (disable-funding), so no venmo.com.
PAYPAL_SDK_CSP = {
    directive: ["https://*.paypal.com", "https://*.paypalobjects.com"]
    for directive in ("script-src", "connect-src", "frame-src", "img-src", "style-src")
}
if not DEBUG:
    SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Off only for a load test on the loopback over plain HTTP (`make serve` with the sandbox).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
# Where the client address comes from: only trust a proxy header when told there is a proxy.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REGION_HEADER = env("REGION_HEADER", default="HTTP_X_COUNTRY_CODE")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="600/min"),
        "user": env("API_THROTTLE_USER", default="3000/min"),
        **THROTTLE_RATES,
    },
    # Client addresses as payments.client.request_ip reads them (TRUSTED_PROXY_COUNT).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cardex API",
    "DESCRIPTION": "Listings, orders and payments of the Cardex gift-card marketplace.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery. With no broker configured, a filesystem transport under var/ lets `make run` work
# with no server at all; production points CELERY_BROKER_URL at Redis or RabbitMQ.
CELERY_BROKER_URL = env(
    "CELERY_BROKER_URL", default="filesystem://localhost//"
)  # kombu warns on a URL without a host
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# --- Celery queues -------------------------------------------------------------------------
# One queue per kind of work so a slow settlement pull never delays a payment query: `make
# serve` runs a worker pool per queue, `make run` one worker on all of them.
CELERY_TASK_DEFAULT_QUEUE = "celery"  # Celery's own name: messages already queued stay valid
CELERY_TASK_ROUTES = {
    "payments.sandbox.tasks.*": {"queue": "sandbox"},
    "payments.tasks.*": {"queue": "payments"},
    "reconciliation.tasks.*": {"queue": "reconciliation"},
    "risk.tasks.*": {"queue": "celery"},
    "marketplace.tasks.*": {"queue": "celery"},
}
CELERY_QUEUE_NAMES = ["celery", "payments", "sandbox", "reconciliation"]
# Redis redelivers a task whose worker died unacknowledged after this many seconds; it must
# exceed the longest task (CELERY_TASK_TIME_LIMIT) or a slow task would run twice.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "release-expired-reservations": {
        "task": "marketplace.tasks.release_expired_reservations",
        "schedule": timedelta(minutes=1),
    },
    "mature-seller-funds": {
        "task": "marketplace.tasks.mature_seller_funds",
        "schedule": timedelta(minutes=10),
    },
    "nightly-integrity-check": {
        "task": "marketplace.tasks.integrity_check",
        "schedule": crontab(hour=3, minute=30),
    },
    "chase-pending-refunds": {
        "task": "payments.tasks.resend_pending_refunds",
        "schedule": timedelta(minutes=5),
    },
    "evaluate-risk-monitors": {
        "task": "risk.tasks.evaluate_monitors",
        "schedule": timedelta(minutes=5),
    },
    "fold-channel-health": {
        "task": "payments.tasks.fold_health",
        "schedule": timedelta(minutes=1),
    },
    "query-pending-attempts": {
        "task": "payments.tasks.query_pending_attempts",
        "schedule": timedelta(seconds=30),
    },
    "pull-settlements": {
        "task": "reconciliation.tasks.pull_settlements",
        "schedule": crontab(hour=10, minute=15),
    },
    # settlement files not yet published: tried again with back-off up to their deadline
    "retry-settlements": {
        "task": "reconciliation.tasks.retry_settlements",
        "schedule": timedelta(minutes=5),
    },
    "check-funds-arrived": {
        "task": "reconciliation.tasks.check_funds_arrived",
        "schedule": crontab(hour=18, minute=0),
    },
}
if PAYMENTS_SANDBOX:  # the simulators owe notices like real providers: none is given up
    CELERY_BEAT_SCHEDULE["sandbox-redeliver-notifications"] = {
        "task": "payments.sandbox.tasks.redeliver_due_notifications",
        "schedule": timedelta(minutes=1),
    }

# Business defaults (per-brand values override where the model has them).
ORDER_RESERVATION_MINUTES = env.int("ORDER_RESERVATION_MINUTES", default=15)
PAYMENTS_MAX_ATTEMPTS = env.int("PAYMENTS_MAX_ATTEMPTS", default=3)
# Four eyes on refunds (docs/backoffice.md): a refund Finance asks for up to this amount
# (yuan) is sent at once; above it, and any refund someone else asks for, waits for another
# member of Finance. 0 means every staff refund needs a second person.
try:
    REFUND_SELF_APPROVAL_LIMIT = Decimal(env.str("REFUND_SELF_APPROVAL_LIMIT", default="500.00"))
except InvalidOperation:
    raise ImproperlyConfigured("REFUND_SELF_APPROVAL_LIMIT must be an amount: 500.00") from None
if not REFUND_SELF_APPROVAL_LIMIT.is_finite() or REFUND_SELF_APPROVAL_LIMIT < 0:
    raise ImproperlyConfigured("REFUND_SELF_APPROVAL_LIMIT must be an amount of 0 or more")
PAYMENTS_HTTP_TIMEOUT = env.float("PAYMENTS_HTTP_TIMEOUT", default=10.0)
# Cross-border buyers (docs/payments.md "Foreign currencies"): where exchange rates come from
# (a class with ``quote(currency)``; the default reads the staff-edited rate table) and how
# old a rate may be, in seconds, before no payment is converted at it.
PAYMENTS_FX_PROVIDER = env("PAYMENTS_FX_PROVIDER", default="payments.fx.TableRates")
PAYMENTS_FX_MAX_AGE = env.int("PAYMENTS_FX_MAX_AGE", default=24 * 3600)
# Risk monitoring alerts (docs/risk.md): site-wide recipients on top of each monitor's own.
RISK_ALERT_EMAILS = env.list("RISK_ALERT_EMAILS", default=[])
RISK_ALERT_WEBHOOK_URL = env("RISK_ALERT_WEBHOOK_URL", default="")
RISK_ALERT_WEBHOOK_SECRET = env("RISK_ALERT_WEBHOOK_SECRET", default="")
# How long each process reuses a channel account (and its decoded keys) for notifications.
PAYMENTS_NOTIFY_ACCOUNT_SECONDS = env.float("PAYMENTS_NOTIFY_ACCOUNT_SECONDS", default=30.0)
# --- Notify intake (docs/security.md): notices failing verification allowed per address and
# minute before that address is refused (429, counted, nothing stored) ----------------------
PAYMENTS_NOTIFY_FAILURES_PER_MINUTE = env.int("PAYMENTS_NOTIFY_FAILURES_PER_MINUTE", default=30)
# Tests swap in a transport that routes to the in-process WSGI app; None = real network.
PAYMENTS_HTTP_TRANSPORT = None

# --- Logging and observability -------------------------------------------------------------
# JSON lines with the request id in production (LOG_FORMAT=plain for people reading a
# terminal, the default with DEBUG); /metrics for Prometheus (config.metrics).
LOG_FORMAT = env("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "config.logging.RedactSecretsFilter"},
        "request_id": {"()": "config.logging.RequestIdFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # one line per request comes from config.middleware; Django's own would repeat it
        "django.server": {"level": "WARNING"},
        "cardex.request": {"level": env("REQUEST_LOG_LEVEL", default="INFO")},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
# Workers log through the same handlers (JSON, request id) instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Scrapers authenticate with `Authorization: Bearer <METRICS_TOKEN>`; staff sessions also work.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    try:
        import sentry_sdk
    except ImportError:  # optional: `pip install .[sentry]`
        warnings.warn("SENTRY_DSN is set but sentry-sdk is not installed", stacklevel=1)
    else:
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration

        sentry_sdk.init(
            dsn=SENTRY_DSN,
            integrations=[DjangoIntegration(), CeleryIntegration()],
            environment=env("SENTRY_ENVIRONMENT", default="production"),
            traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
            send_default_pii=False,  # no buyer e-mail, cookies or bodies (card codes) sent out
        )
