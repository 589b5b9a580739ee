"""The weekly report: its figures on SQLite and PostgreSQL, its weeks, and its safety.

The database is built for real (mentions stored by ``MentionStore``, classifications inserted
as ``earful classify`` writes them), so the SQL that counts is the SQL that runs in
production. The expected figures are written out by hand from the data below.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import html as lxml_html  # type: ignore[import-untyped]

from earful.pipeline import stats, trends
from earful.pipeline.cli import cli
from earful.pipeline.config import Config, ReportSettings
from earful.pipeline.db import Database
from earful.pipeline.render import csv_cell, render_html, safe_link
from earful.pipeline.report import (
    BrandReport,
    build_report,
    default_out_dir,
    find_brands,
    write_reports,
)
from earful.pipeline.schema import Classification, Report
from earful.pipeline.store import MentionIn, MentionStore
from earful.pipeline.weeks import BadWeek, Week, last_complete_week, parse_week

W47 = Week(2026, 47, "Europe/Berlin")  # Mon 16 Nov 2026 .. Sun 22 Nov 2026
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
VERSION = "test-model-1"
LONG_TEXT = "The parcel arrived two weeks late and the box was crushed, nobody answered the phone."


@dataclass
class Data:
    """Mentions to store and the classifications to give them, by (source, key)."""

    mentions: list[MentionIn] = field(default_factory=list)
    verdicts: dict[tuple[str, str], tuple[str | None, str, dict[str, Any]]] = field(default_factory=dict)
    n: int = 0

    def add(
        self,
        source: str,
        when: datetime,
        sentiment: str | None = None,
        *,
        status: str = "ok",
        topics: dict[str, str] | None = None,
        classify: bool = True,
        text: str | None = None,
        key: str | None = None,
        **fields: Any,
    ) -> str:
        self.n += 1
        key = key or f"m{self.n}"
        fields.setdefault("brand", "Acme")
        self.mentions.append(
            MentionIn(
                source=source,
                external_key=key,
                text=text or f"mention number {self.n} about the shop",
                published_at=when,
                url=fields.pop("url", f"https://{source}.example/{key}"),
                **fields,
            )
        )
        if classify:
            topic_json = {
                name: {"score": 0.6, "sentiment": s, "sentiment_score": 0.9, "sentences": 1}
                for name, s in (topics or {}).items()
            }
            self.verdicts[(source, key)] = (sentiment if status == "ok" else None, status, topic_json)
        return key

    def store(self, db: Database, config: Config, *, older_version: bool = False) -> None:
        store = MentionStore(db, config)
        store.sync_config()
        result = store.store(self.mentions, create_sources=True)
        assert not result.rejected, result.rejected
        with db.engine.begin() as conn:
            ids = {
                (row.name, row.external_key): row.id
                for row in conn.execute(
                    sa.text(
                        "SELECT m.id, m.external_key, s.name FROM mention m "
                        "JOIN source s ON s.id = m.source_id"
                    )
                )
            }
            rows = []
            for version in (["test-model-0"] if older_version else []) + [VERSION]:
                for (source, key), (sentiment, status, topics) in self.verdicts.items():
                    if version != VERSION:  # an older model that thought everything positive
                        sentiment, topics = ("positive" if status == "ok" else None), {}
                    rows.append(
                        {
                            "mention_id": ids[(source, key)],
                            "model_version": version,
                            "sentiment": sentiment,
                            "score": 0.9 if sentiment else None,
                            "probabilities": {},
                            "topics": topics,
                            "language": "en",
                            "status": status,
                            "created_at": NOW,
                        }
                    )
            conn.execute(sa.insert(Classification.__table__), rows)  # type: ignore[arg-type]


def at(week: Week, day: int, hour: int = 12) -> datetime:
    """A UTC time on ``day`` (0 = Monday) of ``week``, at ``hour`` local time."""
    return week.start + timedelta(days=day, hours=hour)


def history() -> Data:
    """Ten weeks of Acme (W38..W47) plus a little Globex; the figures the tests expect:

    W47 (Acme): 47 mentions, 44 judged: 17 negative, 8 neutral, 19 positive; 2 not judged by
    the model, 1 not classified yet. W46: 41 mentions: 8 negative, 13 neutral, 20 positive.
    """
    d = Data()
    for back in range(9, 1, -1):  # W38..W45: 40 a week, 10 / 10 / 20
        week = W47.shift(-back)
        for i in range(40):
            sentiment = "negative" if i < 10 else "neutral" if i < 20 else "positive"
            d.add("acme-reviews", at(week, i % 7), sentiment)
    w46 = W47.shift(-1)
    for i in range(40):  # 8 / 12 / 20, the negatives about price
        sentiment = "negative" if i < 8 else "neutral" if i < 20 else "positive"
        d.add("acme-reviews", at(w46, i % 7), sentiment, topics={"price": sentiment} if i < 8 else None)
    # A text syndicated to three sites: its first copy (W46, neutral) counts, the W47 copies not.
    d.add("acme-reviews", at(w46, 2), "neutral", text=LONG_TEXT, key="syndicated-1")
    d.add("acme-forum", at(W47, 1), "negative", text=LONG_TEXT, key="syndicated-2")
    d.add("acme-blogs", at(W47, 3), "negative", text=LONG_TEXT.upper(), key="syndicated-3")

    negatives = []
    for i in range(12):  # acme-reviews W47: 12 negative about delivery, 6 neutral, 12 positive
        negatives.append(d.add("acme-reviews", at(W47, i % 7), "negative", topics={"delivery": "negative"}))
    for i in range(6):
        d.add("acme-reviews", at(W47, i), "neutral")
    for i in range(12):
        d.add("acme-reviews", at(W47, i % 7), "positive", topics={"staff": "positive"})
    # Rating and text disagree (both count in the figures above: 13 negative, 13 positive).
    d.add(
        "acme-reviews",
        at(W47, 4),
        "negative",
        rating=5,
        key="five-stars-angry",
        text="Five stars, but the app crashes",
    )
    d.add(
        "acme-reviews", at(W47, 4), "positive", rating=1, key="one-star-happy", text="Love it, lovely people"
    )
    # A short common text on two sites is two people, not syndication: both count.
    d.add("acme-reviews", at(W47, 5), "positive", text="Great!", key="great-1")
    d.add("acme-forum", at(W47, 5), "positive", text="Great!", key="great-2")
    for i in range(4):  # acme-forum W47: 4 negative, 2 neutral, 4 positive (+ the Great! above)
        d.add("acme-forum", at(W47, i), "negative")
    for i in range(2):
        d.add("acme-forum", at(W47, i), "neutral")
    for i in range(4):
        d.add("acme-forum", at(W47, i), "positive")
    d.add("acme-forum", at(W47, 2), status="no_text", text="👍👍")
    d.add("acme-forum", at(W47, 2), status="unsupported_language", text="Sehr gut, aber teuer")
    d.add("acme-forum", at(W47, 3), classify=False, text="not classified yet")
    # Not word of mouth: a blog post from a feed, and the brand's own replies.
    d.add("acme-reviews", at(W47, 2), "negative", kind="post", text="Our autumn sale is terrible news")
    for key, hours in zip(negatives[:4], (2, 4, 6, 30), strict=True):
        published = next(m.published_at for m in d.mentions if m.external_key == key)
        assert published is not None
        d.add(
            "acme-reviews",
            published + timedelta(hours=hours),
            "positive",
            kind="comment",
            is_brand_response=True,
            parent_key=key,
            key=f"reply-{key}",
            text="Sorry to hear that, we are on it",
        )
    for i in range(5):  # Globex: 5 negative mentions in W47, never in Acme's figures
        d.add("globex-reviews", at(W47, i), "negative", brand="Globex")
    return d


def with_settings(config: Config, **settings: Any) -> Config:
    return config.model_copy(update={"report": ReportSettings(**{"weeks": 10, **settings})})


@pytest.fixture
def acme(db: Database, config: Config) -> tuple[Database, Config]:
    history().store(db, config, older_version=True)
    return db, with_settings(config)


def acme_report(db: Database, config: Config, week: Week = W47) -> BrandReport:
    (brand,) = find_brands(db, "acme")
    return build_report(db, config, week, brand, now=NOW)


# ------------------------------------------------------------------------------ figures


def test_weekly_figures_count_word_of_mouth_once_with_the_latest_model(acme: tuple[Database, Config]) -> None:
    report = acme_report(*acme)
    now, before = report.trend[-1].tally, report.trend[-2].tally
    assert (now.mentions, now.judged, now.negative, now.neutral, now.positive) == (47, 44, 17, 8, 19)
    assert (now.unjudged, now.unclassified, now.not_judged) == (2, 1, 3)
    assert (before.mentions, before.negative, before.neutral, before.positive) == (41, 8, 13, 20)
    assert [w.tally.mentions for w in report.trend[:8]] == [40] * 8
    assert [w.week.label for w in report.trend] == [f"2026-W{n}" for n in range(38, 48)]
    assert report.version == VERSION


def test_shares_and_net_sentiment_carry_intervals_from_the_stats_module(
    acme: tuple[Database, Config],
) -> None:
    report = acme_report(*acme)
    now = report.trend[-1]
    assert now.negative_share == stats.wilson_interval(17, 44)
    assert now.negative_share is not None
    assert now.negative_share.estimate == pytest.approx(17 / 44)
    assert now.net == stats.net_sentiment_interval(19, 17, 44)
    assert now.net is not None
    assert now.net.estimate == pytest.approx((19 - 17) / 44)
    assert report.overall.volume_change == stats.poisson_ratio_interval(47, 41)
    assert report.overall.negative_change == stats.newcombe_difference(17, 44, 8, 41)
    assert report.overall.net_change == stats.net_sentiment_change(19, 17, 44, 20, 8, 41)
    assert now.enough
    assert report.trend[-2].enough


def test_sources_topics_and_drivers(acme: tuple[Database, Config]) -> None:
    report = acme_report(*acme)
    sources = {row.name: row.now.tally for row in report.sources}
    # acme-blogs only carries a syndicated copy: it is counted once, at acme-reviews (W46).
    assert set(sources) == {"acme-reviews", "acme-forum"}
    assert (sources["acme-reviews"].negative, sources["acme-reviews"].positive) == (13, 14)
    assert (
        sources["acme-forum"].negative,
        sources["acme-forum"].positive,
        sources["acme-forum"].mentions,
    ) == (
        4,
        5,
        14,
    )
    topics = {row.name: (row.now.tally, row.before.tally) for row in report.topics}
    assert topics["delivery"][0].negative == 12
    assert topics["delivery"][1].mentions == 0
    assert topics["price"][1].negative == 8
    assert topics["price"][0].mentions == 0
    assert topics["staff"][0].positive == 12
    drivers = {d.topic: d for d in report.drivers}
    assert [d.topic for d in report.drivers[:2]] == ["delivery", "price"]
    assert drivers["delivery"].negative_change == 12
    assert drivers["price"].negative_change == -8
    assert drivers["delivery"].share_of_change == pytest.approx(12 / 9)
    assert drivers["delivery"].net_points == pytest.approx(-12 / 44 * 100)
    assert drivers["staff"].negative_change == 0
    assert drivers["staff"].net_points == pytest.approx(12 / 44 * 100)


def test_responses_duplicates_disagreements_and_examples(acme: tuple[Database, Config]) -> None:
    report = acme_report(*acme)
    before, now = report.responses
    assert (now.negative, now.replied) == (17, 4)
    assert now.median_hours == pytest.approx(5.0)
    assert now.share == stats.wilson_interval(4, 17)
    assert (before.negative, before.replied, before.median_hours) == (8, 0, None)
    assert report.duplicates_left_out == 2
    (dup,) = report.duplicates
    assert dup.copies == 3
    assert dup.sources == ["acme-blogs", "acme-forum", "acme-reviews"]
    assert dup.kept.source == "acme-reviews"
    assert dup.kept.excerpt == LONG_TEXT
    assert report.disagreements == (1, 1)
    assert [m.excerpt for m in report.high_rating_negative] == ["Five stars, but the app crashes"]
    assert [m.excerpt for m in report.low_rating_positive] == ["Love it, lovely people"]
    assert len(report.most_negative) == 5
    assert all(m.sentiment == "negative" for m in report.most_negative)
    assert all(m.source.startswith("acme") for m in report.most_negative + report.most_positive)
    assert "Our autumn sale" not in {m.excerpt for m in report.most_negative}
    assert any("delivery" in m.topics for m in report.most_negative)


def test_many_syndicated_texts_are_left_out_by_a_subquery_with_the_same_result(
    acme: tuple[Database, Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = acme_report(*acme)
    monkeypatch.setattr(trends, "MAX_LISTED_SYNDICATED", 0)
    queried = acme_report(*acme)
    assert [w.tally for w in queried.trend] == [w.tally for w in listed.trend]
    assert [(t.name, t.now.tally) for t in queried.topics] == [(t.name, t.now.tally) for t in listed.topics]
    assert queried.duplicates_left_out == listed.duplicates_left_out == 2
    assert queried.duplicates == listed.duplicates
    assert queried.responses == listed.responses


def test_out_dir_is_relative_to_the_config_file(config: Config) -> None:
    assert config.path is not None
    assert default_out_dir(config) == config.path.parent / "reports"
    settings = ReportSettings(out_dir=Path("weekly/out"))
    assert (
        default_out_dir(config.model_copy(update={"report": settings})) == config.path.parent / "weekly/out"
    )


def test_a_thin_week_says_it_is_too_thin_to_conclude(acme: tuple[Database, Config]) -> None:
    db, config = acme
    (globex,) = find_brands(db, "GLOBEX")
    report = build_report(db, config, W47, globex, now=NOW)
    assert report.trend[-1].tally.negative == 5
    assert not report.trend[-1].enough
    assert any("fewer than 30" in line and "too uncertain" in line for line in report.summary)
    assert not any("beyond" in line for line in report.summary)


def test_summary_says_when_a_change_is_within_noise(acme: tuple[Database, Config]) -> None:
    report = acme_report(*acme)
    text = " ".join(report.summary)
    assert "47 mentions this week (44 judged, 3 not judged), against 41" in text
    assert "Volume +15% (−26% to +79%): within week-to-week noise." in text
    assert "The brand replied to 4 of 17 negative mentions (24%), after a median of 5.0 h." in text
    assert "2 copies of texts syndicated to several sites left out (each text is counted once)." in text
    assert "delivery (+12)" in text


def test_an_empty_database_gives_a_report_that_says_so(db: Database, config: Config, tmp_path: Path) -> None:
    config = config.model_copy(update={"brands": []})
    written = write_reports(db, config, week=W47, out_dir=tmp_path / "out", now=NOW)
    (only,) = written
    assert only.brand == "All brands"
    assert only.html.name == "earful-report-all-2026-W47.html"
    page = only.html.read_text(encoding="utf-8")
    assert "No word-of-mouth mentions of All brands" in page
    assert len(only.csv) == 7
    assert all(p.exists() for p in only.csv)


# ------------------------------------------------------------------------------ weeks


def test_weeks_follow_the_local_time_zone_across_daylight_saving_changes() -> None:
    autumn = Week(2026, 44, "America/New_York")  # DST ends Sun 1 Nov 2026
    assert autumn.start == datetime(2026, 10, 26, 4, tzinfo=UTC)
    assert autumn.end == datetime(2026, 11, 2, 5, tzinfo=UTC)
    assert autumn.end - autumn.start == timedelta(hours=169)
    spring = Week(2026, 10, "America/New_York")  # DST starts Sun 8 Mar 2026
    assert spring.end - spring.start == timedelta(hours=167)
    assert autumn.shift(1).start == autumn.end
    assert autumn.shift(-52).label == "2025-W44"
    assert Week(2026, 53, "UTC").shift(1).label == "2027-W01"
    assert parse_week("2026-W47", "Europe/Berlin") == W47
    assert (
        last_complete_week("America/New_York", datetime(2026, 11, 2, 4, 59, tzinfo=UTC)).label == "2026-W43"
    )
    assert last_complete_week("America/New_York", datetime(2026, 11, 2, 5, 0, tzinfo=UTC)).label == "2026-W44"


@pytest.mark.parametrize("text", ["2026-47", "2026-W7", "W47", "2026-W54", "2025-W53", "2026-W00", ""])
def test_a_bad_week_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(BadWeek, match=r"ISO week|has no week"):
        parse_week(text)


def test_mentions_fall_in_the_local_week_they_were_written(db: Database, config: Config) -> None:
    config = with_settings(config.model_copy(update={"timezone": "America/New_York"}), weeks=3)
    d = Data()
    d.add("acme-reviews", datetime(2026, 10, 26, 3, 59, tzinfo=UTC), "negative")  # Sun 25 Oct 23:59 EDT: W43
    d.add("acme-reviews", datetime(2026, 10, 26, 4, 0, tzinfo=UTC), "negative")  # Mon 26 Oct 00:00 EDT: W44
    d.add("acme-reviews", datetime(2026, 11, 2, 4, 59, tzinfo=UTC), "positive")  # Sun 1 Nov 23:59 EST: W44
    d.add("acme-reviews", datetime(2026, 11, 2, 5, 0, tzinfo=UTC), "positive")  # Mon 2 Nov 00:00 EST: W45
    d.store(db, config)
    (brand,) = find_brands(db, "Acme")
    report = build_report(db, config, Week(2026, 45, "America/New_York"), brand, now=NOW)
    assert [(w.week.label, w.tally.negative, w.tally.positive) for w in report.trend] == [
        ("2026-W43", 1, 0),
        ("2026-W44", 1, 1),
        ("2026-W45", 0, 1),
    ]


# ------------------------------------------------------------------------------ output


def test_report_files_and_one_report_row_per_brand_and_week(
    acme: tuple[Database, Config], tmp_path: Path
) -> None:
    db, config = acme
    for _ in range(2):
        written = write_reports(db, config, week=W47, out_dir=tmp_path, now=NOW)
    assert [w.html.name for w in written] == [
        "earful-report-acme-2026-W47.html",
        "earful-report-globex-2026-W47.html",
    ]
    names = sorted(p.name for p in tmp_path.iterdir())
    for table in ("volume", "sources", "topics", "drivers", "mentions", "responses", "duplicates"):
        assert f"earful-report-acme-2026-W47-{table}.csv" in names
    assert not [n for n in names if n.endswith(".partial")]
    with db.sessions() as session:
        rows = session.scalars(sa.select(Report).order_by(Report.id)).all()
        assert [(r.week, len(r.files)) for r in rows] == [("2026-W47", 8), ("2026-W47", 8)]
        assert rows[0].period_start == W47.start
        assert rows[0].period_end == W47.end
        assert rows[0].files[0] == str(written[0].html.resolve())
    volume = list(csv.DictReader(written[0].csv[0].open(encoding="utf-8")))
    assert (volume[-1]["week"], volume[-1]["negative"], volume[-1]["judged"]) == ("2026-W47", "17", "44")
    assert float(volume[-1]["negative_share"]) == pytest.approx(17 / 44)


def test_the_same_data_gives_the_same_page(acme: tuple[Database, Config]) -> None:
    db, config = acme
    first = render_html(acme_report(db, config), config.timezone)
    assert first == render_html(acme_report(db, config), config.timezone)
    assert "<svg" in first
    assert "47" in first


def test_unknown_brand_lists_the_known_ones(acme: tuple[Database, Config]) -> None:
    from earful.pipeline.report import ReportError

    with pytest.raises(ReportError, match=r"no brand named 'Initech' \(known: Acme, Globex\)"):
        find_brands(acme[0], "Initech")


# ------------------------------------------------------------------------------ safety

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</style><style>body{display:none}</style>",
    '"><svg onload=alert(1)>',
    "{{ 7*7 }} {% raw %}",
]
LONG_WORD = "A" * 5000


def hostile_data() -> Data:
    d = Data()
    for i, text in enumerate(HOSTILE):
        d.add(
            "acme-reviews",
            at(W47, i),
            "negative",
            text=f"{text} review {i}",
            title=text,
            url="javascript:alert(1)",
            topics={text: "negative"},
        )
    d.add("acme-reviews", at(W47, 5), "negative", text=LONG_WORD, url=" JaVa\tScRiPt:alert(2)")
    d.add(
        "acme-reviews",
        at(W47, 5),
        "positive",
        text="data link",
        url="data:text/html,<script>alert(3)</script>",
    )
    d.add("<img src=x onerror=alert(4)>", at(W47, 6), "positive", text="from a hostile source name", url=None)
    d.add("acme-reviews", at(W47, 6), "positive", text="a fine link", url="https://shop.example/r?a=1&b=<2>")
    return d


def test_hostile_text_is_only_ever_text(db: Database, config: Config, tmp_path: Path) -> None:
    hostile_data().store(db, config)
    (written, *_) = write_reports(db, with_settings(config, examples=10), week=W47, out_dir=tmp_path, now=NOW)
    page = written.html.read_text(encoding="utf-8")
    tree = lxml_html.fromstring(page)
    assert tree.xpath("//script") == []
    assert tree.xpath("//img") == []
    assert tree.xpath("//iframe | //object | //embed | //form") == []
    assert len(tree.xpath("//style")) == 1
    assert "display:none" not in tree.xpath("//style")[0].text
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            if name.lower() in ("href", "src", "xlink:href", "action", "formaction"):
                assert value.startswith(("https://", "http://", "#")), (element.tag, name, value)
    links = [a.get("href") for a in tree.xpath("//a[@href]")]
    assert links
    assert set(links) == {"https://shop.example/r?a=1&b=<2>"}
    text = tree.text_content()
    for raw in [*HOSTILE, "javascript:alert(1)", "<img src=x onerror=alert(4)>", LONG_WORD[:200]]:
        assert raw in text, raw
    assert "overflow-wrap: anywhere" in tree.xpath("//style")[0].text
    assert "default-src 'none'" in page


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://a.example/x", True),
        ("HTTP://A.EXAMPLE", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//a.example/x", False),
        ("https:///nohost", False),
        ("vbscript:x", False),
        (None, False),
    ],
)
def test_only_http_links_become_links(url: str | None, safe: bool) -> None:
    assert (safe_link(url) is not None) is safe


def test_csv_cells_that_look_like_formulas_are_neutralised(
    db: Database, config: Config, tmp_path: Path
) -> None:
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]
    d = Data()
    for i, text in enumerate(formulas):
        d.add("acme-reviews", at(W47, i), "negative", text=text, title=text)
    d.add("=cmd|' /C calc'!A0", at(W47, 5), "negative", text="from a source with a formula name")
    d.store(db, config)
    (written, *_) = write_reports(db, with_settings(config), week=W47, out_dir=tmp_path, now=NOW)
    by_name = {p.name.rsplit("-", 1)[-1]: p for p in written.csv}
    rows = list(csv.DictReader(by_name["mentions.csv"].open(encoding="utf-8", newline="")))
    assert sorted(r["excerpt"] for r in rows if r["excerpt"] in {"'" + f for f in formulas}) == sorted(
        "'" + f for f in formulas
    )
    assert all(r["title"] == "'" + r["excerpt"][1:] for r in rows if r["excerpt"].startswith("'"))
    sources = [r["source"] for r in csv.DictReader(by_name["sources.csv"].open(encoding="utf-8", newline=""))]
    assert "'=cmd|' /C calc'!A0" in sources
    assert csv_cell(-2.5) == -2.5
    assert csv_cell("\tx") == "'\tx"
    assert csv_cell("\rx") == "'\rx"
    assert csv_cell("plain") == "plain"


# ------------------------------------------------------------------------------ command


def test_report_command_writes_the_files_and_prints_their_paths(
    acme: tuple[Database, Config], tmp_path: Path, isolated_cli: None
) -> None:
    _, config = acme
    assert config.path is not None
    out = tmp_path / "weekly"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config.path), "report", "--week", "2026-W47", "--brand", "acme", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert str(out / "earful-report-acme-2026-W47.html") in result.output
    assert (out / "earful-report-acme-2026-W47-topics.csv").exists()
    assert "globex" not in result.output.lower()


def test_report_command_defaults_to_reports_beside_the_config(
    db: Database, config: Config, isolated_cli: None
) -> None:
    assert config.path is not None
    result = CliRunner().invoke(cli, ["--config", str(config.path), "report"])
    assert result.exit_code == 0, result.output
    week = last_complete_week(config.timezone).label
    assert (config.path.parent / "reports" / f"earful-report-acme-{week}.html").exists()
    assert (
        "No word-of-mouth mentions"
        in (config.path.parent / "reports" / f"earful-report-acme-{week}.html").read_text()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--week", "2026-47"],
            "Invalid value for '--week': '2026-47' is not an ISO week; write it as YYYY-Www",
        ),
        (["--brand", "Initech"], "Error: no brand named 'Initech' (known: Acme, Globex)"),
    ],
)
def test_report_command_errors_are_one_line(
    db: Database, config: Config, isolated_cli: None, args: list[str], message: str
) -> None:
    assert config.path is not None
    result = CliRunner().invoke(cli, ["--config", str(config.path), "report", *args])
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output
