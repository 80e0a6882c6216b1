"""WordVocab: words and punctuation, specials first, decode up to the end token with natural spacing."""

from __future__ import annotations

from omnifuse.generation.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, WordVocab, words


def test_words_split_punctuation_off() -> None:
    assert words("A handwritten 3; the voice says seven.") == [
        "A", "handwritten", "3", ";", "the", "voice", "says", "seven", "."]


def test_fit_orders_by_count_and_drops_rare_words() -> None:
    vocab = WordVocab()
    vocab.fit(["a cat", "a dog", "a cat ."], min_count=2)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert vocab.tokens[4:] == ["a", "cat"]  # "dog" and "." are seen once
    assert vocab.encode("a dog") == [4, UNK_ID]


def test_decode_stops_at_the_end_token_and_spaces_punctuation() -> None:
    vocab = WordVocab()
    vocab.fit(["a handwritten three, an odd digit ."])
    ids = [BOS_ID, *vocab.encode("a handwritten three, an odd digit."), EOS_ID, *vocab.encode("junk")]
    assert vocab.decode(ids) == "a handwritten three, an odd digit."
    assert vocab.decode([PAD_ID, *vocab.encode("digit")]) == "digit"


def test_state_round_trip() -> None:
    vocab = WordVocab()
    vocab.fit(["one two", "two"])
    again = WordVocab.from_state(vocab.state_dict())
    assert again.tokens == vocab.tokens and again.encode("two one") == vocab.encode("two one")
