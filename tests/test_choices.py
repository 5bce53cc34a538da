"""How a backend's logprobs become the probability of each answer (core.serving.backends.Choices): the
place the answer starts, candidates counted for the answer they would begin, normalisation and mass,
on token texts (an endpoint) and on token ids through a real tokenizer (a local engine)."""

from __future__ import annotations

import math

import pytest

from core.serving.backends import Choices

VERDICT = Choices("Verdict:", ("1", "2", "tie"))


def test_the_answer_starts_at_the_first_visible_character_after_the_last_marker():
    text = "Verdict: 2 was my first thought.\nVerdict:  tie"
    assert text[VERDICT.locate(text):] == "tie"
    assert VERDICT.locate("no verdict here") is None
    assert VERDICT.locate("Verdict:   ") is None  # nothing after it


def test_candidates_count_for_the_answer_they_begin_and_are_normalised():
    got = VERDICT.probabilities([(" 1", math.log(0.4)), ("t", math.log(0.09)), ("2", math.log(0.36)),
                                 ("The", math.log(0.1)), ("12", math.log(0.05)), ("1.", math.log(0.05))])
    assert got == pytest.approx({"1": 0.5, "2": 0.4, "tie": 0.1, "mass": 0.9})
    assert VERDICT.probabilities([("The", 0.0), ("", math.log(0.5))]) is None  # no answer among them


def test_endpoint_tokens_are_read_where_the_verdict_starts():
    text = "Both fine.\nVerdict: 2"
    steps = [("Both", [("Both", 0.0)]), (" fine", [(" fine", 0.0)]), (".\n", [(".\n", 0.0)]),
             ("Verdict", [("Verdict", 0.0)]), (":", [(":", 0.0)]),
             (" 2", [(" 2", math.log(0.6)), (" 1", math.log(0.3)), (" tie", math.log(0.1))])]
    assert VERDICT.from_texts(text, steps) == pytest.approx({"1": 0.3, "2": 0.6, "tie": 0.1, "mass": 1.0})
    assert VERDICT.from_texts(text, steps[:-1]) is None  # the tokens stop before the answer


def test_local_token_ids_are_read_through_the_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    said = tokenizer.encode("Same facts.\nVerdict: 1", add_special_tokens=False)
    other = tokenizer.encode("Same facts.\nVerdict: 2", add_special_tokens=False)
    step = next(i for i, (x, y) in enumerate(zip(said, other)) if x != y)  # where the answers part
    seen = []

    def candidates(i):
        seen.append(i)
        return {said[i]: math.log(0.6), other[i]: math.log(0.2)} if i == step else {said[i]: 0.0}

    got = VERDICT.from_tokens(tokenizer, said + [tokenizer.eos_token_id], candidates)
    assert seen == [step]
    assert got == pytest.approx({"1": 0.75, "2": 0.25, "tie": 0.0, "mass": 0.8})
