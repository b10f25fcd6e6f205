#!/usr/bin/env python3
"""Write the VADER reference scores that the tiller-reward tests compare with.

Scores each sentence below with the `vaderSentiment` Python package and
writes crates/tiller-reward/tests/data/vader_reference.json (or the path
given as the only argument). The file records the package version and the
SHA-256 of the lexicon files bundled with it, which should equal those that
scripts/setup.sh puts in models/.

Usage, offline after the first install:

    python3 -m venv /tmp/vader-venv
    /tmp/vader-venv/bin/pip install vaderSentiment==3.3.2
    /tmp/vader-venv/bin/python scripts/vader_reference.py
"""

import hashlib
import importlib.metadata
import json
import pathlib
import sys

from vaderSentiment import vaderSentiment

EXPECTED_VERSION = "3.3.2"

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "crates/tiller-reward/tests/data/vader_reference.json"

# (category, text). Categories only group the cases for people reading the
# fixture. Each entry exercises a rule, or a quirk of the package that the
# Rust implementation must reproduce.
SENTENCES = [
    # Plain lexicon words and neutral text.
    ("plain", "The book was good."),
    ("plain", "This is a terrible idea."),
    ("plain", "I love my new phone"),
    ("plain", "ok fine"),
    ("plain", "She felt sad and lonely after the move."),
    ("neutral", "The meeting is at 3 pm in room 204."),
    ("neutral", "The train leaves from platform nine."),
    ("neutral", "123 456 789"),
    ("neutral", ""),
    ("neutral", "   \t  "),
    ("neutral", "..."),
    # Boosters and dampeners, at distances 1 to 3.
    ("booster", "The food was very good."),
    ("booster", "The food was extremely really quite good."),
    ("booster", "It was incredibly bad."),
    ("dampener", "The food was slightly good."),
    ("dampener", "It was barely acceptable."),
    ("dampener", "The service was somewhat disappointing."),
    ("dampener", "The movie was kind of boring."),
    ("dampener", "The soup was sort of okay."),
    ("dampener", "It was kinda fun."),
    ("dampener", "kind of good"),
    ("dampener", "The portions were just enough fun for us."),
    # Capitalisation.
    ("caps", "The book was VERY good"),
    ("caps", "I LOVE this song"),
    ("caps", "THIS IS TERRIBLE"),
    ("caps", "It was EXTREMELY bad, honestly."),
    ("caps", "Monday traffic SUX!"),
    ("caps", "I said NO good ideas tonight"),
    ("caps", "VERY GOOD"),
    ("caps", "It was Kind Of good, BUT the end was BAD"),
    # Negation.
    ("negation", "not good"),
    ("negation", "This isn't good at all."),
    ("negation", "I don't really like it."),
    ("negation", "It was not very good."),
    ("negation", "Not bad at all"),
    ("negation", "It was neither good nor bad."),
    ("negation", "It wasn't terrible, to be fair."),
    ("negation", "I can\u2019t believe how good this is"),
    ("negation", "He never liked the city."),
    ("negation", "Nothing good ever happens here."),
    ("negation", "She rarely smiles anymore."),
    ("negation", "We finished without any help, despite the awful weather."),
    ("negation_no", "There is no good reason to stay."),
    ("negation_no", "no good"),
    ("negation_no", "No, no, no bad news here."),
    ("negation_no", "There was no fun or joy in it."),
    ("negation_no", "no"),
    # "never so", "never this", "without doubt", and "so"/"this" at distance 3.
    ("never_so", "The coffee here has never been this good!"),
    ("never_so", "never so good"),
    ("never_so", "I have never felt so happy."),
    ("never_so", "I am so happy"),
    ("without_doubt", "Without a doubt, a brilliant plan."),
    ("without_doubt", "without doubt excellent"),
    # "least".
    ("least", "least good"),
    ("least", "at least good"),
    ("least", "It was the least helpful answer."),
    ("least", "At least the hotel wasn't a horrible mess."),
    ("least", "At the very least it works."),
    # Contrastive "but", including the package's lookup by value.
    ("but", "good but bad"),
    (
        "but",
        "The story was good, but the songs are forgettable and the jokes "
        "are not funny.",
    ),
    ("but", "It was slow at first but I loved the ending."),
    ("but", "good but bad but fine"),
    ("but", "The room was nice and the service adequate, but the pool was bad."),
    ("but", "The start was slow, but the view was nice and the garden beautifully kept."),
    # Special-case phrases.
    ("special_case", "Honestly, this new album is the shit!"),
    ("special_case", "The party last night was the bomb."),
    ("special_case", "My grandmother is a bad ass on the dance floor"),
    ("special_case", "Oh sure, that works, yeah right."),
    ("special_case", "That merger was the kiss of death for the company."),
    ("special_case", "The cake at that bakery is to die for."),
    ("special_case", "I waited at the bus stop for an hour."),
    ("special_case", "I could hear my own beating heart."),
    ("special_case", "Our new goalie is a total badass!"),
    ("special_case", "the shit hit the fan"),
    # Punctuation emphasis.
    ("punctuation", "good?"),
    ("punctuation", "good??"),
    ("punctuation", "good???"),
    ("punctuation", "good????"),
    ("punctuation", "bad!!!!!!"),
    ("punctuation", "Is this good?!?!"),
    ("punctuation", "GOOD!!!"),
    ("punctuation", "What happened???"),
    # Emoticons and emoji.
    ("emoticon", "See you tomorrow :)"),
    ("emoticon", "Missed the bus again :("),
    ("emoticon", "Call me later :D or text me :)"),
    ("emoticon", "I <3 this place"),
    ("emoji", "I love it \U0001F60D"),
    ("emoji", "\U0001F602\U0001F602\U0001F602"),
    ("emoji", "Great job\U0001F44D"),
    ("emoji", "\U0001F494 heartbroken"),
    ("emoji", "\U0001F44D\U0001F3FD nice work"),
    ("emoji", "\u263A\uFE0F thanks"),
    ("emoji", "Flags \U0001F1FA\U0001F1F8 and a \U0001F600face"),
    ("emoji", "Sent her \U0001F498 and \U0001F48B and got \U0001F601 back"),
    # Unicode text and whitespace.
    ("unicode", "\u00C7a va tr\u00e8s bien, merci, great day"),
    ("unicode", "na\u00efve but good"),
    ("unicode", "good\u00a0day\u3000friend"),
    ("unicode", "  leading and trailing spaces are fine  "),
    ("unicode", "line one is happy\nline two is sad"),
    ("unicode", "happy\x1cday"),
    # Short story lines.
    (
        "story",
        "Once upon a time, a brave little fox found a lost kitten and helped it home.",
    ),
    ("story", "The dragon burned the village, and everyone wept."),
    ("story", "She opened the letter and smiled; the news was wonderful."),
    ("story", "The old man sat alone in the dark, cold and hungry."),
    ("story", "They laughed all night and promised to meet again next summer."),
    ("story", "The storm destroyed the boat, but the sailors survived."),
    ("story", "He lost the race, yet he was proud of how hard he had tried."),
    # Reviews.
    (
        "review",
        "Absolutely loved this hotel! The staff were friendly, the room was "
        "spotless and the breakfast was delicious. Would stay again.",
    ),
    (
        "review",
        "Worst purchase ever. The battery died after two days and customer "
        "support never answered my emails. Avoid!!",
    ),
    (
        "review",
        "It's fine. Nothing special, nothing terrible. The price is fair for what you get.",
    ),
    (
        "review",
        "The screen is gorgeous but the speakers are weak and the software is buggy.",
    ),
    (
        "review",
        "I was skeptical at first, but this blender is AMAZING. Smoothies in "
        "seconds, easy to clean, and very quiet.",
    ),
    # Long text.
    (
        "long",
        "The concert was a disaster from start to finish. Terrible sound!! "
        "The singer forgot the words. VERY rude security, overpriced drinks, "
        "and a VERY BAD view from our seats. Never again!",
    ),
    (
        "long",
        "We arrived late in the evening, tired and hungry after a long drive. "
        "The host greeted us warmly, showed us a cozy room with a beautiful "
        "view of the lake, and even left fresh bread and cheese on the table. "
        "The next morning the sun was shining, the birds were singing, and we "
        "spent the whole day hiking and swimming. Honestly, it was the best "
        "holiday we have had in years, and we cannot wait to come back.",
    ),
    (
        "long",
        "The project started with high hopes. Within a month the budget was "
        "gone, two key engineers had quit, and the client was furious about "
        "missed deadlines. Morale collapsed, meetings turned into arguments, "
        "and by the end nobody wanted to talk about it at all.",
    ),
]


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    output = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    version = importlib.metadata.version("vaderSentiment")
    if version != EXPECTED_VERSION:
        sys.exit(
            f"vaderSentiment {version} is installed, but the reference must "
            f"come from {EXPECTED_VERSION}: pip install vaderSentiment=={EXPECTED_VERSION}"
        )
    package_dir = pathlib.Path(vaderSentiment.__file__).parent
    analyzer = vaderSentiment.SentimentIntensityAnalyzer()

    cases = []
    for category, text in SENTENCES:
        scores = analyzer.polarity_scores(text)
        cases.append(
            {
                "category": category,
                "text": text,
                "neg": scores["neg"],
                "neu": scores["neu"],
                "pos": scores["pos"],
                "compound": scores["compound"],
            }
        )

    fixture = {
        "package": "vaderSentiment",
        "version": version,
        "python": sys.version.split()[0],
        "lexicon_sha256": sha256_of(package_dir / "vader_lexicon.txt"),
        "emoji_lexicon_sha256": sha256_of(package_dir / "emoji_utf8_lexicon.txt"),
        "note": "neg, neu and pos are rounded to 3 decimals and compound to 4 by the package",
        "cases": cases,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as file:
        json.dump(fixture, file, ensure_ascii=False, indent=2)
        file.write("\n")
    print(f"wrote {len(cases)} cases to {output}")


if __name__ == "__main__":
    main()
