"""The one tuneboard process: Streamlit's ASGI app (`st.App`) under uvicorn, with a lifespan that
opens the owner of the database (store, job monitor, schedules) before the first request and
closes it on shutdown, and the HTTP routes beside the pages (`server.routes`).

`python -m server` (what `tuneboard serve` runs) starts it; `server.discovery` tells clients
on this machine where it listens.
"""
