"""Weekly report: Monday 07:00 in the config's time zone, the week that just ended.

``write`` writes one HTML page and its CSV tables per brand (``report.out_dir``) and records
them; ``deliver`` sends each report's summary and location on every configured notifier.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from earful.pipeline.orchestration import DEFAULT_ARGS, schedule_timezone

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(
    schedule=CronTriggerTimetable("0 7 * * 1", timezone=schedule_timezone()),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["earful"],
)
def earful_weekly_report() -> None:
    """Write last week's report per brand and send it through the configured notifiers."""

    @task
    def write(logical_date: Any = None) -> list[dict[str, Any]]:
        from earful.pipeline import orchestration

        return orchestration.weekly_report(now=logical_date)

    @task
    def deliver(reports: Any) -> dict[str, str]:
        from earful.pipeline import orchestration

        return orchestration.deliver_reports(reports)

    deliver(write())


earful_weekly_report()
