"""[judge] judge_throughput: 200 demo pairs judged in both orders (400 judge calls, greedy, the
judge's token limit, the built-in "balanced" prompt, the answer form enforced and the verdict's
probabilities read from logprobs, as a judge run does)
by the demo base model (SmolLM2-135M-Instruct) through the path a judge run takes on this CPU (one
plain vLLM engine, requests in chunks of 64 as the generation worker sends them), against one
request at a time through the same engine, timed on a 40-pair subsample (80 calls) and scaled to
200 pairs. The engine's start is left out of both (the same engine serves both). Goal: ratio >= 3.

The pairs: each demo ticket's reference triage against another ticket's (a wrong answer in the
right format), as a judge would meet them in a pair set."""

from __future__ import annotations

import time

from benchmarks.result import Result

PAIRS, SUBSAMPLE, CHUNK, GOAL = 200, 40, 64, 3.0


def _requests():
    from core.demo.tickets import make_dataset
    from core.judge import judges
    from core.judge.prompts import BUILT_IN, render
    from core.serving.backends import Request

    examples = make_dataset(PAIRS + 1, seed=21)
    prompt = BUILT_IN["balanced"]
    requests = []
    for i in range(PAIRS):
        messages = [m for m in examples[i]["messages"] if m["role"] != "assistant"]
        right = examples[i]["messages"][-1]["content"]
        wrong = examples[i + 1]["messages"][-1]["content"]
        for first, second in ((right, wrong), (wrong, right)):
            chat = render(prompt, messages, "Which triage would you rather send?", first, second)
            requests.append(Request(len(requests), "base", tuple(chat)))
    return requests, judges.JUDGE_TOKENS


def run() -> Result:
    from benchmarks.bench_serving import _assets
    from core.serving.backends import Decoding
    from core.serving.vllm_engine import VLLMMergedBackend

    base, _, _ = _assets()
    requests, tokens = _requests()
    decoding = Decoding(temperature=0.0, max_tokens=tokens)
    from core.judge.judges import VERDICT_CHOICES
    from core.judge.prompts import ANSWER_PATTERN

    backend = VLLMMergedBackend(base, {"base": base}, {"max_model_len": 2048, "pattern": ANSWER_PATTERN,
                                                       "choices": VERDICT_CHOICES})
    try:
        backend.generate(requests[:2], decoding)  # the engine starts here (left out of both figures)
        t0 = time.perf_counter()
        batched = [r for start in range(0, len(requests), CHUNK)
                   for r in backend.generate(requests[start:start + CHUNK], decoding)]
        ours = time.perf_counter() - t0
        sample = requests[:2 * SUBSAMPLE]
        t0 = time.perf_counter()
        singles = [backend.generate([r], decoding)[0] for r in sample]
        one_by_one = (time.perf_counter() - t0) * PAIRS / SUBSAMPLE
    finally:
        backend.close()
    assert len(batched) == len(requests)
    same = sum(a.text == b.text for a, b in zip(batched, singles))
    with_probabilities = sum(r.choices is not None for r in batched)
    tokens_out = sum(r.tokens_out for r in batched)
    ratio = one_by_one / ours
    return Result("judge_throughput",
                  f"{ours:.0f} s for {PAIRS} pairs x 2 orders ({tokens_out / ours:.0f} tok/s; {same}/{len(singles)} "
                  f"of the sampled verdict texts identical one at a time; {with_probabilities}/{len(batched)} "
                  "with the verdict's probabilities)",
                  f"one request at a time {one_by_one:.0f} s (from {SUBSAMPLE} pairs, scaled)", ratio,
                  f">= {GOAL:.0f}x", ratio >= GOAL)
