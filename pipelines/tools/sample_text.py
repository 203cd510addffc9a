"""Labels and text of the synthetic sample catalog's records.

:class:`TextGenerator` draws a video's 1-3 categories (Zipf-ish primary, partner-biased
co-labels) and writes its title, description and tags: the keywords of its categories
mixed with filler words, ~10% of keyword slots leaked from an unlabelled "confounder"
category, plus the noise of real exports (HTML, URLs, literal ``\\n``, emoji, accented
and non-Latin phrases, ``|``-joined tags, missing descriptions). It draws from the RNG
it is given, in a fixed order, so the catalog that calls it stays byte-identical for
the same seed; reordering any draw here changes every generated catalog.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect
from typing import Any

from pipelines.tools.sample_vocabulary import (
    ACCENTED,
    CATEGORIES,
    EMOJI,
    EMPTY_TITLES,
    FILLER,
    HTML_BREAKS,
    KEYWORDS,
    NON_LATIN,
    PARTNERS,
)

_KW = tuple(KEYWORDS[name] for name in CATEGORIES)
_ZIPF_CUM = list(itertools.accumulate(1.0 / rank for rank in range(1, len(CATEGORIES) + 1)))
_CONFUSION = 0.12  # ~10% of keyword slots go to an unlabelled "confounder" category
_PARTNER_CONFOUND = 0.7  # how often the confounder is a usual partner of the primary
_LABEL_SHARES = ((1.0,), (0.8, 0.2), (0.7, 0.15, 0.15))  # keyword share per label
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_EMPHASIS = ("<b>{}</b>", "&quot;{}&quot;", "{}&#39;s", "<i>{}</i>")


def _keyword_slots(key: tuple[int, ...], n: int) -> list[str]:
    """``n`` keywords of the categories in ``key`` (primary first), split by _LABEL_SHARES."""
    shares = _LABEL_SHARES[len(key) - 1]
    counts = [round(n * share) for share in shares[1:]]
    counts.insert(0, n - sum(counts))
    offset = 7 * sum(key)  # vary which keywords a small share covers
    return [
        _KW[c][(offset + i) % len(_KW[c])]
        for c, count in zip(key, counts, strict=True)
        for i in range(count)
    ]


class TextGenerator:
    """Draws label sets and renders records from one shared ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._pools: dict[tuple[int, ...], tuple[list[str], list[str]]] = {}

    def labels(self) -> tuple[int, ...]:
        """1-3 category indices, primary first: Zipf-ish primary, partner-biased co-labels."""
        rand = self.rng.random
        u = rand()
        want = 1 if u < 0.55 else 2 if u < 0.90 else 3
        chosen = [bisect(_ZIPF_CUM, rand() * _ZIPF_CUM[-1])]
        while len(chosen) < want:
            if rand() < 0.6:
                partners = PARTNERS[chosen[0]]
                cand = partners[int(rand() * len(partners))]
            else:
                cand = bisect(_ZIPF_CUM, rand() * _ZIPF_CUM[-1])
            if cand not in chosen:
                chosen.append(cand)
        return tuple(chosen)

    def record(self, video_id: str, key: tuple[int, ...]) -> dict[str, Any]:
        """A valid, non-empty record without updated_at."""
        rng = self.rng
        mixed, own = self._pool(key)
        other = self._confounder(key)
        # One draw decides the noise. 10-bit slots (value < p*1024 means "on"): 0 emoji,
        # 1 HTML, 2 URL, 3 literal \n, 4 accented, 5 non-Latin, 6 "|" tags, 7 empty
        # description; then single bits 80-83 pick variants, 84-91 a title keyword and
        # 92-99 an emoji.
        bits = rng.getrandbits(100)
        title = self._draw(mixed, 3, 9)
        title.insert(int(rng.random() * len(title)), own[bits >> 84 & 255])
        tags = self._draw(own, 2, 8)
        words = [] if (bits >> 70 & 1023) < 102 else self._draw(mixed, 3, 60)
        self._confuse(other, (title, 0.5), (tags, 1.0), (words, 0.4))
        for slot, p, side, table in ((40, 82, 82, ACCENTED), (50, 51, 83, NON_LATIN)):
            if (bits >> slot & 1023) < p:  # ~8% accented / ~5% non-Latin, in title or tags
                phrases = table[key[int(rng.random() * len(key))]]
                (title if bits >> side & 1 else tags).append(
                    phrases[int(rng.random() * len(phrases))]
                )
        if (bits & 1023) < 102:  # ~10% emoji
            title.insert(0 if bits >> 81 & 1 else len(title), EMOJI[(bits >> 92) % len(EMOJI)])
        text = " ".join(title)
        record: dict[str, Any] = {"video_id": video_id, "title": text[:1].upper() + text[1:]}
        description = self._description(words, bits)
        if description is not None:
            record["description"] = description
        tags = list(dict.fromkeys(tags))
        record["tags"] = "|".join(tags) if (bits >> 60 & 1023) < 307 else tags
        record["categories"] = [CATEGORIES[c] for c in sorted(key)]
        return record

    def empty_record(self, video_id: str, key: tuple[int, ...]) -> dict[str, Any]:
        """A record whose text has no words once emoji, URLs and punctuation are removed."""
        rng = self.rng
        record: dict[str, Any] = {"video_id": video_id, "title": rng.choice(EMPTY_TITLES)}
        style = rng.randrange(3)
        if style:
            record["description"] = ""
            record["tags"] = [] if style == 1 else ""
        record["categories"] = [CATEGORIES[c] for c in sorted(key)]
        return record

    def _pool(self, key: tuple[int, ...]) -> tuple[list[str], list[str]]:
        """(keyword+filler, keyword-only) pools of exactly 256 words for a label set.

        256 entries let one random byte pick one word (``_draw``), which keeps the
        generator fast. The mixed pool holds every filler word and 30-42% keywords;
        co-labels get a smaller share of the keyword slots than the primary label.
        """
        pool = self._pools.get(key)
        if pool is None:
            n_kw = 60 + 16 * len(key)
            mixed = _keyword_slots(key, n_kw) + [FILLER[i % len(FILLER)] for i in range(256 - n_kw)]
            pool = self._pools[key] = (mixed, _keyword_slots(key, 256))
        return pool

    def _draw(self, pool: list[str], lo: int, hi: int) -> list[str]:
        """Between ``lo`` and ``hi`` words (inclusive) from a 256-word pool."""
        n = lo + int(self.rng.random() * (hi - lo + 1))
        return list(map(pool.__getitem__, self.rng.randbytes(n)))

    def _confounder(self, key: tuple[int, ...]) -> int:
        """An unlabelled category whose keywords leak into the text: often a usual partner."""
        rand = self.rng.random
        partners = PARTNERS[key[0]]
        other = partners[int(rand() * len(partners))] if rand() < _PARTNER_CONFOUND else key[0]
        while other in key:
            other = int(rand() * len(CATEGORIES))
        return other

    def _confuse(self, other: int, *fields: tuple[list[str], float]) -> None:
        """Give ~_CONFUSION of each field's keyword slots to category ``other``.

        A field is ``(words, keyword share)``; expected replacements are fractional, so
        the count is rounded up or down at random.
        """
        rand, pool = self.rng.random, _KW[other]
        for words, share in fields:
            for _ in range(int(len(words) * share * _CONFUSION + rand())):
                words[int(rand() * len(words))] = pool[int(rand() * len(pool))]

    def _url(self) -> str:
        """A URL in one of five shapes, or a contact e-mail address."""
        rng = self.rng
        word, code = rng.choice(FILLER), "".join(rng.choices(_ALNUM, k=7))
        kind = rng.randrange(6)
        if kind == 5:
            return f"contact: {word}.team@gmail.com"
        return (
            f"https://www.{word}hub.com/watch?v={code}",
            f"http://{word}.example.org/{code}",
            f"www.{word}shop.com",
            f"bit.ly/{code}",
            f"https://youtu.be/{code}",
        )[kind]

    def _description(self, words: list[str], bits: int) -> str | None:
        """Description text with HTML / URL / literal-backslash-n noise; None means no key."""
        rng = self.rng
        if not words:  # ~10% empty: "" or no key at all
            return None if bits >> 80 & 1 else ""
        if (bits >> 10 & 1023) < 154:  # ~15% HTML
            words.insert(rng.randrange(len(words) + 1), rng.choice(HTML_BREAKS))
            i = rng.randrange(len(words))
            words[i] = rng.choice(_EMPHASIS).format(words[i])
        if (bits >> 20 & 1023) < 205:  # ~20% URL or e-mail
            words.insert(rng.randrange(len(words) + 1), self._url())
        if (bits >> 30 & 1023) < 102:  # ~10% literal backslash-n (CSV export artefact)
            cut = rng.randrange(1, len(words))
            return " ".join(words[:cut]) + rng.choice(("\\n", "\\n\\n")) + " ".join(words[cut:])
        return " ".join(words)
