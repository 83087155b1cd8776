"""The interfaces the services need from the outside world; adapters implement them.

Ports speak the model: they import only ``legend.domain`` (envelopes, quotes, market states, alert
rules), never a service of ``legend.services``, which is what uses them, nor the runtime.
"""
