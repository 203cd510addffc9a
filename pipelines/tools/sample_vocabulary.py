"""Word lists of the synthetic sample catalog, as data.

The 20 categories, each with its pool of distinctive keywords, the generic filler
words every title and description mixes in, accented and non-Latin phrases per
category (the ``*`` row stands in for categories without their own), emoji,
titles that carry no words at all, the HTML and re-upload noise snippets, and
which categories usually co-occur. :mod:`pipelines.tools.sample_text` turns them
into records; any change here changes every generated catalog.
"""

from __future__ import annotations

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
FILLER: tuple[str, ...] = tuple(_FILLER_TEXT.split())

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
EMOJI: tuple[str, ...] = tuple(_EMOJI_TEXT.split())
EMPTY_TITLES: tuple[str, ...] = (
    "🔥🔥🔥", "😂😂😂 !!!", "!!! ??? !!!", "...", "🎉🎉 🎶", "🔥 https://bit.ly/3xQz9Lk 🔥",
    "http://www.example.com/watch?v=abc123", "👀 ??", "*** 💯 ***", "https://youtu.be/Qw3rTy ✨",
    "--- !!! ---", "🤯🤯", "(((😍)))", ":) :) :)",
)  # fmt: skip
HTML_BREAKS: tuple[str, ...] = ("<br>", "<br><br>", "&amp;", "<br />")
DUP_SUFFIXES: tuple[str, ...] = (
    " (updated)",
    " [4K]",
    " - full version",
    " | re-upload",
    " (2)",
    "!",
)
# Categories that usually share a video with each one (co-labels and confounders).
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
# Indexed like CATEGORIES: phrases per category, and the indices of its usual partners.
ACCENTED = _per_category(_parse_table(_ACCENTED_TABLE, "|"))
NON_LATIN = _per_category(_parse_table(_NON_LATIN_TABLE, "|"))
PARTNERS = tuple(tuple(map(CATEGORIES.index, _PARTNER_TABLE[name])) for name in CATEGORIES)
