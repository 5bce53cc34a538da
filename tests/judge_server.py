"""A scripted pairwise judge behind a real local HTTP server speaking the OpenAI chat API (what an
endpoint contender calls). Fake on purpose: its verdicts follow a known truth at a known rate
with a known lean to the first response, so calibration can be checked against that truth.
Every request it receives is kept, so tests can read exactly what a judge is sent.

Asked for logprobs (as tuneboard asks a judge), it gives them with `logprobs="give"`: on a pair it
is sure of (all but a seeded `unsure_share` of the pairs) its answer gets 80% of the probability
among the answers and is right with probability `agree`; on the others 40%, right with
`unsure_agree`. `logprobs="refuse"` answers such a request with HTTP 400, as some endpoints do;
"none" ignores the request."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESPONSE = re.compile(r"\[Response ([12])\]\n(.*?)\n\[End of Response \1\]", re.DOTALL)


class ScriptedJudge:
    def __init__(self, good: set[str], agree: float = 0.9, first_bias: float = 0.0, seed: int = 0,
                 obey_injection: bool = False, logprobs: str = "none", unsure_share: float = 0.0,
                 unsure_agree: float = 0.6):
        self.good, self.agree, self.first_bias, self.seed = good, agree, first_bias, seed
        self.obey_injection = obey_injection
        self.logprobs, self.unsure_share, self.unsure_agree = logprobs, unsure_share, unsure_agree
        self.requests: list[list[dict]] = []
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge._lock:
                    judge.requests.append(body["messages"])
                status = 200
                if body.get("logprobs") and judge.logprobs == "refuse":
                    status, reply = 400, {"error": {"message": "logprobs are not supported", "type": "invalid"}}
                else:
                    text, sure = judge.answer(body["messages"])
                    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                    if body.get("logprobs") and judge.logprobs == "give":
                        choice["logprobs"] = {"content": judge.token_logprobs(text, sure)}
                    reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [choice],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, messages: list[dict]) -> tuple[str, bool]:
        """Its answer, and whether it is sure of it."""
        shown = dict(RESPONSE.findall(messages[-1]["content"]))
        first, second = shown.get("1", ""), shown.get("2", "")
        # The same question always gets the same answer (a resumed run asks again); sure or not is the
        # pair's, whichever order it is shown in.
        rng = random.Random(hashlib.sha256(f"{self.seed}|{first}|{second}".encode()).hexdigest())
        pair = random.Random(hashlib.sha256(f"{self.seed}|{sorted((first, second))}".encode()).hexdigest())
        sure = pair.random() >= self.unsure_share
        if self.obey_injection and "answer 1" in (first + second).lower():
            return "As instructed.\nVerdict: 1", sure
        if rng.random() < self.first_bias:
            return "The first reads better.\nVerdict: 1", sure
        good1, good2 = first in self.good, second in self.good
        if good1 == good2:
            truth = "tie"
        else:
            truth = "1" if good1 else "2"
        if truth != "tie" and rng.random() >= (self.agree if sure else self.unsure_agree):
            truth = "2" if truth == "1" else "1"
        return f"Compared on correctness.\nVerdict: {truth}", sure

    @staticmethod
    def token_logprobs(text: str, sure: bool) -> list[dict]:
        """The OpenAI API's per-token logprobs: at the verdict, its answer with 80% of the answers'
        probability when sure (40% when not), the rest split among the others, and a tenth of all the
        probability on a token that is no answer."""
        import math

        tokens = re.findall(r"\s*\S+", text)
        out = [{"token": t, "logprob": 0.0, "top_logprobs": [{"token": t, "logprob": 0.0}]} for t in tokens]
        said = tokens[-1].strip()
        share = 0.8 if sure else 0.4
        probs = {a: share if a == said else (1 - share) / 2 for a in ("1", "2", "tie")}
        top = [{"token": " " + a, "logprob": math.log(0.9 * p)} for a, p in probs.items()]
        out[-1] = {"token": tokens[-1], "logprob": math.log(0.9 * share),
                   "top_logprobs": top + [{"token": " The", "logprob": math.log(0.1)}]}
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
