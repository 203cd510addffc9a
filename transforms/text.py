"""Cleaning and tokenization of video metadata text, as TensorFlow string ops.

This is the one text path of the product: ``preprocessing_fn`` runs it inside the
tf.Transform graph, so the exported SavedModel takes raw ``title``, ``description``
and ``tags`` strings, and the batch predictor, nightly, evaluate and ``serve`` all
score through that same graph. Everything is RE2 (``tf.strings``) or
``tensorflow-text`` (NFKC case folding), linear-time on hostile input; stemming is a
lookup table built at analysis time (``transforms.stems``).

    tokens = video_tokens(titles, descriptions, tags, TextConfig())   # [batch, (tokens)]
    text_tokens(["Cat videos", None])   # eager, one video: ["cat", "videos", "cat_videos"]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from importlib.resources import files

import tensorflow as tf
import tensorflow_text as tf_text  # registers the ops the graph uses, for every loader

_DIGIT_POLICIES = ("drop", "keep", "token")
NUM_TOKEN = "<num>"
TAG_SEPARATOR = "|"  # a video's tags travel as one string: "cats|funny cats"


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Options of the text graph (hashable, saved with every preprocess run and model).

    Attributes:
        ascii_only: False keeps letters of every script; True folds accents
            ("café" -> "cafe") and drops whatever is still non-ASCII.
        digits: "drop" removes all-digit tokens, "keep" keeps them, "token" replaces
            each one by ``"<num>"``. Mixed tokens such as "4k" or "mp3" are always kept.
        stem: Snowball English stems of ASCII-letter tokens (a table built at analysis).
        remove_stopwords: drop tokens in ``data/stopwords_en.txt`` (before stemming).
        bigrams: append "a_b" bigrams of consecutive unigrams after the unigrams.
        min_token_chars: drop shorter tokens (single CJK characters are exempt).
        max_tokens: keep at most this many unigrams (bigrams are built afterwards).
    """

    ascii_only: bool = False
    digits: str = "drop"
    stem: bool = False
    remove_stopwords: bool = True
    bigrams: bool = True  # 1-2-grams: better on the eval split of every catalog measured
    min_token_chars: int = 2
    max_tokens: int = 5000

    def __post_init__(self) -> None:
        """Reject invalid option values with a ValueError naming the received value."""
        if self.digits not in _DIGIT_POLICIES:
            raise ValueError(
                f"digits must be one of {_DIGIT_POLICIES}. Received: digits={self.digits!r}"
            )
        if self.min_token_chars < 1:
            raise ValueError(
                f"min_token_chars must be >= 1. Received: min_token_chars={self.min_token_chars!r}"
            )
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1. Received: max_tokens={self.max_tokens!r}")


DEFAULT_CONFIG = TextConfig()

# --- cleaning (RE2 has no look-around: a preceding character is captured and put back)

_ENTITIES = (  # &amp; first and twice: double-escaped text ("&amp;lt;") is common
    (r"&(?i:amp);", "&"), (r"&(?i:amp);", "&"), (r"&(?i:lt);", "<"), (r"&(?i:gt);", ">"),
    (r"&(?:#0*39|#[xX]0*27|apos);", "'"), (r"&#?[0-9A-Za-z]{1,8};", " "),
)  # fmt: skip
_SCRIPT_STYLE = r"(?is)<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>"
_TAG = r"<[A-Za-z/!?][^<>]*>"  # a tag starts with a letter, "/", "!" or "?": "a < b", "<3" stay
_URL_CHARS = r"[^\s<>\"]"
_URLS = (  # scheme URLs and www..., then e-mail addresses and bare domains with a path
    rf"(^|[^A-Za-z0-9])(?:(?i:https?|ftp)://{_URL_CHARS}+|(?i:www)\d{{0,3}}\.{_URL_CHARS}+)",
    rf"(^|[^A-Za-z0-9._%+@/-])(?:[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    rf"|(?:[A-Za-z0-9-]+\.)+[A-Za-z]{{2,}}/{_URL_CHARS}*)",
)
_ASCII_SPELLINGS = tuple(zip("æœøłđðþı", ("ae", "oe", "o", "l", "d", "d", "th", "i"), strict=True))
_KEPT = "\x01"  # marks an apostrophe between two letters while punctuation is removed
_VANISH = r"[\p{Cf}\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]"  # soft hyphen, ZWJ, BOM, emoji VS
_SPACES = r"[\s\p{P}\p{S}\p{Z}\p{Co}\p{Me}\x00\x02-\x1f\x7f-\x9f]+"  # ...and whitespace
_CJK = (
    "[\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]"
)
_STEMMABLE = r"[a-z]+(?:'[a-z]+)*"


def _replace(text: tf.Tensor, pattern: str, rewrite: str) -> tf.Tensor:
    return tf.strings.regex_replace(text, pattern, rewrite)


def _only_where(text: tf.Tensor, pattern: str, step: Callable[[tf.Tensor], tf.Tensor]):
    """``step`` applied only to the strings that contain ``pattern`` (a cheap test):
    most titles have no "<", "&" or "/", and skip the expensive passes."""
    hit = tf.cast(tf.strings.regex_full_match(text, f"(?s).*(?:{pattern}).*"), tf.int32)
    positions = tf.dynamic_partition(tf.range(tf.size(text)), hit, 2)
    parts = tf.dynamic_partition(text, hit, 2)
    return tf.dynamic_stitch(positions, [parts[0], step(parts[1])])


def _unescape(text: tf.Tensor) -> tf.Tensor:
    for pattern, rewrite in _ENTITIES:
        text = _replace(text, pattern, rewrite)
    return text


def _strip_markup(text: tf.Tensor) -> tf.Tensor:
    return _replace(_replace(text, _SCRIPT_STYLE, " "), _TAG, " ")


def _strip_urls(text: tf.Tensor) -> tf.Tensor:
    for pattern in _URLS:
        text = _replace(text, pattern, r"\1 ")
    return text


def _fold_ascii(text: tf.Tensor) -> tf.Tensor:
    text = tf_text.normalize_utf8(text, "NFKD")
    for letter, spelling in _ASCII_SPELLINGS:
        text = _replace(text, letter, spelling)
    return _replace(text, r"[^\x00-\x7f]", "")


def _punctuation(text: tf.Tensor) -> tf.Tensor:
    """Apostrophes survive only between two letters; other punctuation, symbols,
    emoji and separators become spaces; format characters vanish."""
    text = _replace(_replace(text, "[\u2019\u02bc]", "'"), "\u200b", " ")
    text = _only_where(text, "'", _mark_kept_apostrophes)
    text = _replace(_replace(text, _VANISH, ""), _SPACES, " ")  # one pass: runs -> " "
    return tf.strings.strip(_replace(text, _KEPT, "'"))


def _mark_kept_apostrophes(text: tf.Tensor) -> tf.Tensor:
    for _ in range(2):  # "rock'n'roll": the second pass takes the overlapping pairs
        text = _replace(text, r"(\pL)'(\pL)", rf"\1{_KEPT}\2")
    return text


def clean(text: tf.Tensor, config: TextConfig = DEFAULT_CONFIG) -> tf.Tensor:
    """Normalise a string tensor into lowercase, space-separated words.

    Literal "\\n", "\\r", "\\t" -> space; common HTML entities decoded (other
    entities -> space); tags and script/style blocks removed; URLs and e-mail
    addresses removed; NFKC + case folding; optional ASCII folding; punctuation,
    symbols and emoji -> space (apostrophes between letters kept); whitespace
    collapsed. Digits are kept (see :func:`tokens_of`).
    """
    text = _replace(text, r"\\[nrt]", " ")
    text = _only_where(text, "&", _unescape)
    text = _only_where(text, "<", _strip_markup)
    text = _only_where(text, "[/@]|(?i:www)", _strip_urls)
    text = tf_text.case_fold_utf8(text)  # NFKC_Casefold
    if config.ascii_only:
        text = _only_where(text, r"[^\x00-\x7f]", _fold_ascii)
    return _punctuation(text)


@functools.lru_cache(maxsize=1)
def load_stopwords() -> frozenset[str]:
    """Return the English stopword set shipped in ``transforms/data/stopwords_en.txt``.

    Blank lines and lines starting with "#" are ignored; words are casefolded. Cached.
    """
    resource = files("transforms") / "data" / "stopwords_en.txt"
    words = (line.strip() for line in resource.read_text(encoding="utf-8").splitlines())
    return frozenset(word.casefold() for word in words if word and not word.startswith("#"))


@functools.lru_cache(maxsize=1)
def _stopword_pattern() -> str:
    """The stopwords as one RE2 alternation (a DFA: no table, no resource to track)."""
    return "(?:" + "|".join(sorted(load_stopwords())) + ")"


def _keep_token(tokens: tf.Tensor, config: TextConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """(tokens after the digits policy, which of them to keep)."""
    decimal = tf.strings.regex_full_match(tokens, r"\p{Nd}+")
    keep = tf.ones_like(decimal)
    if config.digits == "drop":
        keep = ~decimal
    elif config.digits == "token":
        tokens = tf.where(decimal, NUM_TOKEN, tokens)
    long_enough = tf.strings.length(tokens, unit="UTF8_CHAR") >= config.min_token_chars
    keep &= long_enough | tf.strings.regex_full_match(tokens, _CJK)
    if config.remove_stopwords:
        keep &= ~tf.strings.regex_full_match(tokens, _stopword_pattern())
    return tokens, keep


def tokens_of(cleaned: tf.Tensor, config: TextConfig = DEFAULT_CONFIG) -> tf.RaggedTensor:
    """Unigrams of each cleaned string: ``[n, (tokens)]``.

    Words are runs of letters, marks and digits of any script (internal apostrophes
    kept); each Han/Hiragana/Katakana/Hangul character is its own word. Then the
    digits policy, ``min_token_chars`` (single CJK characters exempt) and stopwords.
    """
    spaced = _replace(_replace(cleaned, _CJK, r" \0 "), r"(^|\s)\pM+", r"\1")
    words = tf.strings.split(spaced)
    values, keep = _keep_token(words.flat_values, config)
    return tf.ragged.boolean_mask(words.with_flat_values(values), words.with_flat_values(keep))


def video_fields(title: tf.Tensor, description: tf.Tensor, tags: tf.Tensor) -> tf.RaggedTensor:
    """``[batch]`` title, description and ``|``-joined tags to ``[batch, (fields)]``."""
    head = tf.RaggedTensor.from_tensor(tf.stack([title, description], axis=1))
    return tf.concat([head, tf.strings.split(tags, TAG_SEPARATOR)], axis=1)


def video_unigrams(fields: tf.RaggedTensor, config: TextConfig) -> tf.RaggedTensor:
    """Unigrams per field, ``[batch, (fields), (tokens)]``, at most ``max_tokens`` per
    video in field order (the ``stem`` option is applied later, by a lookup)."""
    return _at_most(fields.with_values(clean(fields.values, config)), config)


def _at_most(cleaned: tf.RaggedTensor, config: TextConfig) -> tf.RaggedTensor:
    """Cleaned ``[batch, (fields)]`` to unigrams, ``max_tokens`` per video."""
    nested = cleaned.with_values(tokens_of(cleaned.values, config))
    position = tf.ragged.range(nested.merge_dims(1, 2).row_lengths()).flat_values
    return tf.ragged.boolean_mask(nested, nested.with_flat_values(position < config.max_tokens))


def video_tokens(unigrams: tf.RaggedTensor, config: TextConfig, stem=None) -> tf.RaggedTensor:
    """``[batch, (fields), (tokens)]`` unigrams to ``[batch, (tokens)]``: the (stemmed)
    unigrams, then, with ``bigrams``, each field's "a_b" pairs (never across fields)."""
    if stem is not None:
        unigrams = unigrams.with_flat_values(stem(unigrams.flat_values))
    out = unigrams.merge_dims(1, 2)
    if not config.bigrams:
        return out
    fields = unigrams.values
    left, right = fields[:, :-1], fields[:, 1:]
    pairs = left.with_flat_values(tf.strings.join([left.flat_values, right.flat_values], "_"))
    bigrams = tf.RaggedTensor.from_row_splits(pairs, unigrams.row_splits).merge_dims(1, 2)
    return tf.concat([out, bigrams], axis=1)


def fingerprints(unigrams: tf.RaggedTensor) -> tf.Tensor:
    """A stable int64 hash (FarmHash) of each video's cleaned words: identical texts,
    and only they (up to hash collisions), share one."""
    joined = tf.strings.reduce_join(unigrams.merge_dims(1, 2), axis=1, separator="\x1f")
    return tf.strings.to_hash_bucket_fast(joined, (1 << 63) - 1)


def video_words(title: tf.Tensor, description: tf.Tensor, tags: tf.Tensor, config: TextConfig):
    """``[batch]`` raw fields to (each video's unigram count, :func:`fingerprints`)."""
    unigrams = video_unigrams(video_fields(title, description, tags), config)
    return unigrams.merge_dims(1, 2).row_lengths(), fingerprints(unigrams)


def is_stemmable(word: str) -> bool:
    """Whether the stem table maps ``word`` (an ASCII-letter word)."""
    import re

    return re.fullmatch(_STEMMABLE, word) is not None


# --- eager helpers: one video at a time (tests, tools); the jobs run the graph batched


def _strings(values: Iterable[str | None]) -> tf.Tensor:
    return tf.constant([value or "" for value in values], tf.string)


def clean_text(text: str | None, config: TextConfig = DEFAULT_CONFIG) -> str:
    """:func:`clean` of one string; None is treated as ""."""
    return clean(_strings([text]), config)[0].numpy().decode()


def tokenize(cleaned: str, config: TextConfig = DEFAULT_CONFIG) -> list[str]:
    """:func:`video_tokens` of one already-cleaned field."""
    fields = tf.RaggedTensor.from_row_lengths(_strings([cleaned]), [1])
    return _finish(_at_most(fields, config), config)


def text_tokens(fields: Iterable[str | None], config: TextConfig = DEFAULT_CONFIG) -> list[str]:
    """Tokens of one video described by several fields (title, description, tags...):
    each field cleaned and tokenized on its own, ``max_tokens`` over all of them."""
    if isinstance(fields, str):  # would silently tokenize character by character
        raise TypeError(f"fields must be an iterable of strings. Received: {fields!r:.80}")
    values = [field for field in fields if field]
    ragged = tf.RaggedTensor.from_row_lengths(_strings(values), [len(values)])
    return _finish(video_unigrams(ragged, config), config)


def _finish(unigrams: tf.RaggedTensor, config: TextConfig) -> list[str]:
    stem = None
    if config.stem:
        from transforms.stems import stem_lookup

        stem = stem_lookup(unigrams.flat_values.numpy())
    return [t.decode() for t in video_tokens(unigrams, config, stem)[0].numpy()]
