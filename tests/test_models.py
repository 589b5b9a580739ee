"""The classifiers with their real, shipped weights: texts in, predictions out (no database)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from earful.models import classifier, data, encoder, sentiment, topics, train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def clf() -> classifier.Classifier:
    return classifier.load(threads=2)


def test_shipped_model_is_small_and_versioned() -> None:
    folder = sentiment.DEFAULT_DIR
    size = sum(p.stat().st_size for p in folder.iterdir())
    # Three fine-tuned layers and the head in fp16: about 10.7 MB (the full model would be ~45).
    assert size < 12 * 1024 * 1024
    config = json.loads((folder / "config.json").read_text())
    assert config["commercial_use"] is True
    assert config["base_sha256"] == encoder.base_model_sha256()
    assert (folder / "README.md").read_text().startswith(f"# {config['version']}")


def test_obvious_sentences(clf: classifier.Classifier) -> None:
    texts = [
        "Absolutely love it, best purchase I've made all year.",
        "Terrible quality, it broke after two days and support ignored me.",
        "Friendly staff, clean room, great stay.",
        "Worst hotel ever: dirty, noisy and overpriced.",
    ]
    labels = [p.label for p in clf.predict(texts)]
    assert labels == ["positive", "negative", "positive", "negative"]


def test_short_texts_without_sentiment_words_are_neutral(clf: classifier.Classifier) -> None:
    facts = ["It is a jacket.", "Flight 227 lands at 9pm tonight.", "We stayed three nights in March."]
    loaded = ["It is a lovely jacket.", "Flight 227 lands at 9pm tonight, awful airline."]
    preds = clf.sentiment.predict(facts + loaded)
    assert [p.label for p in preds[:3]] == ["neutral"] * 3
    assert [p.label for p in preds[3:]] == ["positive", "negative"]
    for p in preds:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5


def test_the_neutral_rule_keeps_the_models_order_of_the_other_labels() -> None:
    rule = {"max_tokens": 64, "weight": 0.6}
    labels = ("negative", "neutral", "positive")
    out = sentiment.no_lexicon_neutral([0.1, 0.05, 0.85], labels, "It is a jacket.", 5, rule)
    assert max(range(3), key=lambda i: out[i]) == 1
    assert out[2] > out[0]
    assert abs(sum(out) - 1) < 1e-9
    assert sentiment.no_lexicon_neutral([0.1, 0.05, 0.85], labels, "It is a jacket.", 65, rule)[2] == 0.85
    assert sentiment.no_lexicon_neutral([0.1, 0.05, 0.85], labels, "A great jacket.", 5, rule)[2] == 0.85


def test_the_short_text_head_is_a_logistic_regression_over_its_features() -> None:
    labels = ("negative", "neutral", "positive")
    n = len(sentiment.SHORT_FEATURES)
    head = {
        "max_tokens": 32,
        "labels": list(labels),
        "coef": [[0.0] * n, [0.0] * (n - 1) + [2.0], [0.0] * n],  # neutral when the lexicon is silent
        "intercept": [0.0, -1.0, 0.0],
    }
    silent = sentiment.short_text_head([0.1, 0.05, 0.85], labels, "It is a jacket.", 5, head)
    assert abs(sum(silent) - 1) < 1e-9
    e = math.exp(1.0)
    assert silent == pytest.approx([1 / (2 + e), e / (2 + e), 1 / (2 + e)])
    worded = sentiment.short_text_head([0.1, 0.05, 0.85], labels, "A great jacket.", 5, head)
    assert worded[1] < worded[0] == pytest.approx(worded[2])
    # Longer texts, or a head fitted for other labels, leave the network's probabilities alone.
    assert sentiment.short_text_head([0.1, 0.05, 0.85], labels, "It is a jacket.", 33, head) == [
        0.1,
        0.05,
        0.85,
    ]
    other = {**head, "labels": ["neg", "neu", "pos"]}
    assert sentiment.short_text_head([0.1, 0.05, 0.85], labels, "It is a jacket.", 5, other) == [
        0.1,
        0.05,
        0.85,
    ]


@needs_data
def test_held_back_reviews_meet_a_floor(clf: classifier.Classifier) -> None:
    rows = data.clothing()["test"][:300] + data.uci()["test"][:150]
    preds = clf.sentiment.predict([r.text for r in rows])
    polar = [(r, p) for r, p in zip(rows, preds, strict=True) if r.label != "neutral"]
    binary = [
        ("negative" if p.probabilities["negative"] > p.probabilities["positive"] else "positive") == r.label
        for r, p in polar
    ]
    assert sum(binary) / len(binary) >= 0.88
    reviews = [(r.label, p.label) for r, p in zip(rows, preds, strict=True) if r.dataset == "clothing"]
    assert train.macro_f1([g for g, _ in reviews], [p for _, p in reviews]) >= 0.6


def test_a_20000_character_text_is_split_not_truncated(clf: classifier.Classifier) -> None:
    text = ("The fabric is soft and the colour is lovely. " * 300 + "But it fell apart in the wash. ") * 1
    text = text[:20000]
    [p] = clf.predict([text])
    assert p.status == "ok"
    assert p.label in data.LABELS
    assert p.windows > 10
    assert abs(sum(p.probabilities.values()) - 1) < 1e-3


def test_batch_and_single_predictions_agree(clf: classifier.Classifier) -> None:
    texts = [
        "ok",
        "Shipping was slow but the product is great.",
        "I want my money back. " * 80,
        "Meh. Not bad, not good.",
    ]
    batch = clf.sentiment.predict(texts, batch_size=4)
    for text, together in zip(texts, batch, strict=True):
        [alone] = clf.sentiment.predict([text])
        assert alone.label == together.label
        for label in data.LABELS:
            assert alone.probabilities[label] == pytest.approx(together.probabilities[label], abs=1e-3)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("😡😡😡👎", "no_text"),
        ("https://example.com/some/page?id=3", "no_text"),
        ("Der Kundenservice war unfreundlich und die Lieferung kam viel zu spät an.", "unsupported_language"),
        ("ok", "ok"),
    ],
)
def test_texts_it_cannot_judge_are_marked_not_guessed(
    clf: classifier.Classifier, text: str, status: str
) -> None:
    [p] = clf.predict([text])
    assert p.status == status
    if status != "ok":
        assert p.label is None
        assert p.score is None
        assert p.probabilities == {}
        assert p.note
    if status == "unsupported_language":
        assert p.language == "de"


def test_topics_with_their_own_sentiment(clf: classifier.Classifier) -> None:
    [p] = clf.predict(["The food was delicious, but the waiter was rude to us."])
    found = {t.name: t for t in p.topics}
    assert found["food"].sentiment == "positive"
    assert found["customer_service"].sentiment == "negative"
    assert set(p.topics_json()) == set(found)
    [q] = clf.predict(["My parcel arrived two weeks late and the box was crushed."])
    assert "delivery" in {t.name for t in q.topics}


def test_version_names_model_and_taxonomy(clf: classifier.Classifier, tmp_path: Path) -> None:
    assert clf.version.startswith("earful-sentiment-")
    assert "+topics-" in clf.version
    assert len(clf.version) <= 100
    edited = tmp_path / "taxonomy.yaml"
    edited.write_text(
        topics.DEFAULT_TAXONOMY.read_text() + "\n  - name: extra\n    examples: [something new]\n"
    )
    other = topics.Taxonomy.load(edited)
    assert other.fingerprint != clf.topics.taxonomy.fingerprint  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("topics: [", "not valid YAML"),
        ("topics: []", "non-empty 'topics'"),
        ("topics:\n  - name: a\n", "no example phrases"),
        ("topics:\n  - name: a\n    examples: [x]\n  - name: a\n    examples: [y]\n", "appears twice"),
        ("topics:\n  - name: a\n    examples: [x]\n    colour: red\n", "unknown keys: colour"),
        ("threshold: 2\ntopics:\n  - name: a\n    examples: [x]\n", "between 0 and 1"),
    ],
)
def test_bad_taxonomy_files_say_what_is_wrong(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml_text)
    with pytest.raises(topics.TaxonomyError, match=message):
        topics.Taxonomy.load(path)


def test_sentences_split_on_contrast() -> None:
    assert topics.sentences("The food was good, but the service was slow. Nice place!") == [
        "The food was good",
        "but the service was slow.",
        "Nice place!",
    ]


def test_a_local_hugging_face_model_plugs_in(tmp_path: Path) -> None:
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        str(encoder.base_model_dir()), num_labels=2, id2label={0: "LABEL_0", 1: "LABEL_1"}
    )
    model.save_pretrained(tmp_path / "hf")
    encoder.load_tokenizer().save_pretrained(str(tmp_path / "hf"))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"classifier\.labels"):
        classifier.load(model=tmp_path / "hf", with_topics=False)
    clf = classifier.load(
        model=tmp_path / "hf", labels={"LABEL_0": "negative", "LABEL_1": "positive"}, with_topics=False
    )
    assert clf.version.startswith("hf:hf:")
    preds = clf.predict(["fine", "word " * 900])
    assert all(p.label in ("negative", "positive") for p in preds)
    assert preds[1].windows > 1
    assert preds[0].probabilities["neutral"] == 0


def test_quantized_model_agrees_and_has_its_own_version() -> None:
    model = sentiment.load()
    assert isinstance(model, sentiment.EarfulSentiment)
    texts = ["Great value, would buy again.", "Broken on arrival, refund took weeks.", "It is a jacket."]
    before = model.predict(texts)
    version = model.version
    model.quantize()
    after = model.predict(texts)
    assert model.version == f"{version}-torch-int8"
    assert [a.label for a in after[:2]] == [b.label for b in before[:2]]


ONNX_TEXTS = [
    "Great value, would buy again.",
    "Broken on arrival, refund took weeks.",
    "The staff were friendly but the room smelled of smoke.",
    "Delivery was two days late and nobody answered the phone. " * 60,  # several windows
    "ok",
]


def test_onnx_fp32_gives_pytorchs_probabilities() -> None:
    """Same weights, same windows: ONNX Runtime fp32 matches PyTorch and keeps the version."""
    torch_model = sentiment.load()
    onnx_model = sentiment.load()
    assert isinstance(torch_model, sentiment.EarfulSentiment)
    assert isinstance(onnx_model, sentiment.EarfulSentiment)
    onnx_model.use_onnx(quantize=False, threads=2)
    assert onnx_model.version == torch_model.version
    for a, b in zip(torch_model.predict(ONNX_TEXTS), onnx_model.predict(ONNX_TEXTS), strict=True):
        assert (a.label, a.windows) == (b.label, b.windows)
        for label in a.probabilities:
            assert abs(a.probabilities[label] - b.probabilities[label]) < 1e-4
    vecs = topics.TopicModel.load(encoder=torch_model.encoder).embed(ONNX_TEXTS)
    onnx_vecs = topics.TopicModel.load(encoder=onnx_model.encoder).embed(ONNX_TEXTS)
    assert torch.allclose(vecs, onnx_vecs, atol=1e-4)


def test_onnx_int8_is_its_own_version_and_agrees_on_clear_texts() -> None:
    clf = classifier.load(runtime="onnx-int8", threads=2)
    reference = classifier.load(runtime="torch", threads=2)
    assert clf.version.startswith("earful-sentiment-")
    assert "-int8+topics-" in clf.version
    assert clf.version != reference.version
    clear = [ONNX_TEXTS[i] for i in (0, 1, 3)]  # not the mixed one: int8 may tip it either way
    got = clf.predict(clear)
    want = reference.predict(clear)
    assert [p.label for p in got] == [p.label for p in want]
    assert [p.windows for p in got] == [p.windows for p in want]
    for a, b in zip(got, want, strict=True):
        assert abs((a.score or 0) - (b.score or 0)) < 0.1


def test_onnx_files_are_cached_and_rebuilt_only_for_other_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earful.models import export, runtime

    monkeypatch.setenv("EARFUL_CACHE_DIR", str(tmp_path / "cache"))
    module = export.embedding_for_onnx()
    first = runtime.runner(module, "embedding", quantize=True, threads=1)
    stamp = first.path.stat().st_mtime_ns
    again = runtime.runner(module, "embedding", quantize=True, threads=1)
    assert again.path == first.path
    assert again.path.stat().st_mtime_ns == stamp
    assert first.path.parent == tmp_path / "cache" / "onnx"
    with torch.no_grad():
        module.bert.encoder.layer[0].output.dense.bias.add_(0.01)  # other weights: another file
    changed = runtime.runner(module, "embedding", quantize=True, threads=1)
    assert changed.path != first.path
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir()) == sorted(
        [first.path.name, changed.path.name]
    )  # written atomically: no temporary files left behind


def test_onnx_file_found_by_key_is_used_without_building_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a key and a cached file, a process starts without building or hashing the network."""
    from earful.models import export, runtime

    monkeypatch.setenv("EARFUL_CACHE_DIR", str(tmp_path / "cache"))
    built: list[int] = []

    def build() -> torch.nn.Module:
        built.append(1)
        return export.embedding_for_onnx()

    key = runtime.fingerprint(encoder.base_model_sha256(), quantize=True)
    first = runtime.runner(build, "embedding", quantize=True, threads=2, key=key)
    again = runtime.runner(build, "embedding", quantize=True, threads=2, key=key)
    assert built == [1]
    assert again.path == first.path
    assert runtime.fingerprint("other base", quantize=True) != key
    assert runtime.fingerprint(encoder.base_model_sha256(), quantize=False) != key
    # Rows spread over threads give exactly what one thread gives.
    one = runtime.OnnxRunner(first.path, 1, per_row=True)
    ids = torch.tensor([[101, 2204, 2326, 102, 0, 0], [101, 2023, 2003, 6659, 2326, 102]] * 4)
    mask = (ids != 0).long()
    assert torch.equal(again(ids, mask), one(ids, mask))


def test_onnx_cache_that_cannot_be_written_falls_back_to_a_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earful.models import export, runtime

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("EARFUL_CACHE_DIR", str(blocked))
    run = runtime.runner(export.embedding_for_onnx(), "embedding", quantize=False, threads=1)
    assert run.path.exists()
    assert not run.path.is_relative_to(blocked)
    ids = torch.tensor([[101, 2204, 102]])
    assert run(ids, torch.ones_like(ids)).shape == (1, 384)


@needs_data
def test_training_is_seeded(tmp_path: Path) -> None:
    """Two quick runs with the same seed give the same weights (the full run is `make retrain-check`)."""
    cfg = train.TrainConfig(quick=True, epochs=1, threads=2)
    first, _ = train.train(cfg, say=lambda _m: None)
    second, _ = train.train(cfg, say=lambda _m: None)
    for key, value in first.head.state_dict().items():
        assert torch.equal(value, second.head.state_dict()[key]), key


def test_star_outputs_collapse_to_the_labels_and_train_on_sets_of_stars() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 3.0]])
    probs = torch.softmax(logits, -1)[0]
    got = torch.softmax(sentiment.collapse(logits, sentiment.STAR_GROUPS), -1)[0]
    want = torch.stack([probs[0] + probs[1], probs[2], probs[3] + probs[4]])
    assert torch.allclose(got, want)
    rows = [
        data.Example("awful", "negative", "clothing", stars=1),
        data.Example("meh", "neutral", "hotels", stars=3),
        data.Example("bad", "negative", "uci"),  # no stars: either negative star
    ]
    allowed = train.gold_sets(rows, sentiment.STAR_GROUPS)
    assert allowed.tolist() == [
        [True, False, False, False, False],
        [False, False, True, False, False],
        [True, True, False, False, False],
    ]
    # Without smoothing the loss is minus the log of the allowed outputs' total probability.
    loss = train.set_loss(logits.repeat(3, 1), allowed, 0.0)
    expected = -(probs[0].log() + probs[2].log() + (probs[0] + probs[1]).log()) / 3
    assert torch.allclose(loss, expected)


@needs_data
def test_a_star_trained_model_saves_loads_and_exports_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earful.models import export

    monkeypatch.setenv("EARFUL_CACHE_DIR", str(tmp_path / "cache"))
    model, _ = train.train(
        train.TrainConfig(quick=True, epochs=1, threads=2, stars=True), say=lambda _m: None
    )
    assert model.config["label_groups"] == [[0, 1], [2], [3, 4]]
    model.save(tmp_path / "m")
    loaded = sentiment.EarfulSentiment.load(tmp_path / "m")
    texts = ["Awful fit, sent it back.", "The dress is okay, nothing special.", "Gorgeous and comfy!"]
    assert not any(sentiment.lexicon_silent(t) for t in texts)  # no neutral rule: the bare network
    want = [p.probabilities for p in loaded.predict(texts)]
    hf = export.to_transformers(loaded)
    tok = loaded.encoder.tokenizer(texts, padding=True, return_tensors="pt")  # type: ignore[operator]
    with torch.no_grad():
        probs = torch.softmax(hf(**tok).logits, -1)
    loaded.use_onnx(quantize=False, threads=1)
    got = [p.probabilities for p in loaded.predict(texts)]
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        for label in w:
            assert abs(w[label] - g[label]) < 1e-4
            assert abs(w[label] - float(probs[i, loaded.labels.index(label)])) < 1e-4


@pytest.mark.skipif(os.environ.get("EARFUL_TEST_RETRAIN") != "1", reason="slow: set EARFUL_TEST_RETRAIN=1")
@pytest.mark.timeout(3 * 3600)  # a full training run: far past the suite's 600 s per test
@needs_data
def test_retraining_reproduces_the_shipped_figures(tmp_path: Path) -> None:
    """A full retrain from a clean checkout lands within 1 point of the shipped model card."""
    from earful.models import evaluate

    shipped = json.loads((sentiment.DEFAULT_DIR / "config.json").read_text())
    settings = {k: v for k, v in shipped["training"].items() if k in train.TrainConfig.__dataclass_fields__}
    assert train.TrainConfig(**settings) == train.TrainConfig(), "the defaults must train the shipped model"
    model, _ = train.train(train.TrainConfig(threads=2), say=print)
    report = evaluate.sentiment_report(model)
    for name in ("reviews", "uci", "tweeteval"):
        for key in ("macro_f1", "binary_accuracy"):
            want = shipped["metrics"]["datasets"][name]["model"][key]
            got = report["datasets"][name]["model"][key]
            assert abs(got - want) <= 0.01, (name, key, got, want)
