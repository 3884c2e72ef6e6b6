"""MXNet Module checkpoints (``<prefix>-symbol.json`` + ``<prefix>-0000.params``) written without
MXNet, for artifacts that users open the way AWS examples do.

Linear Learner's and Factorization Machines' ``model_algo-1`` are zips holding such a checkpoint;
users unzip them and call ``mx.module.Module.load(prefix, 0, label_names=['out_label'])`` or
``gluon.nn.SymbolBlock(...).load_parameters(...)``. That needs (1) a symbol graph in MXNet's JSON
form whose free variables are ``data``, the parameters and ``out_label``, and (2) a params file
that is an NDArray dict with MXNet's ``arg:`` prefixes (``mx.model.save_checkpoint`` writes
them; ``load_checkpoint`` and Gluon strip them). :class:`Graph` builds (1) node by node, in the
layout ``Symbol.tojson()`` produces (checked against mxnet 1.9.1 in the algorithm tests).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from algorithms.io import ndarray

MXNET_VERSION = 10901  # the version stamp mxnet 1.9.1 writes


class Graph:
    """A symbol graph: ``var`` adds a free variable, ``op`` an operator; both return the node's
    index, which later ``op`` calls take as inputs. Every node has one output."""

    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self._names: Counter = Counter()

    def var(self, name: str, shape: tuple[int, ...] | None = None) -> int:
        """A free variable; a parameter's ``shape`` is stored as MXNet's ``__shape__`` hint, so
        `Module.bind(data_shapes=...)` can infer every shape from the data's alone."""
        node = {"op": "null", "name": name}
        if shape is not None:
            node["attrs"] = {"__shape__": str(tuple(int(v) for v in shape))}
        node["inputs"] = []
        self.nodes.append(node)
        return len(self.nodes) - 1

    def op(self, op: str, *inputs: int, name: str | None = None, **attrs) -> int:
        if name is None:
            base = op.lower().lstrip("_")
            name = f"{base}{self._names[base]}"
            self._names[base] += 1
        node = {"op": op, "name": name}
        if attrs:
            node["attrs"] = {k: str(v) for k, v in attrs.items()}
        node["inputs"] = [[i, 0, 0] for i in inputs]
        self.nodes.append(node)
        return len(self.nodes) - 1

    def to_json(self, head: int) -> str:
        return json.dumps({
            "nodes": self.nodes,
            "arg_nodes": [i for i, n in enumerate(self.nodes) if n["op"] == "null"],
            "node_row_ptr": list(range(len(self.nodes) + 1)),
            "heads": [[head, 0, 0]],
            "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
        }, indent=2)


def params_bytes(arg_params: dict[str, np.ndarray]) -> bytes:
    """A ``-0000.params`` file: the arrays as float32 under ``arg:<name>``."""
    return ndarray.dumps({f"arg:{k}": np.asarray(v, dtype=np.float32) for k, v in arg_params.items()})


def read_params(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a params file by parameter name (``arg:``/``aux:`` prefixes dropped)."""
    arrays = ndarray.loads(data)
    if not isinstance(arrays, dict):
        raise ValueError("an MXNet params file holds named arrays")
    return {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v for k, v in arrays.items()}
