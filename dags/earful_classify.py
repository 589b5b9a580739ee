"""Classify: when new mentions land (the MENTIONS asset), classify what is not classified yet.

The classification commits in chunks (``classifier.commit_every``), so a retry after a timeout
goes on where the last attempt stopped. CLASSIFICATIONS is updated when something was
classified; a run with nothing to do is skipped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from earful.pipeline.orchestration import CLASSIFICATIONS_URI, DEFAULT_ARGS, MENTIONS_URI

MENTIONS, CLASSIFICATIONS = Asset(MENTIONS_URI), Asset(CLASSIFICATIONS_URI)
START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(
    schedule=[MENTIONS],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"limit": Param(None, type=["null", "integer"], minimum=1, description="At most N mentions")},
    tags=["earful"],
)
def earful_classify() -> None:
    """Classify new mentions' sentiment and topics, in committed chunks."""

    @task(outlets=[CLASSIFICATIONS], execution_timeout=timedelta(hours=3))
    def classify(params: Any = None, outlet_events: Any = None) -> dict[str, Any]:
        from earful.pipeline import orchestration

        result = orchestration.classify(limit=params["limit"])
        if not result["classified"]:
            raise AirflowSkipException(f"nothing to classify for {result['version']}")
        outlet_events[CLASSIFICATIONS].extra = {
            "classified": result["classified"],
            "version": result["version"],
        }
        return result

    classify()


earful_classify()
