"""Text-overlap and label metrics over aligned predictions and references.

Every per-example function returns one float per example so a later bootstrap can
resample examples; the `*_corpus` functions take an optional `indices` so the caller can
recompute a corpus score on a resample without rebuilding lists. Scores come from the
standard implementations (rouge-score, sacrebleu), never re-derived here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER

from core.errors import InvalidInput

# A reference is one string, or several acceptable strings for that example (sacrebleu
# metrics only: BLEU/chrF/TER were defined over multiple references; ROUGE here is not).
Reference = str | Sequence[str]

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _check_aligned(predictions: Sequence[object], references: Sequence[object]) -> None:
    # A silent zip over unequal lists would score the wrong pairs; say so instead.
    if len(predictions) != len(references):
        raise InvalidInput(
            f"predictions and references must be aligned: got {len(predictions)} "
            f"predictions and {len(references)} references"
        )


# --- ROUGE ------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _rouge_scorer(types: tuple[str, ...], use_stemmer: bool) -> "rouge_scorer.RougeScorer":
    # Building a scorer loads the Porter stemmer; reuse one per configuration.
    from rouge_score import rouge_scorer  # it loads nltk (over a second): only when ROUGE is asked for

    return rouge_scorer.RougeScorer(list(types), use_stemmer=use_stemmer)


def rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = True,
) -> dict[str, list[float]]:
    """ROUGE F-measure per example for each of `types`, via rouge-score's RougeScorer.

    rouge-score lower-cases, keeps only ASCII letters and digits as tokens, and (with
    `use_stemmer`) Porter-stems tokens longer than 3 characters. `rougeLsum` is the
    summary-level LCS over sentences, and rouge-score splits sentences on newlines only:
    put one sentence per line in both texts, or rougeLsum equals rougeL.
    """
    _check_aligned(predictions, references)
    types = tuple(types)
    # Checked up front: rouge-score would only fail on the first score() call.
    unknown = [t for t in types if t not in ("rougeL", "rougeLsum") and not re.fullmatch(r"rouge[1-9][0-9]*", t)]
    if unknown:
        raise InvalidInput(f"unknown ROUGE type(s) {unknown}: use rougeN (e.g. rouge1, rouge2), rougeL or rougeLsum")
    scorer = _rouge_scorer(types, use_stemmer)
    out: dict[str, list[float]] = {t: [] for t in types}
    for pred, ref in zip(predictions, references):
        # rouge-score's argument order is (target, prediction).
        scores = scorer.score(ref, pred)
        for t in types:
            out[t].append(float(scores[t].fmeasure))
    return out


# --- sacrebleu: BLEU, chrF, TER ---------------------------------------------------------


def _ref_list(ref: Reference) -> list[str]:
    return [ref] if isinstance(ref, str) else list(ref)


def _sentence_scores(metric: BLEU | CHRF | TER, predictions: Sequence[str], references: Sequence[Reference]) -> list[float]:
    _check_aligned(predictions, references)
    return [float(metric.sentence_score(p, _ref_list(r)).score) for p, r in zip(predictions, references)]


def _corpus_score(
    metric: BLEU | CHRF | TER,
    predictions: Sequence[str],
    references: Sequence[Reference],
    indices: Sequence[int] | None,
) -> float:
    _check_aligned(predictions, references)
    if indices is not None:
        # Resampling with replacement repeats examples; corpus statistics then count them
        # again, which is what a bootstrap over examples needs.
        predictions = [predictions[i] for i in indices]
        references = [references[i] for i in indices]
    refs = [_ref_list(r) for r in references]
    n_streams = {len(r) for r in refs}
    if len(n_streams) > 1:
        raise InvalidInput(
            "corpus scores need the same number of references for every example; "
            f"got counts {sorted(n_streams)}"
        )
    # sacrebleu wants reference *streams*: stream k holds the k-th reference of each example.
    streams = [list(s) for s in zip(*refs)] if refs else [[]]
    return float(metric.corpus_score(list(predictions), streams).score)


def bleu(predictions: Sequence[str], references: Sequence[Reference]) -> list[float]:
    """Sentence BLEU (0-100) per example: sacrebleu BLEU with effective_order=True.

    Effective order drops n-gram orders the sentence is too short to have, so a short
    exact match scores 100 rather than 0; sentence BLEU is still noisy, prefer the corpus score.
    """
    return _sentence_scores(BLEU(effective_order=True), predictions, references)


def bleu_corpus(
    predictions: Sequence[str], references: Sequence[Reference], indices: Sequence[int] | None = None
) -> float:
    """Corpus BLEU (0-100), sacrebleu defaults, over the examples at `indices` (all if None)."""
    return _corpus_score(BLEU(), predictions, references, indices)


def bleu_corpus_statistic(predictions: Sequence[str], references: Sequence[str]) -> Callable[[np.ndarray], float]:
    """Corpus BLEU (sacrebleu defaults) as a function of example indices, repeats allowed.

    Each example's sufficient statistics (hypothesis and reference lengths, matched and total
    n-grams of orders 1-4, as sacrebleu counts them) are computed once; a resample's corpus BLEU
    is sacrebleu's `compute_bleu` of their sums, equal to `bleu_corpus` on that resample."""
    _check_aligned(predictions, references)
    metric, counter = BLEU(), BLEU(effective_order=True)  # (effective order changes a sentence's score, not its counts)
    order = metric.max_ngram_order
    stats = np.zeros((len(predictions), 2 + 2 * order))
    for i, (p, r) in enumerate(zip(predictions, references)):
        s = counter.sentence_score(p, [r])
        stats[i] = [s.sys_len, s.ref_len, *s.counts, *s.totals]

    def statistic(indices: np.ndarray) -> float:
        total = stats[indices].sum(axis=0)
        return float(BLEU.compute_bleu(total[2:2 + order].astype(int).tolist(), total[2 + order:].astype(int).tolist(),
                                       int(total[0]), int(total[1]), smooth_method=metric.smooth_method,
                                       max_ngram_order=order).score)

    return statistic


def chrf(predictions: Sequence[str], references: Sequence[Reference]) -> list[float]:
    """Sentence chrF (0-100) per example: sacrebleu CHRF defaults (char 6-grams, beta 2, whitespace ignored)."""
    return _sentence_scores(CHRF(), predictions, references)


def chrf_corpus(
    predictions: Sequence[str], references: Sequence[Reference], indices: Sequence[int] | None = None
) -> float:
    """Corpus chrF (0-100) over the examples at `indices` (all if None)."""
    return _corpus_score(CHRF(), predictions, references, indices)


def ter(predictions: Sequence[str], references: Sequence[Reference]) -> list[float]:
    """Sentence TER per example: edits (insert, delete, substitute, shift) per reference word, x100.

    Lower is better, and it can exceed 100. sacrebleu TER defaults (case-insensitive).
    """
    return _sentence_scores(TER(), predictions, references)


def ter_corpus(
    predictions: Sequence[str], references: Sequence[Reference], indices: Sequence[int] | None = None
) -> float:
    """Corpus TER: total edits over total reference words, x100, at `indices` (all if None)."""
    return _corpus_score(TER(), predictions, references, indices)


# --- exact match and labels -------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD normalization: lower-case, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    # Same order as the SQuAD v1.1 evaluation script, so results are comparable with it.
    text = text.lower()
    text = text.translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """1.0 where the normalized prediction equals the normalized reference, else 0.0."""
    _check_aligned(predictions, references)
    return [float(normalize(p) == normalize(r)) for p, r in zip(predictions, references)]


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The label that occurs earliest in `text` as a whole word, case-insensitive; None if none does.

    "Whole word" means not preceded or followed by a letter, digit or underscore, so
    "spam" does not match "spammy". When two labels start at the same place (e.g. "not
    spam" and "not"), the longer wins. The label is returned as spelled in `labels`.
    """
    best: tuple[int, int, str] | None = None  # (start, -length, label): earliest, then longest
    for label in labels:
        if not label.strip():
            continue
        m = re.search(rf"(?<!\w){re.escape(label.strip())}(?!\w)", text, flags=re.IGNORECASE)
        if m:
            key = (m.start(), -len(label.strip()), label)
            if best is None or key < best:
                best = key
    return None if best is None else best[2]


def accuracy(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]) -> list[float]:
    """1.0 where the label extracted from the prediction equals the reference label (case-insensitive).

    A prediction with no recognisable label scores 0.0.
    """
    _check_aligned(predictions, references)
    if not labels:
        raise InvalidInput("accuracy needs the list of labels to look for")
    out = []
    for pred, ref in zip(predictions, references):
        got = extract_label(pred, labels)
        out.append(float(got is not None and got.strip().casefold() == ref.strip().casefold()))
    return out


def lengths(texts: Sequence[str]) -> dict[str, list[float]]:
    """Words (whitespace-separated tokens) and characters per text."""
    return {
        "words": [float(len(t.split())) for t in texts],
        "chars": [float(len(t)) for t in texts],
    }
