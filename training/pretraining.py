"""Word vectors pre-trained on unlabelled reviews, to start the embedding from what the words mean.

25,000 labelled reviews teach a 30,000-word embedding little about rare words; 50,000 more
unlabelled reviews of the same kind teach word2vec which words are used alike ("dreadful" near
"awful"), and the classifier starts from that. gensim's Word2Vec does the training (CBOW by
default: skip-gram trained slower and scored no better, BENCHMARKS.md); this module
only feeds it the project's own tokens, so the vectors are of exactly the words scoring will see,
and caches the result by a fingerprint of the text and settings so that a rerun of `train` does
not redo it.

The cache holds plain arrays (`.npz` of words and vectors, loaded with allow_pickle=False), not
gensim's pickled model files.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.model.preprocessing import RESERVED_IDS, Vocabulary
from training.config import WordVectorSettings


@dataclass(frozen=True)
class WordVectors:
    words: list[str]
    vectors: np.ndarray
    """float32 (len(words), dim)."""
    seconds: float
    """Training time; 0 when read from the cache."""
    cache_file: Path

    def embedding_matrix(self, vocabulary: Vocabulary, seed: int) -> tuple[np.ndarray, int]:
        """Initial Embedding weights for `vocabulary` and how many of its words had a vector.

        Padding gets zeros (it is masked anyway), words without a vector (and the unknown-word id)
        small random vectors of the pre-trained vectors' own scale.
        """
        index = {word: i for i, word in enumerate(self.words)}
        rng = np.random.default_rng(seed)
        scale = float(self.vectors.std())
        matrix = rng.normal(0.0, scale, size=(len(vocabulary), self.vectors.shape[1])).astype(np.float32)
        matrix[0] = 0.0
        found = 0
        for offset, word in enumerate(vocabulary.tokens):
            row = index.get(word)
            if row is not None:
                matrix[offset + RESERVED_IDS] = self.vectors[row]
                found += 1
        return matrix, found


def texts_fingerprint(*parts: pa.Array) -> str:
    digest = hashlib.sha256()
    for texts in parts:
        for text in texts.to_pylist():
            encoded = text.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return digest.hexdigest()


def word2vec(
    token_lists: pa.LargeListArray,
    settings: WordVectorSettings,
    cache_dir: Path,
    text_fingerprint: str,
    workers: int,
) -> WordVectors:
    """Vectors for every token seen `min_count` times, trained once per text and settings."""
    key = hashlib.sha256(json.dumps([text_fingerprint, asdict(settings)], sort_keys=True).encode()).hexdigest()
    cache_file = cache_dir / f"word2vec-{key[:24]}.npz"
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as cached:
            return WordVectors(cached["words"].tolist(), cached["vectors"], 0.0, cache_file)

    from gensim.models import Word2Vec

    started = time.perf_counter()
    sentences = token_lists.to_pylist()
    model = Word2Vec(
        sentences=sentences,
        vector_size=settings.dim,
        window=settings.window,
        min_count=settings.min_count,
        sg=int(settings.skip_gram),
        negative=settings.negative,
        epochs=settings.epochs,
        seed=settings.seed,
        workers=workers,
    )
    words = list(model.wv.index_to_key)
    vectors = np.asarray(model.wv.vectors, dtype=np.float32)
    seconds = time.perf_counter() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial.npz")
    np.savez(partial, words=np.asarray(words, dtype=str), vectors=vectors)
    partial.replace(cache_file)
    return WordVectors(words, vectors, seconds, cache_file)
