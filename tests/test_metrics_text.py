"""Known-answer checks for core.metrics.text and core.metrics.structured.

Expected values come from sacrebleu's published example or are derived by hand in the
comments, never from the implementation under test.
"""

from __future__ import annotations

import math

import pytest

from core.errors import InvalidInput
from core.metrics import structured, text

# --- BLEU / chrF / TER ------------------------------------------------------------------

# sacrebleu README example: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944
# hyp_len = 17 ref_len = 18) with two reference streams.
SB_HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
SB_STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]


def test_bleu_corpus_matches_sacrebleu_published_example() -> None:
    per_example_refs = [list(r) for r in zip(*SB_STREAMS)]  # example i -> its 2 references
    assert text.bleu_corpus(SB_HYPS, per_example_refs) == pytest.approx(48.53, abs=0.005)


def test_sentence_bleu_hand_derived() -> None:
    # hyp "the cat sat on mat" vs ref "the cat sat on rug" (5 tokens each, BP = 1):
    # 1-gram 4/5, 2-gram 3/4, 3-gram 2/3, 4-gram 1/2 -> geometric mean (4/5*3/4*2/3*1/2)^(1/4)
    # = 0.2^(1/4) = 0.66874.
    expected = 100 * 0.2 ** 0.25
    assert text.bleu(["the cat sat on mat"], ["the cat sat on rug"]) == [pytest.approx(expected, abs=1e-6)]
    # Effective order: a 2-word exact match has no 3/4-grams but still scores 100.
    assert text.bleu(["hello world"], ["hello world"]) == [pytest.approx(100.0)]


def test_chrf_hand_derived() -> None:
    # chrF: precision and recall averaged over char n-gram orders present in both sides,
    # then F-beta with beta = 2: F = 5PR / (4P + R).
    # "abc" vs "abd": n=1 2/3 (P=R), n=2 1/2, n=3 0/1 -> P = R = (2/3 + 1/2 + 0)/3 = 7/18.
    # "ab" vs "abc": n=1 P=2/2 R=2/3, n=2 P=1/1 R=1/2, n=3 absent in hyp -> P=1, R=7/12,
    #   F = 5*(7/12) / (4 + 7/12) = 35/55 = 7/11.
    assert text.chrf(["abc", "ab"], ["abd", "abc"]) == [
        pytest.approx(100 * 7 / 18),
        pytest.approx(100 * 7 / 11),
    ]


def test_ter_hand_derived_sentence_and_corpus() -> None:
    preds = ["the cat sat", "the dog sat"]
    refs = ["the cat sat down", "the cat sat"]
    # 1 insertion / 4 reference words; 1 substitution / 3 reference words.
    assert text.ter(preds, refs) == [pytest.approx(25.0), pytest.approx(100 / 3)]
    # Corpus TER pools edits and reference words: (1 + 1) / (4 + 3).
    assert text.ter_corpus(preds, refs) == pytest.approx(200 / 7)
    # indices resample examples: example 0 twice -> (1 + 1) / (4 + 4).
    assert text.ter_corpus(preds, refs, indices=[0, 0]) == pytest.approx(25.0)


def test_corpus_indices_reselect_examples() -> None:
    refs = [list(r) for r in zip(*SB_STREAMS)]
    assert text.bleu_corpus(SB_HYPS, refs, indices=[0, 1, 2]) == pytest.approx(48.53, abs=0.005)
    # Example 0 is an exact match of its first reference: resampling it alone gives 100.
    assert text.bleu_corpus(SB_HYPS, refs, indices=[0, 0]) == pytest.approx(100.0)
    assert text.chrf_corpus(["abc"], ["abc"], indices=[0, 0]) == pytest.approx(100.0)


def test_misaligned_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="aligned"):
        text.bleu(["a", "b"], ["a"])
    with pytest.raises(InvalidInput, match="same number of references"):
        text.bleu_corpus(["a", "b"], [["a"], ["b", "c"]])


# --- ROUGE ------------------------------------------------------------------------------


def test_rouge_hand_counted() -> None:
    # pred "the cat sat on the mat" / ref "the cat is on the mat", 6 tokens each.
    # rouge1: clipped overlap the:2, cat:1, on:1, mat:1 = 5 -> P = R = F = 5/6.
    # rouge2: bigrams in common "the cat", "on the", "the mat" = 3 of 5 -> 3/5.
    # rougeL: LCS "the cat on the mat" = 5 -> 5/6.
    got = text.rouge(["the cat sat on the mat"], ["the cat is on the mat"])
    assert got["rouge1"] == [pytest.approx(5 / 6)]
    assert got["rouge2"] == [pytest.approx(3 / 5)]
    assert got["rougeL"] == [pytest.approx(5 / 6)]


def test_rouge_asymmetric_lengths() -> None:
    # pred "the cat" / ref "the cat sat": overlap 2, P = 2/2, R = 2/3, F = 2PR/(P+R) = 4/5.
    assert text.rouge(["the cat"], ["the cat sat"], types=["rouge1"]) == {"rouge1": [pytest.approx(0.8)]}


def test_rouge_stemming() -> None:
    # Porter: running -> run, runs -> run.
    assert text.rouge(["running"], ["runs"], types=["rouge1"])["rouge1"] == [1.0]
    assert text.rouge(["running"], ["runs"], types=["rouge1"], use_stemmer=False)["rouge1"] == [0.0]


def test_rougelsum_splits_on_newlines() -> None:
    pred = "the cat sat\nthe dog ran"
    ref = "the dog ran\nthe cat sat"
    got = text.rouge([pred], [ref], types=["rougeL", "rougeLsum"])
    # rougeL over the whole text: longest common subsequence is 3 of 6 tokens -> 0.5.
    assert got["rougeL"] == [pytest.approx(0.5)]
    # rougeLsum: each reference line's union-LCS against the prediction lines covers it fully.
    assert got["rougeLsum"] == [pytest.approx(1.0)]


def test_rouge_unknown_type() -> None:
    with pytest.raises(InvalidInput, match="rougeX"):
        text.rouge(["a"], ["a"], types=["rougeX"])


# --- exact match, labels, lengths -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Cat!", "cat"),
        ("  An   apple, please. ", "apple please"),
        ("theory of a thing", "theory of thing"),  # "the" inside a word is kept
        ("", ""),
    ],
)
def test_normalize(raw: str, normalized: str) -> None:
    assert text.normalize(raw) == normalized


def test_exact_match() -> None:
    preds = ["The Eiffel Tower.", "paris", "an apple", "Berlin"]
    refs = ["eiffel tower", "Paris!", "Apple", "Bern"]
    assert text.exact_match(preds, refs) == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Billing", "billing"),
        ("This is a SHIPPING issue, not billing.", "shipping"),  # earliest in the response
        ("It's about billing-related stuff", "billing"),  # hyphen is a word boundary
        ("billings", None),  # not a whole word
        ("no idea", None),
        ("", None),
    ],
)
def test_extract_label(response: str, expected: str | None) -> None:
    assert text.extract_label(response, ["billing", "shipping", "account"]) == expected


def test_extract_label_prefers_longer_label_at_same_position() -> None:
    assert text.extract_label("Not spam, clearly.", ["spam", "not", "not spam"]) == "not spam"


def test_accuracy() -> None:
    labels = ["positive", "negative"]
    preds = ["Positive.", "I think it is negative", "unsure", "NEGATIVE"]
    refs = ["positive", "negative", "negative", "Positive"]
    assert text.accuracy(preds, refs, labels) == [1.0, 1.0, 0.0, 0.0]


def test_lengths() -> None:
    assert text.lengths(["two words", "", " a  b c "]) == {
        "words": [2.0, 0.0, 3.0],
        "chars": [9.0, 0.0, 8.0],
    }


# --- structured output ------------------------------------------------------------------

DEMO_SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"enum": ["billing", "shipping", "account"]},
        "priority": {"enum": ["low", "medium", "high"]},
        "summary": {"type": "string"},
    },
    "required": ["category", "priority", "summary"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": 1}\n ', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n[1, 2]\n```', [1, 2]),
        ("42", 42),
    ],
)
def test_parse_json_valid(response: str, value: object) -> None:
    assert structured.parse_json(response) == (value, None)


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "```json\n\n```",
        '{"a": 1} hope this helps',  # trailing text
        'Here you go: {"a": 1}',  # leading text
        '{"a": 1}{"b": 2}',  # two values
        '```json\n{"a": 1}\n``` trailing',
        "{'a': 1}",  # Python, not JSON
        "NaN",
    ],
)
def test_parse_json_invalid(response: str) -> None:
    value, error = structured.parse_json(response)
    assert value is None and error


def test_parse_json_null_is_valid() -> None:
    assert structured.parse_json("null") == (None, None)
    assert structured.json_valid(["null", "nul"]) == [1.0, 0.0]


def test_schema_valid() -> None:
    preds = [
        '{"category": "billing", "priority": "low", "summary": "refund"}',
        '{"category": "billing", "priority": "urgent", "summary": "refund"}',  # not in enum
        '{"category": "billing", "priority": "low"}',  # missing summary
        "not json",
    ]
    assert structured.schema_valid(preds, DEMO_SCHEMA) == [1.0, 0.0, 0.0, 0.0]


def test_invalid_schema_raises_naming_problem() -> None:
    with pytest.raises(InvalidInput, match="properties/priority/type"):
        structured.schema_valid(["{}"], {"type": "object", "properties": {"priority": {"type": "nope"}}})


def test_field_accuracy_demo_objects() -> None:
    ref = '{"category": "billing", "priority": "low", "summary": "Customer was charged twice."}'
    preds = [
        # 2 of 3 right: priority wrong.
        '{"category": "billing", "priority": "high", "summary": "Customer was charged twice."}',
        # strings compared after normalization: case, punctuation and articles ignored.
        '```json\n{"category": "Billing", "priority": "LOW", "summary": "the customer was charged twice"}\n```',
        "Sorry, I cannot help.",  # unparsable -> 0
        '["billing", "low"]',  # not an object -> 0
        '{"category": "billing"}',  # missing fields are wrong -> 1/3
    ]
    refs = [ref] * len(preds)
    got = structured.field_accuracy(preds, refs)
    assert got == [pytest.approx(2 / 3), 1.0, 0.0, 0.0, pytest.approx(1 / 3)]
    assert structured.field_accuracy(preds, refs, fields=["category"]) == [1.0, 1.0, 0.0, 0.0, 1.0]
    per = structured.per_field_accuracy(preds, refs)
    assert per == {
        "category": [1.0, 1.0, 0.0, 0.0, 1.0],
        "priority": [0.0, 1.0, 0.0, 0.0, 0.0],
        "summary": [1.0, 1.0, 0.0, 0.0, 0.0],
    }
    assert math.fsum(got) / len(got) == pytest.approx((2 / 3 + 1 + 1 / 3) / 5)


def test_field_accuracy_non_string_values() -> None:
    refs = ['{"n": 1, "ok": true}'] * 3
    preds = ['{"n": 1.0, "ok": true}', '{"n": 1, "ok": 1}', '{"n": "1", "ok": true}']
    # 1 == 1.0 as JSON numbers; true is not 1; "1" is not 1.
    assert structured.field_accuracy(preds, refs) == [1.0, 0.5, 0.5]


def test_field_accuracy_bad_reference_names_index() -> None:
    with pytest.raises(InvalidInput, match="reference 1"):
        structured.field_accuracy(['{"a": 1}', '{"a": 1}'], ['{"a": 1}', "[1, 2]"])
    with pytest.raises(InvalidInput, match="reference 0"):
        structured.field_accuracy(['{"a": 1}'], ["not json"])
    with pytest.raises(InvalidInput, match="reference 0 lacks"):
        structured.field_accuracy(['{"a": 1}'], ['{"a": 1}'], fields=["b"])
