"""`tuneboard judge ...`: LLM judges of blind pairs, and how they agree with the experts, through the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import api, finish, follow_job, out, read_file

app = typer.Typer(help="LLM judges: define, run over a pair set, measure against the experts.", no_args_is_help=True)


@app.command("prompts")
def judge_prompts() -> None:
    """The built-in pairwise prompts and their versions."""
    for p in api().get("/judges/prompts"):
        out.print(f"[bold]{p['name']}[/bold] ({p['version']})")
        out.print(p["system"], markup=False)


@app.command("list")
def judge_list() -> None:
    """Judges: their variant, prompt and prompt version."""
    table = Table("judge", "name", "variant", "prompt", "version", "by")
    for j in api().get("/judges"):
        table.add_row(j["judge_id"], j["name"], j["variant_id"], j["prompt_name"], j["prompt_version"],
                      j["created_by"])
    out.print(table)


@app.command("add")
def judge_add(name: str, variant: str = typer.Option(..., help="What answers: base, adapter:RUN, external:NAME, ..."),
              prompt: str = typer.Option("balanced", help="A built-in prompt (`tuneboard judge prompts`), or your "
                                         "own prompt's name with --template."),
              system: str = typer.Option("", help="Your own prompt's system message."),
              template: Optional[Path] = typer.Option(None, help="A file with your own prompt: {instructions}, "
                                                      "{conversation}, {first}, {second}, asking for 'Verdict: 1', "
                                                      "'Verdict: 2' or 'Verdict: tie'.")) -> None:
    """Define a judge from a variant and a pairwise prompt."""
    text = read_file(template).decode("utf-8", errors="replace") if template else ""
    made = api().post("/judges", json={"name": name, "variant_id": variant, "prompt": prompt, "system": system,
                                       "template": text})
    out.print(made["judge_id"], markup=False)


@app.command("run")
def judge_run(judge: str, pair_set: str = typer.Option(..., help="The pair set whose pairs are judged."),
              path: str = typer.Option("auto", help="auto, vllm-lora, vllm-merged or transformers."),
              detach: bool = typer.Option(False, help="Start the worker and return at once.")) -> None:
    """Judge every pair of a pair set in both orders (greedy)."""
    started = api().post(f"/judges/{judge}/runs", json={"pair_set_id": pair_set, "path": path})
    set_id = started["set_id"]
    out.print(f"started {set_id}", markup=False)
    if detach:
        return
    finish(set_id, follow_job(set_id, 24 * 3600))


@app.command("runs")
def judge_runs(pair_set: Optional[str] = typer.Option(None, help="Only the runs over this pair set.")) -> None:
    """Judge runs, newest first."""
    table = Table("run", "judge", "pair set", "prompt", "status")
    for r in api().get("/judges/runs", **({"pair_set_id": pair_set} if pair_set else {})):
        table.add_row(r["set_id"], r["source"]["judge"], r["source"]["pair_set_id"], r["source"]["prompt"],
                      r["status"])
    out.print(table)


def _share(x: dict | None) -> str:
    if not x or x.get("value") is None:
        return "–"
    return f"{100 * x['value']:.0f}% ({100 * x['lo']:.0f}-{100 * x['hi']:.0f}%, {x['n']} pairs)"


@app.command("show")
def judge_show(run: str) -> None:
    """A judge run against the experts: agreement, kappa, order consistency, position bias, the human ceiling."""
    r = api().get(f"/judges/runs/{run}/calibration")
    k = r["kappa"]
    lines = [
        f"judge {r['judge']} (prompt {r['prompt']} {r['prompt_version']}, {r['variant_id']}) on {r['pair_set_id']}",
        f"pairs judged {r['pairs_judged']}, unreadable {r['unreadable']}, with expert votes {r['pairs_with_experts']}",
        f"agreement with the experts: {_share(r['agreement']['ties_in'])}; ties left out "
        f"{_share(r['agreement']['ties_out'])}",
        "Cohen's kappa: " + ("–" if k["value"] is None else f"{k['value']:.2f} ({k['lo']:.2f} to {k['hi']:.2f})"),
        f"same verdict in both orders: {_share(r['order_consistency'])}",
        f"picks the response shown first: {_share(r['position_bias'])} (50%: no lean)",
        f"experts against each other (the ceiling): {_share(r['human']['ties_in'])}; the judge on those pairs "
        f"{_share(r['human']['judge_on_same_pairs']['ties_in'])}",
        f"pairs where a response addresses the judge: {r['flagged']['pairs']} (agreement there "
        f"{_share(r['flagged']['ties_in'])})",
    ]
    if r.get("by_probability"):
        b = r["by_probability"]
        lines.append(f"where it gives its side at least {100 * b['threshold']:.0f}%: {b['sure']['pairs']} pairs, "
                     f"agreement {_share(b['sure']['ties_in'])}; the other {b['unsure']['pairs']} pairs "
                     f"{_share(b['unsure']['ties_in'])}")
    lines += [f"tag {tag}: {t['pairs']} pairs, agreement {_share(t['ties_in'])}" for tag, t in r["by_tag"].items()]
    for line in lines:
        out.print(line, markup=False)


@app.command("align")
def judge_align(pair_set: str) -> None:
    """Compare the judges run on a pair set: chosen on half the voted pairs, reported on the other half."""
    r = api().get(f"/judges/alignment/{pair_set}")
    if r["chosen"] is None:
        out.print(f"{r['voted_pairs']} pairs have expert votes; {r['needed']} more are needed to compare prompts.",
                  markup=False)
        return
    table = Table("judge", "calibration half", "report half", "kappa (report)", "chosen")
    for name, p in r["prompts"].items():
        table.add_row(name, _share(p["calibration"]), _share(p["report"]["ties_in"]),
                      "–" if p["kappa"]["value"] is None else f"{p['kappa']['value']:.2f}",
                      "yes" if name == r["chosen"] else "")
    out.print(table)


@app.command("route")
def judge_route(pair_set: str, run: str = typer.Option(..., help="A finished judge run over this pair set."),
                audit: float = typer.Option(0.2, help="Share of the judged pairs that stay with the experts."),
                seed: int = typer.Option(0, help="Seeds which judged pairs are audited."),
                min_probability: float = typer.Option(
                    0.6, help="Where the judge gives probabilities, a verdict whose side has less goes to experts "
                              "first (0 ignores them).")) -> None:
    """Let a measured judge pre-screen a pair set: judged pairs leave the experts' queues, unsure ones come first."""
    got = api().put(f"/judges/routing/{pair_set}", json={"set_id": run, "audit_share": audit, "seed": seed,
                                                         "min_probability": min_probability})
    c = got["counts"]
    out.print(f"{pair_set}: {c['judged']} judged (out of the experts' queues), {c['audit']} judged and audited by "
              f"experts, {c['experts_first']} to the experts first; the judge is measured on "
              f"{got['calibration']['pairs_with_experts']} expert-voted pairs", markup=False)


@app.command("routing")
def judge_routing(pair_set: str) -> None:
    """How a pair set is routed, the judge's agreement on the audited pairs, and the combined win rate if allowed."""
    got = api().get(f"/judges/routing/{pair_set}")
    if got["routing"] is None:
        out.print(f"{pair_set} is not routed: every pair goes to the experts.", markup=False)
        return
    r, c = got["routing"], got["routing"]["counts"]
    out.print(f"routed by {r['judge_run']}: {c['judged']} judged, {c['audit']} audited, {c['experts_first']} to "
              f"experts first; on the {r['audited_with_votes']} audited pairs with votes the judge agrees "
              f"{_share((r['audit_agreement'] or {}).get('ties_in'))}", markup=False)
    for m in got["combined"] or []:
        out.print(f"{m['label']}: {m['a']} vs {m['b']}: {100 * m['rate']:.0f}% ({100 * m['lo']:.0f}-"
                  f"{100 * m['hi']:.0f}%), {m['by_experts']} pairs by experts, {m['by_judge']} by the judge",
                  markup=False)


@app.command("unroute")
def judge_unroute(pair_set: str) -> None:
    """Every pair of a pair set back to the experts."""
    api().delete(f"/judges/routing/{pair_set}")
    out.print(f"{pair_set}: every pair goes to the experts", markup=False)
