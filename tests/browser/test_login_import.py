"""In a real browser: log in, upload a bad then a good file, see the version; a rater sees
no engineer pages, even by typing their address."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import log_in, navigate_in_session, open_page, wait_drawn, wait_idle
from tests.conftest import ADMIN_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def upload(page, path) -> None:
    page.locator("input[type=file]").set_input_files(str(path))
    # the uploader lists the file once the bytes reached the server; the rerun follows
    expect()(page.get_by_role("button", name=f"Remove {path.name}", exact=True)).to_be_visible()
    wait_idle(page)


def test_admin_uploads_a_bad_then_a_good_file(server, page, demo_files):
    good, bad = demo_files
    ex = expect()
    log_in(page, server.url, "admin", ADMIN_PASSWORD)
    ex(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()  # engineers land on Home
    sidebar = page.get_by_test_id("stSidebar")
    ex(sidebar).to_contain_text("Signed in as admin · engineer")
    open_page(page, "Data")

    page.get_by_role("tab", name="Import").click()
    wait_idle(page)
    upload(page, bad)
    page.get_by_role("button", name="Validate").click()
    wait_idle(page)
    ex(page.get_by_text(f"{bad.name}: cannot be imported until the errors are fixed.")).to_be_visible()
    problems = page.get_by_test_id("stDataFrame").filter(has_text="unknown_role")
    ex(problems).to_have_count(1)
    # the grid draws on a canvas; its accessible table (inside the canvas, not in the aria tree)
    # holds the rendered rows: columns severity, line, field, problem, code, file
    ex(problems.locator("th[aria-colindex='2']")).to_have_text("line")
    row = problems.locator("tr[role=row]").filter(has_text="unknown_role")
    ex(row).to_have_count(1)
    ex(row.locator("td[aria-colindex='2']")).to_have_text("41")
    ex(page.get_by_test_id("stAlertContentSuccess")).to_have_count(0)

    upload(page, good)
    page.get_by_role("button", name="Import", exact=True).click()
    wait_idle(page)
    success = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Imported")
    ex(success).to_be_visible()
    message = success.inner_text()
    found = re.search(r"Imported support_tickets version ([0-9a-f]{16})", message)
    assert found, message
    version = found.group(1)

    page.get_by_role("tab", name="Versions").click()
    wait_idle(page)
    ex(page.get_by_role("heading", name=f"support_tickets · {version}")).to_be_visible()
    versions = page.get_by_test_id("stDataFrame").filter(has_text=version)
    ex(versions.first).to_be_visible()
    ex(page.get_by_test_id("stException")).to_have_count(0)


def assert_no_engineer_content(page) -> None:
    ex = expect()
    sidebar = page.get_by_test_id("stSidebar")
    for forbidden in ("Data", "Users"):
        ex(sidebar.get_by_role("link", name=forbidden)).to_have_count(0)
        ex(page.get_by_role("heading", name=forbidden, exact=True)).to_have_count(0)
    for text in ("Add an account", "Change an account", "Versions", "Import", "Validate"):
        ex(page.get_by_text(text, exact=True)).to_have_count(0)
    ex(page.get_by_test_id("stDataFrame")).to_have_count(0)
    ex(page.get_by_test_id("stException")).to_have_count(0)


@pytest.mark.parametrize("path, title, lands", [("/users", "Users", "/users"), ("/data", "Data", "/data"),
                                               ("/login", "Home", "")])  # the log-in form's own address
def test_typed_address_signed_out_shows_the_login_page_there_then_the_page(server, page, path, title, lands):
    """A deep link (or a tab opened before this session knows who signed in) gets the log-in form at its
    address, never "Page not found"; signing in there opens that page."""
    ex = expect()
    page.goto(server.url + path)  # a typed address opens a new session: signed out
    wait_drawn(page)
    ex(page.get_by_role("heading", name="tuneboard")).to_be_visible()
    ex(page.get_by_role("textbox", name="Username")).to_be_visible()
    ex(page.get_by_role("dialog")).to_have_count(0)
    assert_no_engineer_content(page)
    page.get_by_role("textbox", name="Username").fill("admin")
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    ex(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    wait_idle(page)
    ex(page.get_by_role("dialog")).to_have_count(0)
    assert page.url.rstrip("/") == server.url.rstrip("/") + lands


def test_a_deep_link_a_moment_after_signing_in_opens_its_page(server, page):
    """"Log in", and at once another page's address: no "Page not found" over it, whether this new session
    knows the user yet (the login cookie was written) or not (then the log-in form is there, and signing in
    there opens the page)."""
    ex = expect()
    page.goto(server.url)
    wait_drawn(page)
    page.get_by_role("textbox", name="Username").fill("admin")
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(server.url + "/data")  # a moment after, before the landing page is drawn
    wait_drawn(page)
    ex(page.get_by_role("dialog")).to_have_count(0)
    if page.get_by_role("textbox", name="Username").count():  # this session did not know the user yet
        page.get_by_role("textbox", name="Username").fill("admin")
        page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
    ex(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    wait_idle(page)
    ex(page.get_by_role("dialog")).to_have_count(0)


def test_rater_sees_no_engineer_content(server, page):
    ex = expect()
    log_in(page, server.url, "rita", PASSWORD)
    ex(page.get_by_role("heading", name="Rate", exact=True)).to_be_visible()
    ex(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as rita · rater")
    assert_no_engineer_content(page)
    # the same session asks for the engineer pages by address (history navigation, as the
    # browser's back/forward would): the rater stays on the rating page
    for path in ("/users", "/data"):
        navigate_in_session(page, path)
        ex(page.get_by_role("heading", name="Rate", exact=True)).to_be_visible()
        ex(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as rita · rater")
        assert_no_engineer_content(page)


def test_reload_keeps_the_login_until_logout(server, page):
    ex = expect()
    log_in(page, server.url, "leo", PASSWORD)
    ex(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as leo · lead")
    page.reload()  # a new Streamlit session: signed in again from the login cookie
    wait_drawn(page)
    ex(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as leo · lead")
    cookie = [c for c in page.context.cookies() if c["name"] == "tuneboard_session"]
    assert len(cookie) == 1 and cookie[0]["sameSite"] == "Strict"
    page.get_by_role("button", name="Log out").click()
    wait_idle(page)
    ex(page.get_by_role("textbox", name="Username")).to_be_visible()
    page.reload()
    wait_drawn(page)
    ex(page.get_by_role("textbox", name="Username")).to_be_visible()
    assert page.get_by_text("Signed in as").count() == 0


def test_the_api_docs_page_loads_with_no_network(server, page):
    """[api] The API's docs page (Swagger UI) and its schema come from the server itself: with every
    request to another host refused, it renders the operations."""
    from playwright.sync_api import expect

    outside: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{server.url}/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("tuneboard"))).to_be_visible()
    expect(page.get_by_text("/login", exact=True).first).to_be_visible()
    assert outside == []
