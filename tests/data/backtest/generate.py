"""Write the example history and incidents used by tests/test_backtest.py.

Four weeks of two brands (one with two topics) from the synthetic generator, starting on a
Wednesday at 09:37 UTC (mid-hour, mid-week, as an export does), one CSV row per series and
hour stamped at a random minute of the hour. The committed files were written by the
generator as it was before the spike backtest was reworked (negatives and other mentions with
independent negative-binomial noise, 3 to 30 negatives an hour) and are kept as they were, a
fixed example nothing was tuned to; run now, this script writes a different history from the
current generator. Run from the repository root::

    .venv/bin/python tests/data/backtest/generate.py
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import numpy as np

from earful.pipeline.backtest import synthetic_history

HERE = Path(__file__).resolve().parent
SKIP_HOURS = 2 * 24 + 9  # start on the Wednesday, at 09:xx


def main() -> None:
    history = synthetic_history(weeks=5, brands=2, topics=2, seed=11, warmup_weeks=1)
    rng = np.random.default_rng(11)
    keep = [i for i, (brand, topic) in enumerate(history.keys) if topic is None or brand == "brand-1"]
    names = {"brand-1": "Acme", "brand-2": "Globex"}
    assert history.total is not None
    with (HERE / "history.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["time", "brand", "topic", "negative", "total"])
        for hour in range(SKIP_HOURS, history.hours):
            for i in keep:
                brand, topic = history.keys[i]
                minute = 37 if hour == SKIP_HOURS else int(rng.integers(0, 60))
                when = history.start + timedelta(hours=hour, minutes=minute)
                out.writerow(
                    [
                        when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        names[brand],
                        topic or "",
                        int(history.negative[i, hour]),
                        int(history.total[i, hour]),
                    ]
                )
    start = history.start + timedelta(hours=SKIP_HOURS)
    with (HERE / "incidents.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["brand", "start", "end"])
        for incident in history.incidents:
            if incident.start >= start:
                out.writerow([names[incident.brand], incident.start.isoformat(), incident.end.isoformat()])


if __name__ == "__main__":
    main()
