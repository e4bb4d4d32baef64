"""Test settings: the machine's PostgreSQL and Redis where reachable, else the embedded PostgreSQL and the
in-process broker (``config.services``)."""

from config.services import configure_test_environment

configure_test_environment()

from config.services import checkout_suffix  # noqa: E402
from config.settings import *  # noqa: E402, F403
from config.settings import BASE_DIR, DATABASES, GREENLEDGER  # noqa: E402

# One test database per checkout, so that suites run from two checkouts on one server don't drop each
# other's database (Django's default, test_<name>, is the same for every checkout).
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{checkout_suffix(BASE_DIR)}"}

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False
# Throttling stays on in tests (the class reads its rates per request); the limits are far out of reach
# except where a test lowers them.
GREENLEDGER["THROTTLE_PER_MINUTE"] = 1_000_000
GREENLEDGER["THROTTLE_ANON_PER_MINUTE"] = 1_000_000
# Transfers between participants are immediate in tests unless a test switches trusted accounts on
# (tests/exchange/services/test_trust.py does, to test the delay).
GREENLEDGER["TRUSTED_ACCOUNTS"] = False
# Tests pin the market clock to days in the past (settlement stamps its entry with it) after fixtures wrote at
# the wall clock, so the journal's order check allows any gap here; tests/exchange/audit/test_tamper.py sets it
# back to the production default to test the check.
GREENLEDGER["JOURNAL_CLOCK_TOLERANCE_SECONDS"] = 10 * 365 * 24 * 3600
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "CRITICAL"}}

# Tests speak English unless they ask for Chinese (Accept-Language: zh-hans, or override_settings); the
# Chinese default is tested in tests/config/test_i18n.py.
LANGUAGE_CODE = "en"

# The catalogues as the code's .po files say now (make install compiles them too; this keeps a test run
# after editing a .po from reading a stale .mo). Babel, pure Python, a few milliseconds.
from config.catalogues import compile_all  # noqa: E402

compile_all()
