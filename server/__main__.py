"""`python -m server [--port N] [--host H]`: run tuneboard's one process (`tuneboard serve`)."""

from __future__ import annotations

import argparse
import os
import sys

from core import sso
from core.config import load_settings
from core.errors import TuneboardError
from server import sso as sso_secrets
from server.app import URL_ENV, build


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    parser.add_argument("--port", type=int)
    parser.add_argument("--host")
    args = parser.parse_args(argv)
    try:
        cfg = load_settings()
    except TuneboardError as exc:
        print(f"tuneboard: {exc}", file=sys.stderr)
        return 2
    problems = sso.problems(cfg)
    if problems:
        print("tuneboard: single sign-on is configured ([sso] metadata_url) but cannot work:\n  - "
              + "\n  - ".join(problems), file=sys.stderr)
        return 2
    host, port = args.host or cfg.server.host, args.port or cfg.server.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    os.environ[URL_ENV] = f"http://{shown}:{port}"
    build().run(config={
        **sso_secrets.streamlit_options(cfg, os.environ[URL_ENV]),
        "server.port": port, "server.address": host, "server.headless": True,
        "browser.gatherUsageStats": False, "server.maxUploadSize": cfg.data.max_upload_mb,
        "theme.base": "light", "client.toolbarMode": "minimal", "server.fileWatcherType": "none",
        # Streamlit's gc.collect(2) after every page run walks the whole heap (torch and
        # transformers are loaded): with 50 raters it was half the server's CPU (py-spy).
        # Python's own collector still runs; the lifespan freezes the start-up heap.
        "runner.postScriptGC": False,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
