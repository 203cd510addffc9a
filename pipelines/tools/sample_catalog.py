"""Deterministic synthetic multi-label video catalog written as JSON Lines.

Third-party datasets cannot ship with the project, so the demo, the tests and the
benchmarks use this generator instead. Each category owns a pool of distinctive
keywords (a few with accented or non-Latin synonyms) and every video mixes the
keywords of its 1-3 categories with generic filler words, plus ~10% confusing
keywords from another category, so a linear bag-of-words model learns a useful
but imperfect tagger. The file also carries the noise of real exports: HTML, URLs,
literal ``\\n`` sequences, emoji, other scripts, ``|``-joined tags, missing
descriptions, re-published duplicates, text-less videos and malformed lines. The
returned :class:`SampleManifest` states how many of each a reader should find.

Only the standard library is used and output depends on ``(videos, seed)`` alone::

    python -m pipelines.tools.sample_catalog --out demo-out/catalog.jsonl.gz --videos 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import os
import random
import time
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "Music", "Gaming", "Cooking", "Travel", "Sports", "Science", "Comedy", "News",
    "Fitness", "Education", "Technology", "Automotive", "Fashion", "Pets & Animals",
    "Film & Animation", "Nature", "History", "Finance", "DIY & Crafts", "Kids",
)  # fmt: skip

# "Category: words"; indented lines continue the previous category.
_KEYWORD_TABLE = """
Music: song guitar piano album concert lyrics cover band singer melody chords drummer acoustic
  remix playlist karaoke orchestra symphony rap hiphop jazz vocals bassline studio ukulele violin
  encore soundtrack duet saxophone
Gaming: gameplay speedrun boss console walkthrough minecraft fortnite multiplayer controller quest
  raid loot respawn esports streamer glitch rpg shooter arcade joystick leaderboard dungeon gamer
  level checkpoint headshot playthrough noob pixel xbox
Cooking: recipe bake oven pasta chef kitchen dough grill sauce dessert bread cake seasoning soup
  ingredients noodles frying cookies marinade spatula breakfast dinner vegan flour garlic skillet
  roast barbecue pastry pizza omelette
Travel: trip flight hotel backpacking itinerary passport beach island airport hostel roadtrip
  sightseeing tourist destination cruise luggage resort wanderlust abroad landmarks jetlag visa
  souvenir excursion layover ferry guidebook airbnb vacation citytour
Sports: football soccer basketball goal match tennis league championship referee stadium playoffs
  baseball hockey striker dribble tournament coach penalty cricket rugby golf athlete touchdown
  scoreboard offside dunk transfer midfielder goalkeeper nba
Science: experiment physics chemistry biology molecule atom laboratory hypothesis quantum telescope
  astronomy galaxy genetics evolution microscope particle neuroscience planet electron gravity
  research rocket climate element theory isotope nasa spacecraft fossil dna
Comedy: funny prank sketch standup jokes parody hilarious meme skit bloopers comedian laugh satire
  impressions improv punchline spoof sitcom lol fails gag funniest humor banter
  mockumentary slapstick comedic prankster trolling cringe
News: breaking report election politics government headlines interview journalist president
  parliament debate crisis policy press correspondent senate minister protest coverage bulletin
  vote campaign diplomacy summit
  newsroom anchor verdict cabinet scandal investigation
Fitness: workout gym cardio squat hiit yoga pushups abs stretching muscle deadlift protein
  bodybuilding calories treadmill kettlebell plank reps pilates weightloss endurance dumbbell
  running mobility trainer bench sixpack crossfit burpees lunges
Education: lesson tutorial lecture homework exam study course teacher classroom university grammar
  math algebra vocabulary explained students revision geometry calculus syllabus quiz essay
  learn notes semester curriculum flashcards worksheet studytips professor
Technology: smartphone laptop unboxing gadget android iphone software processor gpu coding
  programming python robot app specs benchmark keyboard monitor chip linux cloud startup firmware
  ai wearable headphones camera smartwatch tablet cpu
Automotive: car engine supercar ev tesla horsepower turbo drift sedan suv motorcycle garage
  mechanic exhaust tires dashcam racing torque transmission pickup brakes detailing hybrid
  v8 carburetor testdrive convertible oilchange pistons roadster
Fashion: outfit style haul makeup dress lookbook sneakers streetwear skincare runway designer
  wardrobe jewelry handbag lipstick hairstyle thrift trendy accessories couture denim mascara
  vintage boutique fashionweek heels eyeliner blazer ootd model
Pets & Animals: puppy kitten dog cat pet vet adoption parrot hamster aquarium grooming rescue
  zoo bunny leash purring paws reptile goldfish shelter pony tortoise ferret
  fetch guinea kitty doggo catnip budgie litter
Film & Animation: movie trailer animation cartoon anime film director cinema scene actor oscar
  storyboard pixar cgi screenplay premiere sequel franchise cinematography shortfilm voiceover
  behindthescenes dubbed animator stopmotion blockbuster filmmaking boxoffice cast disney
Nature: forest mountains waterfall wildlife ocean river hiking birds sunset landscape rainforest
  volcano desert glacier trees flowers camping ecosystem canyon lake meadow timelapse coral safari
  storm moss mushrooms wilderness sunrise creek
History: ancient empire war medieval documentary civilization pharaoh rome castle archaeology
  revolution dynasty battle king queen century ruins historian artifacts wwii viking samurai
  knights colonial monarchy pyramids emperor crusades renaissance archives
Finance: investing stocks crypto bitcoin budget money savings dividend portfolio economy inflation
  trading retirement mortgage taxes wealth etf bank loan credit recession realestate frugal
  market passiveincome forex accounting interest cashflow bonds
DIY & Crafts: diy craft handmade woodworking knitting sewing crochet glue paint scrapbook origami
  pottery upcycle embroidery resin stencil homemade drill sanding candle beads quilting macrame
  decor workshop sawdust glitter yarn weaving papercraft
Kids: kids toys nursery rhymes baby toddler abc colors lullaby playtime preschool fairy puzzle
  lego dinosaur superhero children storytime crayons slime playground balloon
  singalong fairytale dolls bedtime counting alphabet teddy unicorn
"""

_FILLER_TEXT = """
    vlog video today best new amazing watch subscribe like share comment channel episode part
    full official live day week year time first ever top ten ultimate guide how to why what my
    our your the a with and for in on of this that is it you we i me vs try trying reaction
    challenge tips tricks easy quick simple hack life real honest crazy insane epic huge little
    big secret story moment thing things everything nothing finally again back home friends
    family morning night weekend summer winter special edition behind inside version ranking
    compilation shorts viral trending must see love great good bad worst better really very so
    just got get make made making do did doing go going went come look last next every all one
    two three guys hello welcome thanks thank please follow link below check out more info
    minutes hours beginner pro
"""
_FILLER: tuple[str, ...] = tuple(_FILLER_TEXT.split())

# "Category: phrase|phrase"; the "*" row is used for categories without their own row.
_ACCENTED_TABLE = """
Cooking: recette facile|café|crème brûlée|receta fácil|jalapeño|Käsespätzle|piña colada
Travel: voyage à Paris|día de playa|über den Wolken|Straße|été en Provence|São Paulo
Music: canción|chanson française|Lieder für dich|música en vivo
Sports: fútbol|Fußball|équipe de France|entraîneur
Fashion: élégance|tendências|prêt-à-porter
*: très bien|niño|mañana|über|schön|déjà vu|à bientôt|¡increíble!|qué tal|façon|grüß dich
"""
_NON_LATIN_TABLE = """
Cooking: 料理|レシピ|рецепт|खाना बनाना|요리
Music: 音楽|музыка|संगीत|음악|موسيقى
Gaming: ゲーム|게임|игра|ゲーム実況
Sports: футбол|كرة القدم|스포츠|サッカー|क्रिकेट
News: новости|أخبار|समाचार|ニュース|뉴스
Travel: 旅行|путешествие|여행|سفر
*: こんにちは|ありがとう|привет|спасибо|مرحبا|नमस्ते|안녕하세요|今日は|友達|друзья
"""
_EMOJI_TEXT = "🔥 😂 😍 🎉 ✨ 👍 💯 🙌 😱 ❤️ 🚀 🤯 👀 🎶 🍕 ⚽ 🎮 🌍 🐶 📚"
_EMOJI = tuple(_EMOJI_TEXT.split())
_EMPTY_TITLES = (
    "🔥🔥🔥", "😂😂😂 !!!", "!!! ??? !!!", "...", "🎉🎉 🎶", "🔥 https://bit.ly/3xQz9Lk 🔥",
    "http://www.example.com/watch?v=abc123", "👀 ??", "*** 💯 ***", "https://youtu.be/Qw3rTy ✨",
    "--- !!! ---", "🤯🤯", "(((😍)))", ":) :) :)",
)  # fmt: skip
_NOT_JSON = (
    "<html><body><h1>502 Bad Gateway</h1></body></html>", "video_id,title,description,tags",
    "Traceback (most recent call last):", "-- export truncated --", "undefined",
    "{{video_id: {vid}, title: 'unquoted keys'}}",
)  # fmt: skip
_HTML_BREAKS = ("<br>", "<br><br>", "&amp;", "<br />")
_DUP_SUFFIXES = (" (updated)", " [4K]", " - full version", " | re-upload", " (2)", "!")
_INVALID_UTF8 = (b"\xff\xfe", b"\xc3\x28", b"\xe2\x82 ", b"\x80bad\xbf")
_MALFORMED_KINDS = (
    "not_json", "truncated_json", "json_array", "missing_video_id", "empty_video_id",
    "invalid_utf8",
)  # fmt: skip
_PARTNER_TABLE = {
    "Music": ("Film & Animation", "Comedy", "Kids"), "Gaming": ("Comedy", "Technology"),
    "Cooking": ("Travel", "DIY & Crafts", "Kids"), "Travel": ("Cooking", "Nature", "History"),
    "Sports": ("Fitness", "News"), "Science": ("Education", "Technology", "Nature"),
    "Comedy": ("Gaming", "Film & Animation"), "News": ("Finance", "Sports", "Technology"),
    "Fitness": ("Sports", "Cooking"), "Education": ("Science", "History", "Kids"),
    "Technology": ("Science", "Gaming", "Automotive"), "Automotive": ("Technology", "DIY & Crafts"),
    "Fashion": ("DIY & Crafts", "Fitness"), "Pets & Animals": ("Nature", "Kids", "Comedy"),
    "Film & Animation": ("Kids", "Comedy", "Music"), "Nature": ("Pets & Animals", "Travel"),
    "History": ("Education", "Travel"), "Finance": ("News", "Technology", "Education"),
    "DIY & Crafts": ("Fashion", "Kids"), "Kids": ("Education", "Film & Animation"),
}  # fmt: skip
OVERSIZED_FIELD_CHARS = 250_000
_OVERSIZED_TEXT = ("lorem ipsum dolor sit amet " * (OVERSIZED_FIELD_CHARS // 27 + 1))[
    :OVERSIZED_FIELD_CHARS
]
_BASE_TS = 1_704_067_200  # 2024-01-01T00:00:00Z
_SPAN_S = 2 * 365 * 86_400
_MAX_ID = 9_999_999  # malformed lines take ids from the top; valid videos from 0
_CONFUSION = 0.12  # ~10% of keyword slots go to an unlabelled "confounder" category
_PARTNER_CONFOUND = 0.7  # how often the confounder is a usual partner of the primary
_LABEL_SHARES = ((1.0,), (0.8, 0.2), (0.7, 0.15, 0.15))  # keyword share per label
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _parse_table(table: str, sep: str | None) -> dict[str, tuple[str, ...]]:
    """Parse ``Name: item item`` rows (indented rows continue the previous name)."""
    rows: dict[str, list[str]] = {}
    name = ""
    for line in table.strip("\n").splitlines():
        head, colon, rest = line.partition(": ")
        if colon and not line.startswith(" "):
            name, line = head, rest
        rows.setdefault(name, []).extend(t.strip() for t in line.split(sep) if t.strip())
    return {key: tuple(items) for key, items in rows.items()}


def _per_category(table: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Rows of ``table`` in CATEGORIES order, the ``*`` row standing in for missing ones."""
    return tuple(table.get(name, table["*"]) for name in CATEGORIES)


KEYWORDS: dict[str, tuple[str, ...]] = _parse_table(_KEYWORD_TABLE, None)
_KW = tuple(KEYWORDS[name] for name in CATEGORIES)
_ACCENTED = _per_category(_parse_table(_ACCENTED_TABLE, "|"))
_NON_LATIN = _per_category(_parse_table(_NON_LATIN_TABLE, "|"))
_PARTNERS = tuple(tuple(map(CATEGORIES.index, _PARTNER_TABLE[name])) for name in CATEGORIES)
_ZIPF_CUM = list(itertools.accumulate(1.0 / rank for rank in range(1, len(CATEGORIES) + 1)))


@dataclasses.dataclass(frozen=True)
class SampleManifest:
    """What a correct reader should find in a generated catalog."""

    lines: int
    unique_videos: int
    duplicates: int
    malformed: int
    empty_text: int
    categories: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (categories as a list)."""
        return {**dataclasses.asdict(self), "categories": list(self.categories)}


_DAYS: dict[int, str] = {}
_CLOCK = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{s:02d}Z" for s in range(60)]
_JSON = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False)


def _iso(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for a UTC epoch second (dates cached: strftime is slow)."""
    day, sec = divmod(ts, 86_400)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    return f"{date}T{_CLOCK[sec // 60]}{_SECONDS[sec % 60]}"


def _encode(obj: Any) -> bytes:
    return _JSON(obj).encode("utf-8")


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


class _CatalogGenerator:
    """Plans the line order up front, then renders the lines lazily with one RNG."""

    def __init__(self, videos: int, seed: int) -> None:
        if not 1 <= videos <= 9_000_000:
            raise ValueError(f"videos must be in [1, 9000000], got {videos}")
        self.rng = random.Random(seed)
        self.videos = videos
        self._pools: dict[tuple[int, ...], tuple[list[str], list[str]]] = {}
        self._originals: dict[int, tuple[dict[str, Any], int]] = {}
        rng = self.rng
        n_empty = max(1, round(videos * 0.005))
        n_dup = min(max(1, round(videos * 0.03)), videos - n_empty)
        picked = rng.sample(range(videos), n_empty + n_dup)
        self.empty = set(picked[:n_empty])
        n_earlier = max(1, round(n_dup * 0.1))
        self.dup_later = {v: i >= n_earlier for i, v in enumerate(picked[n_empty:])}
        n_mal = max(len(_MALFORMED_KINDS) + 1, round(0.003 * (videos + n_dup)))
        kinds = [_MALFORMED_KINDS[i % len(_MALFORMED_KINDS)] for i in range(n_mal - 1)]
        self.malformed = [("oversized", 0)] + [
            (k, i // len(_MALFORMED_KINDS)) for i, k in enumerate(kinds)
        ]
        self.order = list(range(videos + n_mal))
        rng.shuffle(self.order)
        pos_of = {item: pos for pos, item in enumerate(self.order) if item in self.dup_later}
        self.inserts: dict[int, list[int]] = {}
        for video in self.dup_later:  # a duplicate goes anywhere after its original
            where = rng.randrange(pos_of[video] + 1, len(self.order) + 1)
            self.inserts.setdefault(where, []).append(video)
        self.manifest = SampleManifest(
            videos + n_dup + n_mal, videos, n_dup, n_mal, n_empty, CATEGORIES
        )

    def lines(self) -> Iterator[bytes]:
        """Yield every line (without the trailing newline) in file order."""
        inserts, videos = self.inserts, self.videos
        for pos, item in enumerate(self.order):
            for video in inserts.get(pos, ()):
                yield self._duplicate(video)
            yield self._video(item) if item < videos else self._malformed(item - videos)
        for video in inserts.get(len(self.order), ()):
            yield self._duplicate(video)

    def _labels(self) -> tuple[int, ...]:
        """1-3 category indices, primary first: Zipf-ish primary, partner-biased co-labels."""
        rand = self.rng.random
        u = rand()
        want = 1 if u < 0.55 else 2 if u < 0.90 else 3
        chosen = [bisect(_ZIPF_CUM, rand() * _ZIPF_CUM[-1])]
        while len(chosen) < want:
            if rand() < 0.6:
                partners = _PARTNERS[chosen[0]]
                cand = partners[int(rand() * len(partners))]
            else:
                cand = bisect(_ZIPF_CUM, rand() * _ZIPF_CUM[-1])
            if cand not in chosen:
                chosen.append(cand)
        return tuple(chosen)

    def _pool(self, key: tuple[int, ...]) -> tuple[list[str], list[str]]:
        """(keyword+filler, keyword-only) pools of exactly 256 words for a label set.

        256 entries let one random byte pick one word (``_draw``), which keeps the
        generator fast. The mixed pool holds every filler word and 30-42% keywords;
        co-labels get a smaller share of the keyword slots than the primary label.
        """
        pool = self._pools.get(key)
        if pool is None:
            n_kw = 60 + 16 * len(key)
            mixed = _keyword_slots(key, n_kw) + [
                _FILLER[i % len(_FILLER)] for i in range(256 - n_kw)
            ]
            pool = self._pools[key] = (mixed, _keyword_slots(key, 256))
        return pool

    def _draw(self, pool: list[str], lo: int, hi: int) -> list[str]:
        """Between ``lo`` and ``hi`` words (inclusive) from a 256-word pool."""
        n = lo + int(self.rng.random() * (hi - lo + 1))
        return list(map(pool.__getitem__, self.rng.randbytes(n)))

    def _confounder(self, key: tuple[int, ...]) -> int:
        """An unlabelled category whose keywords leak into the text: often a usual partner."""
        rand = self.rng.random
        partners = _PARTNERS[key[0]]
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
        rng = self.rng
        word, code = rng.choice(_FILLER), "".join(rng.choices(_ALNUM, k=7))
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
            words.insert(rng.randrange(len(words) + 1), rng.choice(_HTML_BREAKS))
            i = rng.randrange(len(words))
            words[i] = rng.choice(("<b>{}</b>", "&quot;{}&quot;", "{}&#39;s", "<i>{}</i>")).format(
                words[i]
            )
        if (bits >> 20 & 1023) < 205:  # ~20% URL or e-mail
            words.insert(rng.randrange(len(words) + 1), self._url())
        if (bits >> 30 & 1023) < 102:  # ~10% literal backslash-n (CSV export artefact)
            cut = rng.randrange(1, len(words))
            return " ".join(words[:cut]) + rng.choice(("\\n", "\\n\\n")) + " ".join(words[cut:])
        return " ".join(words)

    def _record(self, video_id: str, key: tuple[int, ...]) -> dict[str, Any]:
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
        for slot, p, side, table in ((40, 82, 82, _ACCENTED), (50, 51, 83, _NON_LATIN)):
            if (bits >> slot & 1023) < p:  # ~8% accented / ~5% non-Latin, in title or tags
                phrases = table[key[int(rng.random() * len(key))]]
                (title if bits >> side & 1 else tags).append(
                    phrases[int(rng.random() * len(phrases))]
                )
        if (bits & 1023) < 102:  # ~10% emoji
            title.insert(0 if bits >> 81 & 1 else len(title), _EMOJI[(bits >> 92) % len(_EMOJI)])
        text = " ".join(title)
        record: dict[str, Any] = {"video_id": video_id, "title": text[:1].upper() + text[1:]}
        description = self._description(words, bits)
        if description is not None:
            record["description"] = description
        tags = list(dict.fromkeys(tags))
        record["tags"] = "|".join(tags) if (bits >> 60 & 1023) < 307 else tags
        record["categories"] = [CATEGORIES[c] for c in sorted(key)]
        return record

    def _empty_record(self, video_id: str, key: tuple[int, ...]) -> dict[str, Any]:
        """A record whose text has no words once emoji, URLs and punctuation are removed."""
        rng = self.rng
        record: dict[str, Any] = {"video_id": video_id, "title": rng.choice(_EMPTY_TITLES)}
        style = rng.randrange(3)
        if style:
            record["description"] = ""
            record["tags"] = [] if style == 1 else ""
        record["categories"] = [CATEGORIES[c] for c in sorted(key)]
        return record

    def _video(self, index: int) -> bytes:
        video_id, key = f"v{index:07d}", self._labels()
        if index in self.empty:
            record = self._empty_record(video_id, key)
        else:
            record = self._record(video_id, key)
        ts = _BASE_TS + int(self.rng.random() * _SPAN_S)
        record["updated_at"] = _iso(ts)
        if index in self.dup_later:
            self._originals[index] = (record, ts)
        return _encode(record)

    def _duplicate(self, index: int) -> bytes:
        """Re-publication of an earlier line: changed title, later (or earlier) updated_at."""
        rng = self.rng
        record, ts = self._originals.pop(index)
        shift = rng.randrange(3600, 90 * 86_400)
        dup = dict(record, title=record["title"] + rng.choice(_DUP_SUFFIXES))
        dup["updated_at"] = _iso(ts + shift if self.dup_later[index] else ts - shift)
        return _encode(dup)

    def _malformed(self, index: int) -> bytes:
        """A line that a reader must dead-letter; ids never collide with valid ones."""
        rng = self.rng
        kind, nth = self.malformed[index]
        video_id = f"v{_MAX_ID - index:07d}"
        record = self._record(video_id, self._labels())
        record["updated_at"] = _iso(_BASE_TS + rng.randrange(_SPAN_S))
        if kind == "not_json":
            return _NOT_JSON[nth % len(_NOT_JSON)].format(vid=video_id).encode("utf-8")
        if kind == "truncated_json":
            text = json.dumps(record, ensure_ascii=False)
            return text[: rng.randrange(1, len(text) - 1)].encode("utf-8")
        if kind == "json_array":
            return _encode([record] if nth % 2 == 0 else [video_id, record["title"]])
        if kind == "missing_video_id":  # no key, an "id" key instead, or "video_id": null
            del record["video_id"]
            if nth % 3 == 1:
                record = {"id": video_id, **record}
            elif nth % 3 == 2:
                record = {"video_id": None, **record}
        elif kind == "empty_video_id":
            record["video_id"] = ""
        elif kind == "invalid_utf8":
            record["title"] += " @@BAD@@"
            bad = _INVALID_UTF8[nth % len(_INVALID_UTF8)]
            return _encode(record).replace(b"@@BAD@@", bad)
        elif kind == "oversized":
            record["description"] = _OVERSIZED_TEXT
        return _encode(record)


def generate_lines(videos: int = 3000, seed: int = 0) -> tuple[list[bytes], SampleManifest]:
    """All lines of a catalog with ``videos`` unique valid videos (no trailing newlines)."""
    generator = _CatalogGenerator(videos, seed)
    return list(generator.lines()), generator.manifest


def _write_lines(write: Callable[[bytes], object], lines: Iterable[bytes]) -> None:
    it = iter(lines)
    while chunk := list(itertools.islice(it, 4096)):
        write(b"\n".join(chunk) + b"\n")


def write_sample_catalog(
    path: str | os.PathLike[str], videos: int = 3000, seed: int = 0
) -> SampleManifest:
    """Write the catalog as JSONL (gzip when ``path`` ends with ``.gz``) and return its manifest.

    Output is byte-identical for the same ``(videos, seed)``, gzip included (no name or
    mtime in the gzip header). Parent directories are created.
    """
    path = os.fspath(path)
    generator = _CatalogGenerator(videos, seed)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                _write_lines(gz.write, generator.lines())
        else:
            _write_lines(raw.write, generator.lines())
    return generator.manifest


def main(argv: list[str] | None = None) -> None:
    """CLI: write a sample catalog and print its manifest as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output path (.jsonl or .jsonl.gz)")
    parser.add_argument("--videos", type=int, default=3000, help="unique valid videos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = write_sample_catalog(args.out, args.videos, args.seed)
    print(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
