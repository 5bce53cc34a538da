"""`tuneboard generate`, `serve-models` and `contenders ...`: outputs of the base, its fine-tunes and
the models they compete with. `contenders` goes through the API; `serve-models` runs a local vLLM
server."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import (api, connection, csv_list, decoding_help, finish, follow_job, local_path, out, read_file,
                         settings)
from core.errors import InvalidInput

commands = typer.Typer()
contenders = typer.Typer(help="External OpenAI-compatible models to compare against.", no_args_is_help=True)


@commands.command()
def generate(prompts: Optional[str] = typer.Option(None, "--prompts", "-p", help="A dataset version's split as VERSION[:SPLIT] "
                                         "(split test by default), or a prompt file (.txt: one per line; .jsonl: "
                                         '{"prompt": ...} or {"messages": [...]} per line).'),
             variants: str = typer.Option("base", "--variants", "-v", help="Comma-separated variant ids: base, "
                                          "adapter:RUN, merged:RUN, external:NAME (`tuneboard generate --list`)."),
             name: Optional[str] = typer.Option(None, help="Name of the set (default: from the prompts)."),
             limit: Optional[int] = typer.Option(None, min=1, help="Only the first N prompts."),
             max_tokens: int = typer.Option(128, help=decoding_help("max_tokens")),
             temperature: float = typer.Option(0.0, help=decoding_help("temperature")),
             top_p: float = typer.Option(1.0, help=decoding_help("top_p")),
             seed: int = typer.Option(0, help=decoding_help("seed")),
             samples: int = typer.Option(1, min=1, help="Samples per prompt (pass@k): each dataset prompt is "
                                         "generated this many times; needs --temperature above 0."),
             path: Optional[str] = typer.Option(None, help="auto, vllm-lora, vllm-merged or transformers (default: "
                                                "serving.path of the config)."),
             list_variants: bool = typer.Option(False, "--list", help="List the variants that can be generated."),
             detach: bool = typer.Option(False, help="Start the worker and return at once.")) -> None:
    """Generate a prompt set with several variants side by side; every output is stored with its decoding."""
    if list_variants:
        table = Table("variant", "kind", "name", "path")
        for v in api().get("/variants"):
            table.add_row(v["variant_id"], v["kind"], v["name"], v["path"])
        out.print(table)
        return
    if not prompts:
        raise InvalidInput("--prompts: give a dataset version (VERSION or VERSION:SPLIT) or a prompt file.")
    file = local_path(prompts)
    if file.suffix in (".txt", ".jsonl", ".json") or file.exists():
        source = {"file": file.name, "content": read_file(file).decode("utf-8", errors="replace")}
    else:
        version, _, split = prompts.partition(":")
        source = {"version": version, "split": split or "test"}
    body = {"name": name, "variants": csv_list(variants), "path": path or "auto",
            "prompts": {**source, "limit": limit, "samples": samples},
            "decoding": {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}}
    started = api().post("/generations", json=body)
    set_id = started["set_id"]
    out.print(f"started {set_id}: {started['prompts']} prompts x {len(started['variants'])} variants", markup=False)
    if detach:
        return
    job = follow_job(set_id, 24 * 3600, show=_generation_line)
    for s in api().get(f"/generations/{set_id}")["per_variant"]:
        out.print(f"{s['variant_id']}: {s['n']} outputs" + ("".join(f"\n  flag: {f}" for f in s["flags"])
                                                           or ", no flags"), markup=False)
    finish(set_id, job)
    if job["status"] != "succeeded":  # cancelled, or still running when the wait ended
        raise typer.Exit(1)


def _generation_line(e: dict) -> None:
    if e["type"] == "plan":
        out.print(f"path: {e['path']} ({e['reason']})", markup=False)
    elif e["type"] == "progress" and e.get("stage"):
        out.print(e["stage"], markup=False)
    elif e["type"] == "progress" and "done" in e:
        out.print(f"{e['done']}/{e['total']} outputs", markup=False)
    elif e["type"] == "parity":
        out.print(f"parity {e['variant_id']}: {e['exact']}/{e['n']} identical to {e['reference']} "
                  f"(mean common prefix {e['mean_common_prefix']:.1f} tokens)", markup=False)


@commands.command("serve-models")
def serve_models(port: Optional[int] = typer.Option(None, help="Port (default serving.server_port)."),
                 host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for other machines: "
                                          "needs --api-key-env)."),
                 api_key_env: str = typer.Option("", help="Name of the environment variable holding the key "
                                                 "clients must send (required off this machine).")) -> None:
    """Run vLLM's OpenAI-compatible server over the base model and its adapters until Ctrl-C."""
    import time

    from core.serving import vllm_missing
    from core.serving.playground import server_max_model_len
    from core.serving.server import VLLMServer, require_key_off_loopback

    if vllm_missing():
        raise InvalidInput(f"serve-models runs vLLM, but {vllm_missing()}.")
    require_key_off_loopback(host, api_key_env)
    base = settings().base_model
    adapters = {v["variant_id"]: v["path"] for v in api().get("/variants") if v["kind"] == "adapter"}
    connection().release()  # the server runs for long: leave the database to the dashboard
    server = VLLMServer(base, adapters, host=host, port=port or settings().serving.server_port,
                        max_model_len=server_max_model_len(settings()),
                        log_path=settings().workspace_dir / "serve-models.log", api_key_env=api_key_env)
    out.print(f"starting vLLM over {base} with {len(adapters)} adapter(s); log: {server.log_path}", markup=False)
    with server:
        out.print(f"ready: {server.url}  models: {', '.join(server.models())}", markup=False)
        out.print(f"try: curl {server.url}/chat/completions -H 'Content-Type: application/json' "
                  """-d '{"model": "base", "messages": [{"role": "user", "content": "Hello"}]}'""", markup=False)
        while server.alive():
            time.sleep(1)
    raise InvalidInput(f"the vLLM server stopped; see {server.log_path}")


SYSTEM_PROMPT = typer.Option("", help="A system prompt the contender answers with (replaces the prompt's own).")
FEW_SHOT = typer.Option(None, help="A JSONL file of few-shot examples, one {\"user\": ..., \"assistant\": ...} "
                        "per line, put before every prompt.")
TASKS = typer.Option("", help="Comma-separated tasks (datasets) it competes on (default: all).")


def _shots(few_shot: Optional[Path]) -> list[dict]:
    """The few-shot file, read and checked here (its errors name the file and line), as the API's examples."""
    from core.lifecycle.contenders import read_few_shot

    if few_shot is None:
        return []
    if not few_shot.is_file():
        raise InvalidInput(f"--few-shot: {few_shot} is not a file.")
    return [{"user": user, "assistant": assistant} for user, assistant in read_few_shot(few_shot.read_bytes(),
                                                                                          few_shot.name)]


def _model(model: str) -> str:
    """A model folder the user names as their shell means it (absolute, for the server); a hub id as given."""
    model = model.strip()
    folder = local_path(Path(model).expanduser()) if model else None
    if folder is not None and (model.startswith(("/", ".", "~")) or folder.exists()):
        return str(folder.resolve())
    return model


@contenders.command("add")
def contenders_add(name: str, url: str = typer.Option(..., help="OpenAI-compatible base URL, e.g. "
                                                      "https://api.example.com/v1."),
                   model: str = typer.Option(..., help="Model name the endpoint expects."),
                   key_env: str = typer.Option("", help="Name of the environment variable holding the API key "
                                               "(the key itself is never stored)."),
                   system_prompt: str = SYSTEM_PROMPT, few_shot: Optional[Path] = FEW_SHOT,
                   tasks: str = TASKS) -> None:
    """Register an external model as a contender (variant external:NAME)."""
    made = api().post("/contenders/external", json={"name": name, "url": url, "model": model, "key_env": key_env,
                                                    "system_prompt": system_prompt, "few_shot": _shots(few_shot),
                                                    "tasks": csv_list(tasks)})
    out.print(f"registered {made['variant_id']}", markup=False)


@contenders.command("model")
def contenders_model(name: str, model: str = typer.Option("", help="A newer base: a hub id or a local model folder "
                                                           "(empty: the configured base, with a prompt)."),
                     system_prompt: str = SYSTEM_PROMPT, few_shot: Optional[Path] = FEW_SHOT,
                     tasks: str = TASKS) -> None:
    """Register another model, or the base with a system prompt and few-shot examples, as contender:NAME."""
    body = {"name": name, "system_prompt": system_prompt, "few_shot": _shots(few_shot), "tasks": csv_list(tasks)}
    model = _model(model)
    made = (api().post("/contenders/model", json={**body, "model": model}) if model
            else api().post("/contenders/prompted", json=body))
    out.print(f"registered {made['variant_id']}", markup=False)
