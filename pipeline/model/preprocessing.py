"""The one text preprocessing shared by training and scoring: clean, tokenize, build a vocabulary, encode.

Training builds the vocabulary with it and stores every setting in the bundle's preprocessing.json;
scoring rebuilds exactly the same encoder from that file. Nothing else in the project cleans or
encodes text, so a review can never be encoded one way for training and another for scoring.

Everything runs on whole batches through pyarrow compute kernels (RE2 regexes, Unicode case
folding, hash-set lookups) and NumPy index arithmetic: there is no Python code per token, and only
the conversion of the input to an Arrow array touches each review in Python.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError, model_validator

from pipeline.model.contractions import CONTRACTION_RULES
from pipeline.model.stopwords import STOP_WORDS
from pipeline.model.treebank import TREEBANK_RULES
from schemas.bundle import PREPROCESSING_FILE
from schemas.validation import refusal

# Bump when the meaning of a setting or of the tokenizer changes, so an old bundle is refused
# instead of being silently fed differently encoded text.
PREPROCESSING_VERSION = 1

PAD_ID = 0
OOV_ID = 1
RESERVED_IDS = 2
OOV_TOKEN = "[UNK]"

# HTML tags such as "<br />" (the IMDB line break), "<i>", "</a>": a tag starts with a letter, "/" or
# "!", so "<3" and "a < b" survive as text.
_HTML_TAG = r"<[a-zA-Z/!][^>]*>"
# Typographic apostrophes become ASCII ones so "don’t" and "don't" are one token.
_APOSTROPHES = r"[\x{2019}\x{2018}\x{02BC}`\x{00B4}]"
# Possessive "'s" carries no sentiment and would double the vocabulary of names ("film's").
_POSSESSIVE = r"'s\b"
# Anything that is not a letter, digit, combining mark or apostrophe separates tokens. ASCII
# whitespace already separates them, so it is left out: the regex then matches far fewer runs, and
# the pass is several times faster (BENCHMARKS.md#levers).
_SEPARATORS = r"[^\pL\pN\pM'\s]+"
# Apostrophes are kept only inside a word ("don't", "o'brien"), never at its edges ("'quoted'").
# Two patterns, as one would miss the second apostrophe in "x' 'y" (matches cannot overlap).
_LEADING_APOSTROPHES = r"(^|\s)'+"
_TRAILING_APOSTROPHES = r"'+(\s|$)"

Truncating = Literal["pre", "post"]


class PreprocessingError(ValueError):
    """preprocessing.json holds settings this version of reviewscore does not implement."""


class PreprocessingConfig(BaseModel):
    """Every cleaning and encoding setting: the bundle's preprocessing.json, key for key.

    A pydantic model: it is nothing but settings, so the file is read (`read_preprocessing`) and written
    (`model_dump`) through the model itself. A setting the file holds and this version does not know is
    refused, not ignored: it would change how text is encoded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: StrictInt = 5000
    """Number of most frequent training words kept; ids 0 and 1 are reserved for padding and unknown."""
    max_length: StrictInt = 500
    """Reviews longer than this many tokens are truncated."""
    truncating: Truncating = "pre"
    """'pre' keeps the last max_length tokens (Keras pad_sequences' default, as in the tutorials);
    'post' keeps the first."""
    strip_html: StrictBool = True
    """HTML tags ("<br />") become spaces."""
    normalize_unicode: StrictBool = True
    """NFKC: full-width letters, ligatures and composed accents map to their plain forms."""
    lowercase: StrictBool = True
    """Unicode case folding."""
    expand_contractions: StrictBool = False
    """"don't" becomes "do not"."""
    remove_stopwords: StrictBool = False
    """Common English function words are dropped."""
    treebank: StrictBool = False
    """Undo Penn-Treebank tokenization first ("does n't" -> "doesn't", -LRB- -> "("): for models trained
    on treebank text (SST, the Rotten Tomatoes phrases), so users' ordinary text encodes the same way."""
    version: StrictInt = PREPROCESSING_VERSION
    """The tokenizer's version (PREPROCESSING_VERSION); a bundle of another version is refused."""

    @model_validator(mode="after")
    def _implemented(self) -> PreprocessingConfig:
        """Sizes of at least one, and the version this reviewscore implements."""
        if self.vocab_size < 1:
            raise PreprocessingError(f"vocab_size must be at least 1, got {self.vocab_size}")
        if self.max_length < 1:
            raise PreprocessingError(f"max_length must be at least 1, got {self.max_length}")
        if self.version != PREPROCESSING_VERSION:
            raise PreprocessingError(
                f"preprocessing version {self.version} is not supported by this reviewscore "
                f"(it implements version {PREPROCESSING_VERSION})"
            )
        return self


def read_preprocessing(data: Any) -> PreprocessingConfig:
    """preprocessing.json's parsed JSON as settings; PreprocessingError, one line, when they cannot be used."""
    if not isinstance(data, dict):
        raise PreprocessingError(f"{PREPROCESSING_FILE} must hold a JSON object")
    try:
        return PreprocessingConfig.model_validate(data)
    except ValidationError as e:
        raise refusal(e, PreprocessingError, PREPROCESSING_FILE) from None


def as_string_array(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Arrow large_string array of the texts; None stays null.

    Python strings that cannot be UTF-8 encoded (lone surrogates) are repaired with U+FFFD instead of
    failing the whole batch.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
            raise TypeError(f"texts must be strings, got Arrow type {texts.type}")
        return texts.cast(pa.large_string())
    values = texts if isinstance(texts, list) else list(texts)
    try:
        return pa.array(values, type=pa.large_string())
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(
            [v if v is None else str(v).encode("utf-8", "replace").decode("utf-8") for v in values],
            type=pa.large_string(),
        )


def clean(texts: Iterable[str | None] | pa.Array, config: PreprocessingConfig) -> pa.Array:
    """Text whose whitespace-separated words are the tokens: HTML, case, contractions, punctuation done."""
    a = as_string_array(texts)
    if config.treebank:
        for pattern, replacement in TREEBANK_RULES:
            a = pc.replace_substring_regex(a, pattern, replacement)
    if config.strip_html:
        a = pc.replace_substring_regex(a, _HTML_TAG, " ")
    if config.normalize_unicode:
        a = _nfkc(a)
    if config.lowercase:
        a = pc.utf8_lower(a)
    a = pc.replace_substring_regex(a, _APOSTROPHES, "'")
    if config.expand_contractions:
        for pattern, replacement in CONTRACTION_RULES:
            a = pc.replace_substring_regex(a, pattern, replacement)
    a = pc.replace_substring_regex(a, _POSSESSIVE, " ")
    a = pc.replace_substring_regex(a, _SEPARATORS, " ")
    a = pc.replace_substring_regex(a, _LEADING_APOSTROPHES, " ")
    return pc.replace_substring_regex(a, _TRAILING_APOSTROPHES, " ")


def _nfkc(a: pa.Array) -> pa.Array:
    """NFKC-normalize the non-ASCII texts (ASCII is already normal).

    pyarrow's utf8_normalize is not used: in pyarrow 25 its NFC and NFKC outputs are decomposed
    ("é" comes back as "e" + U+0301), which would split accented words at the combining mark's
    boundary in some scripts and differ from what Python's unicodedata gives. Only non-ASCII
    reviews, a small share of English reviews, go through Python, one call per review.
    """
    non_ascii = pc.fill_null(pc.invert(pc.string_is_ascii(a)), False)
    rows = np.flatnonzero(non_ascii.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return a
    fixed = [unicodedata.normalize("NFKC", text) for text in a.take(pa.array(rows)).to_pylist()]
    return pc.replace_with_mask(a, non_ascii, pa.array(fixed, type=pa.large_string()))


_STOP_WORDS_ARRAY = pa.array(sorted(STOP_WORDS), type=pa.large_string())


def tokenize(texts: Iterable[str | None] | pa.Array, config: PreprocessingConfig) -> pa.LargeListArray:
    """One list of tokens per text (null texts give empty lists), stop words removed if configured."""
    cleaned = clean(texts, config)
    # ASCII whitespace is the only whitespace left after clean() (_SEPARATORS turns every other
    # kind into spaces). pyarrow 25's utf8_split_whitespace is not used: after a combining mark
    # it sometimes returns a " " token for a run of spaces, differently from call to call
    # (tests/test_preprocessing.py keeps the input that showed it).
    lists = pc.ascii_split_whitespace(cleaned)
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    keep = pc.greater(pc.utf8_length(flat), 0)
    if config.remove_stopwords:
        keep = pc.and_(keep, pc.invert(pc.is_in(flat, value_set=_STOP_WORDS_ARRAY)))
    keep_np = keep.to_numpy(zero_copy_only=False)
    counts = np.bincount(parents[keep_np], minlength=len(lists))
    return pa.LargeListArray.from_arrays(pa.array(offsets_of(counts)), flat.filter(keep))


class Vocabulary:
    """Word to id mapping: id 0 is padding, id 1 unknown words, then words by descending frequency."""

    def __init__(self, tokens: Sequence[str]):
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens: list[str] = list(tokens)
        self._array = pa.array(self.tokens, type=pa.large_string())

    @classmethod
    def build(cls, token_lists: pa.ListArray | pa.LargeListArray, size: int) -> Vocabulary:
        """The `size` most frequent tokens; ties broken alphabetically so the build is deterministic."""
        counts = pc.value_counts(pc.list_flatten(token_lists))
        table = pa.table({"token": counts.field("values"), "count": counts.field("counts")})
        table = table.sort_by([("count", "descending"), ("token", "ascending")]).slice(0, size)
        return cls(table.column("token").to_pylist())

    def __len__(self) -> int:
        """Size of the id space, reserved ids included: the Embedding's input_dim."""
        return len(self.tokens) + RESERVED_IDS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def ids(self, flat_tokens: pa.Array) -> np.ndarray:
        """int32 ids for a flat array of tokens; unknown tokens map to OOV_ID."""
        index = pc.index_in(flat_tokens, value_set=self._array)
        return pc.fill_null(index, OOV_ID - RESERVED_IDS).to_numpy().astype(np.int32) + RESERVED_IDS

    def to_json(self) -> str:
        return json.dumps(
            {"padding_id": PAD_ID, "oov_id": OOV_ID, "oov_token": OOV_TOKEN, "tokens": self.tokens},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        data = json.loads(text)
        if data.get("padding_id") != PAD_ID or data.get("oov_id") != OOV_ID:
            raise ValueError(f"vocabulary must reserve id {PAD_ID} for padding and {OOV_ID} for unknown words")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("vocabulary 'tokens' must be a list of strings")
        return cls(tokens)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """Where each of a ragged batch's rows starts in its flat ids, and where the last one ends:
    offsets[i]:offsets[i + 1] is row i (int64, one more than there are rows)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


@dataclass(frozen=True)
class EncodedBatch:
    """Ragged token ids of a batch of reviews: row i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_rows(cls, rows: Sequence[np.ndarray]) -> EncodedBatch:
        offsets = offsets_of(np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows)))
        return cls(np.concatenate([np.asarray(r, np.int32) for r in rows]) if rows else np.zeros(0, np.int32), offsets)

    @classmethod
    def concatenate(cls, batches: Sequence[EncodedBatch]) -> EncodedBatch:
        ids = np.concatenate([b.ids for b in batches])
        return cls(ids, offsets_of(np.concatenate([b.lengths for b in batches])))

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def rows(self) -> list[np.ndarray]:
        return np.split(self.ids, self.offsets[1:-1])

    def take(self, indices: Sequence[int] | np.ndarray) -> EncodedBatch:
        indices = np.asarray(indices, dtype=np.int64)
        return _slice_rows(self.ids, self.offsets[indices], self.lengths[indices])

    def padded(self, width: int | None = None) -> np.ndarray:
        """(rows, width) int32 matrix, each review left-aligned and followed by PAD_ID."""
        return _pad(self.ids, self.lengths, width)


def pad_rows(rows: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
    """Right-pad ragged id rows into one matrix; width defaults to the longest row (at least 1)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    return _pad(np.concatenate(rows) if len(rows) else np.zeros(0, np.int32), lengths, width)


def _pad(ids: np.ndarray, lengths: np.ndarray, width: int | None) -> np.ndarray:
    """Rows of `lengths` tokens, laid end to end in `ids`, right-padded with PAD_ID into one int32 matrix."""
    longest = int(lengths.max(initial=0))
    width = max(longest, 1) if width is None else width
    if width < longest:
        raise ValueError(f"width {width} is shorter than the longest row ({longest} tokens)")
    out = np.full((len(lengths), width), PAD_ID, dtype=np.int32)
    out[np.arange(width) < lengths[:, None]] = ids
    return out


class TextEncoder:
    """Turns raw review texts into truncated id sequences, exactly as the bundle was trained."""

    def __init__(self, config: PreprocessingConfig, vocabulary: Vocabulary):
        self.config = config
        self.vocabulary = vocabulary

    def encode(self, texts: Iterable[str | None] | pa.Array) -> EncodedBatch:
        return self.encode_tokens(tokenize(texts, self.config))

    def encode_parallel(
        self, texts: Sequence[str | None] | pa.Array | pa.ChunkedArray, pool: Executor | None = None, parts: int = 1
    ) -> EncodedBatch:
        """`encode(texts)`, in `parts` chunks on `pool` at once: the pyarrow kernels release the GIL,
        so the chunks run on separate cores."""
        if pool is None or parts <= 1 or len(texts) < 2:
            return self.encode(texts)
        size = -(-len(texts) // parts)
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
        return EncodedBatch.concatenate(list(pool.map(self.encode, chunks)))

    def encode_words(self, texts: Iterable[str | None] | pa.Array) -> tuple[EncodedBatch, list[list[str]]]:
        """`encode(texts)` and, per review, the word each id stands for (after truncation): the
        review's own tokens as the preprocessing saw them, unknown words included."""
        token_lists = tokenize(texts, self.config)
        offsets = token_lists.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        flat = pc.list_flatten(token_lists)
        kept = _truncate(np.arange(len(flat), dtype=np.int64), offsets, self.config.max_length, self.config.truncating)
        ids = self.vocabulary.ids(flat)[kept.ids]
        words = flat.take(pa.array(kept.ids)).to_pylist()
        return EncodedBatch(ids, kept.offsets), [
            words[a:b] for a, b in zip(kept.offsets[:-1], kept.offsets[1:], strict=True)
        ]

    def encode_tokens(self, token_lists: pa.LargeListArray) -> EncodedBatch:
        offsets = token_lists.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        ids = self.vocabulary.ids(pc.list_flatten(token_lists))
        return _truncate(ids, offsets, self.config.max_length, self.config.truncating)


def _truncate(ids: np.ndarray, offsets: np.ndarray, max_length: int, truncating: Truncating) -> EncodedBatch:
    lengths = np.diff(offsets)
    if (lengths <= max_length).all():
        return EncodedBatch(ids, offsets)
    kept = np.minimum(lengths, max_length)
    starts = offsets[1:] - kept if truncating == "pre" else offsets[:-1]
    return _slice_rows(ids, starts, kept)


def _slice_rows(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> EncodedBatch:
    """A new batch whose row i is ids[starts[i] : starts[i] + lengths[i]], gathered in one NumPy pass."""
    offsets = offsets_of(lengths)
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    return EncodedBatch(ids[gather], offsets)
