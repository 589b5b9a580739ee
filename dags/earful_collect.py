"""Collect: crawl each due source in its own mapped task, then announce new mentions.

``sources`` reads the config at run time: the enabled sources whose ``schedule`` fired since
their last crawl (or those named in the run's ``sources`` parameter, or all with ``all``).
Each ``crawl`` runs one spider in a child process and fails (and is retried) when its crawl
fails. ``announce`` updates the MENTIONS asset, which schedules ``earful_classify``, only when
some crawl stored new mentions; a run that found nothing new skips it. ``failed_crawls`` fails
the run when a crawl failed after its retries, after the others' mentions were announced.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, TriggerRule, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from earful.pipeline.orchestration import DEFAULT_ARGS, MENTIONS_URI

MENTIONS = Asset(MENTIONS_URI)
START = pendulum.datetime(2026, 1, 1, tz="UTC")

CRAWL_TIMEOUT = timedelta(hours=1)


@dag(
    schedule="0 * * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "sources": Param([], type="array", items={"type": "string"}, description="Crawl these now"),
        "all": Param(False, type="boolean", description="Crawl every enabled source now"),
    },
    tags=["earful"],
)
def earful_collect() -> None:
    """Crawl the due sources, one mapped task each; MENTIONS is updated when new ones land."""

    @task
    def sources(params: Any = None, logical_date: Any = None) -> list[str]:
        from earful.pipeline import orchestration

        return orchestration.sources_to_crawl(params["sources"], every=params["all"], at=logical_date)

    # The crawler is stopped a minute before Airflow's timeout, so its run is recorded.
    @task(execution_timeout=CRAWL_TIMEOUT + timedelta(minutes=1))
    def crawl(source: str) -> dict[str, Any]:
        from earful.pipeline import orchestration

        return orchestration.crawl(source, timeout_s=CRAWL_TIMEOUT.total_seconds())

    @task(outlets=[MENTIONS], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def announce(counts: Any, outlet_events: Any = None) -> int:
        from earful.pipeline import orchestration

        new = orchestration.new_mentions(counts[:])  # one request (iterating asks until a 404)
        if not new:
            raise AirflowSkipException("no new mentions: nothing for earful_classify")
        outlet_events[MENTIONS].extra = {"new": new}
        return new

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def failed_crawls() -> None:
        raise AirflowFailException("a crawl failed after its retries; see the crawl task's log")

    counts = crawl.expand(source=sources())
    announce(counts)
    counts >> failed_crawls()


earful_collect()
