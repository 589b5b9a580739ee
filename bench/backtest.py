"""The synthetic alert backtest for seeds 7, 8 and 9: our rule against both baselines.

For each seed, ``earful backtest``'s default history (8 brands x 12 weeks) with the default
rule: per spike size the share of spikes alerted within 2 hours of their start and at all,
and false alarms per brand-month, for our rule, the two baselines as defined and the two
baselines with their thresholds raised to our false-alarm count. Then the same pooled over
the seeds, the 2x spikes by brand volume, and the second definition of a spike size (the
extra is a multiple of the brand's typical hour instead of the hour's own rate). The last
line is one JSON object with the pooled figures. ``--topic-share`` also replays topics tested
on their share of the brand's mentions (what ``earful alerts`` would do if given it).

    .venv/bin/python bench/backtest.py [--topic-share]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from earful.pipeline.backtest import (
    HEADLINE_SIZE,
    VOLUME_BANDS,
    BacktestResult,
    MethodScore,
    backtest,
    synthetic_history,
)

SEEDS = (7, 8, 9)
NAMES = {
    "ours": "Earful rule",
    "mean3sd": "mean + 3 sd (24 h)",
    "lasthour": "last hour > 2x (12 h)",
    "mean3sd_matched": "mean + k sd, at our FA",
    "lasthour_matched": "last hour > k x, at our FA",
    "oracle": "oracle (true rate), 1 FA/b-m",
}


def pooled(results: list[BacktestResult], method: str) -> dict[str, Any]:
    """Detection per size (within 2 h, at all) and false alarms, summed over the seeds."""
    scores = [r.scores[method] for r in results]
    out: dict[str, Any] = {}
    for size in sorted(scores[0].by_size):
        subs = [s.by_size[size] for s in scores]
        n = sum(s.incidents for s in subs)
        out[f"{size:g}x"] = (
            round(sum(s.detected_fast for s in subs) / n, 3),
            round(sum(s.detected for s in subs) / n, 3),
            n,
        )
    months = sum(s.brand_months for s in scores)
    out["false_alarms_per_brand_month"] = round(sum(s.false_alarms for s in scores) / months, 2)
    return out


def by_volume(results: list[BacktestResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for band, _, _ in VOLUME_BANDS:
        subs: list[MethodScore] = [r.by_volume[band] for r in results if band in r.by_volume]
        n = sum(s.incidents for s in subs)
        months = sum(s.brand_months for s in subs)
        out[band] = {
            "detection_rate_2x": round(sum(s.detected_fast for s in subs) / n, 3) if n else None,
            "incidents_2x": n,
            "false_alarms_per_brand_month": round(sum(s.false_alarms for s in subs) / months, 2)
            if months
            else None,
        }
    return out


def row(name: str, score: MethodScore) -> str:
    cells = [f"{s.fast_rate:4.0%} ({s.detection_rate:4.0%})" for s in score.by_size.values()]
    return f"{name:28s} " + "  ".join(cells) + f"  {score.false_alarms_per_brand_month:6.2f}"


def header(result: BacktestResult) -> str:
    sizes = "  ".join(f"{f'{s:g}x 2h (all)':>11s}" for s in result.scores["ours"].by_size)
    return f"{'method':28s} {sizes}  FA/brand-month"


def run(seed: int, *, basis: str = "hour", topic_share: bool = True) -> BacktestResult:
    return backtest(synthetic_history(seed=seed, spike_basis=basis), topic_share=topic_share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count-only-topics",
        action="store_true",
        help="also replay the earlier rule (topics on their negative counts only) for comparison",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    results = []
    for seed in SEEDS:
        result = run(seed)
        results.append(result)
        print(f"\nseed {seed}: 8 brands x 12 weeks, default rule")
        print(header(result))
        for method, score in result.scores.items():
            label = NAMES[method]
            if method.endswith("_matched"):
                label = label.replace("k", f"{result.thresholds[method.removesuffix('_matched')]:g}")
            print(row(label, score))
    figures: dict[str, Any] = {"seeds": list(SEEDS), "spike": "hour"}
    print(f"\npooled over seeds {', '.join(map(str, SEEDS))} (within 2 h, at all, incidents):")
    for method in NAMES:
        figures[method] = pooled(results, method)
        print(f"  {NAMES[method]:28s} {figures[method]}")
    figures["ours_2x_by_volume"] = by_volume(results)
    print("  2x within 2 h by brand volume (mean negatives an hour):", figures["ours_2x_by_volume"])

    typical = [run(seed, basis="typical") for seed in SEEDS]
    figures["typical_spike"] = {
        m: pooled(typical, m) for m in ("ours", "mean3sd_matched", "lasthour_matched", "oracle")
    }
    print("\nsecond definition (extra = (size - 1) x the brand's typical hour):")
    for method, values in figures["typical_spike"].items():
        print(f"  {NAMES[method]:28s} {values}")
    if args.count_only_topics:
        counted = [run(seed, topic_share=False) for seed in SEEDS]
        figures["count_only_topics"] = {
            m: pooled(counted, m) for m in ("ours", "mean3sd_matched", "lasthour_matched")
        }
        print("\nthe earlier rule, topics tested on their negative counts only:")
        for method, values in figures["count_only_topics"].items():
            print(f"  {NAMES[method]:28s} {values}")
    headline = figures["ours"][f"{HEADLINE_SIZE:g}x"]
    figures["detection_rate_2x_within_2h"] = headline[0]
    figures["false_alarms_per_brand_month"] = figures["ours"]["false_alarms_per_brand_month"]
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
