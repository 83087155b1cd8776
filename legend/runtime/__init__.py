"""The runtime machinery of an instance: not the domain, but what every layer may run on.

- ``supervisor``: ``TaskSupervisor``, the long-running loops, named, restarted with backoff, stopped in a bound;
- ``backoff``: ``Backoff`` and ``exponential``, how long a retry loop waits;
- ``logcontext``: which connection the running code works for (a context variable the logs read);
- ``message_bus``: ``MessageBus``, which hands in-process events (``legend.domain.events``) to handlers.

It imports the standard library only: nothing of Legend, so the model, the services, the adapters and the
plugins can all use it without a cycle.
"""
