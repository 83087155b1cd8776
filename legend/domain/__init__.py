"""The model of Legend Realtime: values and pure rules, no I/O, no framework, no port.

Envelopes, messages, channels, stream names, symbols, market states, quotes, prices, history, throttles,
counters, inputs, external messages, close codes, time formats, alert rules and the alert index, and the
in-process event types. These modules import only each other, the standard library and msgspec. The
layers above them, each importing only what is below it (``tests/unit/test_architecture.py`` holds it):

- ``legend.runtime``: the machinery every layer may run on (supervisor, backoff, log context, message bus);
  like the model, it depends on nothing else of Legend;
- ``legend.ports``: the interfaces to the outside world, which speak the model;
- ``legend.services``: what works through ports (streaming, polling, alerts, watchlists);
- the adapters, plugins and the composition root (``legend.bootstrap``) on top.

A new module goes here when it needs no port and no runtime machinery, and in a service when it does.
"""
