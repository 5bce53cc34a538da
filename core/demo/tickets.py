"""The demo task, written by this project: support tickets to a strict JSON triage object.

Every example is generated from a seed: a scenario (category, base priority, summary) is
rendered through one of its body templates with random slots, an opener, a closer and
possibly an urgency or a no-rush modifier, which moves the priority one step. The rule is
learnable but not trivial, and the reference is always valid JSON, so a fine-tune can be
scored on format (JSON validity, schema) and on fields (category, priority).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CATEGORIES = ("billing", "technical", "account", "shipping", "refund", "feature_request")
PRIORITIES = ("low", "medium", "high", "urgent")

SYSTEM_PROMPT = (
    "You are a support triage assistant. Read the customer's ticket and reply with only a JSON "
    'object with exactly these keys: "category" (one of billing, technical, account, shipping, '
    'refund, feature_request), "priority" (one of low, medium, high, urgent) and "summary" '
    "(one sentence of at most 15 words). No other text."
)

TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"enum": list(CATEGORIES)},
        "priority": {"enum": list(PRIORITIES)},
        "summary": {"type": "string", "minLength": 1},
    },
    "required": ["category", "priority", "summary"],
    "additionalProperties": False,
}

SLOTS = {
    "plan": ["Starter", "Team", "Business", "Enterprise", "Pro", "Basic"],
    "month": ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"],
    "amount": ["$12.99", "$49.00", "$99.00", "$240.00", "$19.50", "$7.99", "$310.00", "$1,200.00"],
    "product": ["the mobile app", "the web dashboard", "the desktop client", "the API",
                "the browser extension", "the reporting module", "the calendar sync"],
    "device": ["iPhone 15", "Pixel 8", "Windows 11 laptop", "MacBook Air", "Galaxy S24", "iPad"],
    "error": ["ERR_502", "E1043", "timeout 504", "code 0x80070005", "SYNC_FAILED", "error 500"],
    "item": ["wireless headphones", "standing desk", "coffee grinder", "monitor arm",
             "running shoes", "backpack", "office chair", "phone case", "desk lamp"],
    "carrier": ["UPS", "FedEx", "DHL", "USPS", "the courier"],
    "days": ["three", "five", "seven", "ten", "twelve"],
    "feature": ["dark mode", "CSV export", "two-factor login by SMS", "a Slack integration",
                "bulk editing", "keyboard shortcuts", "custom fields", "an audit log"],
    "order": [],  # filled with numbers
}

# (category, base priority, summary template, body templates)
SCENARIOS: list[tuple[str, str, str, list[str]]] = [
    ("billing", "high", "Customer was charged twice for the {plan} plan in {month}.", [
        "I was billed twice for my {plan} subscription this {month}. My card shows two charges of {amount}.",
        "There are two identical {amount} charges for the {plan} plan on my statement for {month}.",
        "Looks like you charged me double in {month}: {amount} twice for {plan}.",
    ]),
    ("billing", "medium", "Customer asks why the {plan} invoice shows {amount}.", [
        "My latest invoice for the {plan} plan says {amount}, which is not what I expected. Can you explain the amount?",
        "Why is my {plan} invoice {amount} this month? I thought the price was lower.",
        "Could someone break down the {amount} on my {plan} invoice?",
    ]),
    ("billing", "low", "Customer wants invoices sent to a different email address.", [
        "Please send our invoices to our accounting address instead of mine from now on.",
        "Can the monthly invoices go to finance@ rather than my personal email?",
        "How do I change the email where invoices are delivered?",
    ]),
    ("billing", "medium", "Customer's card payment for the {plan} plan was declined.", [
        "My payment for the {plan} plan keeps getting declined although the card works elsewhere.",
        "The renewal of {plan} failed with a declined card message, but my bank says all is fine.",
        "Card declined when paying {amount} for {plan}. What is going on?",
    ]),
    ("technical", "high", "{product} crashes on launch on the customer's {device}.", [
        "{product} crashes as soon as I open it on my {device}. I already reinstalled it.",
        "Every time I start {product} on my {device} it closes right away.",
        "Since yesterday's update {product} won't open on the {device}; it crashes instantly.",
    ]),
    ("technical", "medium", "Customer gets {error} when syncing in {product}.", [
        "Sync fails in {product} with {error}. It worked fine last week.",
        "I keep seeing {error} whenever {product} tries to sync my data.",
        "{product} shows {error} during sync and my changes don't appear on other devices.",
    ]),
    ("technical", "urgent", "{product} is down for the customer's whole organization.", [
        "{product} is completely down for everyone in our company. Nobody can work.",
        "None of our staff can reach {product}; we get {error} on every request.",
        "Total outage: {product} returns {error} for all of our users since this morning.",
    ]),
    ("technical", "low", "Customer reports a cosmetic display glitch in {product}.", [
        "Small thing: some labels in {product} overlap on my {device}.",
        "The icons in {product} look blurry on my {device}. Not a big deal.",
        "There's a typo and a misaligned button on the settings screen of {product}.",
    ]),
    ("technical", "medium", "Notifications from {product} stopped arriving on the {device}.", [
        "I no longer get notifications from {product} on my {device}, though they are enabled.",
        "Push notifications stopped working for {product} on the {device} after the update.",
        "My {device} doesn't show any alerts from {product} anymore.",
    ]),
    ("account", "high", "Customer is locked out of their account after password resets.", [
        "I'm locked out of my account. The password reset email never arrives.",
        "After three reset attempts I still can't log in and now my account is locked.",
        "I can't get into my account at all; the reset link says it expired.",
    ]),
    ("account", "urgent", "Customer reports suspicious logins and a possibly compromised account.", [
        "Someone logged into my account from another country and changed my email. Please help!",
        "I got alerts about logins I didn't make and my password no longer works.",
        "My account was hacked: there are orders and settings changes I never made.",
    ]),
    ("account", "low", "Customer wants to change the name on their profile.", [
        "How can I update the display name on my profile?",
        "I got married and want to change my last name on the account.",
        "Please update the name shown on my profile; I can't find the setting.",
    ]),
    ("account", "medium", "Customer wants to transfer account ownership to a colleague.", [
        "I'm leaving the company and need to hand the {plan} account over to a colleague.",
        "How do we transfer ownership of our {plan} workspace to another admin?",
        "Please move the account owner role from me to my manager.",
    ]),
    ("shipping", "medium", "Order {order} has not arrived after {days} days.", [
        "My order {order} still hasn't arrived. It's been {days} days.",
        "Where is order {order}? Tracking hasn't moved for {days} days.",
        "I ordered the {item} ({order}) {days} days ago and nothing has shown up.",
    ]),
    ("shipping", "high", "Order {order} was marked delivered but never received.", [
        "{carrier} says order {order} was delivered, but there's nothing at my door.",
        "Tracking for {order} shows delivered yesterday. I never got the {item}.",
        "My {item} (order {order}) is marked as delivered by {carrier} but it is not here.",
    ]),
    ("shipping", "low", "Customer asks to change the delivery address for order {order}.", [
        "Can I still change the shipping address for order {order}?",
        "I need the {item} from order {order} delivered to my office instead.",
        "Please update the delivery address on {order} before it ships.",
    ]),
    ("shipping", "medium", "Order {order} arrived with the wrong item.", [
        "I ordered a {item} but order {order} contained something else.",
        "Wrong product in order {order}: this is not the {item} I bought.",
        "The package for {order} arrived, but the item inside isn't the {item}.",
    ]),
    ("refund", "medium", "Customer requests a refund for the damaged {item}.", [
        "The {item} from order {order} arrived broken. I'd like my money back.",
        "My {item} came damaged. Please refund the {amount}.",
        "Order {order}: the {item} is cracked. I want a refund, not a replacement.",
    ]),
    ("refund", "low", "Customer asks about the status of a pending refund.", [
        "I returned the {item} two weeks ago. When will I see the refund?",
        "What's the status of my refund for order {order}?",
        "Still waiting on the {amount} refund for my return. Any update?",
    ]),
    ("refund", "high", "Customer wants a refund after being charged for a cancelled {plan} plan.", [
        "I cancelled my {plan} plan in {month} but you charged me {amount} anyway. Refund please.",
        "Charged {amount} for {plan} even though I cancelled. I need that refunded.",
        "You billed me for {plan} after my cancellation in {month}; please return the {amount}.",
    ]),
    ("feature_request", "low", "Customer asks for {feature} in {product}.", [
        "It would be great if {product} had {feature}.",
        "Any plans to add {feature} to {product}? We'd use it every day.",
        "Feature request: {feature} for {product}, please.",
    ]),
    ("feature_request", "medium", "Customer's team needs {feature} to keep using {product}.", [
        "Our team of 40 depends on {feature}; without it in {product} we may have to switch tools.",
        "We're evaluating the {plan} plan but {feature} in {product} is a must-have for us.",
        "Lack of {feature} in {product} is slowing our whole team down.",
    ]),
]

OPENERS = ["", "Hi,", "Hello,", "Hi team,", "Hey there,", "Good morning,", "Dear support,", "Hello support team,"]
CLOSERS = ["", "Thanks.", "Thank you!", "Thanks in advance.", "Best regards,", "Cheers,", "Please advise.",
           "Looking forward to your reply."]
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca",
         "Mara", "Nico", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tomas", "Uma", "Vera", "Wei", "Yara"]
ESCALATE = ["This is blocking our whole team.", "We have a client demo tomorrow morning.",
            "This is costing us money every hour.", "I need this fixed today, please."]
DEESCALATE = ["No rush at all.", "Whenever you have a moment.", "Not urgent, just curious.",
              "Low priority on our side."]


def _fill(template: str, rng: random.Random, values: dict[str, str]) -> str:
    for key in SLOTS:
        token = "{" + key + "}"
        if token in template and key not in values:
            values[key] = (f"#{rng.randint(100000, 999999)}" if key == "order" else rng.choice(SLOTS[key]))
    return template.format(**{k: values.get(k, "") for k in SLOTS})


def make_example(rng: random.Random) -> tuple[dict, dict]:
    """One ticket and its triage label: (chat example, label)."""
    category, priority, summary_t, bodies = rng.choice(SCENARIOS)
    values: dict[str, str] = {}
    body = _fill(rng.choice(bodies), rng, values)
    summary = _fill(summary_t, rng, values)
    summary = summary[0].upper() + summary[1:]
    level = PRIORITIES.index(priority)
    extra = ""
    roll = rng.random()
    if roll < 0.2 and level < 3:
        extra, level = rng.choice(ESCALATE), level + 1
    elif roll < 0.35 and level > 0:
        extra, level = rng.choice(DEESCALATE), level - 1
    parts = [rng.choice(OPENERS), body, extra, rng.choice(CLOSERS)]
    if parts[-1] and rng.random() < 0.6:
        parts[-1] += " " + rng.choice(NAMES)
    ticket = " ".join(p for p in parts if p)
    label = {"category": category, "priority": PRIORITIES[level], "summary": summary}
    example = {"messages": [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": ticket},
        {"role": "assistant", "content": json.dumps(label)},
    ], "tag": category}  # the scenario's category: results and the judge's agreement are shown per tag
    return example, label


def make_dataset(n: int = 1200, seed: int = 7) -> list[dict]:
    """`n` distinct examples (no exact duplicates), reproducible from `seed`."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict] = []
    while len(out) < n:
        example, _ = make_example(rng)
        key = example["messages"][1]["content"]
        if key in seen:
            continue
        seen.add(key)
        out.append(example)
    return out


def bad_rows(good: list[dict]) -> list[bytes]:
    """Deliberately broken lines, one per problem the validator must catch."""
    sys_msg = {"role": "system", "content": SYSTEM_PROMPT}
    user = {"role": "user", "content": "My invoice is wrong, please check."}
    answer = {"role": "assistant", "content": '{"category": "billing", "priority": "medium", "summary": "x"}'}
    rows: list[object] = [
        {"messages": [sys_msg, {"role": "bot", "content": "hello"}, answer]},          # unknown role
        {"messages": [sys_msg, {"content": "no role here"}, answer]},                  # missing role
        {"messages": [sys_msg, {"role": "user", "content": "   "}, answer]},           # empty content
        {"messages": [sys_msg, user, user, answer]},                                   # bad order
        {"messages": [sys_msg, user]},                                                 # no assistant
        {"messages": [user, answer, {"role": "user", "content": "and?"}]},             # ends with user
        {"messages": "not a list"},                                                    # wrong type
        {"prompt_text": "wrong keys"},                                                 # no messages
        good[0],                                                                       # exact duplicate
    ]
    lines = [json.dumps(r).encode() for r in rows]
    lines.insert(3, b'{"messages": [{"role": "user", "content": "unterminated}')   # invalid JSON
    lines.insert(5, json.dumps({"messages": [user, answer]}).encode().replace(b"invoice", b"inv\xff\xfeoice"))
    return lines


def write_demo_files(folder: str | Path, n: int = 1200, seed: int = 7) -> tuple[Path, Path]:
    """Write `support_tickets.jsonl` (valid) and `support_tickets_bad.jsonl` (broken rows mixed in)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = make_dataset(n, seed)
    good_path = folder / "support_tickets.jsonl"
    good_path.write_text("".join(json.dumps(e) + "\n" for e in good), encoding="utf-8")
    bad_path = folder / "support_tickets_bad.jsonl"
    mixed = [json.dumps(e).encode() for e in good[:40]] + bad_rows(good)
    bad_path.write_bytes(b"\n".join(mixed) + b"\n")
    return good_path, bad_path
