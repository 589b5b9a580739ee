"""Which texts the classifier can judge: language identification and "no words here" checks.

py3langid ships its model inside the package (no download). Identification on a handful of
letters is a guess, so short texts are given the benefit of the doubt (treated as English)
and only texts with enough letters and a confident non-English verdict are refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<!\w)@\w+")
# Below this many letters the language is not identified (too short to tell).
MIN_LETTERS = 20
# A non-English verdict must be at least this probable to refuse a text.
MIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Verdict:
    status: str  # ok | empty | no_text | unsupported_language
    language: str | None
    note: str | None = None


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import _load_identifier

    return _load_identifier(norm_probs=True)


def letters(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch).startswith("L"))


def check(text: str, supported: frozenset[str] = frozenset({"en"})) -> Verdict:
    """Whether ``text`` can be judged by a model that knows the ``supported`` languages."""
    if not text or not text.strip():
        return Verdict("empty", None, "empty text")
    words = MENTION.sub(" ", URL.sub(" ", text))
    n = letters(words)
    if n == 0:
        what = "only links" if URL.search(text) else "no words (emoji, digits or symbols only)"
        return Verdict("no_text", None, what)
    if n < MIN_LETTERS:
        return Verdict("ok", None)
    code, prob = _identifier().classify(words)
    code = str(code)
    if code not in supported and float(prob) >= MIN_CONFIDENCE:
        return Verdict("unsupported_language", code, f"language {code!r} is not one the model knows")
    return Verdict("ok", code if float(prob) >= 0.5 else None)
