"""The core of Legend Realtime: no I/O of its own, no framework, Redis or SQLAlchemy imports.

One rule, in two layers:

- **The model**: the modules directly in ``legend/domain/`` (``envelope``, ``messages``, ``channels``,
  ``stream_name``, ``symbols``, ``market``, ``quotes``, ``prices``, ``history``, ``throttle``, ``stats``,
  ``inputs``, ``external``, ``closecodes``, ``timefmt``, ``alert_rules``, ``alert_index``, ...): values and
  pure rules. They import only each other (and the standard library, msgspec), never ``legend.ports`` nor
  a subpackage of ``legend.domain``. The ports speak the model: their signatures use these types.
- **The services**, in the subpackages (``streaming``, ``polling``, ``alerts``, ``watchlists``): what works
  through ports (publishes, polls, stores). They import the model, the ports, and other services.

So the imports point one way: services -> ports -> model, and the model depends on nothing else of
Legend. A new module goes in the model when it needs no port, and in a service package when it does.
``tests/unit/test_architecture.py`` checks the rule, and that no package imports another in a cycle.
"""
