"""Pure domain services: no I/O of their own, no framework, Redis or SQLAlchemy imports."""
