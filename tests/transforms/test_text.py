"""Exact-output tests for transforms/text.py (cleaning and tokenization)."""

from __future__ import annotations

import dataclasses

import pytest

from transforms.text import (
    NUM_TOKEN,
    TextConfig,
    clean_text,
    load_stopwords,
    text_tokens,
    tokenize,
)

ASCII = TextConfig(ascii_only=True, bigrams=False)
STEM = TextConfig(stem=True, bigrams=False)
BIGRAMS = TextConfig(bigrams=True)
UNIGRAMS = TextConfig(bigrams=False)
KEEP_ALL = TextConfig(remove_stopwords=False, digits="keep", min_token_chars=1, bigrams=False)

YOUTUBE_DESCRIPTION = (
    "SHANTELL'S CHANNEL - https://www.youtube.com/shantellmartin\\nCANDICE - "
    "https://www.lovebilly.com\\n\\nfilmed this video in 4k on this -- http://amzn.to/2sTDnRZ"
)
STRANGER_THINGS = (
    "When a young boy vanishes, a small town uncovers a mystery involving secret "
    "experiments, terrifying supernatural forces and one strange little girl."
)
CHEFS_TABLE = (
    "In this documentary, filmmakers explore the lives of chefs who are running "
    "the world's best restaurants."
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # HTML: entities (also double-escaped), tags, script/style bodies, comments.
        ("<p>Tom &amp; Jerry&#39;s <b>Best</b> Bits</p>", "tom jerry's best bits"),
        (
            "Intro<script type=\"text/javascript\">var x = 1 < 2; alert('hi');</script> "
            "Outro<STYLE>.a { color: red }</STYLE> end",
            "intro outro end",
        ),
        (
            "<!-- comment --> Fish &amp;amp; Chips<br/>Live &lt;b&gt;tonight&lt;/b&gt;",
            "fish chips live tonight",
        ),
        ("a < b and <3", "a b and 3"),
        # URLs and e-mail addresses, with YouTube's literal "\n" sequences.
        (YOUTUBE_DESCRIPTION, "shantell's channel candice filmed this video in 4k on this"),
        ("contact me at foo.bar@example.com", "contact me at"),
        (
            "Merch: bit.ly/abc | Insta: www.instagram.com/foo.bar | "
            "Mail: First.Last+yt@mail.example.co.uk.",
            "merch insta mail",
        ),
        ("Site-https://a.example/x WWW.EXAMPLE.COM ok", "site ok"),
        # Not URLs: ratings, band names, "and/or".
        ("rated 8.5/10 by AC/DC fans and/or critics", "rated 8 5 10 by ac dc fans and or critics"),
        # Literal backslash escapes and real control whitespace.
        (
            "line one\\nline two\\r\\n\\tline three\nline\tfour",
            "line one line two line three line four",
        ),
        # NFKC + casefold.
        ("ＮＥＴＦＬＩＸ", "netflix"),
        ("Straße", "strasse"),
        ("ﬁnal ﬂight", "final flight"),
        # Every script is kept by default.
        ("Привет, мир!", "привет мир"),
        ("مرحبا بالعالم", "مرحبا بالعالم"),
        ("नमस्ते दुनिया", "नमस्ते दुनिया"),
        ("Café crème", "café crème"),
        ("東京タワーに行きました。Tokyo Tower", "東京タワーに行きました tokyo tower"),
        # Emoji, variation selectors, keycaps, ZWJ sequences and flags are symbols.
        ("Best day ever 😂🔥!!!", "best day ever"),
        ("❤️ Love ❤️", "love"),
        ("1️⃣ Intro 👨\u200d👩\u200d👧 family 🇺🇸", "1 intro family"),
        # Apostrophes survive only between letters; hyphens and underscores split.
        ("Don't stop rock’n’roll", "don't stop rock'n'roll"),
        ("'Tis the season, isn't it?", "tis the season isn't it"),
        ("sci-fi_thriller", "sci fi thriller"),
        # Soft hyphen (a format character) disappears without splitting the word.
        ("in\u00adformation", "information"),
        # Nothing left.
        (None, ""),
        ("", ""),
        ("   \t ", ""),
        ("\\n\\t", ""),
        ("!!! ... ---", ""),
        ("https://bit.ly/abc", ""),
        ("www.example.com", ""),
        ("😂🔥", ""),
    ],
)
def test_clean_text(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Café crème brûlée", "cafe creme brulee"),
        ("Привет", ""),
        ("Encyclopædia Łódź", "encyclopaedia lodz"),
        ("東京 Tokyo", "tokyo"),
        ("ＮＥＴＦＬＩＸ naïve", "netflix naive"),
    ],
)
def test_clean_text_ascii_only(raw: str, expected: str) -> None:
    assert clean_text(raw, ASCII) == expected


@pytest.mark.parametrize(
    ("fields", "config", "expected"),
    [
        (["Привет, мир!"], UNIGRAMS, ["привет", "мир"]),
        (["مرحبا بالعالم"], UNIGRAMS, ["مرحبا", "بالعالم"]),
        (["नमस्ते दुनिया"], UNIGRAMS, ["नमस्ते", "दुनिया"]),
        (["Café crème"], UNIGRAMS, ["café", "crème"]),
        (["Café crème"], ASCII, ["cafe", "creme"]),
        # CJK: one token per character; the Katakana prolonged sound mark "ー" (U+30FC)
        # is in the Katakana block and is a token of its own like any other kana.
        (["東京タワー"], UNIGRAMS, ["東", "京", "タ", "ワ", "ー"]),
        (
            ["東京タワーに行きました。Tokyo Tower"],
            UNIGRAMS,
            ["東", "京", "タ", "ワ", "ー", "に", "行", "き", "ま", "し", "た", "tokyo", "tower"],
        ),
        (["서울 여행"], UNIGRAMS, ["서", "울", "여", "행"]),
        # Single CJK characters are exempt from min_token_chars; Latin ones are not.
        (["東 a bb ccc"], TextConfig(min_token_chars=3, bigrams=False), ["東", "ccc"]),
        (["東京"], BIGRAMS, ["東", "京", "東_京"]),
        (["東京"], ASCII, []),
        (["Best day ever 😂🔥!!!"], UNIGRAMS, ["best", "day", "ever"]),
        (["Don't stop rock’n’roll"], UNIGRAMS, ["stop", "rock'n'roll"]),
        (["Don't stop rock’n’roll"], KEEP_ALL, ["don't", "stop", "rock'n'roll"]),
        (
            [YOUTUBE_DESCRIPTION],
            UNIGRAMS,
            ["shantell's", "channel", "candice", "filmed", "video", "4k"],
        ),
        ([YOUTUBE_DESCRIPTION], STEM, ["shantel", "channel", "candic", "film", "video", "4k"]),
    ],
)
def test_text_tokens(fields: list[str | None], config: TextConfig, expected: list[str]) -> None:
    assert text_tokens(fields, config) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            UNIGRAMS,
            [
                "young", "boy", "vanishes", "small", "town", "uncovers", "mystery", "involving",
                "secret", "experiments", "terrifying", "supernatural", "forces", "one", "strange",
                "little", "girl",
            ],
        ),
        (
            STEM,
            [
                "young", "boy", "vanish", "small", "town", "uncov", "mysteri", "involv", "secret",
                "experi", "terrifi", "supernatur", "forc", "one", "strang", "littl", "girl",
            ],
        ),
        (
            TextConfig(stem=True, bigrams=True, max_tokens=5),
            [
                "young", "boy", "vanish", "small", "town",
                "young_boy", "boy_vanish", "vanish_small", "small_town",
            ],
        ),
    ],
)  # fmt: skip
def test_netflix_description(config: TextConfig, expected: list[str]) -> None:
    assert text_tokens([STRANGER_THINGS], config) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            UNIGRAMS,
            [
                "documentary", "filmmakers", "explore", "lives", "chefs", "running", "world's",
                "best", "restaurants",
            ],
        ),
        (
            STEM,
            ["documentari", "filmmak", "explor", "live", "chef", "run", "world", "best", "restaur"],
        ),
        (
            BIGRAMS,
            [
                "documentary", "filmmakers", "explore", "lives", "chefs", "running", "world's",
                "best", "restaurants", "documentary_filmmakers", "filmmakers_explore",
                "explore_lives", "lives_chefs", "chefs_running", "running_world's",
                "world's_best", "best_restaurants",
            ],
        ),
        (
            TextConfig(remove_stopwords=False, bigrams=False),
            [
                "in", "this", "documentary", "filmmakers", "explore", "the", "lives", "of",
                "chefs", "who", "are", "running", "the", "world's", "best", "restaurants",
            ],
        ),
    ],
)  # fmt: skip
def test_netflix_description_2(config: TextConfig, expected: list[str]) -> None:
    assert text_tokens([CHEFS_TABLE], config) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (UNIGRAMS, ["want", "talk", "marriage", "shantell", "martin"]),
        (
            BIGRAMS,
            [
                "want", "talk", "marriage", "shantell", "martin",
                # No "marriage_shantell": bigrams never cross a field boundary.
                "want_talk", "talk_marriage", "shantell_martin",
            ],
        ),
        # max_tokens caps the unigrams of all fields together, before bigrams.
        (
            TextConfig(bigrams=True, max_tokens=4),
            ["want", "talk", "marriage", "shantell", "want_talk", "talk_marriage"],
        ),
    ],
)  # fmt: skip
def test_fields_are_tokenized_separately(config: TextConfig, expected: list[str]) -> None:
    fields = ["WE WANT TO TALK ABOUT OUR MARRIAGE", None, "", "shantell martin"]
    assert text_tokens(fields, config) == expected


@pytest.mark.parametrize(
    ("digits", "text", "expected"),
    [
        ("drop", "Top 10 songs of 2017 in 4k", ["top", "songs", "4k"]),
        ("keep", "Top 10 songs of 2017 in 4k", ["top", "10", "songs", "2017", "4k"]),
        ("token", "Top 10 songs of 2017 in 4k", ["top", NUM_TOKEN, "songs", NUM_TOKEN, "4k"]),
        (
            "token",
            "Apollo 13 (1995) - 5 stars, mp3",
            ["apollo", "<num>", "<num>", "<num>", "stars", "mp3"],
        ),
        # "keep" still applies min_token_chars, so the single digit "5" goes.
        ("keep", "Apollo 13 (1995) - 5 stars, mp3", ["apollo", "13", "1995", "stars", "mp3"]),
        # Arabic-Indic digits are digits too.
        ("drop", "كأس ٢٠٢٢", ["كأس"]),
    ],
)
def test_digit_policies(digits: str, text: str, expected: list[str]) -> None:
    assert text_tokens([text], TextConfig(digits=digits, bigrams=False)) == expected


@pytest.mark.parametrize(
    ("cleaned", "config", "expected"),
    [
        ("", UNIGRAMS, []),
        (
            "one two three four five",
            TextConfig(max_tokens=3, bigrams=True),
            ["one", "two", "three", "one_two", "two_three"],
        ),
        (
            "a bb ccc dddd",
            TextConfig(min_token_chars=3, remove_stopwords=False, bigrams=False),
            ["ccc", "dddd"],
        ),
        (
            "a bb ccc",
            TextConfig(min_token_chars=1, remove_stopwords=False, bigrams=False),
            ["a", "bb", "ccc"],
        ),
        (
            "running dogs ran les misérables 4k",
            STEM,
            ["run", "dog", "ran", "les", "misérables", "4k"],
        ),
        ("the the the", UNIGRAMS, []),
    ],
)
def test_tokenize(cleaned: str, config: TextConfig, expected: list[str]) -> None:
    assert tokenize(cleaned, config) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "\\n\\n", "!!! ... ---", "https://bit.ly/abc", "😂🔥", "the of and"]
)
def test_nothing_survives(raw: str | None) -> None:
    assert tokenize(clean_text(raw)) == []
    assert text_tokens([raw]) == []
    assert text_tokens([raw, raw], BIGRAMS) == []


def test_no_fields() -> None:
    assert text_tokens([]) == []
    assert text_tokens(iter(["Cat videos", None])) == [
        "cat",
        "videos",
        "cat_videos",
    ]  # default: 1-2-grams


def test_fields_must_not_be_a_single_string() -> None:
    with pytest.raises(TypeError, match="Received: 'cat videos'"):
        text_tokens("cat videos")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"digits": "strip"}, "digits='strip'"),
        ({"min_token_chars": 0}, "min_token_chars=0"),
        ({"max_tokens": 0}, "max_tokens=0"),
    ],
)
def test_config_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"Received: {name}"):
        TextConfig(**kwargs)


def test_config_is_frozen_and_hashable() -> None:
    config = TextConfig(stem=True)
    assert hash(config) == hash(TextConfig(stem=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.stem = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(YOUTUBE_DESCRIPTION, id="youtube"),
        pytest.param(STRANGER_THINGS, id="netflix"),
        pytest.param("東京タワー Привет café 😂", id="multilingual"),
        # Hostile inputs that a backtracking URL/e-mail pattern would choke on.
        pytest.param("a." * 5000, id="dots"),
        pytest.param("x@" * 5000, id="ats"),
        pytest.param("<script>" * 2000, id="unclosed-script"),
    ],
)
def test_pure_and_deterministic(raw: str) -> None:
    config = TextConfig(stem=True, bigrams=True)
    first = text_tokens([raw], config)
    assert text_tokens([raw], config) == first
    assert tokenize(clean_text(raw, config), config) == first
    assert clean_text(raw) == clean_text(raw)


def test_stopwords_file() -> None:
    stopwords = load_stopwords()
    assert load_stopwords() is stopwords  # cached
    assert {"a", "the", "and", "don't", "it's", "i'm"} <= stopwords
    assert 150 <= len(stopwords) <= 200
    assert all(word == word.strip().casefold() and not word.startswith("#") for word in stopwords)
    assert not {"music", "video", "netflix", "love"} & stopwords


def test_the_graph_takes_a_batch_of_raw_fields():
    import tensorflow as tf

    from transforms.text import fingerprints, video_fields, video_tokens, video_unigrams

    title = tf.constant(["Cat videos", "CAT, videos!", "", "Dogs"])
    description = tf.constant(["<p>Funny</p>", "funny", "", ""])
    tags = tf.constant(["pets|cute cats", "pets|cute cats", "", "a|b"])
    fields = video_fields(title, description, tags)
    assert fields.row_lengths().numpy().tolist() == [4, 4, 3, 4]
    unigrams = video_unigrams(fields, TextConfig(max_tokens=4))
    tokens = video_tokens(unigrams, TextConfig(max_tokens=4))
    assert [[t.decode() for t in row] for row in tokens.to_list()] == [
        ["cat", "videos", "funny", "pets", "cat_videos"],
        ["cat", "videos", "funny", "pets", "cat_videos"],
        [],
        ["dogs"],
    ]
    prints = fingerprints(unigrams).numpy().tolist()
    assert prints[0] == prints[1] and len(set(prints)) == 3  # same cleaned words, same print
