"""Streamlit entrypoint: `streamlit run dashboard/app.py` (or `tuneboard serve`).

Signed out: only the login page. Signed in: the pages the role may use (core.auth.PAGES);
each core action checks the role again, so navigation is not the only guard.
"""

from __future__ import annotations

import streamlit as st

from core import audit
from core.auth import pages_for
from dashboard.context import apply_cookie, current_user, get_owner, sign_out
from pages import (account, data, generations, home, judges, login, metrics, models, playground, rate, regression,
                   results, review, train, users)

# What this run changes is audited as done through a page (each run has its own thread: set every run).
audit.set_door("page")
st.set_page_config(page_title="tuneboard", page_icon=":material/compare_arrows:", layout="wide")

PAGES = {
    "rate": st.Page(rate.render, title="Rate", icon=":material/how_to_vote:", url_path="rate"),
    "home": st.Page(home.render, title="Home", icon=":material/home:", url_path="home"),
    "data": st.Page(data.render, title="Data", icon=":material/dataset:", url_path="data"),
    "train": st.Page(train.render, title="Train", icon=":material/model_training:", url_path="train"),
    "models": st.Page(models.render, title="Models", icon=":material/deployed_code:", url_path="models"),
    "generations": st.Page(generations.render, title="Generations", icon=":material/compare:",
                           url_path="generations"),
    "playground": st.Page(playground.render, title="Playground", icon=":material/chat:", url_path="playground"),
    "review": st.Page(review.render, title="Review", icon=":material/rule:", url_path="review"),
    "results": st.Page(results.render, title="Results", icon=":material/leaderboard:", url_path="results"),
    "judges": st.Page(judges.render, title="Judges", icon=":material/gavel:", url_path="judges"),
    "metrics": st.Page(metrics.render, title="Metrics", icon=":material/monitoring:", url_path="metrics"),
    "regression": st.Page(regression.render, title="Regression", icon=":material/shield:", url_path="regression"),
    "users": st.Page(users.render, title="Users", icon=":material/group:", url_path="users"),
    "account": st.Page(account.render, title="Account", icon=":material/key:", url_path="account"),
}

get_owner()
user = current_user()
if user is None:
    # Every page's address shows the log-in form while this session knows no user (a deep link, or a tab
    # opened a moment after signing in elsewhere): never "Page not found"; once signed in, the same address
    # shows its page.
    nav = st.navigation([st.Page(login.render, title="Log in", icon=":material/login:", default=True)]
                        + [st.Page(login.render, title="Log in", url_path=name) for name in ("login", *PAGES)],
                        position="hidden")
else:
    # Every page of the role in view (an engineer has 14; by default a sidebar shows ten and "View more").
    nav = st.navigation([PAGES[name] for name in pages_for(user.role)], expanded=True)
    with st.sidebar:
        st.markdown(f"Signed in as **{user.username}** · {user.role.value}")
        if st.button("Log out", icon=":material/logout:") and not sign_out():
            st.rerun()
# Always the same placeholder, so writing the cookie never shifts the page's elements
# (a shift would reset widgets such as the selected tab).
apply_cookie(st.empty())
nav.run()
