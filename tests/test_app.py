"""AppTest tier: the dashboard's pages, headless, against a real workspace (no browser).

Every test ends with no exception on the page. AppTest cannot upload files; the browser
tier (tests/browser) covers uploads.
"""

from __future__ import annotations

import pytest

from core.auth import Role, User
from core.datasets import list_versions
from core.users import authenticate, get_user, set_disabled, set_role
from dashboard.context import SESSION_USER
from tests.apptest import (DashboardOwners, assert_clean, button, force_page, goto, make_app, registered_pages,
                           table_counts, texts, titles, use_fast_password_hashing)
from tests.conftest import ADMIN_PASSWORD, PASSWORD

ADMIN = User("admin", Role.ENGINEER)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    use_fast_password_hashing(monkeypatch)


@pytest.fixture
def app(settings, env, owner, accounts, monkeypatch):
    """make(username) -> AppTest of the dashboard on this test's workspace (accounts exist)."""
    owners = DashboardOwners(monkeypatch)
    yield lambda username=None: make_app(env, username)
    owners.close()


def log_in(at, username: str, password: str):
    [name] = [t for t in at.text_input if t.label == "Username"]
    [pw] = [t for t in at.text_input if t.label == "Password"]
    name.set_value(username)
    pw.set_value(password)
    return button(at, "Log in").click().run()


# ---- signed out, logging in --------------------------------------------------------------------
def test_signed_out_sees_only_the_login_page(app):
    at = app(None)
    assert_clean(at)
    assert titles(at) == ["tuneboard"]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not at.sidebar.children or "Signed in" not in " ".join(texts(at.sidebar.markdown))
    assert not at.tabs
    with pytest.raises(KeyError):
        goto(at, "Data")


@pytest.mark.parametrize("url_path", ["data", "users", "account"])
def test_signed_out_typed_url_shows_the_login_page(app, url_path):
    at = force_page(app(None), url_path)
    assert_clean(at)
    assert titles(at) == ["tuneboard"]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form


@pytest.mark.parametrize("username,password", [("admin", "wrong-password-123"), ("nobody", ADMIN_PASSWORD),
                                               ("admin", "")])
def test_wrong_password_shows_an_error_and_no_navigation(app, username, password):
    at = log_in(app(None), username, password)
    assert_clean(at)
    assert texts(at.error) == ["Wrong username or password."]
    assert titles(at) == ["tuneboard"]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form
    assert SESSION_USER not in at.session_state


def test_admin_logs_in_and_sees_the_home_page(app):
    at = log_in(app(None), "admin", ADMIN_PASSWORD)
    assert_clean(at)
    assert not at.error
    assert at.session_state[SESSION_USER] == "admin"
    assert titles(at) == ["Home"]
    assert registered_pages(at) == ["Home", "Data", "Train", "Models", "Generations", "Playground", "Review", "Results", "Judges", "Metrics", "Regression", "Users", "Account"]
    assert any("Signed in as **admin** · engineer" in m for m in texts(at.sidebar.markdown))


def test_disabled_account_cannot_log_in(app, owner, accounts):
    set_disabled(owner.store, ADMIN, "rita", True)
    at = log_in(app(None), "rita", PASSWORD)
    assert_clean(at)
    assert texts(at.error) == ["This account is disabled; ask an engineer to enable it."]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form
    assert SESSION_USER not in at.session_state


def test_log_out_returns_to_the_login_page(app):
    at = app("eve")
    assert titles(at) == ["Home"]
    at.sidebar.button[0].click().run()
    assert_clean(at)
    assert titles(at) == ["tuneboard"]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form
    assert SESSION_USER not in at.session_state


# ---- navigation per role -----------------------------------------------------------------------
@pytest.mark.parametrize("username,pages", [
    ("eve", ["Home", "Data", "Train", "Models", "Generations", "Playground", "Review", "Results", "Judges", "Metrics", "Regression", "Users", "Account"]),
    ("leo", ["Home", "Data", "Models", "Generations", "Playground", "Review", "Results", "Metrics", "Regression", "Account"]),
    ("rita", ["Rate", "Account"]),
])
def test_navigation_shows_the_pages_of_the_role(app, username, pages):
    at = app(username)
    assert_clean(at)
    assert registered_pages(at) == pages
    assert titles(at) == [pages[0]]  # the first allowed page is the default
    for title in pages:
        goto(at, title)
        assert_clean(at)
        assert titles(at) == [title]
    for title in {"Rate", "Home", "Data", "Train", "Models", "Generations", "Playground", "Review", "Results", "Judges", "Metrics",
                  "Regression", "Users", "Account"} - set(pages):
        with pytest.raises(KeyError):
            goto(at, title)


def test_engineer_data_page_has_versions_and_import_tabs(app):
    at = goto(app("eve"), "Data")
    assert [t.label for t in at.tabs] == ["Versions", "Import"]
    assert [r.label for r in at.radio] == ["Source"]
    assert {"Validate", "Import"} <= {b.label for b in at.button}
    assert texts(at.info) == ["No datasets yet. Import one in the Import tab."]


def test_lead_data_page_has_no_import(app):
    at = goto(app("leo"), "Data")
    assert_clean(at)
    assert titles(at) == ["Data"]
    assert not at.tabs
    assert not at.radio
    assert not {"Validate", "Import"} & {b.label for b in at.button}
    assert texts(at.info) == ["No datasets yet."]


@pytest.mark.parametrize("username,url_path,shown", [
    ("rita", "users", "Rate"), ("rita", "data", "Rate"), ("leo", "users", "Home"), ("leo", "train", "Home"),
    ("rita", "models", "Rate"), ("rita", "results", "Rate"), ("rita", "review", "Rate"), ("leo", "rate", "Home"), ("rita", "metrics", "Rate"), ("rita", "home", "Rate"),
])
def test_typed_url_of_a_forbidden_page_shows_the_default_page(app, username, url_path, shown):
    at = force_page(app(username), url_path)
    assert_clean(at)
    assert titles(at) == [shown]
    assert not any(t.label == "Username" for t in at.text_input)  # the Users form is absent
    assert not at.dataframe  # no account list, no dataset table


# ---- changes take effect on the next rerun -----------------------------------------------------
def test_disabled_account_is_signed_out_on_its_next_rerun(app, owner):
    at = app("leo")
    assert titles(at) == ["Home"]
    set_disabled(owner.store, ADMIN, "leo", True)
    at.run()
    assert_clean(at)
    assert titles(at) == ["tuneboard"]
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form
    assert SESSION_USER not in at.session_state


def test_role_change_takes_effect_on_the_next_rerun(app, owner):
    at = goto(app("leo"), "Data")
    assert registered_pages(at) == ["Home", "Data", "Models", "Generations", "Playground", "Review", "Results", "Metrics", "Regression", "Account"]
    assert not at.tabs
    set_role(owner.store, ADMIN, "leo", "engineer")
    at.run()
    assert_clean(at)
    assert registered_pages(at) == ["Home", "Data", "Train", "Models", "Generations", "Playground", "Review", "Results", "Judges", "Metrics", "Regression", "Users", "Account"]
    assert titles(at) == ["Data"]
    assert [t.label for t in at.tabs] == ["Versions", "Import"]


def test_demoted_engineer_on_the_users_page_loses_it_on_the_next_rerun(app, owner):
    at = goto(app("eve"), "Users")
    assert titles(at) == ["Users"]
    set_role(owner.store, ADMIN, "eve", "rater")
    at.run()
    assert_clean(at)
    assert registered_pages(at) == ["Rate", "Account"]
    assert titles(at) == ["Rate"]
    assert not at.dataframe


# ---- Users page --------------------------------------------------------------------------------
def fill_add_form(at, username: str, role: str, password: str):
    [name] = [t for t in at.text_input if t.label == "Username"]
    [pw] = [t for t in at.text_input if t.label == "Password (empty: generate one)"]
    [role_box] = [s for s in at.selectbox if s.label == "Role"]
    name.set_value(username)
    role_box.set_value(role)
    pw.set_value(password)
    return button(at, "Add").click().run()


def test_engineer_adds_an_account(app, owner):
    at = goto(app("eve"), "Users")
    assert titles(at) == ["Users"]
    listed = at.dataframe[0].value
    assert set(listed["username"]) == {"admin", "rita", "leo", "eve"}
    at = fill_add_form(at, "newbie", "lead", PASSWORD)
    assert_clean(at)
    assert not at.error
    assert texts(at.success) == ["Created newbie (lead)."]
    assert get_user(owner.store, "newbie") == User("newbie", Role.LEAD)
    assert authenticate(owner.store, "newbie", PASSWORD) == User("newbie", Role.LEAD)
    assert owner.store.scalar("SELECT created_by FROM users WHERE username = 'newbie'") == "eve"


def test_engineer_adds_an_account_with_a_generated_password(app, owner):
    at = fill_add_form(goto(app("eve"), "Users"), "gen-user", "rater", "")
    assert_clean(at)
    [message] = texts(at.success)
    assert message.startswith("Created gen-user (rater). Password: `")
    generated = message.split("`")[1]
    assert authenticate(owner.store, "gen-user", generated) == User("gen-user", Role.RATER)


def test_too_short_password_shows_an_error_and_creates_nothing(app, owner):
    at = goto(app("eve"), "Users")
    before = table_counts(owner.store)
    at = fill_add_form(at, "shorty", "rater", "short")
    assert_clean(at)
    assert texts(at.error) == ["password: must be at least 10 characters."]
    assert not at.success
    assert get_user(owner.store, "shorty") is None
    assert table_counts(owner.store) == before
    assert titles(at) == ["Users"]


def test_users_page_changes_a_role(app, owner):
    at = goto(app("eve"), "Users")
    [account] = [s for s in at.selectbox if s.label == "Account"]
    [new_role] = [s for s in at.selectbox if s.label == "New role"]
    account.set_value("rita")
    new_role.set_value("lead")
    at = button(at, "Apply").click().run()
    assert_clean(at)
    assert texts(at.success) == ["Updated rita."]
    assert get_user(owner.store, "rita") == User("rita", Role.LEAD)


# ---- Data page ---------------------------------------------------------------------------------
def choose_server_path(at, path: str):
    goto(at, "Data")
    at.radio[0].set_value("Path on the server").run()
    [field] = [t for t in at.text_input if t.label == "File path on the server"]
    field.set_value(str(path)).run()
    return at


def test_engineer_imports_a_file_from_the_server(app, owner, demo_files):
    at = choose_server_path(app("eve"), demo_files[0])
    assert not at.error
    assert not button(at, "Import").disabled
    at = button(at, "Import").click().run()
    assert_clean(at)
    assert not at.error
    [version] = list_versions(owner.store, ADMIN)
    assert version["dataset"] == "support_tickets"
    assert version["n_examples"] > 0
    assert version["created_by"] == "eve"
    assert f"Imported **support_tickets** version `{version['version_id']}`." in texts(at.success)
    # the new version is listed on the Versions tab once the page reruns
    at.run()
    assert_clean(at)
    assert version["version_id"] in set(at.dataframe[0].value["version_id"])
    assert any(version["version_id"] in s for s in texts(at.subheader))


def test_importing_the_same_file_again_writes_nothing_new(app, owner, demo_files):
    at = choose_server_path(app("eve"), demo_files[0])
    button(at, "Import").click().run()
    before = table_counts(owner.store)
    at = button(at, "Import").click().run()
    assert_clean(at)
    assert any("nothing new was imported" in i for i in texts(at.info))
    assert table_counts(owner.store) == before


def problems_frame(at):
    frames = [d.value for d in at.dataframe if "code" in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in at.dataframe]
    return frames[0]


def test_bad_file_import_shows_the_problems_and_writes_nothing(app, owner, demo_files):
    at = choose_server_path(app("eve"), demo_files[1])
    before = table_counts(owner.store)
    at = button(at, "Import").click().run()
    assert_clean(at)
    [error] = texts(at.error)
    assert error.startswith("support_tickets_bad.jsonl: ") and "nothing was imported" in error
    problems = problems_frame(at)
    unknown = problems[problems["code"] == "unknown_role"]
    assert list(unknown["line"]) == [41]
    assert {"invalid_json"} <= set(problems["code"])
    assert table_counts(owner.store) == before
    assert list_versions(owner.store, ADMIN) == []
    assert not at.success


def test_bad_file_validate_says_it_cannot_be_imported(app, owner, demo_files):
    at = choose_server_path(app("eve"), demo_files[1])
    before = table_counts(owner.store)
    at = button(at, "Validate").click().run()
    assert_clean(at)
    assert "support_tickets_bad.jsonl: cannot be imported until the errors are fixed." in texts(at.error)
    assert 41 in set(problems_frame(at).query("code == 'unknown_role'")["line"])
    assert table_counts(owner.store) == before


def test_missing_server_path_shows_an_error_and_disables_the_buttons(app, tmp_path):
    at = choose_server_path(app("eve"), tmp_path / "nope.jsonl")
    assert_clean(at)
    assert texts(at.error) == [f"{tmp_path / 'nope.jsonl'}: no such file on the server."]
    assert button(at, "Import").disabled and button(at, "Validate").disabled


def test_lead_browses_an_imported_version_read_only(app, owner, demo_files):
    from core.datasets import ImportOptions, import_dataset

    result = import_dataset(owner.store, ADMIN, demo_files[0].read_bytes(), demo_files[0].name,
                            ImportOptions.from_settings(owner.settings))
    at = goto(app("leo"), "Data")
    assert_clean(at)
    assert titles(at) == ["Data"]
    assert result.version_id in set(at.dataframe[0].value["version_id"])
    assert not at.tabs
    assert not {"Validate", "Import"} & {b.label for b in at.button}


def test_password_reset_elsewhere_signs_this_browser_out(app, owner):
    from core.users import reset_password

    at = log_in(app(None), "leo", PASSWORD)
    assert_clean(at)
    assert titles(at) == ["Home"]
    reset_password(owner.store, ADMIN, "leo", "a-new-password-42")  # ends leo's sessions
    at.run()
    assert_clean(at)
    assert set(registered_pages(at)) == {"Log in"}  # each address shows the log-in form


def test_engineers_see_a_failing_background_pass_on_home_and_others_do_not(settings, env, owner, accounts,
                                                                         monkeypatch):
    """The dashboard's own owner, its real monitor thread: a follow-up that raises is shown to an
    engineer with its time and message; a lead's Home does not show it."""
    import time as clock

    owners = DashboardOwners(monkeypatch)
    try:
        at = make_app(env, "eve")
        [served] = owners.opened

        def broken() -> None:
            raise RuntimeError("schedule 'weekly' points at a dataset that is gone")

        served.monitor.after = broken
        deadline = clock.monotonic() + 10
        while served.monitor.last_error is None:
            assert clock.monotonic() < deadline
            clock.sleep(0.05)
        at = goto(make_app(env, "eve"), "Home")
        assert_clean(at)
        [shown] = [e.value for e in at.error]
        assert "dataset that is gone" in shown and "failed at 20" in shown and "retried every second" in shown
        lead = goto(make_app(env, "leo"), "Home")
        assert not [e.value for e in lead.error]
    finally:
        owners.close()
