"""Cleaning and tokenization of video metadata text (titles, descriptions, tags).

Everything here is a pure function of its inputs and runs on the hot path of both the
Beam preprocessing pipeline and the batch predictor, so:

* every regular expression is compiled once, at import time;
* the stopword set and the Snowball stemmer are built once and cached
  (``functools.lru_cache``), and stems are memoised per token;
* nothing is downloaded: no ``nltk.download``, no punkt / ``word_tokenize``.

The character-class patterns use the third-party :mod:`regex` engine (always installed
with nltk, whose ``RegexpTokenizer`` compiles through it too) because the stdlib
:mod:`re` has no ``\\p{...}`` Unicode categories.

Typical use::

    tokens = text_tokens([title, description, *tags], TextConfig(stem=True))
"""

from __future__ import annotations

import dataclasses
import functools
import html
import unicodedata
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import NamedTuple

import regex
from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import RegexpTokenizer

__all__ = [
    "DEFAULT_CONFIG",
    "TextConfig",
    "clean_text",
    "load_stopwords",
    "text_tokens",
    "tokenize",
]

_DIGIT_POLICIES = frozenset({"drop", "keep", "token"})
NUM_TOKEN = "<num>"


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Options for :func:`clean_text` / :func:`tokenize` (hashable, used as a cache key).

    Attributes:
        ascii_only: False keeps letters of every script; True folds accents
            ("café" -> "cafe") and drops whatever is still non-ASCII.
        digits: "drop" removes all-digit tokens, "keep" keeps them, "token" replaces
            each one by ``"<num>"``. Mixed tokens such as "4k" or "mp3" are always kept.
        stem: apply Snowball English stemming to ASCII-letter tokens.
        remove_stopwords: drop tokens in ``data/stopwords_en.txt`` (before stemming).
        bigrams: append "a_b" bigrams of consecutive unigrams after the unigrams.
        min_token_chars: drop shorter tokens (single CJK characters are exempt).
        max_tokens: keep at most this many unigrams (bigrams are built afterwards).
    """

    ascii_only: bool = False
    digits: str = "drop"
    stem: bool = False
    remove_stopwords: bool = True
    bigrams: bool = False
    min_token_chars: int = 2
    max_tokens: int = 5000

    def __post_init__(self) -> None:
        if self.digits not in _DIGIT_POLICIES:
            raise ValueError(
                f"`digits` must be one of {sorted(_DIGIT_POLICIES)}. Received: digits={self.digits!r}"
            )
        if self.min_token_chars < 1:
            raise ValueError(
                f"`min_token_chars` must be >= 1. Received: min_token_chars={self.min_token_chars!r}"
            )
        if self.max_tokens < 1:
            raise ValueError(f"`max_tokens` must be >= 1. Received: max_tokens={self.max_tokens!r}")


DEFAULT_CONFIG = TextConfig()

# --- clean_text patterns ------------------------------------------------------------

# Literal backslash escapes as exported in YouTube CSV descriptions, plus real ones.
_ESCAPED_WS_RE = regex.compile(r"\\[nrt]|[\n\r\t]")
# <script>/<style> blocks with their contents; the body may not contain another opening
# tag of the same kind, which keeps the scan linear when closing tags are missing.
_SCRIPT_STYLE_RE = regex.compile(
    r"<(script|style)\b[^>]*+>(?:[^<]++|<(?!/?\1\b))*+</\1\s*>", regex.I
)
# A tag must start with a letter, "/", "!" or "?" so that "a < b" or "<3" survive.
_TAG_RE = regex.compile(r"<[a-z/!?][^<>]*+>", regex.I)
# URL / e-mail patterns stay linear on hostile input such as "a.a.a.a...": possessive
# quantifiers (no backtracking), a look-behind so a match can only start at a word start,
# and a look-behind (not a backtracking group) to check the top-level domain.
_URL_CHARS = r"[^\s<>\"]"
_START = r"(?<![a-z0-9._%+@/-])"
_DOMAIN = r"[a-z0-9-]++(?:\.[a-z0-9-]++)++(?<=\.[a-z]{2,})"
_URL_EMAIL_RE = regex.compile(
    rf"""
    \b(?:https?|ftp)://{_URL_CHARS}++                # scheme URLs
    | \bwww\d{{0,3}}\.{_URL_CHARS}++                 # www.example.com...
    | {_START}[a-z0-9._%+-]++@{_DOMAIN}              # e-mail addresses
    | {_START}{_DOMAIN}/{_URL_CHARS}*+               # bare domain with a path: bit.ly/x
    """,
    regex.I | regex.X,
)
# Letters that NFKD does not decompose but that have an obvious ASCII spelling.
_ASCII_FOLD = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ł": "l", "ı": "i"}
)
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'"})
# Format characters (soft hyphen, zero-width joiners, BOM, bidi marks) vanish.
_FORMAT_RE = regex.compile(r"\p{Cf}+")
# Punctuation, symbols (emoji included), controls and unassigned code points become a
# space, except an apostrophe between two letters ("don't", "rock'n'roll").
_PUNCT_RE = regex.compile(
    r"(?V1)(?:(?<![\p{L}\p{M}])'|'(?!\p{L})|[[\p{P}\p{S}\p{Cc}\p{Co}\p{Cs}\p{Cn}]--[']])+"
)

# --- tokenize patterns --------------------------------------------------------------

# Han ideographs (+ iteration marks), Hiragana, Katakana, Hangul syllables: one token
# per character. This includes the prolonged sound mark "ー" (U+30FC).
_CJK = (
    r"\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
)
_WORD = rf"[[\p{{L}}\p{{M}}\p{{N}}]--[{_CJK}]]"
_TOKENIZER = RegexpTokenizer(rf"(?V1)[{_CJK}]|{_WORD}+(?:'{_WORD}+)*")
_CJK_CHAR_RE = regex.compile(rf"[{_CJK}]")
_STEMMABLE_RE = regex.compile(r"[a-z]+(?:'[a-z]+)*")


def clean_text(text: str | None, config: TextConfig = DEFAULT_CONFIG) -> str:
    """Normalise one metadata field into lowercase, space-separated words.

    Steps: literal/real newlines and tabs -> space; HTML entities unescaped, tags and
    script/style blocks removed; URLs and e-mail addresses removed; NFKC + casefold;
    optional ASCII folding; punctuation/symbols/emoji -> space (apostrophes between
    letters kept as "'"); whitespace collapsed. Digits are kept (see :func:`tokenize`).

    Args:
        text: Raw field; None is treated as "".
        config: Only ``ascii_only`` matters here.

    Returns:
        The cleaned string, "" when nothing survives.
    """
    if not text:
        return ""
    text = _ESCAPED_WS_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if "<" in text:
        text = _TAG_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
    text = _URL_EMAIL_RE.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    if config.ascii_only and not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
        text = text.encode("ascii", "ignore").decode("ascii")
    text = _FORMAT_RE.sub("", text.translate(_APOSTROPHES))
    text = _PUNCT_RE.sub(" ", text)
    return " ".join(text.split())


class _Plan(NamedTuple):
    """Per-config resources, built once per distinct :class:`TextConfig`."""

    stopwords: frozenset[str]
    stem: Callable[[str], str] | None


@functools.lru_cache(maxsize=1)
def load_stopwords() -> frozenset[str]:
    """Return the English stopword set shipped in ``transforms/data/stopwords_en.txt``.

    Blank lines and lines starting with "#" are ignored; words are casefolded. Cached.
    """
    resource = files("transforms") / "data" / "stopwords_en.txt"
    lines = resource.read_text(encoding="utf-8").splitlines()
    return frozenset(
        word.strip().casefold()
        for word in lines
        if word.strip() and not word.lstrip().startswith("#")
    )


@functools.lru_cache(maxsize=1)
def _stemmer() -> SnowballStemmer:
    """Return the shared Snowball English stemmer (needs no downloaded data)."""
    return SnowballStemmer("english")


@functools.lru_cache(maxsize=1 << 17)
def _stem(token: str) -> str:
    """Stem one ASCII token, memoised (Snowball costs ~20 us per call)."""
    return _stemmer().stem(token)


@functools.lru_cache(maxsize=64)
def _plan(config: TextConfig) -> _Plan:
    """Resolve the stopword set and stem function that ``config`` asks for."""
    stopwords = load_stopwords() if config.remove_stopwords else frozenset()
    return _Plan(stopwords=stopwords, stem=_stem if config.stem else None)


def _keep_short(token: str) -> bool:
    """True for a token below ``min_token_chars`` that must survive (one CJK char)."""
    return len(token) == 1 and _CJK_CHAR_RE.match(token) is not None


def _unigrams(cleaned: str, config: TextConfig, limit: int) -> list[str]:
    """Tokenize ``cleaned`` and apply digits, length, stopword and stem rules.

    At most ``limit`` tokens are returned (order preserved, bigrams not built).
    """
    plan = _plan(config)
    min_chars = config.min_token_chars
    out: list[str] = []
    for token in _TOKENIZER.tokenize(cleaned):
        if token.isdecimal():
            if config.digits == "drop":
                continue
            if config.digits == "token":
                token = NUM_TOKEN
        if len(token) < min_chars and not _keep_short(token):
            continue
        if token in plan.stopwords:
            continue
        if plan.stem is not None and _STEMMABLE_RE.fullmatch(token):
            token = plan.stem(token)
        out.append(token)
        if len(out) >= limit:
            break
    return out


def _bigrams(unigrams: list[str]) -> list[str]:
    """Return "a_b" for each pair of consecutive tokens."""
    return [f"{a}_{b}" for a, b in zip(unigrams, unigrams[1:], strict=False)]


def tokenize(cleaned: str, config: TextConfig = DEFAULT_CONFIG) -> list[str]:
    """Split a :func:`clean_text` result into tokens.

    Words are runs of letters/marks/digits of any script (internal apostrophes kept);
    each Han/Hiragana/Katakana/Hangul character is its own token. Then, in order: the
    digits policy, ``min_token_chars`` (single CJK characters exempt), stopwords,
    stemming, ``max_tokens`` truncation, and bigrams appended after the unigrams.

    Args:
        cleaned: Output of :func:`clean_text`.
        config: Tokenization options.

    Returns:
        The token list (deterministic, input order preserved); [] for empty input.
    """
    if not cleaned:
        return []
    unigrams = _unigrams(cleaned, config, config.max_tokens)
    if config.bigrams:
        return unigrams + _bigrams(unigrams)
    return unigrams


def text_tokens(fields: Iterable[str | None], config: TextConfig = DEFAULT_CONFIG) -> list[str]:
    """Clean and tokenize several fields (title, description, each tag, ...).

    Each field is cleaned and tokenized separately, so bigrams never cross a field
    boundary. ``max_tokens`` caps the unigrams of all fields together. The result is
    every field's unigrams in order, followed (if ``config.bigrams``) by every field's
    bigrams in order; ``text_tokens([x]) == tokenize(clean_text(x))``.

    Args:
        fields: Raw field values; None and empty fields are skipped.
        config: Cleaning/tokenization options.

    Returns:
        The token list, [] when nothing survives.
    """
    unigrams: list[str] = []
    bigrams: list[str] = []
    for field in fields:
        remaining = config.max_tokens - len(unigrams)
        if remaining <= 0:
            break
        if not field:
            continue
        cleaned = clean_text(field, config)
        if not cleaned:
            continue
        field_unigrams = _unigrams(cleaned, config, remaining)
        unigrams.extend(field_unigrams)
        if config.bigrams:
            bigrams.extend(_bigrams(field_unigrams))
    return unigrams + bigrams
