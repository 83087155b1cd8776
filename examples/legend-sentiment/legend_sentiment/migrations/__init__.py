"""Alembic revisions of the sentiment plugin's table (recorded in ``sentiment_alembic_version``)."""
