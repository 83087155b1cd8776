"""Alembic migrations; packaged as legend.migrations in a wheel."""
