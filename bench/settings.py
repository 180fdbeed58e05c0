"""Production settings for the benchmarks, served on 127.0.0.1 over plain HTTP.

Everything comes from ``refairn.settings.production`` (DEBUG off, persistent connections, the
real middleware and DRF defaults); only what a loopback benchmark needs changes: no HTTPS
redirect, the loopback host, and ``bench.urls``, which adds the reference views to the app's.
"""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from refairn.settings.production import *  # noqa: E402, F403
from refairn.settings.production import INSTALLED_APPS  # noqa: E402

SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "bench.urls"
# "bench" carries the unmanaged model of the naive reference (bench/models.py, table bench_event).
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
# The Stripe-style secret the raw reference view verifies with (no database read for it).
BENCH_RAW_SECRET = os.environ.get("BENCH_RAW_SECRET", "whsec_bench_raw_reference")
