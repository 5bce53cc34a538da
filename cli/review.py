"""`tuneboard review ...`: blind A/B pair sets, their raters and their verdicts, through the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import api, csv_list, export as export_file, out
from core.errors import InvalidInput

app = typer.Typer(help="Blind A/B review: pair sets, raters, results.", no_args_is_help=True)


@app.command("list")
def review_list() -> None:
    """Pair sets with their pairs, gold pairs, assignments and votes."""
    table = Table("pair set", "name", "generation set", "pairs", "gold", "assigned", "votes")
    for r in api().get("/pair-sets"):
        table.add_row(r["pair_set_id"], r["name"], r["generation_set_id"], str(r["pairs"]), str(r["gold"]),
                      str(r["assigned"]), str(r["votes"]))
    out.print(table)


@app.command("create")
def review_create(generation_set: str, name: str = typer.Option(..., help="Shown to raters; must not name a model."),
                  variants: str = typer.Option(..., help="Comma-separated variant ids of the generation set."),
                  design: str = typer.Option("baseline", help="baseline or all-pairs."),
                  baseline: str = typer.Option("base", help="The variant the others are compared with (baseline)."),
                  raters: str = typer.Option("", help="Comma-separated rater accounts to assign now."),
                  per_pair: Optional[int] = typer.Option(None, help="Raters per pair (default review.raters_per_pair)."),
                  gold_rate: Optional[float] = typer.Option(None, help="Share of gold pairs (default review.gold_rate)."),
                  seed: int = typer.Option(0, help="Seed of the side flips and the assignment."),
                  instructions: str = typer.Option("", help="Shown to raters above every pair.")) -> None:
    """Make a blind pair set from a generation set (and assign raters)."""
    made = api().post("/pair-sets", json={
        "name": name, "generation_set_id": generation_set, "variants": csv_list(variants), "design": design,
        "baseline": baseline, "raters": csv_list(raters), "raters_per_pair": per_pair, "gold_rate": gold_rate,
        "seed": seed, "instructions": instructions})
    out.print(made["pair_set_id"], markup=False)
    if made["plan"] is not None:
        out.print(f"Plan: {made['plan']['sentence']}", markup=False)


@app.command("assign")
def review_assign(pair_set: str, raters: str = typer.Option(..., help="Comma-separated rater accounts."),
                  per_pair: Optional[int] = typer.Option(None, help="Raters per pair (default: the set's).")) -> None:
    """(Re)assign a pair set to raters; votes already cast are kept."""
    added = api().put(f"/pair-sets/{pair_set}/raters", json={"raters": csv_list(raters),
                                                             "raters_per_pair": per_pair})["added"]
    out.print("New pairs per rater: " + ", ".join(f"{r} {n}" for r, n in added.items()), markup=False)


@app.command("results")
def review_results(pair_set: str,
                   export: Optional[str] = typer.Option(None, help="csv, parquet or html: write a file instead of "
                                                        "printing."),
                   table: str = typer.Option("comparisons", help="With csv/parquet: ladder, comparisons, agreement "
                                             "or raters."),
                   out_dir: Path = typer.Option(Path("."), help="Folder for --export.")) -> None:
    """The verdict of a pair set (computed and stored now if the votes changed)."""
    if export:
        out.print(f"wrote {export_file(f'/pair-sets/{pair_set}/export', out_dir, format=export, table=table)}",
                  markup=False)
        return
    res = api().get(f"/pair-sets/{pair_set}/results")
    if res["result_id"] is None:
        raise InvalidInput(f"{pair_set} has no votes yet.")
    for line in res["verdict"]:
        out.print(line, markup=False)
    ladder = Table("rank", "variant", "rating", "interval", "rank range", "votes")
    for r in res["ladder"]:
        ladder.add_row(str(r["rank"]), r["variant"], _f(r["rating"]), f"{_f(r['lo'])}-{_f(r['hi'])}",
                       f"{r['rank_lo']}-{r['rank_hi']}", str(r["n"]))
    out.print(ladder)
    out.print(f"Fleiss' kappa {_or_dash(res['fleiss_kappa'])}; Krippendorff's alpha "
              f"{_or_dash(res['krippendorff_alpha'])}; result {res['result_id']}", markup=False)


def _or_dash(value) -> str:
    return "-" if value is None else str(value)


def _f(value) -> str:
    """A rating, or '-' where there is none (JSON has no NaN)."""
    return "-" if value is None else f"{value:.0f}"


