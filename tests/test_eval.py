"""Evaluation: the scores against scikit-learn, the VADER baseline, label parsing, and
``earful eval`` end to end with the real model weights (no mocks)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from earful.models import evaluate as ev
from earful.models.data import LABELS
from earful.models.sentiment import DEFAULT_DIR
from earful.pipeline.cli import cli

# The shipped weights may be a quick smoke run (a placeholder until the real training run
# lands): figures are then only checked to be figures, not to be good.
PLACEHOLDER = bool(json.loads((DEFAULT_DIR / "config.json").read_text())["training"].get("quick"))

REVIEWS = [
    ("I love this dress, it fits perfectly and the colour is beautiful.", "positive"),
    ("Wonderful hotel, friendly staff and a spotless room.", "positive"),
    ("Excellent quality, I am very happy with it.", "positive"),
    ("The best coffee I have ever had, amazing!", "positive"),
    ("Great service, the staff were kind and helpful.", "positive"),
    ("Absolutely fantastic stay, we will definitely come back.", "positive"),
    ("Beautiful fabric and a lovely fit, highly recommended.", "positive"),
    ("The delivery was fast and the product works great.", "positive"),
    ("Superb food and a delightful atmosphere.", "positive"),
    ("I am thrilled with this purchase, it is perfect.", "positive"),
    ("Very comfortable shoes, I love them.", "positive"),
    ("Brilliant support team, they solved my problem quickly.", "positive"),
    ("Terrible quality, it fell apart after one wash.", "negative"),
    ("The room was dirty and the staff were rude.", "negative"),
    ("Awful experience, I want my money back.", "negative"),
    ("The worst hotel I have ever stayed in, disgusting.", "negative"),
    ("Horrible service, we waited an hour and the food was cold.", "negative"),
    ("Cheap material, the seams ripped on the first day. Very disappointed.", "negative"),
    ("It broke after two days, a complete waste of money.", "negative"),
    ("Rude staff and a filthy bathroom, never again.", "negative"),
    ("The product is useless and customer support ignored me.", "negative"),
    ("Dreadful fit, ugly colour and terrible stitching.", "negative"),
    ("The noise was unbearable and the bed was awful.", "negative"),
    ("Very poor quality, I hate it and I am returning it.", "negative"),
    ("The package arrived on Tuesday.", "neutral"),
    ("The hotel is located near the train station.", "neutral"),
    ("I ordered the blue one in size medium.", "neutral"),
    ("The room has two beds and a desk.", "neutral"),
    ("The dress is made of cotton.", "neutral"),
    ("We checked in at three in the afternoon.", "neutral"),
]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------ scores


def probs(neg: float, neu: float, pos: float) -> dict[str, float]:
    return {"negative": neg, "neutral": neu, "positive": pos}


def test_three_class_scores_match_sklearn() -> None:
    gold = ["negative", "negative", "neutral", "neutral", "positive", "positive", "positive", "negative"]
    preds = [
        probs(0.7, 0.2, 0.1),  # negative
        probs(0.2, 0.5, 0.3),  # neutral
        probs(0.1, 0.8, 0.1),  # neutral
        probs(0.1, 0.3, 0.6),  # positive
        probs(0.0, 0.1, 0.9),  # positive
        probs(0.4, 0.5, 0.1),  # neutral
        probs(0.1, 0.1, 0.8),  # positive
        probs(0.2, 0.1, 0.7),  # positive
    ]
    labels = [max(p, key=lambda k: p[k]) for p in preds]
    s = ev.score(gold, preds)
    assert s.n == 8
    assert s.accuracy == pytest.approx(accuracy_score(gold, labels))
    assert s.macro_f1 == pytest.approx(f1_score(gold, labels, average="macro"))
    assert s.labels == LABELS
    assert s.confusion == confusion_matrix(gold, labels, labels=list(LABELS)).tolist()
    # bare labels score the same as their probabilities
    assert ev.score(gold, labels).macro_f1 == pytest.approx(s.macro_f1)
    d = s.as_dict("vader_")
    assert d["vader_accuracy"] == round(s.accuracy, 4)
    assert d["vader_n"] == 8


def test_binary_accuracy_compares_negative_with_positive_only() -> None:
    gold = ["negative", "positive", "positive", "neutral", "negative"]
    preds: list[ev.Prediction] = [
        probs(0.40, 0.45, 0.15),  # neutral on top, but negative > positive: right
        probs(0.10, 0.60, 0.30),  # neutral on top, positive > negative: right
        probs(0.50, 0.20, 0.30),  # wrong
        probs(0.90, 0.05, 0.05),  # gold neutral: not counted
        "neutral",  # a bare neutral chooses neither: wrong
    ]
    s = ev.score(gold, preds)
    assert s.n_binary == 4
    assert s.n_undecided == 1
    assert s.binary_accuracy == pytest.approx(2 / 4)
    assert s.accuracy == pytest.approx(0 / 5)
    assert ev.score(["neutral", "neutral"], ["neutral", "positive"]).binary_accuracy is None


def test_binary_data_is_scored_on_the_negative_positive_choice() -> None:
    gold = ["negative", "negative", "positive", "positive", "positive", "negative"]
    preds = [
        probs(0.45, 0.50, 0.05),  # -> negative (neutral ignored)
        probs(0.20, 0.30, 0.50),  # -> positive
        probs(0.10, 0.60, 0.30),  # -> positive
        probs(0.05, 0.05, 0.90),  # -> positive
        probs(0.60, 0.30, 0.10),  # -> negative
        probs(0.50, 0.10, 0.40),  # -> negative
    ]
    choice = ["negative", "positive", "positive", "positive", "negative", "negative"]
    s = ev.score(gold, preds, binary=True)
    assert s.binary
    assert s.accuracy == pytest.approx(accuracy_score(gold, choice))
    assert s.macro_f1 == pytest.approx(f1_score(gold, choice, average="macro"))
    assert s.binary_accuracy == s.accuracy
    assert s.labels == ("negative", "positive")
    assert s.confusion == confusion_matrix(gold, choice, labels=["negative", "positive"]).tolist()
    # the 3-class reading of the same rows is stricter
    assert ev.score(gold, preds).accuracy < s.accuracy


def test_score_refuses_what_it_cannot_score() -> None:
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        ev.score(["negative", "positive"], ["negative"])
    with pytest.raises(ValueError, match="unknown gold label 'meh'"):
        ev.score(["meh"], ["negative"])
    with pytest.raises(ValueError, match="neutral"):
        ev.score(["neutral"], ["neutral"], binary=True)


# ------------------------------------------------------------------------------- VADER


def test_vader_baseline_on_obvious_sentences() -> None:
    vader = ev.Vader()
    assert vader.version.startswith("vader-")
    assert vader.label("I love it, it is wonderful and amazing!") == "positive"
    assert vader.label("Terrible, awful and broken. I hate it.") == "negative"
    assert vader.label("The box is blue.") == "neutral"
    gold = ["positive", "negative", "neutral"]
    texts = ["Great, I love it!", "This is horrible.", "It has four legs."]
    s = ev.score(gold, vader.predict(texts))
    assert s.accuracy == 1.0
    assert s.binary_accuracy == 1.0


def test_vader_pseudo_probabilities_follow_the_readme_thresholds() -> None:
    def decide(compound: float, pos: float = 0.0, neg: float = 0.0) -> tuple[str, str]:
        p = ev.vader_probabilities({"compound": compound, "pos": pos, "neg": neg, "neu": 1 - pos - neg})
        label = max(LABELS, key=lambda k: p[k])
        side = (
            "positive"
            if p["positive"] > p["negative"]
            else "negative"
            if p["negative"] > p["positive"]
            else "-"
        )
        return label, side

    assert decide(0.05) == ("positive", "positive")
    assert decide(0.049) == ("neutral", "positive")
    assert decide(-0.05) == ("negative", "negative")
    assert decide(-0.01) == ("neutral", "negative")
    assert decide(0.0, pos=0.2, neg=0.1) == ("neutral", "positive")
    assert decide(0.0, pos=0.1, neg=0.2) == ("neutral", "negative")
    assert decide(0.0) == ("neutral", "-")


# ------------------------------------------------------------------------------ labels


def test_parse_labels() -> None:
    assert ev.parse_labels(["Negative", " NEUTRAL ", "positive"]) == (
        ["negative", "neutral", "positive"],
        False,
    )
    assert ev.parse_labels(["0", "1", "1"]) == (["negative", "positive", "positive"], True)
    assert ev.parse_labels(["0", "1", "2"]) == (["negative", "neutral", "positive"], False)
    assert ev.parse_labels(["negative", "positive"]) == (["negative", "positive"], True)
    with pytest.raises(ev.EvalDataError, match=r"line 7: unknown label 'good'") as info:
        ev.parse_labels(["positive", "good"], lines=[2, 7])
    assert info.value.line == 7
    with pytest.raises(ev.EvalDataError, match=r"row 3: label '1' mixes numbers and names"):
        ev.parse_labels(["positive", "negative", "1"])


def test_read_csv_keeps_line_numbers_across_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('id,Text,Label\n1,"two\nlines",positive\n\n2,after,0\n', encoding="utf-8")
    got = ev.read_csv(path)
    assert got.texts == ["two\nlines", "after"]
    assert got.labels == ["positive", "0"]
    assert got.lines == [2, 5]
    (tmp_path / "bad.csv").write_text("review,stars\nok,5\n", encoding="utf-8")
    with pytest.raises(ev.EvalDataError, match="text,label"):
        ev.read_csv(tmp_path / "bad.csv")


# --------------------------------------------------------------------------------- CLI


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_eval_data_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no earful.yaml here: the defaults
    monkeypatch.delenv("EARFUL_CONFIG", raising=False)
    data = write_csv(tmp_path / "small.csv", REVIEWS)
    code, out, err = run("eval", "--data", data, "--json", "--threads", "2")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    figures = json.loads(last)
    for key in ("accuracy", "macro_f1", "binary_accuracy", "n"):
        assert key in figures
        assert f"vader_{key}" in figures
    assert figures["n"] == figures["vader_n"] == len(REVIEWS)
    assert figures["binary"] is False
    assert figures["vader_accuracy"] >= 0.7
    assert 0.0 <= figures["accuracy"] <= 1.0
    if not PLACEHOLDER:
        assert figures["accuracy"] >= 0.7
        assert figures["binary_accuracy"] >= 0.8
    assert not (tmp_path / "earful.sqlite3").exists()  # no database needed


def test_eval_bad_label_is_one_error_line_naming_the_line(tmp_path: Path) -> None:
    rows = [*REVIEWS[:3], ("Meh.", "so-so"), *REVIEWS[3:5]]
    data = write_csv(tmp_path / "bad.csv", rows)
    code, _out, err = run("eval", "--data", data)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert "line 5" in errors[0]
    assert "'so-so'" in errors[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("no-header", "text,label"),
        ("data-dir", "data directory not found"),
    ],
)
def test_eval_errors(tmp_path: Path, setup: str, message: str) -> None:
    if setup == "missing":
        args: list[str | Path] = ["eval", "--data", tmp_path / "nope.csv"]
    elif setup == "no-header":
        args = ["eval", "--data", write_csv(tmp_path / "h.csv", REVIEWS[:2], header=("review", "stars"))]
    else:
        args = ["eval", "--data-dir", tmp_path / "no-data", "--json"]
    code, _, err = run(*args)
    assert code == 1
    assert err.startswith("Error:"), err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------------------ topics


MAMS_YAML = """
threshold: 0.5
topics:
  - name: food
    examples: [the food was delicious, the pasta was bland, tasty dishes, my burger was cold]
  - name: staff
    examples: [the waiter was rude, friendly staff, the waitress was lovely, our server was attentive]
  - name: price
    examples: [it was expensive, reasonable prices, overpriced, good value for money]
"""

AIRLINE_YAML = """
threshold: 0.4
topics:
  - name: Lost Luggage
    examples: [you lost my luggage, my bag never arrived, where is my suitcase]
  - name: Late Flight
    examples: [my flight is delayed, the flight was late, delayed for hours]
"""


def test_topic_report_on_a_small_data_dir(tmp_path: Path) -> None:
    from earful.models import sentiment

    root = tmp_path / "data"
    mams = root / "mams-absa" / "MAMS-ACSA"
    mams.mkdir(parents=True)
    docs = [
        ("The pasta was delicious but the waiter was rude.", {"food": "positive", "staff": "negative"}),
        ("Prices are far too high for such small plates.", {"price": "negative"}),
        ("Our server was friendly and the burger was tasty.", {"staff": "positive", "food": "positive"}),
    ]
    mams.joinpath("test.jsonl").write_text(
        "\n".join(
            json.dumps(
                {"text": t, "aspect_categories": [{"category": c, "polarity": p} for c, p in a.items()]}
            )
            for t, a in docs
        ),
        encoding="utf-8",
    )
    airline = root / "twitter-us-airline-sentiment"
    airline.mkdir()
    with (airline / "Tweets.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "airline_sentiment", "negativereason"])
        for i in range(20):
            writer.writerow(
                [f"@air you lost my luggage again, bag {i} never arrived", "negative", "Lost Luggage"]
            )
            writer.writerow([f"@air flight {i} delayed for hours, so late", "negative", "Late Flight"])
    (tmp_path / "mams.yaml").write_text(MAMS_YAML, encoding="utf-8")
    (tmp_path / "airline.yaml").write_text(AIRLINE_YAML, encoding="utf-8")
    said: list[str] = []
    report = ev.topic_report(
        sentiment.load(),
        root,
        said.append,
        taxonomies={"mams": tmp_path / "mams.yaml", "airline": tmp_path / "airline.yaml"},
    )
    json.dumps(report)
    assert report["n"] == 3
    assert 0.5 <= report["micro_f1"] <= 1.0
    assert report["micro_precision"] == report["datasets"]["mams"]["micro_precision"]
    assert set(report["datasets"]["mams"]["per_category"]) == {"food", "staff", "price"}
    assert report["sentiment_accuracy"] is not None
    assert report["airline_n"] == 4  # 10% of the 40 negative tweets
    assert report["airline_accuracy_at_1"] >= 0.75
    assert any(m.startswith("mams:") for m in said)


def test_eval_can_measure_the_int8_runtime_that_classify_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EARFUL_CONFIG", raising=False)
    data = write_csv(tmp_path / "small.csv", REVIEWS)
    code, out, err = run("eval", "--data", data, "--json", "--threads", "2", "--runtime", "onnx-int8")
    assert code == 0, err
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["model_version"].endswith("-int8")
    assert figures["n"] == len(REVIEWS)
