"""The ``news`` plugin: ``news`` and ``news:{SYMBOL}`` channels fed from RSS/Atom and JSON feeds, polled
with conditional requests and de-duplicated, plus an admin broadcast endpoint.

The hooks are in ``legend.plugins.builtin.news.plugin`` (the ``legend.plugins`` entry point).
"""
