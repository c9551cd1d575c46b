"""``python -m train.reader``: fit the reader (``--steps`` ...), or only set its abstention rule end to
end (``--calibrate``). The recipe is in ``train/reader/__init__.py``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from train.reader import __doc__ as RECIPE
from train.reader.calibration import calibrate_end_to_end
from train.reader.data import ROOT, SQUAD1
from train.reader.fit import train

log = logging.getLogger("train.reader")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.reader", description=RECIPE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--freeze-layers", type=int, default=2, help="lowest encoder layers kept as they are")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--device", default="cpu",
                   help="where the training steps run: cpu, or cuda on a machine with an NVIDIA GPU (the graph "
                        "is exported, quantised and measured on the CPU either way)")
    p.add_argument("--limit", type=int, default=None, help="use only this many pool examples (smoke runs)")
    p.add_argument("--work", default=str(ROOT / "train" / ".work"), help="checkpoints and log")
    p.add_argument("--out", default=str(ROOT / "rag" / "models"))
    p.add_argument("--calibration-limit", type=int, default=None,
                   help="read only this many calibration questions (smoke runs)")
    p.add_argument("--init-from", default=None,
                   help="continue from the weights of an int8 reader graph (e.g. rag/models/reader-int8.onnx)")
    p.add_argument("--skip-steps", type=int, default=0,
                   help="skip this many batches first (with --init-from: the steps that model had)")
    p.add_argument("--swapped-questions", type=float, default=0.0,
                   help="share of the SQuAD 1.1 answer windows also trained as unanswerable with a swapped "
                        "name, number or antonym in the question (train/swapped_questions.py)")
    p.add_argument("--swap-outside", type=float, default=0.5,
                   help="how often a swapped name comes from another article rather than the same window "
                        "(0: every swapped name is still in the window)")
    p.add_argument("--calibrate", action="store_true",
                   help="only set the no-answer margin end to end, for the model already in --out")
    args = p.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(Path(args.work) / "train.log")])
    if not SQUAD1.exists():
        sys.exit(f"training data not found: {SQUAD1} (see ../shared/data/README.md)")
    log.info("command: %s", " ".join(sys.argv))
    if args.calibrate:
        calibrate_end_to_end(Path(args.out), Path(args.work), args.calibration_limit)
    else:
        train(args)


if __name__ == "__main__":
    main()
