"""Follow-up questions: does the offline resolver find what a conversation is about?

doc2dial (``../shared/data/conversation/doc2dial-a.*``): the 123 documents are indexed together and
every user turn is searched three ways, side by side on one index:
- the question alone (what the page did before conversations);
- all the user turns so far glued into one query (the usual cheap baseline);
- the resolver: ``Index.search(question, history=...)``, what ``Index.ask(history=...)`` searches
  (``rag.search.conversation.resolve``; the search's embedding mixed with the question's own,
  ``rag.search.conversation.LEAD_WEIGHT``).
A turn is right when one of its top 5 passages holds the grounding span the agent answered from
(at least half of it, as ``rag eval`` judges long spans). First turns and follow-ups are counted
apart.

CANARD dev (``canard-dev.json``): for each follow-up, the content words that the person's rewrite
adds to the question; the share of them the resolver's search recovers, against the same two
baselines. (QuAC's documents are not in the set, so no retrieval there.)

Tuning: the resolver's first rules were written against the seed article, two were chosen on
CANARD dev, and the weighting of the 2026-12-02 rules (the question twice, the previous answer)
and of the 2026-12-03 lead vector (the question's own embedding added to the search's) on the
*tune* half of doc2dial-a's documents (crc32 of the file name even). Figures are given for the
*report* half (odd) apart, which nothing was chosen on.

Usage:
    .venv/bin/python -m bench.studies.conversation [--limit N]

Results go to ``bench/results/conversation.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence


from bench.common import CACHE, SHARED, header, percentile, write

from rag import Index, Settings
from rag.eval.datasets import EvalQuestion, doc2dial_half, load_doc2dial
from rag.eval.metrics import passage_relevant
from rag.search.conversation import content_words, resolve

FOLDER = SHARED / "conversation"
K = 5


def glued(q: EvalQuestion) -> str:
    return " ".join([c for r, c in q.history if r == "user"] + [q.question])


STRATEGIES: dict[str, Callable[[EvalQuestion], str]] = {
    "question alone": lambda q: q.question,
    "all user turns glued": glued,
    "resolver (default)": lambda q: resolve(q.question, q.messages()).search,
}
"""How each strategy's query is made; for retrieval the resolver runs through ``Index.search``."""


def half(q: EvalQuestion) -> str:
    """The tune or report half of doc2dial-a, by document (``rag.eval.datasets.doc2dial_half``)."""
    return doc2dial_half(q.sources[0])


def doc2dial_rows(limit: int | None, documents: int | None = None) -> tuple[list[str], dict[str, float]]:
    question_set = load_doc2dial(FOLDER, cache_dir=CACHE / "datasets", limit=None if documents else limit)
    folder = CACHE / "doc2dial-index"
    if documents:  # a quick check: the first documents and the turns on them
        kept = question_set.corpus[:documents]
        turns = [q for q in question_set.questions if q.sources[0] in {p.name for p in kept}][:limit]
        question_set = dataclasses.replace(question_set, corpus=kept, questions=tuple(turns))
        folder = CACHE / f"doc2dial-index-{documents}"
    index = Index.build(question_set.corpus, folder, settings=Settings())
    right: dict[tuple[str, str], list[bool]] = {}
    timings = []
    search_ms: dict[str, list[float]] = {}
    for n, q in enumerate(question_set.questions):
        kind = "follow-up" if q.history else "first turn"
        for name, make in STRATEGIES.items():
            started = time.perf_counter()
            if name.startswith("resolver"):
                make(q)
                timings.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                hits = index.search(q.question, K, history=q.messages())
            else:
                hits = index.search(make(q), K)
            if kind == "follow-up":
                search_ms.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            ok = any(passage_relevant(q, h) for h in hits)
            right.setdefault((name, kind), []).append(ok)
            if kind == "follow-up":
                right.setdefault((name, half(q)), []).append(ok)
        if n % 200 == 0:
            print(f"doc2dial {n}/{len(question_set.questions)}", file=sys.stderr)
    lines = [f"doc2dial: {len(question_set.corpus)} documents ({len(index)} chunks), "
             f"{len(question_set.questions)} user turns; grounding span in the top {K} passages:", "",
             "| search | first turns | follow-ups | follow-ups, tune half | follow-ups, report half |",
             "|---|---:|---:|---:|---:|"]
    scores = {}
    for name in STRATEGIES:
        first = right.get((name, "first turn"), [])
        follow = right.get((name, "follow-up"), [])
        scores[name] = sum(follow) / max(1, len(follow))
        cells = [f"{sum(v) / max(1, len(v)):.3f} ({len(v)})"
                 for v in (first, follow, right.get((name, "tune"), []), right.get((name, "report"), []))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Resolver time per turn: p50 {percentile(timings, 50):.2f} ms, "
              f"p95 {percentile(timings, 95):.2f} ms (rules only; the search then embeds the resolved "
              "search and the question together, one batch of two).",
              "", "Search time per follow-up (`Index.search`, top 5, resolver included): "
              + "; ".join(f"{name} p50 {percentile(v, 50):.1f} ms, p95 {percentile(v, 95):.1f} ms"
                          for name, v in search_ms.items()) + ".", ""]
    return lines, scores


def canard_rows(limit: int | None) -> list[str]:
    data = json.loads((FOLDER / "canard-dev.json").read_text(encoding="utf-8"))
    if limit:
        data = data[:limit]
    recovered: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    followups = 0
    for item in data:
        history_text = item["History"][2:]  # the first two entries are the article and section titles
        title = " ".join(item["History"][:2])
        question, rewrite = item["Question"], item["Rewrite"]
        wanted = {w.lower() for w in content_words(rewrite)} - {w.lower() for w in content_words(question)}
        if not wanted:
            continue
        followups += 1
        messages = [{"role": "user", "content": title}]
        for i, text in enumerate(history_text):
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
        q = EvalQuestion(id="", question=question,
                         history=tuple((m["role"], m["content"]) for m in messages))
        for name, make in STRATEGIES.items():
            got = {w.lower() for w in content_words(make(q))}
            recovered[name].append(len(wanted & got) / len(wanted))
    lines = [f"CANARD dev: {len(data)} questions, {followups} whose rewrite adds content words; share of those "
             "words the search holds (mean per question; the dialog's article and section titles are given as "
             "the first user turn):", "", "| search | words recovered |", "|---|---:|"]
    for name, values in recovered.items():
        lines.append(f"| {name} | {sum(values) / max(1, len(values)):.3f} |")
    return lines + [""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N turns of each set")
    parser.add_argument("--documents", type=int, default=None,
                        help="doc2dial: only the first N documents, and the turns on them (a quick check)")
    args = parser.parse_args(argv)
    if not FOLDER.exists():
        print(f"missing data: {FOLDER}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    lines = header("Follow-up questions: the offline resolver", sys.argv[1:], __spec__.name, [
        "data: ../shared/data/conversation (doc2dial-a: half of doc2dial's validation split; CANARD dev); "
        "tuned on CANARD and on doc2dial-a's tune half (see the module docstring); the report half is held out"])
    d2d, _ = doc2dial_rows(args.limit, args.documents)
    lines += d2d + canard_rows(args.limit)
    lines.append(f"run time: {time.perf_counter() - started:.0f} s")
    print(write("conversation", lines).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
