"""An fp32 ONNX graph of a BERT encoder, written from the packaged ``model.safetensors``.

The ``onnx`` embedding backend runs all-MiniLM-L6-v2's own fp32 weights on onnxruntime, so that
answering a question needs neither torch nor sentence-transformers (importing them costs a CLI
call seconds). The graph is written here with ``onnx.helper`` from the weights file itself, not
exported through torch: building it needs no torch either, and the same weights give the same
vectors as the torch backend (to float rounding, checked in ``tests/embed/test_embed.py``).

The graph is the HF ``BertModel`` forward pass without the pooler (output ``last_hidden_state``):
embeddings (word + position + token type, LayerNorm), then per layer self-attention with the
padding mask, output projection + residual LayerNorm, GELU (erf) feed-forward + residual
LayerNorm. Mean pooling and normalisation stay in ``rag.embed``, as for the other backends.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_safetensors", "write_bert_graph"]

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
OPSET = 17
"""LayerNormalization is a standard operator from opset 17 on."""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file (an 8-byte header length, a JSON header, raw bytes).

    Read directly rather than through the ``safetensors`` package: the format is that small, and
    it is data only (no code runs while reading it, unlike a pickle).
    """
    raw = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + length])
        body = memoryview(raw)[8 + length:]
        tensors = {}
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            begin, end = spec["data_offsets"]
            if end > len(body):
                raise ValueError(f"tensor {name} ends past the end of the file")
            tensors[name] = np.frombuffer(body[begin:end], dtype=_DTYPES[spec["dtype"]]).reshape(spec["shape"]).copy()
    except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a whole safetensors file: {exc}") from None
    return tensors


def write_bert_graph(weights: dict[str, np.ndarray], config: dict, path: Path) -> None:
    """Write the encoder as an ONNX file: inputs ``input_ids``, ``attention_mask``,
    ``token_type_ids`` (int64, [batch, seq]); output ``last_hidden_state`` ([batch, seq, hidden])."""
    # onnx is needed once, to build the int8 graph
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name: str) -> str:
        return const(name, weights[name].astype(np.float32))

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:  # noqa: ANN003
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, prefix: str, out: str) -> str:
        w = const(prefix + ".weight.T", weights[prefix + ".weight"].astype(np.float32).T.copy())
        return node("Add", [node("MatMul", [x, w], out + ".mm"), weight(prefix + ".bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, weight(prefix + ".weight"), weight(prefix + ".bias")], out,
                    axis=-1, epsilon=eps)

    # Embeddings: position ids are 0..seq-1, taken from the input's shape.
    seq = node("Gather", [node("Shape", ["input_ids"], "ids.shape"), const("one", np.array(1, np.int64))],
               "seq", axis=0)
    positions = node("Range", [const("zero", np.array(0, np.int64)), seq, "one"], "positions")
    summed = node("Add", [
        node("Add", [node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"], "emb.word"),
                     node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"],
                          "emb.type")], "emb.word_type"),
        node("Gather", [weight("embeddings.position_embeddings.weight"), positions], "emb.pos")], "emb.sum")
    x = layer_norm(summed, "embeddings.LayerNorm", "emb.out")

    # Padding mask, added to every attention score: 0 where attended, a large negative elsewhere.
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    mask = node("Mul", [node("Sub", [const("f.one", np.array(1.0, np.float32)), mask], "mask.inv"),
                        const("f.neg", np.array(np.finfo(np.float32).min, np.float32))], "mask.neg")
    mask = node("Unsqueeze", [mask, const("axes.1.2", np.array([1, 2], np.int64))], "mask.b11s")
    split_heads = const("shape.heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = const("shape.hidden", np.array([0, 0, hidden], np.int64))
    scale = const("f.scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    root_half = const("f.sqrt_half", np.array(1.0 / math.sqrt(2.0), np.float32))
    half = const("f.half", np.array(0.5, np.float32))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"

        def heads_of(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            projected = linear(x, f"{p}.attention.self.{name}", f"{p}.{name}")
            return node("Transpose", [node("Reshape", [projected, split_heads], f"{p}.{name}.split")],
                        f"{p}.{name}.heads", perm=perm)

        q = heads_of("query", [0, 2, 1, 3])  # [b, h, s, d]
        k = heads_of("key", [0, 2, 3, 1])    # [b, h, d, s]
        v = heads_of("value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.qk.scaled"), mask],
                      f"{p}.scores")
        probs = node("Softmax", [scores], f"{p}.probs", axis=-1)
        context = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], f"{p}.ctx.heads")],
                                        f"{p}.ctx.t", perm=[0, 2, 1, 3]), merge_heads], f"{p}.ctx")
        attended = linear(context, f"{p}.attention.output.dense", f"{p}.attn.proj")
        x_attn = layer_norm(node("Add", [attended, x], f"{p}.attn.res"), f"{p}.attention.output.LayerNorm",
                            f"{p}.attn.out")
        inner = linear(x_attn, f"{p}.intermediate.dense", f"{p}.ff.in")
        gelu = node("Mul", [node("Mul", [inner, half], f"{p}.gelu.half"),
                            node("Add", [node("Erf", [node("Mul", [inner, root_half], f"{p}.gelu.scaled")],
                                              f"{p}.gelu.erf"), "f.one"], f"{p}.gelu.1p")], f"{p}.gelu")
        out = linear(gelu, f"{p}.output.dense", f"{p}.ff.out")
        x = layer_norm(node("Add", [out, x_attn], f"{p}.ff.res"), f"{p}.output.LayerNorm", f"{p}.out")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
            for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])
    graph = helper.make_graph(nodes, "bert-encoder", ints, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rag")
    model.ir_version = 8  # read by every onnxruntime from 1.14 on
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
