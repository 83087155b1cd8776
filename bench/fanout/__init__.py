"""The fan-out benchmark (``python -m bench.fanout``): Legend Realtime beside the bare Litestar loop (the
ceiling of our stack), a framework-free picows server (the limit of Python) and python-socketio (the
peer), at several connection counts, saturated and paced, one process and ``--workers`` on Redis.

Modules: ``procs`` (processes, limits, /proc), ``keeper`` (takes a server's processes down with it),
``servers`` (the reference servers), ``kinds`` (what is started and how it is reached), ``frames`` (what
goes over the wire), ``clients`` (the load generator), ``publisher``, ``runner`` (the run), ``report``
(tables, ratios, targets), ``plot`` and ``profile`` (py-spy).
"""
