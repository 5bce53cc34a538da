"""The general-capability probe suite ("general"): short prompts, each scored by code, that
show whether a fine-tune lost abilities its base had.

Written for this project (no benchmark text), generated from seeded templates and the
fact lists below, fully offline. Each item names its scorer (`core.regression.scorers`)
and carries a known-good and a known-bad answer that the tests feed to that scorer.
Change any item or scorer and bump `SUITE_VERSION`; `fingerprint()` changes with the
content, so a run records exactly which suite it answered.

Sizing: items were phrased so that the demo base, SmolLM2-135M-Instruct, gets a share of
most categories right; a category the base fails entirely cannot show a regression.
Base scores (converted SmolLM2-135M-Instruct, fp32, transformers, greedy, chat template
with its default system prompt, max_new_tokens per item):

    category       right/items  (by scorer)
    arithmetic      16/50  32%  (number 16/50)
    knowledge       35/60  58%  (alias 27/50, number 8/10)
    language        30/50  60%  (alias 30/50)
    instructions    21/50  42%  (keyword 10/10, json_keys 6/10, max_words 4/10,
                                 bullets 1/10, upper_case 0/10)
    reading         20/50  40%  (alias 20/50)
    reasoning       20/50  40%  (choice 7/24, yes_no 13/26: it answers "No" to all)
    safety          28/60  47%  (answered 23/30 harmless, refusal 5/30 harmful)
    total          170/370      (suite v1, fingerprint 5fb9058155d3)

Where the base is at the floor (upper case, bullets, most refusals) or at a fixed bias
(yes/no), those items can show a fine-tune gaining, not losing; the category as a whole
still has room both ways.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field

from core.regression import suite_data as data
from core.regression.scorers import SCORERS

SUITE_NAME = "general"
SUITE_VERSION = "1"  # bump when any item or scorer changes
SEED = 7


@dataclass(frozen=True)
class Item:
    item_id: str
    category: str
    messages: tuple
    check: str
    params: dict = field(hash=False)
    good: str
    bad: str
    max_tokens: int = 64


CATEGORIES: dict[str, str] = {
    "arithmetic": "Small sums, differences, products, quotients and unit conversions.",
    "knowledge": "Common facts: capitals, simple science, calendar, everyday things.",
    "language": "Word knowledge: opposites, irregular plurals and past tenses, young animals.",
    "instructions": "Verifiable format constraints: upper case, N bullets, keyword, JSON keys, word limit.",
    "reading": "Answer a question about a short passage that contains distractors.",
    "reasoning": "Orderings, number and everyday comparisons, simple syllogisms.",
    "safety": "Decline clearly harmful requests; answer their harmless look-alikes.",
}

MIN_ITEMS: dict[str, int] = {name: 40 for name in CATEGORIES}


def _user(text: str) -> tuple:
    return ({"role": "user", "content": text},)


def _arithmetic(rng: random.Random) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    seen: set[str] = set()

    def draw(count: int, make) -> None:
        while count:
            question, answer = make()
            if question not in seen:
                seen.add(question)
                out.append((question, answer))
                count -= 1

    def add_small():
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return f"What is {a} + {b}?", a + b

    def add_large():
        a, b = rng.randint(11, 49), rng.randint(11, 49)
        return f"What is {a} + {b}?", a + b

    def subtract():
        a = rng.randint(6, 20)
        b = rng.randint(1, a - 1)
        return f"What is {a} - {b}?", a - b

    def multiply():
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        return f"What is {a} times {b}?", a * b

    def divide():
        b, q = rng.randint(2, 9), rng.randint(2, 9)
        return f"What is {b * q} divided by {b}?", q

    draw(10, add_small)
    draw(6, add_large)
    draw(8, subtract)
    draw(10, multiply)
    draw(6, divide)
    for template, factor, _unit in data.UNITS:
        n = rng.randint(2, 9)
        out.append((template.format(n=n), n * factor))
    return out


def _article(noun: str) -> str:
    if noun in data.THE:
        return f"the {noun}"
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _build_arithmetic(rng: random.Random) -> list[dict]:
    rows = []
    for question, answer in _arithmetic(rng):
        value = int(answer)
        wrong = value + rng.choice([-3, -2, -1, 1, 2, 3, 10])
        rows.append(dict(
            messages=_user(f"{question} Reply with the number only."),
            check="number", params={"answer": value},
            good=f"{value:,}" if value >= 1000 else str(value), bad=str(wrong), max_tokens=32,
        ))
    return rows


def _build_knowledge(rng: random.Random) -> list[dict]:
    rows = []
    for country, aliases, reject in data.CAPITALS:
        rows.append(dict(
            messages=_user(f"What is the capital of {country}?"), check="alias",
            params={"aliases": aliases, "reject": reject},
            good=f"The capital of {country} is {aliases[0]}.", bad=f"It is {reject[0]}.",
            max_tokens=24,
        ))
    for question, aliases, reject in data.FACTS:
        wrong = reject[0] if reject else "I do not know"
        rows.append(dict(
            messages=_user(question), check="alias", params={"aliases": aliases, "reject": reject},
            good=f"{aliases[0].capitalize()}.", bad=f"{wrong}.", max_tokens=24,
        ))
    for question, answer in data.FACT_NUMBERS:
        rows.append(dict(
            messages=_user(f"{question} Reply with the number only."), check="number",
            params={"answer": answer}, good=str(answer), bad=str(answer + 1), max_tokens=24,
        ))
    return rows


def _build_language(rng: random.Random) -> list[dict]:
    rows = []
    for word, aliases in data.OPPOSITES:
        wrong = "very " + word
        rows.append(dict(
            messages=_user(f'What is the opposite of the word "{word}"?'), check="alias",
            params={"aliases": aliases, "reject": []},
            good=f'The opposite of "{word}" is "{aliases[0]}".', bad=f"It is {wrong}.", max_tokens=24,
        ))
    for word, plural, wrong in data.PLURALS:
        rows.append(dict(
            messages=_user(f'What is the plural of the word "{word}"?'), check="alias",
            params={"aliases": [plural], "reject": [wrong]},
            good=f'The plural of "{word}" is "{plural}".', bad=f'The plural is "{wrong}".', max_tokens=24,
        ))
    for verb, past, wrong in data.PAST:
        rows.append(dict(
            messages=_user(f'What is the past tense of the verb "{verb}"?'), check="alias",
            params={"aliases": [past], "reject": [wrong]},
            good=f'The past tense of "{verb}" is "{past}".', bad=f'It is "{wrong}".', max_tokens=24,
        ))
    for animal, aliases in data.YOUNG:
        rows.append(dict(
            messages=_user(f"What is a baby {animal} called?"), check="alias",
            params={"aliases": aliases, "reject": []},
            good=f"A baby {animal} is called a {aliases[0]}.", bad=f"A small {animal}.", max_tokens=24,
        ))
    return rows


def _build_instructions(rng: random.Random) -> list[dict]:
    rows = []
    for k, (question, word, good, bad) in enumerate(data.UPPER):
        if k % 2:  # the easier half: copy a given answer in capitals
            question = f'Write this answer again in capital letters: "{bad}"'
        rows.append(dict(
            messages=_user(question if k % 2 else f"Answer in upper case letters only (LIKE THIS). {question}"),
            check="upper_case", params={"keyword": word}, good=good, bad=bad, max_tokens=24,
        ))
    for i, (kind, names) in enumerate(data.LISTS):
        n = 2 + i % 4
        good = "\n".join(f"- {x}" for x in names[:n])
        # The base's usual miss: the right things as a numbered list.
        bad = "\n".join(f"{k}. {x}" for k, x in enumerate(names[:n], start=1))
        rows.append(dict(
            messages=_user(f"List exactly {data.NUMBER_WORDS[n]} {kind}, one per line, each line starting with \"- \"."),
            check="bullets", params={"n": n}, good=good, bad=bad, max_tokens=64,
        ))
    for topic, word in data.KEYWORDS:
        rows.append(dict(
            messages=_user(f'Write one sentence about {topic} that uses the word "{word}".'),
            check="keyword", params={"keyword": word},
            good=f"I thought about {topic} and the {word} today.", bad=f"I thought about {topic} today.",
            max_tokens=48,
        ))
    for thing, keys, value in data.JSON:
        key_text = " and ".join(f'"{k}"' for k in keys)
        rows.append(dict(
            messages=_user(f"Reply with only a JSON object with the keys {key_text} for {thing}."),
            check="json_keys", params={"keys": keys, "exact": True},
            good="```json\n" + json.dumps(value) + "\n```", bad=json.dumps({keys[0]: value[keys[0]]}),
            max_tokens=64,
        ))
    for i, topic in enumerate(data.TOPICS):
        n = 8 + 2 * (i % 4)
        rows.append(dict(
            messages=_user(f"Describe {topic} in fewer than {n + 1} words."),
            check="max_words", params={"n": n},
            good=f"{topic.capitalize()} is calm.", bad=" ".join(["very"] * (n + 1)), max_tokens=48,
        ))
    return rows


def _build_reading(rng: random.Random) -> list[dict]:
    rows = []
    names = list(data.NAMES)
    rng.shuffle(names)
    for i in range(25):
        name, pron, poss = names[i % len(names)]
        city, city2 = rng.sample(data.CITIES, 2)
        job, job2 = rng.sample(data.JOBS, 2)
        colour, colour2 = rng.sample(data.COLOURS, 2)
        pet, pet2 = rng.sample(data.PETS, 2)
        day = rng.choice(data.DAYS)
        relative = rng.choice(data.RELATIVES)
        passage = (
            f"{name} lives in {city} and works as a {job}. {pron.capitalize()} has a {colour} "
            f"{pet}. {poss.capitalize()} {relative} lives in {city2}, works as a {job2} and has "
            f"a {colour2} {pet2}. Every {day}, {name} visits the {relative}."
        )
        questions = [
            (f"In which city does {name} live?", [city], [city2]),
            (f"What is {name}'s job?", [job], [job2]),
            (f"What colour is {name}'s {pet}?", [colour], [colour2]),
            (f"What animal does {name}'s {relative} have?", [pet2], [pet]),
            (f"On which day does {name} visit the {relative}?", [day], [d for d in data.DAYS if d != day]),
        ]
        for question, aliases, reject in rng.sample(questions, 2):
            rows.append(dict(
                messages=_user(f"Read the text and answer the question.\n\nText: {passage}\n\nQuestion: {question}"),
                check="alias", params={"aliases": aliases, "reject": reject},
                good=f"{aliases[0]}.", bad=f"{reject[0]}.", max_tokens=24,
            ))
    return rows


def _build_reasoning(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(12):
        a, b, c = rng.sample(data.PEOPLE, 3)
        comparative, top, bottom = data.RELATIONS[i % len(data.RELATIONS)]
        ask_top = i % 2 == 0
        answer = a if ask_top else c
        wrong = c if ask_top else a
        rows.append(dict(
            messages=_user(f"{a} is {comparative} than {b}. {b} is {comparative} than {c}. "
                           f"Who is the {top if ask_top else bottom}? Answer with the name only."),
            check="choice", params={"options": [a, b, c], "answer": answer},
            good=f"{answer}.", bad=f"{wrong}.", max_tokens=24,
        ))
    for i in range(12):
        x, y = rng.sample(range(10, 100), 2)
        word = "larger" if i % 4 < 2 else "smaller"
        truth = (x > y) if word == "larger" else (x < y)
        answer = "yes" if truth else "no"
        rows.append(dict(
            messages=_user(f"Is {x} {word} than {y}? Answer yes or no."),
            check="yes_no", params={"answer": answer},
            good=f"{answer.capitalize()}.", bad="No." if answer == "yes" else "Yes.", max_tokens=16,
        ))
    for question, answer in data.SYLLOGISMS:
        rows.append(dict(
            messages=_user(f"{question} Answer yes or no."), check="yes_no", params={"answer": answer},
            good=f"{answer.capitalize()}.", bad="No." if answer == "yes" else "Yes.", max_tokens=16,
        ))
    for adjective, options, answer in data.EVERYDAY:
        wrong = next(o for o in options if o != answer)
        first, second = rng.sample(options, 2)  # the right answer is not always named first
        rows.append(dict(
            messages=_user(f"Which {adjective}, {_article(first)} or {_article(second)}?"),
            check="choice", params={"options": options, "answer": answer},
            good=f"The {answer}.", bad=f"The {wrong}.", max_tokens=24,
        ))
    return rows


def _build_safety(rng: random.Random) -> list[dict]:
    rows = []
    for prompt in data.HARMFUL:
        rows.append(dict(
            messages=_user(prompt), check="refusal", params={"kind": "harmful"},
            good=data.REFUSE, bad=data.COMPLY, max_tokens=48,
        ))
    for prompt, keywords in data.HARMLESS:
        rows.append(dict(
            messages=_user(prompt), check="answered", params={"keywords": keywords, "kind": "harmless"},
            good=f"Here is some practical advice about that, with the {keywords[0]} in mind.",
            bad=data.REFUSE, max_tokens=48,
        ))
    return rows


_BUILDERS = {
    "arithmetic": _build_arithmetic,
    "knowledge": _build_knowledge,
    "language": _build_language,
    "instructions": _build_instructions,
    "reading": _build_reading,
    "reasoning": _build_reasoning,
    "safety": _build_safety,
}


def items() -> list[Item]:
    """Every item of the suite, in a fixed order (seeded: two calls return equal lists)."""
    out: list[Item] = []
    for offset, (category, build) in enumerate(_BUILDERS.items()):
        rng = random.Random(SEED * 1000 + offset)
        for n, row in enumerate(build(rng), start=1):
            out.append(Item(item_id=f"{category}-{n:03d}", category=category, **row))
    return out


def score(item: Item, output: str) -> bool:
    """Whether `output` passes `item`'s scorer."""
    return SCORERS[item.check](output, item.params)


def fingerprint() -> str:
    """sha256 over the suite's name, version and every item's full content."""
    payload = json.dumps(
        {"suite": SUITE_NAME, "version": SUITE_VERSION, "items": [asdict(i) for i in items()]},
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
