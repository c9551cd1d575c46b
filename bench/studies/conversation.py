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

MTRAG (``mtrag-human-eval``, its 350 passages indexed together): each answerable task's last turn
after its earlier turns, the same three ways; right when a passage of its ``context_ids`` is in the
top 5 (and at rank 1), tune and report halves apart (``rag.eval.datasets.mtrag_half``).

rag's own conversations (``GUIDE``, ``SEED`` below, written for this study): questions a newcomer
asks of the demo's user guide, one after another, real follow-ups among them ("And the host?",
"Can I change that?"), and topic changes between the seed article and the guide indexed together.
A turn is right when its passage (a phrase of it) is among the top 5, and first; "searched alone"
counts the turns whose ``Answer.query`` is empty (the page shows no "searched: ...").

CANARD dev (``canard-dev.json``): for each follow-up, the content words that the person's rewrite
adds to the question; the share of them the resolver's search recovers, against the same two
baselines. (QuAC's documents are not in the set, so no retrieval there.)

Tuning: whether a question with a subject of its own is searched alone (2026-12-07,
``rag.search.conversation.search_conversation``) was chosen on doc2dial-a's and MTRAG's tune halves
and rag's own conversations. The resolver's first rules were written against the seed article, two were chosen on
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


from bench.common import CACHE, ROOT, SHARED, header, percentile, write

from rag import Index, Settings
from rag.eval.datasets import EvalQuestion, doc2dial_half, load_doc2dial, load_mtrag, mtrag_half
from rag.eval.metrics import passage_relevant
from rag.search.conversation import content_words, resolve

FOLDER = SHARED / "conversation"
K = 5
DOCS = ROOT / "docs" / "user-guide.md"
SEED = ROOT.parent / "shared" / "seeds" / "000_17d6ea71f6fbed30.txt"

GUIDE_CONVERSATIONS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("How are answers checked against the documents?", "checked word for word"),
     ("Does rag need an internet connection?", "no internet connection"),
     ("How can other machines on my network use it?", "--host 0.0.0.0"),
     ("What is rag?", "rag answers questions about your own documents"),
     ("How do I change the port?", "--port 7861"),
     ("And the host?", "--host 0.0.0.0")),
    (("How do I add my own documents?", "Use `rag ingest`"),
     ("Which file types are supported?", "Supported file types"),
     ("What happens to a scanned PDF?", "read by OCR"),
     ("How many pages of it are read that way?", "at most 50 pages")),
    (("How do I run the tests?", "make test"),
     ("Which embedding model does rag use?", "all-MiniLM-L6-v2"),
     ("How big are the passages?", "about 160 tokens"),
     ("Can I change that?", "RAG_CHUNK_TOKENS")),
    (("How can I connect a local LLM like Ollama?", "RAG_LLM_BASE_URL"),
     ("Is my OpenAI key sent to it?", "OPENAI_API_KEY"),
     ("What about the timeout?", "RAG_LLM_TIMEOUT"),
     ("How do I keep the index in step with a folder?", "--watch"),
     ("Does it work while serving?", "--corpus FOLDER --watch")),
    (("How do I use rag from Python?", "Index.build"),
     ("What does Index.search return?", "returns a list of `Hit`"),
     ("How do I evaluate on my own questions?", "rag eval"),
     ("Does rag send my documents anywhere?", "nothing you index leaves your machine")),
)
"""Conversations over docs/user-guide.md: (question, a phrase of the passage that answers it)."""
SEED_CONVERSATIONS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Who called for UN visits?", "Maryam Rajavi"),
     ("What did she say they should assess?", "assess the situation inside prisons"),
     ("How do I change the port?", "--port 7861"),
     ("Which organisations have been arresting supporters of the PMOI?", "Ministry of Intelligence"),
     ("What campaign has the first of them been waging?", "misinformation campaign")),
    (("How many people has the Coronavirus outbreak killed in Iran?", "44,800"),
     ("Who has been particularly targeted?", "particularly targeted"),
     ("What have they been ordered to pay?", "ordered to pay bail"),
     ("Which file types does rag index?", "Supported file types"),
     ("Who are the leaders named in the article?", "Ali Khamenei")),
)
"""Conversations over the seed article and the user guide indexed together (topic changes between them)."""


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
            marks = [passage_relevant(q, h) for h in hits]
            ok = any(marks)
            right.setdefault((name, kind), []).append(ok)
            if kind == "follow-up":
                right.setdefault((name, half(q)), []).append(ok)
                right.setdefault((name, half(q) + " first"), []).append(bool(marks) and marks[0])
        if n % 200 == 0:
            print(f"doc2dial {n}/{len(question_set.questions)}", file=sys.stderr)
    lines = [f"doc2dial: {len(question_set.corpus)} documents ({len(index)} chunks), "
             f"{len(question_set.questions)} user turns; grounding span in the top {K} passages:", "",
             "| search | first turns | follow-ups | follow-ups, tune half | follow-ups, report half "
             "| tune half, first | report half, first |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    scores = {}
    for name in STRATEGIES:
        first = right.get((name, "first turn"), [])
        follow = right.get((name, "follow-up"), [])
        scores[name] = sum(follow) / max(1, len(follow))
        cells = [f"{sum(v) / max(1, len(v)):.3f} ({len(v)})"
                 for v in (first, follow, *(right.get((name, which), []) for which in
                                            ("tune", "report", "tune first", "report first")))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Resolver time per turn: p50 {percentile(timings, 50):.2f} ms, "
              f"p95 {percentile(timings, 95):.2f} ms (rules only; the search then embeds the resolved "
              "search and the question together, one batch of two).",
              "", "Search time per follow-up (`Index.search`, top 5, resolver included): "
              + "; ".join(f"{name} p50 {percentile(v, 50):.1f} ms, p95 {percentile(v, 95):.1f} ms"
                          for name, v in search_ms.items()) + ".", ""]
    return lines, scores


def mtrag_rows() -> list[str]:
    question_set = load_mtrag(FOLDER / "mtrag-human-eval", cache_dir=CACHE / "datasets")
    index = Index.build(question_set.corpus, CACHE / "mtrag-index", settings=Settings())
    right: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for q in question_set.questions:
        if not q.history or q.unanswerable:
            continue
        for name, make in STRATEGIES.items():
            hits = (index.search(q.question, K, history=q.messages()) if name.startswith("resolver")
                    else index.search(make(q), K))
            marks = [passage_relevant(q, h) for h in hits]
            right.setdefault((name, mtrag_half(q.id)), []).append((any(marks), bool(marks) and marks[0]))
    lines = [f"MTRAG ({question_set.description}); answerable follow-ups, a passage of the task's "
             f"context_ids in the top {K} / first:", "",
             "| search | tune half, top 5 | tune half, first | report half, top 5 | report half, first |",
             "|---|---:|---:|---:|---:|"]
    for name in STRATEGIES:
        cells = []
        for which in ("tune", "report"):
            values = right.get((name, which), [])
            cells += [f"{sum(v[0] for v in values) / max(1, len(values)):.3f} ({len(values)})",
                      f"{sum(v[1] for v in values) / max(1, len(values)):.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def own_rows() -> list[str]:
    """rag's own conversations, asked turn by turn through ``Index.chat`` as a person would."""
    import tempfile

    lines = ["rag's own conversations (follow-up turns; the passage in the top 5 / first; Answer.query empty):", "",
             "| index | turns | top 5 | first | searched alone |", "|---|---:|---:|---:|---:|"]
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        for label, files, conversations in (("user guide", [DOCS], GUIDE_CONVERSATIONS),
                                            ("seed + user guide", [SEED, DOCS],
                                             SEED_CONVERSATIONS + GUIDE_CONVERSATIONS)):
            index = Index.build(files, f"{folder}/{len(files)}")
            top5 = first = alone = turns = 0
            for conversation in conversations:
                chat = index.chat()
                for n, (question, phrase) in enumerate(conversation):
                    hits = index.search(question, K, history=chat.messages) if n else []
                    answer = chat.ask(question)
                    if not n:
                        continue
                    turns += 1
                    marks = [phrase in h.chunk.text for h in hits]
                    top5 += any(marks)
                    first += bool(marks) and marks[0]
                    alone += not answer.query
                    if not marks or not marks[0]:
                        failures.append(f"- {label}: {question!r}: first passage {hits[0].chunk.text[:70]!r}"
                                        if hits else f"- {label}: {question!r}: nothing found")
            lines.append(f"| {label} | {turns} | {top5} | {first} | {alone} |")
    return lines + ["", "Turns whose first passage is not the one wanted:", *failures, ""]


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
    lines += d2d + (mtrag_rows() if args.documents is None else []) + own_rows() + canard_rows(args.limit)
    lines.append(f"run time: {time.perf_counter() - started:.0f} s")
    print(write("conversation", lines).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
