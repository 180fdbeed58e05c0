"""Settings for processes a test starts (Celery worker, gunicorn, drivers): production-shaped base
settings from the environment, plus the test projectors so a test can watch what they applied.

Unlike ``refairn.settings.test`` they do not force in-process projections: the broker decides.
"""

import os

from refairn.settings.base import *  # noqa: F403
from refairn.settings.base import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
REFAIRN_TEST_PROJECTORS = True
REFAIRN_TEST_PROJECTOR_SLEEP = float(os.environ.get("REFAIRN_TEST_PROJECTOR_SLEEP", "0"))
REFAIRN_TEST_PROJECTOR_GATE = os.environ.get("REFAIRN_TEST_PROJECTOR_GATE", "")
