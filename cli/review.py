"""`tuneboard review ...`: blind A/B pair sets, their raters and their verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.context import csv_list, out, settings, store
from core.auth import CLI_USER
from core.errors import InvalidInput

app = typer.Typer(help="Blind A/B review: pair sets, raters, results.", no_args_is_help=True)


@app.command("list")
def review_list() -> None:
    """Pair sets with their pairs, gold pairs, assignments and votes."""
    from core.review.pairs import list_pair_sets

    table = Table("pair set", "name", "generation set", "pairs", "gold", "assigned", "votes")
    for r in list_pair_sets(store(), CLI_USER):
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
    from core.review.pairs import PairSetSpec, create_pair_set, plan_pair_set

    review = settings().review
    spec = PairSetSpec(name=name, generation_set_id=generation_set, variants=csv_list(variants), design=design,
                       baseline=baseline, raters=csv_list(raters),
                       raters_per_pair=review.raters_per_pair if per_pair is None else per_pair,
                       gold_rate=review.gold_rate if gold_rate is None else gold_rate, seed=seed,
                       instructions=instructions)
    out.print(create_pair_set(store(), CLI_USER, spec))
    plan = plan_pair_set(store(), CLI_USER, spec)
    if plan is not None:
        out.print(f"Plan: {plan.sentence()}", markup=False)


@app.command("assign")
def review_assign(pair_set: str, raters: str = typer.Option(..., help="Comma-separated rater accounts."),
                  per_pair: Optional[int] = typer.Option(None, help="Raters per pair (default: the set's).")) -> None:
    """(Re)assign a pair set to raters; votes already cast are kept."""
    from core.review.pairs import assign_raters

    added = assign_raters(store(), CLI_USER, pair_set, csv_list(raters), per_pair)
    out.print("New pairs per rater: " + ", ".join(f"{r} {n}" for r, n in added.items()))


@app.command("results")
def review_results(pair_set: str,
                   export: Optional[str] = typer.Option(None, help="csv, parquet or html: write a file instead of "
                                                        "printing."),
                   table: str = typer.Option("comparisons", help="With csv/parquet: ladder, comparisons, agreement "
                                             "or raters."),
                   out_dir: Path = typer.Option(Path("."), help="Folder for --export.")) -> None:
    """The verdict of a pair set (computed and stored now if the votes changed)."""
    from core.review import results

    if export:
        data, name, _ = results.export(store(), CLI_USER, pair_set, settings().review, export, table)
        target = out_dir / name
        target.write_bytes(data)
        out.print(f"wrote {target}")
        return
    res = results.latest(store(), CLI_USER, pair_set, settings().review)
    if res is None:
        raise InvalidInput(f"{pair_set} has no votes yet.")
    for line in results.verdict(res):
        out.print(line, markup=False)
    ladder = Table("rank", "variant", "rating", "interval", "rank range", "votes")
    for r in res.ladder.to_dict("records"):
        ladder.add_row(str(r["rank"]), r["variant"], f"{r['rating']:.0f}", f"{r['lo']:.0f}-{r['hi']:.0f}",
                       f"{r['rank_lo']}-{r['rank_hi']}", str(r["n"]))
    out.print(ladder)
    out.print(f"Fleiss' kappa {res.fleiss_kappa if res.fleiss_kappa is not None else '-'}; Krippendorff's alpha "
              f"{res.krippendorff_alpha if res.krippendorff_alpha is not None else '-'}; result {res.result_id}",
              markup=False)
