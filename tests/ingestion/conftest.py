from tests.testapp.fixtures import broker_url, dependent, logs_dir, no_wakeups, recorder  # noqa: F401
