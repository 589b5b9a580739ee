"""Sentiment + topics for a batch of texts: what the pipeline's classification runs call.

Example::

    from earful.models import classifier
    clf = classifier.load()                       # shipped model + default taxonomy
    [p] = clf.predict(["The courier was late and support never answered."])
    p.label, p.score, [t.name for t in p.topics]  # 'negative', 0.93, ['delivery', ...]

Texts the model cannot judge get a :class:`Prediction` with ``label=None`` and a ``status``
that says why (``empty``, ``no_text``, ``unsupported_language``), never a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earful.models import encoder as enc
from earful.models import language, sentiment, topics


@dataclass(frozen=True)
class TopicResult:
    name: str
    score: float  # similarity of the best-matching sentence, 0..1
    sentiment: str | None  # from the sentences that mention the topic
    sentiment_score: float | None
    sentences: int  # how many sentences mention it


@dataclass(frozen=True)
class Prediction:
    status: str  # ok | empty | no_text | unsupported_language
    label: str | None
    score: float | None
    probabilities: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    topics: tuple[TopicResult, ...] = ()
    windows: int = 0  # model windows the text was split into (0: not judged)
    note: str | None = None

    def topics_json(self) -> dict[str, Any]:
        """The ``classification.topics`` column: topic name -> score and sentiment."""
        return {
            t.name: {
                "score": round(t.score, 4),
                "sentiment": t.sentiment,
                "sentiment_score": None if t.sentiment_score is None else round(t.sentiment_score, 4),
                "sentences": t.sentences,
            }
            for t in self.topics
        }


class Classifier:
    """A sentiment model and a topic model sharing one encoder trunk."""

    def __init__(
        self, sentiment_model: sentiment.SentimentModel, topic_model: topics.TopicModel | None
    ) -> None:
        self.sentiment = sentiment_model
        self.topics = topic_model
        parts = [sentiment_model.version]
        if topic_model is not None:
            parts.append(f"topics-{topic_model.fingerprint}")
        self.version = "+".join(parts)[:100]

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per text, in order. ``progress(n)`` is called as texts finish."""
        verdicts = [language.check(t) for t in texts]
        todo = [i for i, v in enumerate(verdicts) if v.status == "ok"]
        sents = self.sentiment.predict([texts[i] for i in todo], batch_size=batch_size)
        found: list[list[topics.TopicHit]] = [[] for _ in todo]
        if self.topics is not None and todo:
            found = self.topics.predict([texts[i] for i in todo], self.sentiment, batch_size=batch_size)
        out: list[Prediction] = []
        by_index = dict(zip(todo, zip(sents, found, strict=True), strict=True))
        for i, verdict in enumerate(verdicts):
            if i not in by_index:
                out.append(Prediction(verdict.status, None, None, {}, verdict.language, (), 0, verdict.note))
                continue
            s, hits = by_index[i]
            results = tuple(
                TopicResult(h.name, h.score, h.sentiment, h.sentiment_score, h.sentences) for h in hits
            )
            out.append(
                Prediction("ok", s.label, s.score, s.probabilities, verdict.language, results, s.windows)
            )
        if progress:
            progress(len(texts))
        return out


def load(
    model: str | Path | None = None,
    labels: dict[str, str] | None = None,
    taxonomy: str | Path | None = None,
    threads: int | None = None,
    with_topics: bool = True,
    runtime: str = "onnx-int8",
) -> Classifier:
    """The classifier the config asks for: ``model`` is a local directory (default: shipped),
    ``labels`` maps a Hugging Face model's labels onto ours, ``taxonomy`` a topic YAML file;
    ``runtime`` runs Earful's own model in ONNX Runtime, int8 (``onnx-int8``: fastest, its own
    version) or fp32 (``onnx``: the same figures as ``torch``); a Hugging Face model always
    runs in PyTorch."""
    from earful.models import runtime as rt

    if runtime not in rt.RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(rt.RUNTIMES)}")
    threads = enc.set_threads(threads)
    sent = sentiment.load(model, labels)
    if runtime != "torch" and isinstance(sent, sentiment.EarfulSentiment):
        sent.use_onnx(quantize=runtime == "onnx-int8", threads=threads)
    encoder = sent.encoder if isinstance(sent, sentiment.EarfulSentiment) else None
    topic_model = topics.TopicModel.load(taxonomy, encoder) if with_topics else None
    return Classifier(sent, topic_model)
