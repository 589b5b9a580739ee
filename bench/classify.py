"""Benchmark: how fast Earful classifies, against the stock ``transformers`` pipeline.

The same 5,000 real texts of mixed length from ../shared/data (held-back clothing and hotel
reviews, and TweetEval tweets, in a fixed order) go through:

* ``pipeline`` — ``transformers.pipeline("text-classification")`` on exactly our weights (the
  shipped layers glued onto the base MiniLM by :mod:`earful.models.export`), one text at a
  time as the pipeline does by default, truncating at the window; the baseline;
* ``earful``   — Earful's sentiment path in PyTorch (``classifier.runtime: torch``):
  length-sorted batches, dynamic padding, ``torch.inference_mode``, long texts split into
  windows instead of truncated;
* ``earful_torch_int8`` — the same with PyTorch's int8 dynamic quantization;
* ``earful_onnx`` — the same path in ONNX Runtime, fp32 (``classifier.runtime: onnx``);
* ``earful_onnx_int8`` — ONNX Runtime with int8 weights, one scale per output channel
  (``classifier.runtime: onnx-int8``, the default);
* ``earful_topics`` — the full classify path on the default runtime (sentiment + topics per
  sentence), for scale.

All on the same number of threads, in the same run, chunk by chunk with every path in turn
(so other work on the machine slows every path alike). For each: texts/s, the ratio to the
pipeline, 3-class accuracy on the texts' labels, and for the Earful paths the share of texts
whose label differs from the fp32 path. The target (issue 6) is >= 3x the pipeline at <= 0.5
point of accuracy lost, for the default runtime. The ONNX files are exported before the clock
starts (a real run exports them once and caches them). Output: a table, then one JSON line of
the figures, last::

    python bench/classify.py [--n 5000] [--threads 2] [--batch-size 64] [--skip-topics]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from earful.models import classifier, data, encoder, export, sentiment


def texts_for_bench(n: int) -> tuple[list[str], list[str]]:
    """Reviews (clothing, hotels) and tweets, interleaved in a fixed order."""
    clothing, hotels = data.clothing(), data.hotels()
    reviews = clothing["test"] + hotels["test"] + hotels["val"] + clothing["val"]
    tweets = data.tweeteval()
    n_reviews = min(len(reviews), int(n * 0.65))
    rows = reviews[:n_reviews] + tweets[: n - n_reviews]
    rows.sort(key=lambda r: zlib.crc32(f"{r.dataset}|{r.text}".encode()))  # same mix every run
    return [r.text for r in rows], [r.label for r in rows]


def accuracy(pred: Sequence[str], gold: Sequence[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)


def timed(fn: Callable[[], list[str]]) -> tuple[list[str], float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-topics", action="store_true")
    parser.add_argument("--chunks", type=int, default=10, help="time the paths in turn on this many chunks")
    args = parser.parse_args(argv)
    threads = encoder.set_threads(args.threads)
    texts, gold = texts_for_bench(args.n)
    tokens = [len(t) for t in encoder.Encoder.load().token_ids(texts)]
    tokens.sort()
    print(
        f"{len(texts):,} texts, median {tokens[len(tokens) // 2]} word pieces, {threads} threads", flush=True
    )

    model = sentiment.load()
    assert isinstance(model, sentiment.EarfulSentiment)

    from transformers import pipeline

    hf = export.to_transformers(model)
    tokenizer: Any = model.encoder.tokenizer
    pipe = pipeline("text-classification", model=hf, tokenizer=tokenizer, device=-1)

    def run_pipeline(chunk: list[str]) -> list[str]:
        with torch.inference_mode():
            return [o["label"] for o in pipe(chunk, truncation=True, max_length=encoder.WINDOW)]

    def path(m: sentiment.EarfulSentiment) -> Callable[[list[str]], list[str]]:
        return lambda chunk: [p.label for p in m.predict(chunk, batch_size=args.batch_size)]

    paths: dict[str, Callable[[list[str]], list[str]]] = {"pipeline": run_pipeline, "earful": path(model)}
    for name in ("earful_torch_int8", "earful_onnx", "earful_onnx_int8"):
        other = sentiment.load()
        assert isinstance(other, sentiment.EarfulSentiment)
        if name == "earful_torch_int8":
            other.quantize()
        else:
            other.use_onnx(quantize=name.endswith("int8"), threads=threads)  # exported before timing
        paths[name] = path(other)
    if not args.skip_topics:
        clf = classifier.load(threads=threads)
        paths["earful_topics"] = lambda chunk: [
            p.label or "" for p in clf.predict(chunk, batch_size=args.batch_size)
        ]

    # Chunk by chunk, every path in turn: load from other work on the machine falls on all
    # paths alike, so the ratios hold even where the absolute figures do not.
    preds: dict[str, list[str]] = {name: [] for name in paths}
    seconds = dict.fromkeys(paths, 0.0)
    size = max(1, -(-len(texts) // args.chunks))
    for start in range(0, len(texts), size):
        chunk = texts[start : start + size]
        for name, fn in paths.items():
            out, s = timed(lambda fn=fn, chunk=chunk: fn(chunk))  # type: ignore[misc]
            preds[name] += out
            seconds[name] += s
        done = min(len(texts), start + size)
        print(
            f"{done:,}/{len(texts):,} texts: " + ", ".join(f"{n} {done / seconds[n]:.1f}/s" for n in paths),
            flush=True,
        )
    results: dict[str, dict[str, float]] = {}
    for name in paths:
        results[name] = {"texts_per_s": len(texts) / seconds[name], "accuracy": accuracy(preds[name], gold)}
        if name not in ("pipeline", "earful", "earful_topics"):
            results[name]["changed_vs_fp32"] = 1 - accuracy(preds[name], preds["earful"])

    base = results["pipeline"]
    print()
    print(f"{'path':15s} {'texts/s':>9s} {'ratio':>7s} {'accuracy':>9s}")
    figures: dict[str, Any] = {"n": len(texts), "threads": threads}
    for name, r in results.items():
        ratio = r["texts_per_s"] / base["texts_per_s"]
        print(f"{name:15s} {r['texts_per_s']:9.1f} {ratio:6.2f}x {r['accuracy']:9.4f}")
        figures[f"{name}_texts_per_s"] = round(r["texts_per_s"], 1)
        figures[f"{name}_accuracy"] = round(r["accuracy"], 4)
        if name != "pipeline":
            figures[f"{name}_ratio"] = round(ratio, 2)
            figures[f"{name}_accuracy_loss_points"] = round(100 * (base["accuracy"] - r["accuracy"]), 2)
        if "changed_vs_fp32" in r:
            figures[f"{name}_changed_vs_fp32"] = round(r["changed_vs_fp32"], 4)
    default = "earful_onnx_int8"
    figures["default_path"] = default
    figures["target_met"] = bool(
        figures[f"{default}_ratio"] >= 3.0 and figures[f"{default}_accuracy_loss_points"] <= 0.5
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
