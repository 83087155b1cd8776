"""The ``news`` plugin: ``news`` and ``news:{SYMBOL}`` channels fed from RSS/Atom and JSON feeds, polled
with conditional requests and de-duplicated, plus an admin broadcast endpoint.

The hooks are in ``legend.plugins.builtin.news.plugin`` (the ``legend.plugins`` entry point); beside them
``config`` (settings), ``schema`` (the message), ``parsing`` (feeds), ``desk`` (polling, de-duplication,
publishing) and ``api`` (``/api/news``).
"""
