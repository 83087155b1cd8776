"""Alembic revisions of the portfolio plugin's tables (recorded in ``portfolio_alembic_version``)."""
