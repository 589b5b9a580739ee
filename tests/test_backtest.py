"""``earful backtest``: the alert rule replayed on synthetic and on saved history."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from earful.pipeline.backtest import (
    HEADLINE_SIZE,
    MENTIONS_PER_DAY,
    NEGATIVE_SHARE,
    BacktestResult,
    _cool,
    backtest,
    read_history,
    read_incidents,
    synthetic_history,
)
from earful.pipeline.cli import cli
from earful.pipeline.errors import InputError

DATA = Path(__file__).resolve().parent / "data" / "backtest"
HISTORY, INCIDENTS = DATA / "history.csv", DATA / "incidents.csv"

pytestmark = pytest.mark.usefixtures("isolated_cli")


def earful(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def last_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return data


@pytest.fixture(scope="module")
def default_run() -> BacktestResult:
    """The README's run: 8 brands, 12 weeks, seed 7, default rule (about 5 s)."""
    return backtest(synthetic_history())


def test_default_rule_catches_spikes_with_few_false_alarms(default_run: BacktestResult) -> None:
    ours = default_run.scores["ours"]
    sizes = ours.by_size
    assert ours.false_alarms_per_brand_month <= 1.2  # measured 1.12 (0.93 over seeds 7-9)
    assert sizes[5.0].fast_rate >= 0.80  # measured 86%
    assert sizes[3.0].fast_rate >= 0.50  # measured 58%
    assert sizes[2.0].fast_rate >= 0.28  # measured 32%; the target is 95%
    assert sizes[2.0].detection_rate >= 0.45  # at all, measured 50%
    assert sizes[2.0].median_delay <= 2
    assert default_run.by_volume["busy"].fast_rate >= 0.5  # >= 10 negatives/hour: 62%
    assert default_run.to_dict()["detection_rate"] == round(sizes[HEADLINE_SIZE].fast_rate, 4)


def test_default_rule_beats_both_baselines(default_run: BacktestResult) -> None:
    scores = default_run.scores
    ours = scores["ours"]
    for name in ("mean3sd", "lasthour"):
        # As defined they raise more than ten times the false alarms ...
        assert scores[name].false_alarms_per_brand_month > 10 * ours.false_alarms_per_brand_month
        # ... and with their thresholds raised to our false-alarm rate they catch less.
        matched = scores[f"{name}_matched"]
        assert matched.false_alarms <= ours.false_alarms
        for size, sub in matched.by_size.items():
            assert sub.fast_rate <= ours.by_size[size].fast_rate
        assert matched.by_size[3.0].fast_rate < ours.by_size[3.0].fast_rate
        assert matched.detection_rate < ours.detection_rate


def test_oracle_that_knows_the_true_rate_sets_the_ceiling(default_run: BacktestResult) -> None:
    """The reference that knows each hour's expected negatives, held to the issue's one false
    alarm per brand-month: it catches more than our rule (it knows what no rule can), and still
    far from 95% of 2x spikes within 2 hours (measured 68% on seed 7), which is the point."""
    oracle, ours = default_run.scores["oracle"], default_run.scores["ours"]
    assert oracle.false_alarms_per_brand_month <= 1.0
    assert oracle.by_size[2.0].fast_rate >= ours.by_size[2.0].fast_rate
    assert oracle.by_size[2.0].fast_rate < 0.95
    assert oracle.by_size[5.0].fast_rate >= 0.8
    assert 0 < default_run.to_dict()["reference_oracle_alpha"] < 0.01


def test_synthetic_history_is_seeded_and_realistic() -> None:
    a = synthetic_history(weeks=4, brands=2, seed=3)
    b = synthetic_history(weeks=4, brands=2, seed=3)
    assert np.array_equal(a.negative, b.negative)
    assert a.keys[:2] == [("brand-1", None), ("brand-1", "topic-1")]
    assert a.total is not None
    assert (a.total >= a.negative).all()
    brand = a.negative[0].astype(float)
    assert brand.var() > 2 * brand.mean()  # overdispersed
    by_hour = brand[: 168 * 4].reshape(-1, 24).mean(axis=0)
    assert by_hour.max() > 2 * by_hour.min()  # a daily cycle
    assert {i.size for i in a.incidents} == {1.5, 2.0, 3.0, 5.0}
    assert all(i.start >= a.start + timedelta(hours=a.warmup) for i in a.incidents)  # none in warm-up
    # Volumes as documented: judged mentions a day within MENTIONS_PER_DAY (give or take the
    # drift), a share of them negative within NEGATIVE_SHARE (give or take the spikes).
    wide = synthetic_history(weeks=4, brands=8, seed=4)
    assert wide.total is not None
    for i, (_, topic) in enumerate(wide.keys):
        if topic is None:
            per_day = wide.total[i].sum() / 28
            assert 0.7 * MENTIONS_PER_DAY[0] < per_day < 1.5 * MENTIONS_PER_DAY[1]
            share = wide.negative[i].sum() / wide.total[i].sum()
            assert 0.7 * NEGATIVE_SHARE[0] < share < 1.3 * NEGATIVE_SHARE[1]
    # Busy hours are busy for negatives and the rest alike: the hourly noise is shared.
    other = a.total[0] - a.negative[0]
    hours = np.arange(brand.size)
    assert np.corrcoef(brand[hours % 24 == 14], other[hours % 24 == 14])[0, 1] > 0.3


def test_a_2x_spike_doubles_the_negatives_the_hours_would_otherwise_have_had() -> None:
    """The first spike of the first brand is drawn after all of that brand's ordinary counts,
    so the same seed without the extra (size 1) is the same history without the spike."""
    kwargs: dict[str, Any] = {"weeks": 3, "brands": 1, "seed": 5, "mentions_per_day": (5000.0, 5000.0)}
    spiked = synthetic_history(sizes=(2.0,), **kwargs)
    plain = synthetic_history(sizes=(1.0,), **kwargs)
    first = spiked.incidents[0]
    assert first.start == plain.incidents[0].start
    hours = slice(spiked.index(first.start), spiked.index(first.end))
    ratio = spiked.negative[0, hours].sum() / plain.negative[0, hours].sum()
    assert 1.8 < ratio < 2.2
    # Relative to the brand's typical hour instead, a night spike adds more than it doubles.
    typical = synthetic_history(sizes=(2.0,), spike_basis="typical", **kwargs)
    assert typical.negative[0, hours].sum() != spiked.negative[0, hours].sum()
    with pytest.raises(ValueError, match="spike_basis"):
        synthetic_history(spike_basis="weekly")


def test_one_alert_per_brand_and_run_as_the_alerts_job_raises_them() -> None:
    history = synthetic_history(weeks=3, brands=1, seed=2)
    fire = np.zeros(history.negative.shape, dtype=bool)
    t = history.warmup + 5
    fire[[0, 1, 2], t] = True  # the brand and two topics in one run: one alert
    fire[1, t + 3] = True  # a flagged topic in cool-down: nothing
    fire[3, t + 4] = True  # another topic, out of cool-down: a second alert
    fire[0, t + 30] = True  # after the cool-down: a third
    alerts = _cool(history, fire, 24)
    assert [(a.key, a.at) for a in alerts] == [
        (("brand-1", None), t + 1),
        (("brand-1", "topic-3"), t + 5),
        (("brand-1", None), t + 31),
    ]


def test_topics_can_be_replayed_on_their_counts_only(default_run: BacktestResult) -> None:
    """The default replays topics as `earful alerts` tests them (count and share of the brand);
    the earlier count-only rule stays available for comparison."""
    history = synthetic_history(weeks=4, brands=2, seed=1)
    counted, shared = backtest(history, topic_share=False), backtest(history)
    assert counted.scores["ours"].incidents == shared.scores["ours"].incidents > 0
    assert counted.rule == shared.rule == default_run.rule


def test_cli_synthetic_json_has_the_figures_for_all_three_methods() -> None:
    data = last_json(earful("backtest", "--weeks", "4", "--brands", "2", "--seed", "1", "--json"))
    for prefix in ("", "baseline_mean3sd_", "baseline_lasthour_"):
        for key in (
            "detection_rate",
            "false_alarms_per_brand_month",
            "incidents",
            "detected",
            "median_delay_hours",
        ):
            assert prefix + key in data
        for size in ("1.5x", "2x", "3x", "5x"):
            assert f"{prefix}detection_rate_{size}" in data
    assert data["detection_rate"] == data["detection_rate_2x"]
    assert data["brands"] == 2
    assert data["hours"] == 4 * 168


def test_cli_replays_a_saved_history_with_known_incidents() -> None:
    result = earful("backtest", "--history", HISTORY, "--incidents", INCIDENTS, "--json")
    data = last_json(result)
    assert "Earful rule" in result.output
    assert "mean + 3 sd" in result.output
    assert data["incidents"] == 14
    # Measured 11 of 14 at 1.47 false alarms per brand-month (3 in 2.0 brand-months); before
    # topics had a share test, 12 of 14 at 2.45.
    assert data["detected"] >= 11
    assert data["false_alarms_per_brand_month"] <= 2.0
    assert data["baseline_mean3sd_false_alarms_per_brand_month"] > 5
    assert data["baseline_lasthour_false_alarms_per_brand_month"] > 5
    assert "detection_rate_2x" not in data  # real incidents have no sizes
    table = earful("backtest", "--history", HISTORY, "--incidents", INCIDENTS)
    assert table.exit_code == 0
    assert "false alarms / brand-month" in table.output


def test_history_is_floored_to_the_hour_and_each_series_starts_at_its_first_row(tmp_path: Path) -> None:
    file = tmp_path / "h.csv"
    file.write_text(
        "time,brand,negative,total,topic\n"
        "2026-03-02T09:37:00Z,Acme,2,10,\n"
        "2026-03-02T09:59:59+00:00,Acme,1,3,\n"  # same hour: added up
        "2026-03-02T11:05:00+01:00,Acme,4,9,\n"  # 10:05 UTC
        "2026-03-02T12:00:00,Globex,1,1,delivery\n"  # no offset: UTC
        "\n",
        encoding="utf-8",
    )
    history = read_history(file)
    assert history.keys == [("Acme", None), ("Globex", "delivery")]
    assert history.start.isoformat() == "2026-03-02T09:00:00+00:00"
    assert history.negative.tolist() == [[3, 4, 0, 0], [0, 0, 0, 1]]
    assert history.total is not None
    assert history.total[0].tolist() == [13, 9, 0, 0]
    assert history.first.tolist() == [0, 3]
    assert history.warmup == 48


def test_history_without_incidents_counts_every_alert_as_false(tmp_path: Path) -> None:
    data = last_json(earful("backtest", "--history", HISTORY, "--json"))
    assert data["incidents"] == 0
    assert data["detection_rate"] is None
    assert data["false_alarms_per_brand_month"] > 0
    assert earful("backtest", "--incidents", INCIDENTS).exit_code == 2  # needs --history


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "time,brand,negative\n2026-03-02T09:00:00Z,Acme,two\n",
            "line 2, column negative: 'two' is not a whole",
        ),
        (
            "time,brand,negative\n2026-03-02T09:00:00Z,Acme,3\nyesterday,Acme,1\n",
            "line 3, column time: 'yesterday'",
        ),
        ("time,brand,negative\n2026-03-02T09:00:00Z,,3\n", "line 2, column brand: empty"),
        ("time,brand,negative,total\n2026-03-02T09:00:00Z,Acme,3,2\n", "line 2, column total: 2 is below"),
        ("time,brand,negative\n2026-03-02T09:00:00Z,Acme\n", "line 2: 2 fields, the header has 3"),
        ("time,brand\n2026-03-02T09:00:00Z,Acme\n", "line 1: missing column negative"),
        ("time,brand,negative,mood\n", "line 1: unknown column mood"),
        ("time,brand,negative\n", "no rows after the header"),
        ("", "is empty"),
    ],
)
def test_bad_history_is_one_error_naming_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "history.csv"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_history(file)
    result = earful("backtest", "--history", file)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert str(file) in result.output
    assert "Traceback" not in result.output


def test_bad_incidents_are_one_error(tmp_path: Path) -> None:
    file = tmp_path / "incidents.csv"
    file.write_text("brand,start,end\nAcme,2026-03-02T12:00Z,2026-03-02T10:00Z\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2, column end: .* is not after start"):
        read_incidents(file)
    result = earful("backtest", "--history", HISTORY, "--incidents", tmp_path / "missing.csv")
    assert result.exit_code == 1
    assert "missing.csv does not exist" in result.output
