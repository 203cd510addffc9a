"""Cleaning and tokenization of video metadata text (titles, descriptions, tags).

Pure functions on the hot path of the Beam preprocessing pipeline and the batch
predictor: regexes and the tokenizer are built at import time, per-character rules go
through lazily filled ``str.translate`` tables, the stopword set and stemmer are cached
(stems memoised per token), every pattern is linear-time on hostile input, and nothing
is downloaded (no ``nltk.download``, no punkt).

    tokens = text_tokens([title, description, *tags], TextConfig(stem=True))
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from importlib.resources import files

from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import RegexpTokenizer

_DIGIT_POLICIES = ("drop", "keep", "token")
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

# --- clean_text patterns ------------------------------------------------------------

# Literal backslash escapes as exported in YouTube CSV descriptions. Real newlines and
# tabs need no pass of their own: every later step treats them as whitespace.
_ESCAPED_WS_RE = re.compile(r"\\[nrt]")
# <script>/<style> blocks with their contents; the body may not contain another opening
# tag of the same kind, which keeps the scan linear when closing tags are missing.
_SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*+>(?:[^<]++|<(?!/?\1\b))*+</\1\s*>", re.I)
# A tag must start with a letter, "/", "!" or "?" so that "a < b" or "<3" survive.
_TAG_RE = re.compile(r"<[A-Za-z/!?][^<>]*+>")
# URLs and e-mail addresses. A match may only start where no host/address character
# precedes it, and possessive quantifiers never backtrack, so this stays linear.
_URL_CHARS = r"[^\s<>\"]"
_URL_EMAIL_RE = re.compile(
    rf"""
    (?<![A-Za-z0-9])(?i:https?|ftp)://{_URL_CHARS}++           # scheme URLs
    | (?<![A-Za-z0-9])(?i:www)\d{{0,3}}\.{_URL_CHARS}++          # www.example.com...
    | (?<![A-Za-z0-9._%+@/-])(?:
        [A-Za-z0-9._%+-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++  # e-mail addresses
      | (?:[A-Za-z0-9-]++\.)++[A-Za-z]{{2,}}+/{_URL_CHARS}*+     # bare domain + path: bit.ly/x
    )
    """,
    re.X,
)
# An apostrophe is kept only between two letters ("don't", "rock'n'roll").
_LONE_APOSTROPHE_RE = re.compile(r"'(?:(?<![^\W\d_]')|(?![^\W\d_]))")

# --- tokenize patterns --------------------------------------------------------------

# Han ideographs (+ iteration marks), Hiragana, Katakana, Hangul syllables: one token
# per character. This includes the Katakana prolonged sound mark "ー" (U+30FC).
_CJK_RE = re.compile(
    "[\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]"
)
# Words: a letter or digit of any script, then letters, combining marks and digits, with
# internal apostrophes. nltk compiles RegexpTokenizer patterns with the `regex` engine
# (nltk.redos), which understands \p{...} Unicode categories.
_WORD = r"[\p{L}\p{N}][\p{L}\p{M}\p{N}]*"
_TOKENIZER = RegexpTokenizer(rf"{_WORD}(?:'{_WORD})*")
_STEMMABLE_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")


class _LazyTable(dict):
    """A ``str.translate`` table that computes each code point's entry on first use.

    Entries are kept (up to 65536 code points, far more than real text uses) so that
    each distinct character is classified once per process.
    """

    def __init__(self, rule: Callable[[str], str | None]) -> None:
        super().__init__()
        self._rule = rule

    def __missing__(self, codepoint: int) -> str | None:
        value = self._rule(chr(codepoint))
        if len(self) < 1 << 16:
            self[codepoint] = value
        return value


_APOSTROPHES = frozenset("'\u2019\u02bc")  # ' ’ ʼ
_SPACE_CATEGORIES = frozenset({"Cc", "Co", "Cs", "Cn", "Me"})  # Me: keycap U+20E3, circles
# Letters NFKD does not decompose but that have an obvious ASCII spelling.
_ASCII_SPELLINGS = dict(zip("æœøłđðþı", ("ae", "oe", "o", "l", "d", "d", "th", "i"), strict=True))


def _punct_rule(char: str) -> str | None:
    """Map one character for step 6 of :func:`clean_text`."""
    if char in _APOSTROPHES:
        return "'"
    if char == "\u200b":  # zero-width space separates words (Thai, Khmer)
        return " "
    category = unicodedata.category(char)
    # Format chars (soft hyphen, zero-width joiners, BOM, bidi) and emoji variation
    # selectors (U+FE0F in "❤️", technically combining marks) vanish.
    if category == "Cf" or "VARIATION SELECTOR" in unicodedata.name(char, ""):
        return None
    if category[0] in "PS" or category in _SPACE_CATEGORIES:
        return " "
    return char


def _ascii_rule(char: str) -> str | None:
    """Map one NFKD character to ASCII: keep ASCII, spell a few letters, drop the rest."""
    if char.isascii():
        return char
    return _ASCII_SPELLINGS.get(char)


def _spaced(match: re.Match[str]) -> str:
    """Surround a matched CJK character with spaces so that it becomes a word."""
    return f" {match.group()} "


_PUNCT_TABLE = _LazyTable(_punct_rule)
_ASCII_TABLE = _LazyTable(_ascii_rule)


def _strip_urls(text: str) -> str:
    """Replace URLs and e-mail addresses by spaces (also collapses whitespace).

    They never contain whitespace, so only words holding "." or "/" need the regex.
    """
    return " ".join(
        [
            _URL_EMAIL_RE.sub(" ", word) if "." in word or "/" in word else word
            for word in text.split()
        ]
    )


def clean_text(text: str | None, config: TextConfig = DEFAULT_CONFIG) -> str:
    """Normalise one metadata field into lowercase, space-separated words.

    Steps: literal "\\n", "\\r", "\\t" and real ones -> space; HTML unescaped, tags and
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
    if "\\" in text:
        text = _ESCAPED_WS_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(html.unescape(text))
    if "<" in text:
        text = _TAG_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
    if "/" in text or "@" in text or "www" in text.lower():
        text = _strip_urls(text)
    text = unicodedata.normalize("NFKC", text).casefold()
    if config.ascii_only and not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(_ASCII_TABLE)
    text = text.translate(_PUNCT_TABLE)
    if "'" in text:
        text = _LONE_APOSTROPHE_RE.sub(" ", text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=1)
def load_stopwords() -> frozenset[str]:
    """Return the English stopword set shipped in ``transforms/data/stopwords_en.txt``.

    Blank lines and lines starting with "#" are ignored; words are casefolded. Cached.
    """
    resource = files("transforms") / "data" / "stopwords_en.txt"
    words = (line.strip() for line in resource.read_text(encoding="utf-8").splitlines())
    return frozenset(word.casefold() for word in words if word and not word.startswith("#"))


@functools.lru_cache(maxsize=1)
def _stemmer() -> SnowballStemmer:
    """Return the shared Snowball English stemmer (needs no downloaded data)."""
    return SnowballStemmer("english")


@functools.lru_cache(maxsize=1 << 17)
def _stem(token: str) -> str:
    """Stem an ASCII-letter token, return any other token unchanged. Memoised."""
    if _STEMMABLE_RE.fullmatch(token) is None:
        return token
    return _stemmer().stem(token)


@functools.lru_cache(maxsize=64)
def _plan(config: TextConfig) -> tuple[frozenset[str], Callable[[str], str] | None]:
    """Return the (stopword set, stem function or None) that ``config`` asks for."""
    return (
        load_stopwords() if config.remove_stopwords else frozenset(),
        _stem if config.stem else None,
    )


def _unigrams(cleaned: str, config: TextConfig, limit: int) -> list[str]:
    """Tokenize ``cleaned`` and apply the digits, length, stopword and stem rules.

    At most ``limit`` tokens are returned (order preserved, no bigrams).
    """
    if not cleaned.isascii() and _CJK_RE.search(cleaned):
        cleaned = _CJK_RE.sub(_spaced, cleaned)  # each CJK character is a word
    digits, min_chars = config.digits, config.min_token_chars
    stopwords, stem = _plan(config)
    out: list[str] = []
    for token in _TOKENIZER.tokenize(cleaned):
        if token.isdecimal():
            if digits == "drop":
                continue
            if digits == "token":
                token = NUM_TOKEN
        if len(token) < min_chars and not (len(token) == 1 and _CJK_RE.match(token)):
            continue
        if token in stopwords:
            continue
        out.append(token if stem is None else stem(token))
        if len(out) == limit:
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

    Returns the token list (deterministic, input order preserved); [] for "".
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

    None and empty fields are skipped; returns [] when nothing survives.
    """
    if isinstance(fields, str):  # would silently tokenize character by character
        raise TypeError(f"fields must be an iterable of strings. Received: {fields!r:.80}")
    unigrams: list[str] = []
    bigrams: list[str] = []
    for field in fields:
        remaining = config.max_tokens - len(unigrams)
        if remaining <= 0:
            break
        cleaned = clean_text(field, config)
        if not cleaned:
            continue
        field_unigrams = _unigrams(cleaned, config, remaining)
        unigrams.extend(field_unigrams)
        if config.bigrams:
            bigrams.extend(_bigrams(field_unigrams))
    return unigrams + bigrams
