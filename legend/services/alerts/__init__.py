"""Alerts, by responsibility: the services that evaluate and serve alert rules, over the ports.

What they work on is pure and lives in the model, ``legend.domain``: ``alert_rules`` (kinds,
rearm policies, rules, triggers, the validation of a user's rule) and ``alert_index`` (``RuleIndex``,
the index of armed rules that finds which ones a price makes cross, and ``Transition``).

- ``evaluation``: ``AlertEvaluation``, the loop that evaluates every price of the cluster exactly once,
  from the price log, on the instance that holds the ``alerts`` lease;
- ``service``: ``AlertingService``, what the REST API and bootstrap use: rules per user, and triggers
  stored first, then published once.
"""
