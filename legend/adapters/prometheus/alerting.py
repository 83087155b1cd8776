"""The alerting service's figures: which instance evaluates, how far behind it is, triggers fired and
published."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from legend.adapters.prometheus.families import counters, gauge, number
from legend.adapters.prometheus.leased import leased
from legend.services.alerts.service import AlertingService


def alerting(alerting: AlertingService) -> Iterator[Metric]:
    evaluation = alerting.evaluation
    yield from leased(
        evaluation,
        (
            "legend_alert_evaluation_holder",
            "1 on the instance that evaluates alert rules for the cluster, else 0.",
        ),
        (
            "legend_alert_evaluation_lag_seconds",
            "How long the oldest price not yet evaluated against the alert rules has waited (0 when "
            "caught up; only on the evaluating instance).",
        ),
    )
    if evaluation.holder:
        yield gauge("legend_alert_rules_armed", "Armed alert rules.", len(evaluation.evaluator))
    yield from counters(
        {
            "legend_alert_prices_evaluated": (
                evaluation.prices_evaluated,
                "Prices evaluated against the rules.",
            ),
            "legend_alert_prices_invalid": (
                evaluation.prices_invalid,
                "Price log entries that could not be read.",
            ),
            "legend_alert_evaluation_log_gaps": (
                evaluation.log_gaps,
                "Times evaluation fell behind the price log and prices were trimmed unevaluated (raise "
                "alerts.log_size).",
            ),
            "legend_alert_evaluation_failures": (
                evaluation.failures,
                "Evaluation batches that failed (database or log unavailable) and were retried.",
            ),
            "legend_alert_rule_changes": (evaluation.rule_changes, "Rule changes evaluation took in."),
            "legend_alert_triggers_fired": (evaluation.triggers_fired, "Alert triggers fired by evaluation."),
            "legend_alert_triggers_published": (
                alerting.triggers_published,
                "Alert triggers published to their owners by this instance.",
            ),
            "legend_alert_publish_failures": (
                alerting.publish_failures,
                "Attempts to publish alert triggers that failed (retried every alerts.retry_interval).",
            ),
        }
    )
    figures = alerting.status()
    yield gauge(
        "legend_alert_backlog",
        "1 while triggers that failed to go out wait for a retry, else 0.",
        float(bool(figures.get("backlog"))),
    )
    unlogged = number(figures.get("rule_changes_unlogged"))
    if unlogged is not None:
        yield gauge(
            "legend_alert_rule_changes_unlogged",
            "Rule changes whose notice could not enter the price log yet (backplane down).",
            unlogged,
        )
