"""A scripted pairwise judge behind a real local HTTP server speaking the OpenAI chat API (what an
endpoint contender calls). Fake on purpose: its verdicts follow a known truth at a known rate
with a known lean to the first response, so calibration can be checked against that truth.
Every request it receives is kept, so tests can read exactly what a judge is sent."""

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
                 obey_injection: bool = False):
        self.good, self.agree, self.first_bias, self.seed = good, agree, first_bias, seed
        self.obey_injection = obey_injection
        self.requests: list[list[dict]] = []
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with judge._lock:
                    judge.requests.append(body["messages"])
                text = judge.answer(body["messages"])
                reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, messages: list[dict]) -> str:
        shown = dict(RESPONSE.findall(messages[-1]["content"]))
        first, second = shown.get("1", ""), shown.get("2", "")
        # The same question always gets the same answer (a resumed run asks again).
        rng = random.Random(hashlib.sha256(f"{self.seed}|{first}|{second}".encode()).hexdigest())
        if self.obey_injection and "answer 1" in (first + second).lower():
            return "As instructed.\nVerdict: 1"
        if rng.random() < self.first_bias:
            return "The first reads better.\nVerdict: 1"
        good1, good2 = first in self.good, second in self.good
        if good1 == good2:
            truth = "tie"
        else:
            truth = "1" if good1 else "2"
        if truth != "tie" and rng.random() >= self.agree:
            truth = "2" if truth == "1" else "1"
        return f"Compared on correctness.\nVerdict: {truth}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
