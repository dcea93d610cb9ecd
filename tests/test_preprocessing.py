"""The shared preprocessing: cleaning rules, vocabulary, encoding and truncation."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model.preprocessing import (
    OOV_ID,
    PAD_ID,
    EncodedBatch,
    PreprocessingConfig,
    PreprocessingError,
    TextEncoder,
    Vocabulary,
    clean,
    pad_rows,
    read_preprocessing,
    tokenize,
)

DEFAULT = PreprocessingConfig()


def tokens(text: str, config: PreprocessingConfig = DEFAULT) -> list[str]:
    return tokenize([text], config).to_pylist()[0]


def test_html_breaks_case_and_punctuation():
    assert tokens("Great film!<br /><br />The END... Really?!") == ["great", "film", "the", "end", "really"]


def test_html_tags_removed_but_not_angle_brackets_in_text():
    assert tokens("<i>Superb</i> acting <3 and 2 < 3") == ["superb", "acting", "3", "and", "2", "3"]


def test_apostrophes_inside_words_kept_at_edges_dropped():
    assert tokens("I don't like 'quoted' words, nor O'Brien's hat") == [
        "i", "don't", "like", "quoted", "words", "nor", "o'brien", "hat",
    ]  # fmt: skip


def test_typographic_apostrophe_is_ascii_apostrophe():
    assert tokens("don\u2019t") == tokens("don't") == ["don't"]


def test_unicode_normalized_and_lowercased():
    assert tokens("ＧＯＯＤ Café ﬁlm ÉCOLE") == ["good", "café", "film", "école"]


def test_non_latin_scripts_tokenized():
    assert tokens("映画 は 素晴らしい; фильм отличный, فيلم رائع") == [
        "映画", "は", "素晴らしい", "фильм", "отличный", "فيلم", "رائع",
    ]  # fmt: skip


def test_contraction_expansion_is_optional():
    text = "I won't say it's bad, they're fine and I can't stop"
    assert tokens(text) == ["i", "won't", "say", "it", "bad", "they're", "fine", "and", "i", "can't", "stop"]
    expanded = tokens(text, PreprocessingConfig(expand_contractions=True))
    assert expanded == [
        "i", "will", "not", "say", "it", "is", "bad", "they", "are", "fine", "and", "i", "can", "not", "stop",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("treebank_text", "plain_text"),
    [
        ("It does n't work , -LRB- sadly -RRB- .", "It doesn't work, (sadly)."),
        ("I ca n't and wo n't , they 're right", "I can't and won't, they're right"),
        ("The film 's `` best '' scene , 1\\/2 star", 'The film\'s "best" scene, 1/2 star'),
        ("I can not go", "I cannot go"),
    ],
)
def test_treebank_text_and_plain_text_give_the_same_tokens(treebank_text, plain_text):
    config = PreprocessingConfig(treebank=True)
    assert tokens(treebank_text, config) == tokens(plain_text, config)
    assert "doesn't" in tokens("does n't", config) and tokens("n't bad", config) == ["not", "bad"]
    assert tokens("does n't") == ["does", "n't"]  # off by default: IMDB text is not treebank text


def test_stop_word_removal_keeps_negations():
    config = PreprocessingConfig(remove_stopwords=True)
    assert tokens("This is not a good movie and it was no fun", config) == ["not", "good", "movie", "no", "fun"]


def test_null_and_empty_texts_give_empty_token_lists():
    assert tokenize([None, "", "   ", "<br />", "!!!"], DEFAULT).to_pylist() == [[], [], [], [], []]


def test_lone_surrogates_are_repaired_not_raised():
    assert tokens("bad\ud800movie") == ["bad", "movie"]


def test_vocabulary_orders_by_frequency_then_alphabetically():
    vocab = Vocabulary.build(tokenize(["b a c", "a b", "a d"], DEFAULT), size=3)
    assert vocab.tokens == ["a", "b", "c"]
    assert len(vocab) == 5  # padding and unknown ids are reserved


def test_encoding_reserves_padding_and_unknown_ids():
    vocab = Vocabulary(["good", "bad"])
    encoded = TextEncoder(DEFAULT, vocab).encode(["good bad ugly", ""])
    assert encoded.row(0).tolist() == [2, 3, OOV_ID]
    assert encoded.row(1).tolist() == []
    assert PAD_ID not in encoded.ids


@pytest.mark.parametrize(("truncating", "expected"), [("pre", [4, 5, 6]), ("post", [2, 3, 4])])
def test_truncation_keeps_the_configured_end(truncating, expected):
    vocab = Vocabulary(["a", "b", "c", "d", "e"])
    config = PreprocessingConfig(max_length=3, truncating=truncating)
    encoded = TextEncoder(config, vocab).encode(["a b c d e", "a"])
    assert encoded.row(0).tolist() == expected
    assert encoded.row(1).tolist() == [2]


def test_vocabulary_json_round_trip():
    vocab = Vocabulary(["ok", "東京", "don't"])
    assert Vocabulary.from_json(vocab.to_json()) == vocab


def test_config_rejects_unknown_settings_and_versions():
    with pytest.raises(PreprocessingError, match="unknown setting 'colour'"):
        read_preprocessing({**DEFAULT.model_dump(), "colour": "blue"})
    with pytest.raises(PreprocessingError, match="version 99"):
        read_preprocessing({**DEFAULT.model_dump(), "version": 99})
    with pytest.raises(PreprocessingError, match="'lowercase'"):
        read_preprocessing({**DEFAULT.model_dump(), "lowercase": "yes"})
    assert read_preprocessing(json.loads(json.dumps(DEFAULT.model_dump()))) == DEFAULT


def test_padding_and_take():
    batch = EncodedBatch(np.array([5, 6, 7, 8], dtype=np.int32), np.array([0, 3, 3, 4]))
    assert batch.padded().tolist() == [[5, 6, 7], [0, 0, 0], [8, 0, 0]]
    assert batch.take([2, 0]).rows()[1].tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="shorter than the longest row"):
        pad_rows(batch.rows(), width=2)


def test_arrow_input_matches_python_input():
    texts = ["One <br/>two", None, "Three!"]
    assert tokenize(pa.array(texts), DEFAULT).to_pylist() == tokenize(texts, DEFAULT).to_pylist()


VOCAB = Vocabulary(["the", "good", "bad", "film", "not", "é", "東"])


@pytest.mark.slow
def test_tokens_are_the_same_on_every_call():
    """pyarrow 25's utf8_split_whitespace gives a " " token for ': :' here in some calls and not others."""
    texts = [None, None, "0" * 43, "Ù", "000000000¸ÀË", ": :"]
    config = PreprocessingConfig(remove_stopwords=False)
    results = {str(tokenize(texts, config).to_pylist()) for _ in range(200)}
    assert results == {str([[], [], ["0" * 43], ["ù"], ["000000000", "\u0327àë"], []])}


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), st.text()), max_size=8),
    max_length=st.integers(1, 20),
    truncating=st.sampled_from(["pre", "post"]),
    contractions=st.booleans(),
    stopwords=st.booleans(),
    treebank=st.booleans(),
)
@pytest.mark.slow
def test_encoding_never_raises_and_respects_bounds(texts, max_length, truncating, contractions, stopwords, treebank):
    config = PreprocessingConfig(
        max_length=max_length,
        truncating=truncating,
        expand_contractions=contractions,
        remove_stopwords=stopwords,
        treebank=treebank,
    )
    encoder = TextEncoder(config, VOCAB)
    encoded = encoder.encode(texts)
    assert len(encoded) == len(texts)
    assert (encoded.lengths <= max_length).all()
    assert ((encoded.ids >= OOV_ID) & (encoded.ids < len(VOCAB))).all()
    again = encoder.encode(texts)
    assert np.array_equal(encoded.ids, again.ids) and np.array_equal(encoded.offsets, again.offsets)


@settings(max_examples=200, deadline=None)
@given(st.text())
@pytest.mark.slow
def test_cleaning_is_idempotent_on_its_tokens(text):
    first = tokens(text)
    assert tokens(" ".join(first)) == first
    assert clean([text], DEFAULT)[0].as_py() is not None


def test_encoding_split_across_threads_equals_one_call():
    from concurrent.futures import ThreadPoolExecutor

    encoder = TextEncoder(PreprocessingConfig(max_length=5), VOCAB)
    texts = ["the good film", None, "", "bad bad film not good at all", "東 é", "film"] * 3
    expected = encoder.encode(texts).rows()
    with ThreadPoolExecutor(3) as pool:
        for parts in (1, 2, 3, 7, 40):
            got = encoder.encode_parallel(texts, pool, parts).rows()
            assert [r.tolist() for r in got] == [r.tolist() for r in expected], parts
