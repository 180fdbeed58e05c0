"""Test settings: the base settings with fast hashing and quiet logs.

``DATABASE_URL`` and ``CELERY_BROKER_URL`` still decide which services the suite talks to, so
``.ci/run`` can point the same suite at PostgreSQL and Redis.
"""

import os

os.environ.setdefault("REFAIRN_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "var", "test"))

from .base import *  # noqa: E402, F403
from .base import DATABASES, INSTALLED_APPS  # noqa: E402

# A tiny app with a model for the projection runner's test projectors (no migrations: the test
# runner creates its table). Its projectors are registered by the tests that use them.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
else:
    # The runner empties tables between tests; the append-only trigger lets this session do it
    # (see ingestion/migrations/0002). Tests of the trigger connect without this setting.
    DATABASES["default"]["OPTIONS"]["options"] = "-c refairn.allow_purge=on"
# Tests drive projections explicitly (or through on-commit capture); never from a broker.
REFAIRN_RUN_PROJECTIONS_INLINE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING"},
}
