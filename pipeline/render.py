"""The weekly report as people read it: wording, the HTML page, the chart and the CSV files.

:mod:`earful.pipeline.report` counts and compares (``BrandReport``); this module only turns a
report into text. Everything in a report that came from the web (texts, titles, links, source
names) is hostile: the page is rendered by Jinja2 with autoescaping, links are kept only for
``http(s)``, the chart's SVG is stripped of anything active (:func:`clean_svg`), and CSV cells
that a spreadsheet would run as a formula are neutralised (:func:`csv_cell`).
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from earful.pipeline.stats import Interval, within_noise
from earful.pipeline.trends import Tally

if TYPE_CHECKING:
    from earful.pipeline.report import BrandReport, SliceRow, WeekFigures

_SAFE_SCHEMES = ("http", "https")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None, digits: int = 1) -> str:
    """A difference of shares in percentage points, signed: ``+4.2``."""
    if value is None:
        return "–"
    text = f"{value * 100:+.{digits}f}"
    return "0" if float(text) == 0 else text.replace("-", "−")


def net_score(value: float | None) -> str:
    """Net sentiment on a −100..+100 scale."""
    return "–" if value is None else points(value, 0)


def signed(value: int) -> str:
    return f"{value:+,d}".replace("-", "−") if value else "0"


def ratio_change(value: float) -> str:
    if math.isinf(value):
        return "new"
    return points(value - 1, 0) + "%"


def interval_text(interval: Interval | None, fmt: str = "points") -> str:
    """``(−1.5 to +9.6)`` for a difference, a ratio or a share."""
    if interval is None:
        return ""
    low, high = interval.low, interval.high
    if fmt == "ratio":
        return f"({ratio_change(low)} to {ratio_change(high)})"
    if fmt == "share":
        return f"({pct(low)} to {pct(high)})"
    if fmt == "net":
        return f"({net_score(low)} to {net_score(high)})"
    return f"({points(low)} to {points(high)})"


def hours_text(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


# ------------------------------------------------------------------------------ safety


def safe_link(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL, else ``None`` (shown as text, not a link).

    ``javascript:``, ``data:`` and friends never become an ``href``; urlsplit drops the tabs
    and newlines that browsers also ignore inside a scheme, so ``java\\tscript:`` is caught.
    """
    if not url:
        return None
    candidate = url.strip()
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        return None
    return re.sub(r"[\t\r\n]", "", candidate)


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @``, a tab or a CR
    gets a leading single quote. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def excerpt(text: str, limit: int = 280) -> str:
    """``text`` on one line, cut at a word boundary near ``limit`` (or inside a long word)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def slug(name: str, brand_id: int | None = None) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]
    return value or (f"brand-{brand_id}" if brand_id is not None else "all")


# ------------------------------------------------------------------------------- chart


_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"


def trend_chart(trend: Sequence[WeekFigures]) -> Markup:
    """Volume, net sentiment and negative share per week, with 95% interval bands, as SVG;
    a hollow point marks a week with too few judged mentions to conclude from.

    Drawn on a bare :class:`~matplotlib.figure.Figure` (no pyplot, no global state); the SVG
    ids are salted with a constant so the same data gives the same file.
    """
    import matplotlib
    from matplotlib.figure import Figure

    x = list(range(len(trend)))
    labels = [f"W{w.week.number:02d}" for w in trend]

    def series(get: Any) -> tuple[list[float], list[float], list[float]]:
        values = [get(w) for w in trend]
        nan = float("nan")
        return (
            [v.estimate * 100 if v else nan for v in values],
            [v.low * 100 if v else nan for v in values],
            [v.high * 100 if v else nan for v in values],
        )

    rc: Any = {
        "svg.hashsalt": "earful-report",
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.size": 9,
    }
    with matplotlib.rc_context(rc):
        # Fixed margins, not layout="constrained": that one measures every label by drawing it
        # (40% of the chart's time) to end at about these margins. The left one leaves room
        # for seven-digit tick labels and the axis titles.
        fig = Figure(figsize=(8.4, 6.0))
        fig.subplots_adjust(left=0.105, right=0.985, top=0.975, bottom=0.06, hspace=0.12)
        ax_volume, ax_net, ax_negative = fig.subplots(3, 1, sharex=True)
        judged = [w.tally.judged for w in trend]
        ax_volume.bar(x, judged, color="#35608f", label="judged")
        ax_volume.bar(
            x, [w.tally.not_judged for w in trend], bottom=judged, color="#b8c4d6", label="not judged"
        )
        ax_volume.set_ylabel("mentions")
        ax_volume.legend(loc="upper left", frameon=False, ncols=2)
        thin = [i for i, w in enumerate(trend) if not w.enough]
        for ax, get, color, title in (
            (ax_net, lambda w: w.net, "#2f7d4f", "net sentiment"),
            (ax_negative, lambda w: w.negative_share, "#b23b3b", "negative share, %"),
        ):
            estimate, low, high = series(get)
            ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
            ax.plot(x, estimate, color=color, marker="o", markersize=4)
            if thin:
                ax.plot(
                    thin,
                    [estimate[i] for i in thin],
                    linestyle="none",
                    marker="o",
                    markersize=6,
                    markerfacecolor="white",
                    markeredgecolor=color,
                )
            ax.set_ylabel(title)
            ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax_net.axhline(0, color="#888888", linewidth=0.8)
        ax_negative.set_xticks(x, labels)
        for ax in (ax_volume, ax_net, ax_negative):
            ax.spines[["top", "right"]].set_visible(False)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return Markup(clean_svg(buffer.getvalue()))  # noqa: S704 - our own drawing, cleaned below


def clean_svg(svg: str) -> str:
    """An SVG without anything active: no scripts, event handlers, foreign objects or links
    out of the drawing; no XML declaration or DOCTYPE (it is inlined into HTML). Its
    ``<style>`` goes too: inlined, a style sheet applies to the whole page (the report's own
    CSS carries matplotlib's two stroke rules, scoped to the chart)."""
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    root = ET.fromstring(svg)  # noqa: S314 - matplotlib's own output
    for parent in root.iter():
        for child in list(parent):
            tag = child.tag.rsplit("}", 1)[-1].lower()
            if tag in ("script", "foreignobject", "metadata", "a", "style"):
                parent.remove(child)
        for name in list(parent.attrib):
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or (local == "href" and not parent.attrib[name].startswith("#")):
                del parent.attrib[name]
    root.attrib.pop("width", None)
    root.attrib.pop("height", None)
    root.set("role", "img")
    root.set("aria-label", "Mentions, net sentiment and negative share per week, with 95% intervals")
    return ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------------ output


@functools.cache
def _environment() -> Environment:
    """The template environment, built once: it compiles each template on first use only."""
    env = Environment(
        loader=PackageLoader("earful.pipeline", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=pct,
        points=points,
        net=net_score,
        ratio=ratio_change,
        interval=interval_text,
        link=safe_link,
        excerpt=excerpt,
        hours=hours_text,
        signed=signed,
    )
    env.globals["inf"] = math.inf
    return env


def render_html(report: BrandReport, timezone: str) -> str:
    tz = ZoneInfo(timezone)

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else "–"

    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report,
        timezone=timezone,
        local=local,
        chart=trend_chart(report.trend) if report.has_data else None,
        within_noise=within_noise,
    )


def csv_tables(report: BrandReport, timezone: str) -> dict[str, list[list[Any]]]:
    """Each CSV file's rows, header first; the same figures as the page, unrounded."""
    tz = ZoneInfo(timezone)

    def local(value: datetime | None) -> str:
        return value.astimezone(tz).isoformat(timespec="minutes") if value else ""

    def iv(value: Interval | None) -> list[Any]:
        return ["", "", ""] if value is None else [value.estimate, value.low, value.high]

    def ratio(value: Interval | None) -> list[Any]:
        return ["" if v is None or math.isinf(v) else v for v in iv(value)]

    tally_head = ["mentions", "judged", "positive", "neutral", "negative", "not_judged"]

    def tally(t: Tally) -> list[Any]:
        return [t.mentions, t.judged, t.positive, t.neutral, t.negative, t.not_judged]

    share_head = [
        "negative_share",
        "negative_share_low",
        "negative_share_high",
        "net_sentiment",
        "net_low",
        "net_high",
    ]

    def shares(w: WeekFigures) -> list[Any]:
        return [*iv(w.negative_share), *iv(w.net)]

    def slice_rows(kind: str, rows: list[SliceRow]) -> list[list[Any]]:
        head = [
            kind,
            *tally_head,
            *share_head,
            "enough_judged",
            *(f"{h}_before" for h in tally_head[:2]),
            "negative_share_before",
            "volume_ratio",
            "volume_ratio_low",
            "volume_ratio_high",
            "negative_share_change",
            "negative_share_change_low",
            "negative_share_change_high",
            "net_change",
            "net_change_low",
            "net_change_high",
            "negative_change_within_noise",
        ]
        out: list[list[Any]] = [head]
        for row in rows:
            out.append(
                [
                    row.name,
                    *tally(row.now.tally),
                    *shares(row.now),
                    row.now.enough,
                    row.before.tally.mentions,
                    row.before.tally.judged,
                    row.before.negative_share.estimate if row.before.negative_share else "",
                    *ratio(row.volume_change),
                    *iv(row.negative_change),
                    *iv(row.net_change),
                    within_noise(row.negative_change),
                ]
            )
        return out

    volume: list[list[Any]] = [["week", "first_day", "last_day", *tally_head, *share_head, "enough_judged"]]
    for w in report.trend:
        volume.append(
            [
                w.week.label,
                w.week.first_day.isoformat(),
                w.week.last_day.isoformat(),
                *tally(w.tally),
                *shares(w),
                w.enough,
            ]
        )
    mentions: list[list[Any]] = [
        ["list", "source", "published", "url", "sentiment", "score", "rating", "topics", "title", "excerpt"]
    ]
    for kind in ("most_negative", "most_positive", "high_rating_negative", "low_rating_positive"):
        for m in getattr(report, kind):
            mentions.append(
                [
                    kind,
                    m.source,
                    local(m.published_at),
                    m.url or "",
                    m.sentiment or "",
                    m.score,
                    "" if m.rating is None else m.rating,
                    " ".join(m.topics),
                    m.title or "",
                    excerpt(m.excerpt, 500),
                ]
            )
    return {
        "volume": volume,
        "sources": slice_rows("source", report.sources),
        "topics": slice_rows("topic", report.topics),
        "drivers": [
            ["topic", "negative", "negative_before", "negative_change", "share_of_change", "net_points"]
        ]
        + [
            [
                d.topic,
                d.negative,
                d.negative_before,
                d.negative_change,
                "" if d.share_of_change is None else d.share_of_change,
                "" if d.net_points is None else d.net_points,
            ]
            for d in report.drivers
        ],
        "mentions": mentions,
        "responses": [["week", "negative", "replied", "share", "share_low", "share_high", "median_hours"]]
        + [
            [
                f.week.label,
                f.negative,
                f.replied,
                *iv(f.share),
                "" if f.median_hours is None else f.median_hours,
            ]
            for f in report.responses
        ],
        "duplicates": [
            ["content_hash", "copies", "sources", "first_published", "kept_source", "url", "excerpt"]
        ]
        + [
            [
                d.content_hash,
                d.copies,
                " ".join(d.sources),
                local(d.first_published),
                d.kept.source,
                d.kept.url or "",
                excerpt(d.kept.excerpt, 500),
            ]
            for d in report.duplicates
        ],
    }


def write_csv(path: Path, rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    write_text(path, buffer.getvalue())


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a mail job never picks up half a report."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8", newline="")
    partial.replace(path)
