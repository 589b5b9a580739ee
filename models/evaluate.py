"""How good the models are, on labelled data they were never trained on, next to a baseline.

Pure: no database, no configuration. ``earful eval`` and the training script
(:mod:`earful.models.train`, which stores :func:`sentiment_report`'s dict in the model card)
call these functions.

Sentiment figures (:func:`score`):

* **accuracy** and **macro-F1** of the most probable label (negative / neutral / positive);
* **binary accuracy**: on the rows whose gold label is not neutral, how often the model's
  choice between negative and positive is right, judged by ``p(negative)`` against
  ``p(positive)`` only (neutral is ignored). It is what a 2-class data set can ask of a
  3-class model, and what matters most for "are people angry?".

On 2-class data (labels negative/positive only, e.g. a 0/1 CSV) accuracy and macro-F1 are
computed on that same negative-vs-positive choice, so the model is not penalised for a third
class it cannot be asked about; binary accuracy then equals accuracy.

The baseline is VADER (Hutto & Gilbert, 2014), a rule-based lexicon scorer that ships its
lexicon inside the package: the number a new model has to beat.

Topic figures (:func:`topic_report`) are measured on MAMS aspect categories (restaurant
sentences, several categories each, each with its own polarity) and on the complaint reasons
of negative airline tweets.

Example::

    from earful.models import evaluate, sentiment
    report = evaluate.sentiment_report(sentiment.load())
    report["datasets"]["reviews"]["model"]["macro_f1"]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from earful.models import data as ds
from earful.models.data import LABELS

if TYPE_CHECKING:
    from earful.models.sentiment import SentimentModel
    from earful.models.topics import TopicModel

TAXONOMIES = Path(__file__).resolve().parent / "taxonomies"
# The set whose figures lead every report: held-back review text, like what Earful reads.
HEADLINE = "reviews"
_NEG, _NEU, _POS = 0, 1, 2


class _HasProbabilities(Protocol):
    @property
    def probabilities(self) -> Mapping[str, float]: ...


# A prediction: a probability per label, a bare label, or a model's Sentiment.
Prediction = Mapping[str, float] | str | _HasProbabilities


class Predictor(Protocol):
    """What :func:`evaluate_texts` needs of a model: ``predict`` giving probabilities."""

    @property
    def version(self) -> str: ...

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> Sequence[_HasProbabilities]: ...


class EvalDataError(ValueError):
    """Labelled data that cannot be evaluated; ``line`` is the offending line, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# ------------------------------------------------------------------------------ scores


@dataclass(frozen=True)
class Scores:
    """Figures of one model on one labelled set. ``confusion[i][j]``: gold ``labels[i]``
    predicted as ``labels[j]``."""

    accuracy: float
    macro_f1: float
    binary_accuracy: float | None  # None when every gold label is neutral
    n: int
    labels: tuple[str, ...]
    confusion: list[list[int]]
    binary: bool = False  # 2-class data: accuracy and macro-F1 are of the negative/positive choice
    n_binary: int = 0  # rows that binary_accuracy counts (gold not neutral)
    n_undecided: int = 0  # of those, rows where p(negative) == p(positive): no choice, counted wrong
    per_label_f1: Mapping[str, float] | None = None

    def as_dict(self, prefix: str = "") -> dict[str, Any]:
        """JSON-ready, figures rounded to 4 places; ``prefix`` goes before every key."""
        values: dict[str, Any] = {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "binary_accuracy": None if self.binary_accuracy is None else round(self.binary_accuracy, 4),
            "n": self.n,
            "n_binary": self.n_binary,
            "n_undecided": self.n_undecided,
            "binary": self.binary,
            "labels": list(self.labels),
            "confusion": [list(row) for row in self.confusion],
            "per_label_f1": {k: round(v, 4) for k, v in (self.per_label_f1 or {}).items()},
        }
        return {f"{prefix}{k}": v for k, v in values.items()}


def _probabilities(pred: Prediction) -> tuple[float, float, float]:
    if isinstance(pred, str):
        label = pred.strip().lower()
        if label not in LABELS:
            raise ValueError(f"unknown predicted label {pred!r}; expected one of {', '.join(LABELS)}")
        return tuple(1.0 if label == name else 0.0 for name in LABELS)  # type: ignore[return-value]
    probs = pred if isinstance(pred, Mapping) else pred.probabilities
    neg, neu, pos = (float(probs.get(name, 0.0)) for name in LABELS)
    return neg, neu, pos


def _f1_from_confusion(conf: np.ndarray, index: int) -> float:
    tp = float(conf[index, index])
    fp = float(conf[:, index].sum()) - tp
    fn = float(conf[index, :].sum()) - tp
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def score(gold: Sequence[str], predictions: Sequence[Prediction], binary: bool = False) -> Scores:
    """Score ``predictions`` (probabilities per label, bare labels, or Sentiments) against the
    ``gold`` labels (negative / neutral / positive).

    3-class (``binary=False``): accuracy and macro-F1 of the most probable label (a tie goes to
    the first label in negative, neutral, positive order); macro-F1 averages the F1 of the labels
    that occur in the gold or the predicted labels (as scikit-learn does).

    ``binary_accuracy``, on either kind: over the rows whose gold label is not neutral, the
    share where the larger of ``p(negative)`` and ``p(positive)`` is the gold label. A tie (a
    bare ``neutral`` prediction) chooses neither and counts as wrong.

    2-class (``binary=True``, gold only negative/positive): accuracy and macro-F1 are of that
    negative-vs-positive choice, F1 averaged over the labels that occur; binary accuracy equals
    accuracy. The confusion matrix is 2x2 unless some prediction chose neither (then 3x3, the
    middle column counting those rows).
    """
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} gold labels but {len(predictions)} predictions")
    gold_idx = np.empty(len(gold), dtype=np.int64)
    for i, label in enumerate(gold):
        if label not in LABELS:
            raise ValueError(
                f"row {i + 1}: unknown gold label {label!r}; expected one of {', '.join(LABELS)}"
            )
        gold_idx[i] = LABELS.index(label)
    probs = np.array([_probabilities(p) for p in predictions], dtype=np.float64).reshape(len(gold), 3)
    neg, pos = probs[:, _NEG], probs[:, _POS]
    choice = np.where(pos > neg, _POS, np.where(neg > pos, _NEG, _NEU))
    polar = gold_idx != _NEU
    n_binary = int(polar.sum())
    binary_accuracy = float((choice[polar] == gold_idx[polar]).mean()) if n_binary else None
    if binary:
        if not polar.all():
            raise ValueError("binary=True but some gold labels are neutral")
        pred = choice
        undecided = bool((choice == _NEU).any())
        indices = [_NEG, _NEU, _POS] if undecided else [_NEG, _POS]
        scored = {_NEG, _POS}
    else:
        pred = probs.argmax(axis=1) if len(gold) else np.empty(0, dtype=np.int64)
        indices = [_NEG, _NEU, _POS]
        scored = set(indices)
    conf = np.zeros((3, 3), dtype=np.int64)
    np.add.at(conf, (gold_idx, pred), 1)
    present = sorted((set(gold_idx.tolist()) | set(pred.tolist())) & scored)
    per_label = {LABELS[k]: _f1_from_confusion(conf, k) for k in present}
    n = len(gold)
    return Scores(
        accuracy=float((pred == gold_idx).mean()) if n else 0.0,
        macro_f1=sum(per_label.values()) / len(per_label) if per_label else 0.0,
        binary_accuracy=binary_accuracy,
        n=n,
        labels=tuple(LABELS[k] for k in indices),
        confusion=[[int(conf[g, p]) for p in indices] for g in indices],
        binary=binary,
        n_binary=n_binary,
        n_undecided=int((choice[polar] == _NEU).sum()),
        per_label_f1=per_label,
    )


# ------------------------------------------------------------------------------- VADER


def vader_probabilities(polarity: Mapping[str, float]) -> dict[str, float]:
    """Pseudo-probabilities that encode VADER's two decisions, so :func:`score` treats it like
    any model (they are not calibrated; only their order matters).

    * its label, the most probable one, by the thresholds on the compound score that the VADER
      README gives (https://github.com/cjhutto/vaderSentiment#about-the-scoring): positive if
      compound >= 0.05, negative if compound <= -0.05, neutral in between;
    * its negative-vs-positive choice, ``p(negative)`` against ``p(positive)``: the sign of the
      compound score; at exactly 0, VADER's ``pos`` share against its ``neg`` share.
    """
    compound = float(polarity.get("compound", 0.0))
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    if compound != 0:
        side = "positive" if compound > 0 else "negative"
    else:
        pos, neg = float(polarity.get("pos", 0.0)), float(polarity.get("neg", 0.0))
        side = "positive" if pos > neg else "negative" if neg > pos else ""
    probs = dict.fromkeys(LABELS, 0.0)
    probs[label] = 0.6
    rest = [name for name in LABELS if name != label]
    if side and side != label:
        # the chosen side gets more of the rest than the other one
        other = next(name for name in rest if name != side)
        probs[side], probs[other] = 0.3, 0.1
    elif side == label:
        probs["neutral"] = 0.3
        probs[next(name for name in rest if name != "neutral")] = 0.1
    else:
        for name in rest:
            probs[name] = 0.2
    return probs


class Vader:
    """VADER as a model: ``predict`` gives its pseudo-probabilities (:func:`vader_probabilities`)."""

    def __init__(self) -> None:
        from importlib.metadata import version

        from earful.models.sentiment import lexicon

        self._analyzer = lexicon()
        self.version = f"vader-{version('vaderSentiment')}"

    def polarity(self, text: str) -> dict[str, float]:
        return {k: float(v) for k, v in self._analyzer.polarity_scores(text).items()}

    def predict(self, texts: Sequence[str], batch_size: int = 0) -> list[dict[str, float]]:
        return [vader_probabilities(self.polarity(t)) for t in texts]

    def label(self, text: str) -> str:
        probs = vader_probabilities(self.polarity(text))
        return max(LABELS, key=lambda k: probs[k])


# ------------------------------------------------------------------------------ labels


_NAMED = {"negative": "negative", "neutral": "neutral", "positive": "positive"}
_BINARY_DIGITS = {"0": "negative", "1": "positive"}
_TERNARY_DIGITS = {"0": "negative", "1": "neutral", "2": "positive"}


def parse_labels(raw: Sequence[str], lines: Sequence[int] | None = None) -> tuple[list[str], bool]:
    """Gold labels from a file's label column, and whether the data is 2-class.

    Accepted: negative / neutral / positive (any case), or numbers: 0/1 (negative/positive) or
    0/1/2 (negative/neutral/positive). The data is 2-class when its labels are only 0 and 1, or
    only negative and positive. Unknown labels, or names mixed with numbers, raise
    :class:`EvalDataError` naming the line (``lines[i]``, else the 1-based row).
    """

    def where(i: int) -> str:
        return f"line {lines[i]}" if lines is not None else f"row {i + 1}"

    def line_of(i: int) -> int:
        return lines[i] if lines is not None else i + 1

    values = [str(v).strip().lower() for v in raw]
    first_named: int | None = None
    first_number: int | None = None
    for i, value in enumerate(values):
        if value in _NAMED:
            first_named = i if first_named is None else first_named
        elif value in _TERNARY_DIGITS:
            first_number = i if first_number is None else first_number
        else:
            raise EvalDataError(
                f"{where(i)}: unknown label {raw[i]!r}; use negative, neutral or positive "
                "(or 0/1 for negative/positive, or 0/1/2)",
                line_of(i),
            )
        if first_named is not None and first_number is not None:
            raise EvalDataError(
                f"{where(i)}: label {raw[i]!r} mixes numbers and names "
                f"({raw[first_named]!r} on {where(first_named)}, {raw[first_number]!r} on "
                f"{where(first_number)}); use one kind of label",
                line_of(i),
            )
    distinct = set(values)
    if first_number is not None:
        binary = distinct <= set(_BINARY_DIGITS)
        mapping = _BINARY_DIGITS if binary else _TERNARY_DIGITS
    else:
        binary = distinct == {"negative", "positive"}
        mapping = _NAMED
    return [mapping[v] for v in values], binary


@dataclass(frozen=True)
class LabelledFile:
    texts: list[str]
    labels: list[str]  # as written in the file
    lines: list[int]  # the line each row starts on


def read_csv(path: Path) -> LabelledFile:
    """A user's CSV file with a header naming (at least) the columns ``text`` and ``label``.

    Blank lines are skipped; a row without text, a short row or broken quoting raises
    :class:`EvalDataError` with its line."""
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            names = [h.strip().lower() for h in header or []]
            if "text" not in names or "label" not in names:
                found = ",".join(header) if header else "nothing"
                raise EvalDataError(
                    f"{path}: needs a header row with the columns text,label (found {found})", 1
                )
            t_col, l_col = names.index("text"), names.index("label")
            start = reader.line_num + 1
            try:
                for row in reader:
                    line, start = start, reader.line_num + 1
                    if not any(cell.strip() for cell in row):
                        continue
                    if len(row) <= max(t_col, l_col):
                        raise EvalDataError(
                            f"{path} line {line}: {len(row)} column(s), expected {len(names)}", line
                        )
                    if not row[t_col].strip():
                        raise EvalDataError(f"{path} line {line}: the text is empty", line)
                    texts.append(row[t_col])
                    labels.append(row[l_col])
                    lines.append(line)
            except csv.Error as exc:
                raise EvalDataError(
                    f"{path} line {reader.line_num}: not valid CSV: {exc}", reader.line_num
                ) from None
    except UnicodeDecodeError as exc:
        raise EvalDataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not texts:
        raise EvalDataError(f"{path}: no rows to evaluate under the header")
    return LabelledFile(texts, labels, lines)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """A model and VADER on one labelled set, with their speed."""

    model: Scores
    vader: Scores
    seconds: float
    vader_seconds: float

    def as_dict(self) -> dict[str, Any]:
        n = self.model.n
        return {
            "model": self.model.as_dict(),
            "vader": self.vader.as_dict(),
            "timing": {
                "seconds": round(self.seconds, 2),
                "texts_per_s": round(n / self.seconds, 1) if self.seconds > 0 else None,
                "vader_seconds": round(self.vader_seconds, 2),
                "vader_texts_per_s": round(n / self.vader_seconds, 1) if self.vader_seconds > 0 else None,
            },
        }


@dataclass
class _Run:
    model: list[Prediction]
    vader: list[Prediction]
    seconds: float
    vader_seconds: float


def _run(model: Predictor, texts: Sequence[str], vader: Vader, batch_size: int) -> _Run:
    t0 = time.perf_counter()
    ours: list[Prediction] = list(model.predict(list(texts), batch_size=batch_size))
    t1 = time.perf_counter()
    theirs: list[Prediction] = list(vader.predict(texts))
    t2 = time.perf_counter()
    return _Run(ours, theirs, t1 - t0, t2 - t1)


def evaluate_labelled(
    model: Predictor,
    texts: Sequence[str],
    gold: Sequence[str],
    binary: bool,
    batch_size: int = 64,
    vader: Vader | None = None,
) -> Evaluation:
    """The model and VADER on ``texts`` with parsed ``gold`` labels."""
    run = _run(model, texts, vader or Vader(), batch_size)
    return Evaluation(
        score(gold, run.model, binary), score(gold, run.vader, binary), run.seconds, run.vader_seconds
    )


def evaluate_texts(
    model: Predictor,
    texts: Sequence[str],
    labels: Sequence[str],
    batch_size: int = 64,
    lines: Sequence[int] | None = None,
) -> tuple[Scores, Scores]:
    """(the model's scores, VADER's) on ``texts`` with raw ``labels`` (see :func:`parse_labels`)."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    gold, binary = parse_labels(labels, lines)
    result = evaluate_labelled(model, texts, gold, binary, batch_size)
    return result.model, result.vader


# What sentiment_report measures: name -> (parts, binary, description). Parts are predicted once.
SENTIMENT_SETS: dict[str, tuple[tuple[str, ...], bool, str]] = {
    "reviews": (("clothing", "hotels"), False, "clothing + hotel reviews, test split (the headline)"),
    "reviews_long": (("hotels",), False, "hotel reviews, test split (long texts)"),
    "uci": (("uci",), True, "UCI labelled sentences, test split (2-class)"),
    "tweeteval": (("tweeteval",), False, "TweetEval sentiment val+test (evaluation only)"),
    "airline": (("airline",), False, "US airline tweets, test split (not trained on by the default model)"),
}


def _part_loaders(root: Path) -> dict[str, Callable[[], list[ds.Example]]]:
    return {
        "clothing": lambda: ds.clothing(root)["test"],
        "hotels": lambda: ds.hotels(root)["test"],
        "uci": lambda: ds.uci(root)["test"],
        "tweeteval": lambda: ds.tweeteval(root),
        "airline": lambda: ds.airline(root)["test"],
    }


def check_data_dir(path: str | Path | None = None) -> Path:
    """The data directory (see :func:`earful.models.data.data_dir`); raises
    :class:`~earful.models.data.DataMissing` when it is not there."""
    root = ds.data_dir(path)
    if not root.is_dir():
        raise ds.DataMissing(
            f"{root}: data directory not found; point --data-dir (or EARFUL_DATA_DIR) at the "
            "labelled datasets (the repository's ../shared/data)"
        )
    return root


def sentiment_report(
    model: Predictor,
    data_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
    batch_size: int = 64,
    sets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The model and VADER on the held-back splits that the model never trained on.

    Returns ``{"model_version", "headline": "reviews", "datasets": {name: {"model": Scores
    dict, "vader": Scores dict, "timing": {...}, "description"}}, "skipped": {name: why}, ...}``.
    ``sets`` picks some of :data:`SENTIMENT_SETS` (default: all). A missing data set is
    skipped with a note, except the headline one, whose absence raises
    :class:`~earful.models.data.DataMissing`.
    """
    started = time.perf_counter()
    root = check_data_dir(data_dir)
    names = list(sets) if sets is not None else list(SENTIMENT_SETS)
    unknown = [n for n in names if n not in SENTIMENT_SETS]
    if unknown:
        raise ValueError(
            f"unknown evaluation set(s) {', '.join(unknown)}; known: {', '.join(SENTIMENT_SETS)}"
        )
    vader = Vader()
    loaders = _part_loaders(root)
    runs: dict[str, tuple[list[ds.Example], _Run] | None] = {}
    skipped: dict[str, str] = {}

    def part(name: str) -> tuple[list[ds.Example], _Run] | None:
        if name not in runs:
            try:
                rows = loaders[name]()
            except ds.DataMissing as exc:
                runs[name] = None
                skipped[name] = str(exc)
                return None
            say(f"{name}: predicting {len(rows):,} texts ...")
            run = _run(model, [r.text for r in rows], vader, batch_size)
            speed, vader_speed = len(rows) / max(run.seconds, 1e-9), len(rows) / max(run.vader_seconds, 1e-9)
            say(f"{name}: {speed:,.0f} texts/s (VADER {vader_speed:,.0f})")
            runs[name] = (rows, run)
        return runs[name]

    datasets: dict[str, Any] = {}
    for name in names:
        parts, binary, description = SENTIMENT_SETS[name]
        got = [part(p) for p in parts]
        if any(g is None for g in got):
            missing = [p for p, g in zip(parts, got, strict=True) if g is None]
            if name == HEADLINE:
                raise ds.DataMissing(skipped[missing[0]])
            say(f"{name}: skipped ({skipped[missing[0]]})")
            continue
        rows = [r for g in got if g for r in g[0]]
        ours = [p for g in got if g for p in g[1].model]
        theirs = [p for g in got if g for p in g[1].vader]
        gold = [r.label for r in rows]
        result = Evaluation(
            score(gold, ours, binary),
            score(gold, theirs, binary),
            sum(g[1].seconds for g in got if g),
            sum(g[1].vader_seconds for g in got if g),
        )
        datasets[name] = {**result.as_dict(), "description": description, "parts": list(parts)}
        m, v = result.model, result.vader
        say(
            f"{name}: n={m.n:,} accuracy {m.accuracy:.3f} macro-F1 {m.macro_f1:.3f} "
            f"binary {_fmt(m.binary_accuracy)} | VADER {v.accuracy:.3f} / {v.macro_f1:.3f} / "
            f"{_fmt(v.binary_accuracy)}"
        )
    return {
        "model_version": str(model.version),
        "baseline": vader.version,
        "headline": HEADLINE,
        "datasets": datasets,
        "skipped": dict(skipped),
        "batch_size": batch_size,
        "threads": _threads(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


# ------------------------------------------------------------------------------ topics


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _pair_scores(
    gold: set[tuple[int, str]], pred: set[tuple[int, str]], categories: Sequence[str]
) -> dict[str, Any]:
    tp = len(gold & pred)
    micro = _prf(tp, len(pred), len(gold))
    per: dict[str, Any] = {}
    for cat in categories:
        g = {p for p in gold if p[1] == cat}
        q = {p for p in pred if p[1] == cat}
        per[cat] = {**_prf(len(g & q), len(q), len(g)), "support": len(g), "predicted": len(q)}
    return {
        "micro_f1": micro["f1"],
        "micro_precision": micro["precision"],
        "micro_recall": micro["recall"],
        "pairs_gold": len(gold),
        "pairs_predicted": len(pred),
        "per_category": per,
    }


def topic_report(
    sentiment_model: SentimentModel | None,
    data_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
    taxonomies: Mapping[str, str | Path] | None = None,
    topic_model_factory: Callable[[Path], TopicModel] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The topic model on two labelled sets, each with its own taxonomy file.

    * ``mams``: MAMS aspect-category test sentences with ``taxonomies["mams"]`` (default
      ``models/taxonomies/mams.yaml``, topics named after the categories). Micro precision,
      recall and F1 over (sentence, category) pairs, F1 per category, and the sentiment
      accuracy: over the gold pairs that were also predicted, the share whose topic sentiment
      is the gold polarity (3-class; needs ``sentiment_model``).
    * ``airline``: negative airline tweets of the test split that have a complaint reason, with
      ``taxonomies["airline"]`` (topics named after the reasons). Accuracy@1: the best-scoring
      topic is the gold reason (no topic counts as wrong); micro-F1 as a noisier second figure.

    ``topic_model_factory(path)`` builds the topic model for a taxonomy file (default:
    :meth:`TopicModel.load` on the sentiment model's encoder). The MAMS figures are also at the
    top level (``micro_f1``, ``micro_precision``, ``micro_recall``, ``sentiment_accuracy``),
    with ``airline_accuracy_at_1`` and ``airline_micro_f1``.
    """
    from earful.models import encoder as enc
    from earful.models.sentiment import EarfulSentiment
    from earful.models.topics import TaxonomyError, TopicModel

    started = time.perf_counter()
    root = check_data_dir(data_dir)
    files = {"mams": TAXONOMIES / "mams.yaml", "airline": TAXONOMIES / "airline.yaml"}
    files.update({k: Path(v) for k, v in (taxonomies or {}).items()})
    for name, file in files.items():
        if not file.is_file():  # before minutes of work on the other set
            raise TaxonomyError(f"{file}: taxonomy file not found (the {name} evaluation needs it)")
    if topic_model_factory is None:
        shared: list[enc.Encoder] = []
        if isinstance(sentiment_model, EarfulSentiment):
            shared.append(sentiment_model.encoder)

        def topic_model_factory(path: Path) -> TopicModel:
            if not shared:
                shared.append(enc.Encoder.load())
            return TopicModel.load(path, shared[0])

    datasets: dict[str, Any] = {}

    # MAMS: several categories per sentence, each with a polarity.
    rows = ds.mams("test", root)
    model = topic_model_factory(files["mams"])
    names = [t.name for t in model.taxonomy.topics]
    say(f"mams: {len(rows):,} sentences, taxonomy {files['mams']} ({len(names)} topics) ...")
    t0 = time.perf_counter()
    hits = model.predict([r.text for r in rows], sentiment_model, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    gold = {(i, c) for i, r in enumerate(rows) for c in r.topics}
    found = {(i, h.name): h for i, hs in enumerate(hits) for h in hs}
    categories = sorted({c for _, c in gold} | set(names))
    mams = _pair_scores(gold, set(found), categories)
    matched = sorted(gold & set(found))
    right = sum(found[p].sentiment == rows[p[0]].aspects[p[1]] for p in matched)
    mams["sentiment_accuracy"] = (
        round(right / len(matched), 4) if matched and sentiment_model is not None else None
    )
    mams["sentiment_n"] = len(matched) if sentiment_model is not None else 0
    mams["n"] = len(rows)
    mams["texts_with_topic"] = sum(1 for hs in hits if hs)
    mams["taxonomy"] = str(files["mams"])
    mams["unknown_topics"] = sorted(set(names) - {c for _, c in gold})
    mams["texts_per_s"] = round(len(rows) / seconds, 1) if seconds > 0 else None
    datasets["mams"] = mams
    say(
        f"mams: micro-F1 {mams['micro_f1']:.3f} (P {mams['micro_precision']:.3f}, "
        f"R {mams['micro_recall']:.3f}), topic sentiment accuracy {_fmt(mams['sentiment_accuracy'])}"
    )
    if mams["unknown_topics"]:
        say(f"mams: taxonomy topics that are not MAMS categories: {', '.join(mams['unknown_topics'])}")

    # Airline: one complaint reason per negative tweet.
    tweets = [r for r in ds.airline(root)["test"] if r.label == "negative" and r.topics]
    model = topic_model_factory(files["airline"])
    names = [t.name for t in model.taxonomy.topics]
    say(f"airline: {len(tweets):,} negative tweets with a reason, taxonomy {files['airline']} ...")
    t0 = time.perf_counter()
    hits = model.predict([r.text for r in tweets], None, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    gold = {(i, r.topics[0]) for i, r in enumerate(tweets)}
    found_pairs = {(i, h.name) for i, hs in enumerate(hits) for h in hs}
    categories = sorted({c for _, c in gold} | set(names))
    airline = _pair_scores(gold, found_pairs, categories)
    top1 = [bool(hs) and hs[0].name == r.topics[0] for r, hs in zip(tweets, hits, strict=True)]
    airline["accuracy_at_1"] = round(sum(top1) / len(top1), 4) if top1 else 0.0
    per_reason: dict[str, Any] = {}
    for cat in sorted({r.topics[0] for r in tweets}):
        idx = [i for i, r in enumerate(tweets) if r.topics[0] == cat]
        per_reason[cat] = {"n": len(idx), "accuracy_at_1": round(sum(top1[i] for i in idx) / len(idx), 4)}
    airline["per_reason"] = per_reason
    airline["n"] = len(tweets)
    airline["texts_with_topic"] = sum(1 for hs in hits if hs)
    airline["taxonomy"] = str(files["airline"])
    airline["unknown_topics"] = sorted(set(names) - {c for _, c in gold})
    airline["texts_per_s"] = round(len(tweets) / seconds, 1) if seconds > 0 else None
    datasets["airline"] = airline
    say(f"airline: accuracy@1 {airline['accuracy_at_1']:.3f}, micro-F1 {airline['micro_f1']:.3f}")

    return {
        "micro_f1": mams["micro_f1"],
        "micro_precision": mams["micro_precision"],
        "micro_recall": mams["micro_recall"],
        "sentiment_accuracy": mams["sentiment_accuracy"],
        "n": mams["n"],
        "airline_accuracy_at_1": airline["accuracy_at_1"],
        "airline_micro_f1": airline["micro_f1"],
        "airline_n": airline["n"],
        "model_version": None if sentiment_model is None else str(sentiment_model.version),
        "datasets": datasets,
        "seconds": round(time.perf_counter() - started, 1),
    }


# -------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m earful.models.evaluate``: the report as JSON (``earful eval`` prints tables)."""
    from earful.models import encoder as enc
    from earful.models import sentiment

    parser = argparse.ArgumentParser(
        prog="python -m earful.models.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped one)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="labelled datasets (default ../shared/data)"
    )
    parser.add_argument("--topics", action="store_true", help="evaluate topics instead of sentiment")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    enc.set_threads(args.threads)
    model = sentiment.load(args.model)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.topics:
        report = topic_report(model, args.data_dir, say, batch_size=args.batch_size)
    else:
        report = sentiment_report(model, args.data_dir, say, batch_size=args.batch_size)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
