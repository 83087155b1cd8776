"""Session-wide test services: a private PostgreSQL (tests/support/postgres.py)."""

pytest_plugins = ("tests.support.postgres",)
