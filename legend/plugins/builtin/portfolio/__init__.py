"""The ``portfolio`` plugin: a private per-user channel with live position values and P&L, computed from
the user's stored positions and the price stream; positions through ``/api/portfolio/positions``.

The hooks are in ``legend.plugins.builtin.portfolio.plugin`` (the ``legend.plugins`` entry point); the
positions and their valuation in ``model``; its own table and repository in ``storage``, its Alembic
revisions in ``migrations/``.
"""
