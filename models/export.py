"""Earful's sentiment model as one ordinary ``transformers`` model.

The shipped artefact is only the fine-tuned upper layers and a head; this module glues them
onto the base MiniLM to give a :class:`MeanPoolBertForSequenceClassification`, a
``PreTrainedModel`` that ``transformers.pipeline("text-classification", model=...)`` accepts.
The benchmark uses it to time the stock pipeline on exactly our weights, and a team can use it
to serve the model elsewhere.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from earful.models import encoder as enc
from earful.models.sentiment import EarfulSentiment, collapse


class MeanPoolBertForSequenceClassification(BertPreTrainedModel):  # type: ignore[no-untyped-call]
    """BERT, mean pooling over the tokens, a linear layer: Earful's sentiment architecture."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # Finer outputs (star ratings) grouped into the labels, when the model was trained so.
        self.label_groups = getattr(config, "label_groups", None)
        outputs = sum(map(len, self.label_groups)) if self.label_groups else config.num_labels
        self.classifier = nn.Linear(config.hidden_size, outputs)
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            assert input_ids is not None
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        pooled = enc.mean_pool(hidden.last_hidden_state, attention_mask)
        logits = collapse(self.classifier(self.dropout(pooled)), self.label_groups)
        return SequenceClassifierOutput(logits=logits)


def to_transformers(model: EarfulSentiment) -> MeanPoolBertForSequenceClassification:
    """The full model with the base trunk, the fine-tuned upper layers and the head."""
    base = enc.load_base()
    config: Any = base.config
    config.num_labels = len(model.labels)
    config.id2label = dict(enumerate(model.labels))
    config.label2id = {label: i for i, label in enumerate(model.labels)}
    config.label_groups = model.head.groups
    out = MeanPoolBertForSequenceClassification(config)
    out.bert.load_state_dict({k: v for k, v in base.state_dict().items() if not k.startswith("pooler.")})
    split = model.encoder.split
    for i, layer in enumerate(model.head.top.layers):
        out.bert.encoder.layer[split + i].load_state_dict(layer.state_dict())
    out.classifier.load_state_dict(model.head.out.state_dict())
    out.eval()  # type: ignore[no-untyped-call]
    return out


class Probabilities(nn.Module):
    """(input ids, attention mask) -> label probabilities: what ONNX Runtime runs."""

    def __init__(self, model: MeanPoolBertForSequenceClassification) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits, dim=-1)


class SentenceEmbedding(nn.Module):
    """(input ids, attention mask) -> the base model's mean-pooled embedding (not normalised)."""

    def __init__(self, bert: Any) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return enc.mean_pool(hidden, attention_mask)


def _eager(model: Any) -> Any:
    """Plain attention: it traces to ONNX with the padding mask kept as an input."""
    model.config._attn_implementation = "eager"
    return model


def sentiment_for_onnx(model: EarfulSentiment) -> Probabilities:
    return Probabilities(_eager(to_transformers(model))).eval()


def embedding_for_onnx() -> SentenceEmbedding:
    return SentenceEmbedding(_eager(enc.load_base())).eval()
