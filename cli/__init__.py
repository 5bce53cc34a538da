"""The `tuneboard` command: an edge over the same core services the pages call.

This module holds the root app and registers the command groups, one module each; what they
share (consoles, settings, the database owner, error translation) is in `cli.context`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli import access, data, judge, lifecycle, metrics, regression, review, serving, training, users, workspace
from cli.context import run, use_config

app = typer.Typer(help="tuneboard: decide whether a fine-tuned LLM beats its base model.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", help="Path of tuneboard.toml "
                                                 "(default ./tuneboard.toml or $TUNEBOARD_CONFIG).")) -> None:
    use_config(config)


# Top-level commands first, then the groups: the order `tuneboard --help` lists them in.
for module in (workspace, training, serving, lifecycle, access):
    app.add_typer(module.commands)
app.add_typer(data.app, name="data")
app.add_typer(users.app, name="users")
app.add_typer(access.tokens, name="tokens")
app.add_typer(training.runs, name="runs")
app.add_typer(serving.contenders, name="contenders")
app.add_typer(metrics.app, name="metrics")
app.add_typer(review.app, name="review")
app.add_typer(judge.app, name="judge")
app.add_typer(lifecycle.retrain, name="retrain")
app.add_typer(regression.app, name="regression")


def main() -> None:
    """`tuneboard ...`: each command speaks the HTTP API, to the workspace's running server when there is
    one, else in this process (cli/api.py)."""
    run(app)
