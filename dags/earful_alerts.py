"""Alerts: every hour, test the last hours for negative spikes and broken sources.

Runs at five past the hour (after the hour's collect and classify have started). The window is
the last ``alerts.window_hours`` complete hours before the run's logical time, so a rerun of
the same run tests the same hours; an alert is stored and sent once. A delivery still pending
fails the task, and its retry sends it again.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from earful.pipeline.orchestration import DEFAULT_ARGS

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(
    schedule="5 * * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["earful"],
)
def earful_alerts() -> None:
    """Detect negative spikes per brand and topic and broken sources; store and send alerts."""

    @task
    def alerts(logical_date: Any = None) -> dict[str, Any]:
        from earful.pipeline import orchestration

        return orchestration.alerts(at=logical_date)

    alerts()


earful_alerts()
