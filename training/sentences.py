"""Sentences cut from unlabelled reviews: unlabelled text of the kind a sentence model reads.

The five-class model reads sentences and short phrases (60 tokens); whole IMDB reviews would show
it mostly their last sentences. Distilling it through unlabelled text needs sentences, so the
reviews are cut at HTML line breaks and at sentence-ending punctuation followed by a capital, and a
deterministic sample of those of a sentence's length is kept.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

__all__ = ["MAX_WORDS", "MIN_WORDS", "review_sentences"]

MIN_WORDS, MAX_WORDS = 4, 50
"""A kept sentence's length in words: shorter ones are mostly fragments ("Spoilers!"), longer ones
run-ons the cut missed."""

_BOUNDARY = re.compile(r"<[bB][rR]\s*/?>|(?<=[.!?])\s+(?=[\"'(]?[A-Z])")


def review_sentences(texts: pa.Array, count: int, seed: int) -> pa.Array:
    """Up to `count` distinct sentences of `texts`, a sample fixed by `seed`, in the reviews' order."""
    seen: dict[str, None] = {}
    for text in texts.to_pylist():
        for sentence in _BOUNDARY.split(text or ""):
            sentence = sentence.strip()
            if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
                seen.setdefault(sentence)
    sentences = list(seen)
    if len(sentences) > count:
        keep = np.sort(np.random.default_rng(seed).choice(len(sentences), size=count, replace=False))
        sentences = [sentences[i] for i in keep]
    return pa.array(sentences, pa.large_string())
