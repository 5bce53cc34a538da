"""Proof, in a real browser, of two security properties over every page.

1. Hostile text stays inert. Dataset prompts and references, model outputs (scored: metric
   examples), a generation set's name, a pair set's name and instructions, raters' rationales,
   a regression run's flipped items, a promotion reason and a schedule's name all carry HTML,
   JavaScript, markdown link and image, autolink and LaTeX payloads. The engineer, the lead and the rater open every page their role reaches
   (core.auth.pages_for), every tab, every expander, and the seeded items; nothing runs, no
   injected element or javascript: link exists (also transiently: a MutationObserver watches),
   nothing is fetched, and the payload is shown as text where it is expected (so the proof
   cannot pass by showing nothing).
2. Blindness. Every byte a rater's browser receives (HTTP bodies and Streamlit's websocket
   frames) while logging in, opening each page, voting, skipping and undoing is searched for
   anything that names a model or a side: variant ids and names, adapter and model paths, the
   base model, generation-set, pair-set and job ids, and the side-mapping fields. The list is
   read from the seeded database, so it cannot go stale.

The workspace is seeded through core before the server starts (no model runs; one real score
job): see `seed_workspace`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.auth import PAGES, Role, pages_for
from tests.browser.conftest import log_in, wait_drawn, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser

# Distinctive names: none of them can occur by chance in what Streamlit sends.
SECRET_RUN = "zz-secret-run"
TUNED = f"adapter:{SECRET_RUN}"
BASE_MODEL = "/opt/models/qq-hidden-basemodel-7b"
BASE_NAME = "base (qq-hidden-basemodel-7b)"
ADAPTER_PATH = "/srv/runs/zz-secret-train-0042/adapter"
TASK = "hostile"

MARK = '<b id="tb-injected">x</b>'  # shown, it must read as these characters
PAYLOADS = (
    "<script>window.__tb_pwned=1</script>",
    '<img src=x onerror="window.__tb_pwned=1">',
    '<svg onload="window.__tb_pwned=1"><circle r="5"/></svg>',
    MARK,
    "[click](javascript:window.__tb_pwned=1)",
    '<a id="tb-injected-link" href="javascript:window.__tb_pwned=1">raw link</a>',
    '<iframe id="tb-injected-frame" srcdoc="<script>parent.__tb_pwned=1</script>"></iframe>',
    '![pic](x "onerror=window.__tb_pwned=1")',
    "![js](javascript:window.__tb_pwned=1)",
    '<details open ontoggle="window.__tb_pwned=1">d</details>',
    "$$\\href{javascript:window.__tb_pwned=1}{tex}$$",
    "$\\htmlId{tb-injected-tex}{y}$",
    "www.tb-injected.invalid and <https://tb-injected.invalid/go>",  # autolinks: http(s) at most, never fetched
)
HOSTILE = "\n\n".join(PAYLOADS)
PAIR_SET_NAME = f"Round 1 {MARK}"
ACCOUNTS = {Role.ENGINEER: ("admin", ADMIN_PASSWORD), Role.LEAD: ("leo", PASSWORD), Role.RATER: ("rita", PASSWORD)}
# Where each role must see the payload as text (a page drawing nothing would pass the inertness checks).
SHOWN_AS_TEXT = {
    Role.ENGINEER: {"home", "data", "models", "generations", "review", "metrics", "regression"},
    Role.LEAD: {"home", "data", "models", "generations", "review", "results", "metrics", "regression"},
    Role.RATER: {"rate"},
}
SETTLE_S = 0.7  # the desk drops a vote sooner than 0.5 s after its pair appeared (a double click)

STATE: dict = {}


def _hostile_example(ex: dict, i: int) -> dict:
    payload = PAYLOADS[i % len(PAYLOADS)]
    return {"messages": [{**m, "content": f"{m['content']}\n\n{payload}"} if m["role"] != "system" else m
                         for m in ex["messages"]]}


def seed_workspace(owner, root) -> None:
    from core.auth import CLI_USER, User
    from core.datasets import ImportOptions, import_dataset
    from core.demo.review import rater_accounts, seed_generation_set
    from core.demo.tickets import make_dataset
    from core.lifecycle import promotion
    from core.lifecycle.pipelines import PipelineOptions
    from core.metrics import results as metric_results
    from core.metrics.scoring import start_scoring
    from core.regression import runs, suite
    from core.review import results as review_results
    from core.review.desk import RatingDesk
    from core.review.pairs import PairSetSpec, create_pair_set
    from tests.test_regression_runs import seed_suite_set

    store, settings = owner.store, owner.settings
    lead = User("leo", Role.LEAD)

    # A dataset version whose prompts and answers carry the payloads.
    rows = [_hostile_example(ex, i) for i, ex in enumerate(make_dataset(30, seed=41))]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    import_dataset(store, CLI_USER, data, f"{TASK}.jsonl", ImportOptions.from_settings(settings, name=TASK))

    # A finished generation set: prompts, references and every output hostile; variant records with paths.
    gen = seed_generation_set(store, n_prompts=6, variants=("base", TUNED), seed=3, base_model=BASE_MODEL)
    variants = [{"variant_id": "base", "kind": "base", "name": BASE_NAME, "path": BASE_MODEL, "model": BASE_MODEL,
                 "api_key_env": ""},
                {"variant_id": TUNED, "kind": "adapter", "name": SECRET_RUN, "path": ADAPTER_PATH,
                 "model": BASE_MODEL, "api_key_env": ""}]
    decoding = json.dumps({"temperature": 0.0, "top_p": 1.0, "max_tokens": 128, "seed": 0})  # as a real set has
    store.execute("UPDATE generation_sets SET name = ?, variants = ?, decoding = ? WHERE set_id = ?",
                  [f"tickets {MARK} [set](javascript:window.__tb_pwned=1)", json.dumps(variants), decoding, gen])
    for p in store.rows("SELECT prompt_idx, messages, reference FROM generation_prompts WHERE set_id = ?", [gen]):
        messages = [{**m, "content": f"{m['content']}\n\n{HOSTILE}"} if m["role"] == "user" else m
                    for m in json.loads(p["messages"])]
        store.execute("UPDATE generation_prompts SET messages = ?, reference = ? WHERE set_id = ? AND prompt_idx = ?",
                      [json.dumps(messages), f"{HOSTILE}\n\n{p['reference']}", gen, p["prompt_idx"]])
    store.execute("UPDATE generations SET output = ? || chr(10) || chr(10) || output WHERE set_id = ?", [HOSTILE, gen])
    store.execute("INSERT INTO model_variants (variant_id, kind, name, path, base_model) VALUES (?, 'adapter', ?, ?, ?)",
                  [TUNED, SECRET_RUN, ADAPTER_PATH, BASE_MODEL])

    # Metric results (a real score job), summarized now so the pages only read them.
    job = owner.jobs.wait(start_scoring(store, owner.jobs, CLI_USER, gen), timeout=180)
    assert job["status"] == "succeeded", job["error"]
    assert metric_results.latest(store, CLI_USER, gen, settings.metrics) is not None

    # A pair set for rita and ruth (hostile name and instructions); ruth votes on all, with hostile reasons.
    rater_accounts(store, ["ruth"], PASSWORD)
    pair_set = create_pair_set(store, lead, PairSetSpec(
        name=PAIR_SET_NAME, generation_set_id=gen, variants=["base", TUNED], raters=["rita", "ruth"],
        raters_per_pair=2, gold_rate=0.1, seed=4, instructions=HOSTILE))
    desk = RatingDesk(store, min_vote_seconds=0.0)
    ruth = User("ruth", Role.RATER)
    mine = store.rows("SELECT pair_id FROM assignments WHERE pair_set_id = ? AND rater = 'ruth' ORDER BY position",
                      [pair_set])
    for i, r in enumerate(mine):
        receipt = desk.vote(ruth, pair_set, r["pair_id"], ["1", "2", "tie", "both_bad"][i % 4], HOSTILE)
        assert receipt.status == "recorded", receipt
    assert review_results.latest(store, lead, pair_set, settings.review) is not None

    # A regression run whose flipped items answer with the payloads; its gate; an override with a hostile reason.
    category = suite.items()[0].category
    lost = sorted(it.item_id for it in suite.items() if it.category == category)[:3]
    suite_set = seed_suite_set(store, {TUNED: set(lost)}, tuned=TUNED)
    store.execute("UPDATE generation_sets SET base_model = ?, variants = ?, decoding = ? WHERE set_id = ?",
                  [BASE_MODEL, json.dumps(variants), decoding, suite_set])
    store.execute("""UPDATE generations SET output = ? || chr(10) || output WHERE set_id = ? AND variant_id = ?
                     AND prompt_idx IN (SELECT prompt_idx FROM generation_prompts WHERE set_id = ?
                                        AND source_ref IN (SELECT unnest(?)))""",
                  [HOSTILE, suite_set, TUNED, suite_set, lost])
    runs.judge(store, CLI_USER, suite_set, TUNED, settings.regression)
    promotion.promote(store, CLI_USER, TUNED, f"override for the proof: {HOSTILE}", override=True, task=TASK)
    # A paused retrain schedule with a hostile name (written directly: creating one needs a training run).
    store.execute("""INSERT INTO schedules (schedule_id, name, task, trigger, spec, options, enabled, created_by)
                     VALUES ('schedule-hostile', ?, ?, 'interval', '168', ?, FALSE, 'admin')""",
                  [f"weekly {MARK} ![pic](x) www.tb-injected.invalid", TASK, json.dumps(asdict(PipelineOptions()))])

    STATE.update(gen=gen, pair_set=pair_set, suite_set=suite_set,
                 pairs=store.scalar("SELECT count(*) FROM assignments WHERE pair_set_id = ? AND rater = 'rita'",
                                    [pair_set]),
                 forbidden=forbidden_tokens(store, settings.base_model))


PATH_WORDS = {"adapter", "adapters", "models", "model", "runs", "workspace", "checkpoint", "final", "home", "root"}


def forbidden_tokens(store, server_base_model: str) -> list[str]:
    """Everything that would tell a rater which model wrote a response, read from the database."""
    from core.review.pairs import IDENTITY_WORDS, identity_terms

    found: set[str] = set()
    for g in store.rows("SELECT set_id, base_model, variants FROM generation_sets"):
        records = json.loads(g["variants"])
        found |= {g["set_id"], g["base_model"]}
        found |= {str(v.get(k) or "") for v in records for k in ("variant_id", "name", "path", "model")}
        found |= set(identity_terms(records, g["base_model"])) - set(IDENTITY_WORDS)
    for v in store.rows("SELECT variant_id, name, path, base_model, job_id FROM model_variants"):
        found |= {str(x or "") for x in v.values()}
    for s in store.rows("SELECT pair_set_id, generation_set_id, variants, comparisons FROM pair_sets"):
        found |= {s["pair_set_id"], s["generation_set_id"]} | set(json.loads(s["variants"]))
        found |= {str(x) for c in json.loads(s["comparisons"]) for x in (c if isinstance(c, list) else [c])}
    for p in store.rows("SELECT DISTINCT a, b FROM pairs"):
        found |= {p["a"], p["b"]}
    found |= {j["job_id"] for j in store.rows("SELECT job_id FROM jobs")}
    found |= {server_base_model, Path(server_base_model).name}
    found |= set(re.split(r"[-_.]", Path(server_base_model).name))  # "tiny", "llama": the words of the model id
    # Each distinctive folder of a path ("zz-secret-train-0042" of an adapter path), not the generic ones.
    found |= {part for path in list(found) if "/" in path for part in re.split(r"[/\\]+", path)
              if len(part) >= 4 and part.lower() not in PATH_WORDS}
    # The fields by which core.review maps sides to variants (pairs, PairView, the desk's queue).
    found |= {"left_is_a", "a_text", "b_text", "gold_better", "gold_source", "identity_flags", "response_1",
              "response_2"}
    # "base" is the one variant id too common a word to look for; it is only ever shown to leads and engineers.
    return sorted(t for t in found if t and len(t) >= 4 and t.lower() != "base")


# ---- 1. Hostile text stays inert ---------------------------------------------------------------

# Watches every node added to any document (also ones removed again before a check runs).
WATCH = """
window.__tb_seen = [];
const URL_ATTRIBUTES = ['href', 'src', 'srcdoc', 'action', 'formaction', 'xlink:href', 'data'];
const tbCheck = (e) => {
  if ((e.id || '').startsWith('tb-injected')) window.__tb_seen.push('#' + e.id);
  if (e.tagName === 'SCRIPT' && (e.text || '').includes('__tb_pwned')) window.__tb_seen.push('script');
  if (e.tagName === 'IMG' && /\\/x$|tb-injected/.test(e.src || '')) window.__tb_seen.push('img ' + e.src);
  for (const a of Array.from(e.attributes || [])) {
    const n = a.name.toLowerCase();
    if ((n.startsWith('on') || URL_ATTRIBUTES.includes(n)) && /__tb_pwned|^\\s*(javascript|vbscript|data):/i.test(a.value))
      window.__tb_seen.push(e.tagName + '[' + n + ']=' + a.value);
  }
};
new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) if (n.nodeType === 1) {
  tbCheck(n); n.querySelectorAll('*').forEach(tbCheck); } }).observe(document, {childList: true, subtree: true});
"""

INERT = """() => {
  const bad = [...(window.__tb_seen || [])];
  if (typeof window.__tb_pwned !== 'undefined') bad.push('window.__tb_pwned = ' + window.__tb_pwned);
  document.querySelectorAll("[id^='tb-injected']").forEach(e => bad.push('element #' + e.id));
  document.querySelectorAll('script').forEach(s => { if (s.text.includes('__tb_pwned')) bad.push('script ' + s.text); });
  document.querySelectorAll("a[href^='javascript:' i]").forEach(a => bad.push('javascript: link ' + a.outerHTML));
  document.querySelectorAll('iframe[srcdoc]').forEach(f => bad.push('iframe srcdoc ' + f.outerHTML.slice(0, 200)));
  document.querySelectorAll('*').forEach(e => { for (const a of Array.from(e.attributes)) {
    const n = a.name.toLowerCase();
    if ((n.startsWith('on') || ['href', 'src', 'srcdoc', 'action', 'formaction', 'xlink:href', 'data'].includes(n))
        && /__tb_pwned|^\\s*(javascript|vbscript|data):/i.test(a.value)) bad.push(e.tagName + '[' + n + ']=' + a.value);
  }});
  Array.from(document.images).forEach(i => { if (/\\/x$|tb-injected/.test(i.src)) bad.push('img ' + i.src); });
  return bad;
}"""


def assert_inert(page, where: str, requests: list[str]) -> None:
    for frame in page.frames:
        bad = frame.evaluate(INERT)
        assert not bad, f"{where} (frame {frame.url}): hostile text became markup: {bad}"
    fetched = [u for u in requests if urlparse(u).path.rstrip("/").endswith("/x") or "__tb_pwned" in u
               or "tb-injected" in u]
    assert not fetched, f"{where}: hostile text made the browser fetch {fetched}"
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, f"{where}: a traceback is shown: {errors.first.inner_text()[:2000]}"


def _open_expanders(page) -> None:
    """Open every visible closed expander and wait until each is open (its content shown)."""
    from playwright.sync_api import expect

    expanders = page.get_by_test_id("stExpander")  # by position: a locator finds an element again if redrawn
    for i in range(expanders.count()):
        details = expanders.nth(i).locator("details").first
        summary = details.locator("> summary")
        if details.evaluate("d => d.open") or not summary.is_visible():
            continue
        summary.click()
        expect(details).to_have_js_property("open", True)


def _open_everything(page, label: str, check) -> str:
    """Open every expander and every tab of the page; check after each step. Returns the text shown."""
    from playwright.sync_api import expect

    shown = []
    _open_expanders(page)
    check(f"{label}, expanders open")
    shown.append(page.locator("body").inner_text())
    tabs = page.get_by_role("tab")
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        name = tab.inner_text()
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
        wait_idle(page)
        _open_expanders(page)
        check(f"{label}, tab {name!r}")
        shown.append(page.locator("body").inner_text())
    return "\n".join(shown)


def _select(page, label: str, option_text: str) -> None:
    """Pick the option of a selectbox whose text contains option_text."""
    box = page.get_by_role("combobox", name=label, exact=True).filter(visible=True).first
    box.click()
    page.get_by_role("option").filter(has_text=option_text).first.click()
    wait_idle(page)


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.LEAD, Role.RATER], ids=lambda r: r.value)
def test_hostile_text_is_inert_on_every_page(server, page, role):
    from playwright.sync_api import expect

    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(WATCH)
    username, password = ACCOUNTS[role]
    log_in(page, server.url, username, password)
    check = lambda where: assert_inert(page, f"{role.value}: {where}", requests)  # noqa: E731
    check("after log in")

    names = pages_for(role)
    assert set(names) <= set(PAGES)
    nav = page.get_by_test_id("stSidebarNav").get_by_role("link")
    expect(nav).to_have_count(len(names))
    shown: dict[str, str] = {}
    for name in names:
        title = name.capitalize()  # dashboard/app.py: title and url_path follow the page's key
        nav.filter(has_text=re.compile(rf"{title}$")).click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        wait_idle(page)  # the heading is this run's: idle now is its end, everything is drawn
        if name == "generations":  # its details show after the seeded set is picked
            _select(page, "Set", STATE["gen"])
        text = _open_everything(page, name, check)
        if name == "rate":  # the rater reads the payload in the responses, and the lead's instructions as typed
            expect(page.get_by_test_id("stColumn").filter(has_text="Response 1").last).to_contain_text(MARK)
            expect(page.get_by_test_id("stCaptionContainer").filter(has_text=PAYLOADS[7])).to_have_count(1)
        if name == "results" and role is Role.LEAD:  # ruth's rationale, under the pair the lead opened
            page.get_by_role("tab", name="Pairs").click()
            wait_idle(page)
            expect(page.get_by_test_id("stCaptionContainer").filter(has_text="ruth: ")
                   .filter(has_text=PAYLOADS[7]).first).to_be_visible()
        shown[name] = text
    missing = sorted(name for name in SHOWN_AS_TEXT[role] if MARK not in shown[name])
    assert not missing, f"{role.value}: the payload is not shown as text on {missing}"
    check("at the end")


def test_plain_text_is_literal_in_markdown():
    """dashboard.widgets.plain: what Streamlit's markdown shows is exactly the characters typed."""
    from markdown_it import MarkdownIt
    from markdown_it.common.utils import escapeHtml

    from dashboard.widgets import plain

    # A CommonMark parser with raw HTML passed through (the stricter case); the browser test above covers
    # Streamlit's own markdown (GFM autolinks, LaTeX, directives).
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    assert plain("Which reply would you send? It's 'fine', 100%; a/b @ home") == \
        "Which reply would you send? It's 'fine', 100%; a/b @ home"  # prose is sent as typed
    cases = ("**bold** _it_ `code` # head", "1. item", "2) item", "- item", "+ item", "> quote", "a\\b", ":red[x]",
             "x\n===", "---", "&lt;b&gt; &amp;", "| a | b |\n|---|---|", "~~gone~~", "[x]: https://e.invalid")
    for text in PAYLOADS + cases:
        html = md.render(plain(text))
        assert "<a " not in html and "<img" not in html and "<strong" not in html and "<code" not in html, html
        assert html.count("<p>") == 1 and not re.search(r"<(h\d|ol|ul|li|blockquote|hr|table|s|del)\b", html), html
        assert md.renderInline(plain(text)) == escapeHtml(text), (text, md.renderInline(plain(text)))


# ---- 2. Blindness: nothing a rater's browser receives names a model or a side ---------------------

class Recorder:
    """Every websocket frame and HTTP body from the app's origin that the page receives."""

    def __init__(self, page, origin: str):
        self.page, self.origin = page, origin
        self.frames: list[bytes] = []
        self.responses: list = []
        self.static: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("response", self._response)

    def _frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else payload.encode())

    def _response(self, response) -> None:
        url = urlparse(response.url)
        if f"{url.scheme}://{url.netloc}" != self.origin:
            return
        # Streamlit's bundled JS, CSS and fonts are files of the installed package, the same for every app
        # and session: checked to be exactly those files, not searched (minified code holds any word).
        if url.path.startswith("/static/"):
            self.static.append(url.path)
        else:
            self.responses.append(response)  # bodies are read later: no blocking call in an event handler

    def snapshot(self, label: str) -> None:
        """What the page holds now: URL, DOM with every attribute (Streamlit puts widget keys in classes)."""
        assert_blind(f"{label}: url", self.page.url.encode())
        assert_blind(f"{label}: html", self.page.content().encode())
        assert_blind(f"{label}: cookies", repr(self.page.context.cookies()).encode())

    def finish(self) -> None:
        import streamlit

        assert self.frames, "no websocket frame was recorded"
        for i, frame in enumerate(self.frames):
            assert_blind(f"websocket frame {i}", frame)
        # Control: what the rater read is in these frames as plain bytes, so the search can see a leak.
        assert any(PAIR_SET_NAME.encode() in f for f in self.frames), "the task name is in no recorded frame"
        assert any(b"Saved: " in f for f in self.frames), "the vote receipt is in no recorded frame"
        bodies = 0
        for response in self.responses:
            try:
                body = response.body()
            except Exception:  # a redirect or a body the browser did not keep: nothing to search
                continue
            bodies += 1
            assert_blind(f"HTTP {response.url}", body)
        assert bodies, "no HTTP body of the app was recorded"
        root = Path(streamlit.__file__).parent / "static"
        for path in set(self.static):
            assert (root / path.lstrip("/")).is_file(), f"{path} is served under /static/ but is no packaged file"


def assert_blind(where: str, blob: bytes) -> None:
    low = blob.lower()
    for token in STATE["forbidden"]:
        at = low.find(token.lower().encode())
        assert at < 0, f"the rater's browser received {token!r} in {where}: ...{blob[max(0, at - 120):at + 120]!r}..."


def _progress(page, done: int) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stProgress")).to_contain_text(re.compile(rf"^{done} of {STATE['pairs']} rated"))
    wait_idle(page)


def _click(page, key: str) -> None:
    time.sleep(SETTLE_S)
    page.locator(f".st-key-{key}").get_by_role("button").click()
    wait_idle(page)


def test_a_raters_browser_never_receives_which_model_or_side(server, page):
    from playwright.sync_api import expect

    forbidden = STATE["forbidden"]
    for needed in (TUNED, SECRET_RUN, ADAPTER_PATH, "zz-secret-train-0042", BASE_MODEL, BASE_NAME, STATE["gen"],
                   STATE["pair_set"], STATE["suite_set"], "gold:reference", "left_is_a", "tiny-llama", "llama"):
        assert needed in forbidden, f"{needed!r} is missing from the list built from the database"

    rec = Recorder(page, server.url)
    page.goto(server.url)
    wait_drawn(page)
    rec.snapshot("login page")
    log_in(page, server.url, "rita", PASSWORD)
    expect(page.get_by_role("heading", name="Rate", exact=True)).to_be_visible()
    _progress(page, 0)
    rec.snapshot("rate page")

    _click(page, "vote_1")
    _progress(page, 1)
    _click(page, "vote_2")
    _progress(page, 2)
    _click(page, "skip")
    expect(page.get_by_test_id("stAlert").filter(has_text="Skipped")).to_have_count(1)
    page.get_by_role("textbox", name="Why? (optional)").fill(f"clearer {MARK}")
    page.get_by_role("textbox", name="Why? (optional)").press("Tab")
    wait_idle(page)
    _click(page, "vote_tie")
    _progress(page, 3)
    _click(page, "undo")
    _progress(page, 2)
    expect(page.get_by_test_id("stAlert")).to_contain_text("Your last vote was taken back")
    _click(page, "vote_both_bad")
    _progress(page, 3)
    rec.snapshot("after votes, a skip and an undo")

    for name in pages_for(Role.RATER):
        title = name.capitalize()
        page.get_by_test_id("stSidebarNav").get_by_role("link").filter(has_text=re.compile(rf"{title}$")).click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        wait_idle(page)
        rec.snapshot(f"{name} page")
    page.reload()  # a new session from the login cookie: the first frames of a page load again
    wait_drawn(page)
    rec.snapshot("after a reload")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    rec.finish()
