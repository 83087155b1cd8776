"""The interfaces the domain needs from the outside world; adapters implement them.

Ports speak the model: they import only the modules directly in ``legend.domain`` (envelopes, quotes,
market states, alert rules), never a domain service package, which is what uses them.
"""
