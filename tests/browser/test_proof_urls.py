"""Proof for issue [proof] "Role escalation", through the real server: a rater who types an engineer
or lead page's address, or adds hostile query parameters, sees only rater content.

Nothing here is a hand-kept list of pages. The pages a rater must not reach are
core.auth.PAGES minus pages_for(rater); their addresses and titles come from the st.Page
entries of dashboard/app.py; the widgets that must not appear are the button, tab and heading
labels written in those pages' modules (and the parts, pages/parts/, only they import). A new
page therefore joins this proof on its own.

A pair set assigned to rita and one that is not (its name must never show) let the query
parameters aim at real ids.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest

from core.auth import PAGES, Role, pages_for
from tests.browser.conftest import close_page_not_found, log_in, navigate_in_session, wait_drawn, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
RATER_PAGES = pages_for(Role.RATER)
FORBIDDEN = [name for name in PAGES if name not in RATER_PAGES]
MINE, OTHER = "Round for rita", "Round for nobody"
STATE: dict = {}


# ---- what the dashboard declares -----------------------------------------------------------------
def _app_pages() -> dict[str, dict[str, str]]:
    """name -> {title, url_path} from the PAGES dict of st.Page(...) in dashboard/app.py."""
    tree = ast.parse((ROOT / "dashboard" / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGES" for t in node.targets):
            return {key.value: {kw.arg: kw.value.value for kw in call.keywords if kw.arg in ("title", "url_path")}
                    for key, call in zip(node.value.keys, node.value.values)}
    raise AssertionError("dashboard/app.py has no PAGES dict")


LABEL_CALLS = {"button", "form_submit_button", "download_button", "link_button", "title", "header", "subheader",
               "tabs"}


def _labels(module: str) -> set[str]:
    """Button, tab and heading labels written as literals in a module (e.g. pages/train.py)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                and node.func.attr in LABEL_CALLS):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
        elif isinstance(first, (ast.List, ast.Tuple)):  # st.tabs([...])
            found |= {e.value for e in first.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return {label.strip() for label in found if label.strip()}


def _view_modules(page: str) -> set[str]:
    """The page module and the parts of it it imports (pages/parts/; not the shared context/widgets)."""
    tree = ast.parse((ROOT / "pages" / f"{page}.py").read_text())
    modules = {f"pages.{page}"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("dashboard", "pages.parts"):
            modules |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("dashboard.", "pages.parts.")):
            modules.add(node.module)
    return {m for m in modules if m not in ("dashboard.context", "dashboard.widgets")}


APP_PAGES = _app_pages()
RATER_LABELS = set().union(*(_labels(m) for p in RATER_PAGES for m in _view_modules(p))) | {"Log out"}
FORBIDDEN_LABELS = set().union(*(_labels(m) for p in FORBIDDEN for m in _view_modules(p))) - RATER_LABELS
FORBIDDEN_TITLES = {APP_PAGES[p]["title"] for p in FORBIDDEN}


def address(name: str) -> str:
    """A page's address for the rater: the navigation's first page is served at "/" (Streamlit
    answers its own url_path with "Page not found", then runs it anyway)."""
    return "/" if name == RATER_PAGES[0] else "/" + APP_PAGES[name]["url_path"]
RATER_TITLES = {APP_PAGES[p]["title"] for p in RATER_PAGES}


def test_the_lists_are_derived_and_not_empty():
    assert set(APP_PAGES) == set(PAGES), "dashboard/app.py and core.auth.PAGES list different pages"
    assert "train" in FORBIDDEN and "users" in FORBIDDEN and "rate" not in FORBIDDEN
    assert FORBIDDEN_TITLES.isdisjoint(RATER_TITLES)
    # a few engineer widgets the proof must be able to see (a control that the parsing works)
    assert {"Train", "Launch", "Add", "Create pair set", "Start model server"} <= FORBIDDEN_LABELS | FORBIDDEN_TITLES


# ---- the workspace ------------------------------------------------------------------------------
def seed_workspace(owner, root) -> None:
    """A dataset version (so the engineer pages draw their forms: there is something to leak) and
    two pair sets, one assigned to rita."""
    from core.auth import CLI_USER, User
    from core.datasets import ImportOptions, import_dataset
    from core.demo.review import seed_generation_set
    from core.demo.tickets import write_demo_files
    from core.review.pairs import PairSetSpec, create_pair_set

    good, _ = write_demo_files(root / "demo", n=60, seed=7)
    import_dataset(owner.store, CLI_USER, good.read_bytes(), good.name, ImportOptions.from_settings(owner.settings))
    leo = User("leo", Role.LEAD)
    gen = seed_generation_set(owner.store, n_prompts=4, seed=3)
    mine = create_pair_set(owner.store, leo, PairSetSpec(
        name=MINE, generation_set_id=gen, variants=["base", "adapter:tuned"], raters=["rita"], raters_per_pair=1,
        gold_rate=0.0))
    other = create_pair_set(owner.store, leo, PairSetSpec(
        name=OTHER, generation_set_id=gen, variants=["base", "adapter:tuned"], raters=[], gold_rate=0.0))
    STATE.update(gen=gen, mine=mine, other=other)


# ---- what the rater sees ------------------------------------------------------------------------
SEEN = r"""() => {
  const text = e => {  // without the Material icon names Streamlit writes as text ligatures
    const c = e.cloneNode(true);
    c.querySelectorAll('[data-testid=stIconMaterial]').forEach(i => i.remove());
    return (c.textContent || '').trim();
  };
  const q = s => Array.from(document.querySelectorAll(s));
  return {
    headings: q('h1, h2, h3').map(text),
    buttons: q('button, [role=button], [role=tab], a[data-testid=stSidebarNavLink]').map(text),
    nav: q('[data-testid=stSidebarNav] a').map(text),
    body: document.body.innerText + '\n' + q('input, textarea').map(i => i.value).join('\n'),
  };
}"""


# What each rater page draws last: the proof reads the page only once it is there. (A page that
# has just loaded reports its script "not running" before the run starts, so idle alone is no sign
# that the content has arrived.)
def _ready_rate(page) -> None:  # rita's own task in the selector, and the vote row below the pair
    expect()(page.get_by_role("combobox", name="Task")).to_have_value(re.compile("^" + re.escape(MINE)))
    expect()(page.get_by_role("button", name="Undo")).to_be_visible()


def _ready_account(page) -> None:  # her own account line, and the password form below it
    expect()(page.get_by_text(re.compile(r"rita\s*·\s*role rater")).first).to_be_visible()
    expect()(page.get_by_role("button", name="Change password")).to_be_visible()


READY = {"rate": _ready_rate, "account": _ready_account}


def forbidden_on_screen(seen: dict) -> set[str]:
    """Titles and widget labels of the forbidden pages that are on screen."""
    lines = {line.strip() for line in seen["body"].splitlines() if line.strip()}
    return (FORBIDDEN_TITLES | FORBIDDEN_LABELS) & (set(seen["headings"]) | set(seen["buttons"]) | lines)


def sign_in_rita(page, url: str) -> None:
    log_in(page, url, "rita", PASSWORD)
    expect()(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as rita · rater")


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def wait_for_rater_page(page, name: str | None = None) -> str:
    """Wait until a rater page (`name`, or whichever one is shown) has drawn all of its content; its name."""
    sidebar = page.get_by_test_id("stSidebar")
    expect()(sidebar).to_contain_text("Signed in as rita · rater")  # a typed address signs in again from the cookie
    titles = {APP_PAGES[n]["title"]: n for n in ([name] if name else RATER_PAGES)}
    heading = page.get_by_role("heading", name=re.compile("^(" + "|".join(map(re.escape, titles)) + ")$"))
    expect()(heading).to_have_count(1)
    shown = next(n for t, n in titles.items() if page.get_by_role("heading", name=t, exact=True).count())
    READY[shown](page)
    wait_idle(page)
    return shown


def assert_rater_only(page, where: str, name: str | None = None) -> dict:
    """rita is signed in, on a rater page (`name` where given), and nothing of a lead's or
    engineer's page is on screen."""
    shown = wait_for_rater_page(page, name)
    seen = page.evaluate(SEEN)
    assert "Signed in as rita · rater" in seen["body"], (where, seen["body"][:500])
    assert seen["nav"] and set(seen["nav"]) <= RATER_TITLES, (where, seen["nav"])
    shown_titles = set(seen["headings"]) & (RATER_TITLES | FORBIDDEN_TITLES)
    assert shown_titles == {APP_PAGES[shown]["title"]}, (where, seen["headings"])
    leaked = forbidden_on_screen(seen)
    assert not leaked, (where, sorted(leaked))
    assert OTHER not in seen["body"] and STATE["other"] not in page.content(), where
    path = urlparse(page.url).path.strip("/")
    assert path not in {APP_PAGES[p]["url_path"] for p in FORBIDDEN}, (where, page.url)
    assert not page.get_by_test_id("stException").count(), where
    return {"title": APP_PAGES[shown]["title"], "name": shown, "path": path, "body": seen["body"]}


def hostile_queries() -> list[dict[str, str]]:
    """Query parameters someone would try: a page, a role, another user, ids of a pair set not theirs."""
    return [
        {"page": "train"}, {"role": "engineer"}, {"user": "admin"}, {"username": "admin", "role": "engineer"},
        {"pair_set": STATE["other"], "ticket": "1"}, {"page": "users", "embed": "true"},
        {"embed_options": "show_toolbar", "role": "lead", "page": "results"},
    ]


# ---- the proofs ---------------------------------------------------------------------------------
def test_rater_typing_every_forbidden_address(server, page):
    """Each forbidden page's address, opened as a new page load (signed in again from the cookie),
    with hostile query parameters on it: Streamlit says the page is not found and runs the Rate page."""
    sign_in_rita(page, server.url)
    assert_rater_only(page, "after login", "rate")
    bad = [{}, *hostile_queries()]
    for i, name in enumerate(FORBIDDEN):
        query = bad[i % len(bad)]
        target = f"{server.url}/{APP_PAGES[name]['url_path']}" + (f"?{urlencode(query)}" if query else "")
        page.goto(target)
        close_page_not_found(page)
        assert_rater_only(page, target, RATER_PAGES[0])


def test_rater_with_hostile_query_parameters(server, page):
    """On the rater's own pages, parameters that name a page, a role, a user or someone else's pair
    set change nothing: the same rater content, rita's own task only, her own account."""
    sign_in_rita(page, server.url)
    tries = [(name, query) for query in hostile_queries() for name in RATER_PAGES
             if name == RATER_PAGES[0] or "user" in query or "username" in query]
    for name, query in tries:
        target = f"{server.url}{address(name)}?{urlencode(query)}"
        page.goto(target)
        # The page's own content is drawn (its READY markers: rita's own task, her own account);
        # a "Page not found" would have come before it, in the same run.
        shown = assert_rater_only(page, target, name)
        assert not page.get_by_role("dialog").count(), target
        if name == "account":
            assert "admin" not in shown["body"], (target, shown["body"][:400])


def test_rater_navigating_in_the_session(server, page):
    """The same session asks for each forbidden page by address (history navigation, as the
    browser's back/forward would), with a hostile query: the rater stays on rater content."""
    sign_in_rita(page, server.url)
    assert_rater_only(page, "after login", "rate")
    queries = hostile_queries()
    for i, name in enumerate(FORBIDDEN):
        target = f"/{APP_PAGES[name]['url_path']}?{urlencode(queries[i % len(queries)])}"
        navigate_in_session(page, target)
        assert_rater_only(page, target)


def test_control_the_detector_sees_an_engineer_page(server, page):
    """A control: on the engineer's Train page the same detector finds the title and the Launch button,
    so an empty finding for the rater means the content was not there, not that it was not looked for."""
    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    expect()(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as admin · engineer")
    page.goto(f"{server.url}/{APP_PAGES['train']['url_path']}")
    wait_drawn(page)
    expect()(page.get_by_role("heading", name=APP_PAGES["train"]["title"], exact=True)).to_be_visible()
    expect()(page.get_by_role("button", name="Launch")).to_be_visible()
    found = forbidden_on_screen(page.evaluate(SEEN))
    assert {APP_PAGES["train"]["title"], "Launch"} <= found, sorted(found)
