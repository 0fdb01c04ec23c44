"""The shipped Gemma 4 configs and labkit.architecture: shapes and counts, no weights, no timing asserts."""

import pytest
import torch

from labkit import architecture as A

TARGETS = list(A.MODELS)
ALL = TARGETS + [f"{t}-assistant" for t in TARGETS]

# Published parameter counts (model cards, via CONTEXT.md and data/configs/SOURCES.md). A tolerance,
# not equality: the cards round ("~0.4B"), some count only the text model, and a few config fields
# are inferred (SOURCES.md). 5% still catches a wrong width, head count, layer count or MLP size,
# each of which moves these totals by far more.
PUBLISHED = {
    "E2B": 5.1e9,  # with embeddings
    "E4B": 8.0e9,  # with embeddings
    "26B-A4B": 25.8e9,
    "31B": 30.7e9,
    "E2B-assistant": 78e6,
    "E4B-assistant": 78.8e6,
    "26B-A4B-assistant": 0.4e9,
    "31B-assistant": 0.5e9,
}
TOLERANCE = {"26B-A4B-assistant": 0.10, "31B-assistant": 0.10}  # published only to one digit


@pytest.mark.parametrize("name", ALL)
def test_config_loads_and_builds_on_meta(name):
    config = A.load_config(name)
    model = A.build_on_meta(config)
    assert all(p.device.type == "meta" for p in model.parameters())


@pytest.mark.parametrize("name", TARGETS)
def test_assistant_reads_its_targets_width_and_kv(name):
    target, assistant = A.load_config(name), A.load_config(f"{name}-assistant")
    assert assistant.backbone_hidden_size == target.get_text_config().hidden_size
    summary = A.assistant_summary(target, assistant)
    assert summary["kv_geometry_matches"]
    assert summary["drafter_layer_types"] == ["sliding", "sliding", "sliding", "full"]
    assert all(row["kv"] == "target" for row in A.layer_table(assistant))


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts_near_published(name):
    counts = A.param_counts(A.build_on_meta(A.load_config(name)))
    tolerance = TOLERANCE.get(name, 0.05)
    assert abs(counts["total"] / PUBLISHED[name] - 1) < tolerance, counts
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_centroid_head_scores_a_slice_of_the_vocabulary():
    e2b = A.assistant_summary(A.load_config("E2B"), A.load_config("E2B-assistant"))
    assert e2b["rows_scored"] == e2b["centroids_kept"] * e2b["vocab_size"] // e2b["num_centroids"]
    assert e2b["rows_scored"] < e2b["vocab_size"]
    big = A.assistant_summary(A.load_config("31B"), A.load_config("31B-assistant"))
    assert big["rows_scored"] == big["vocab_size"]  # no centroid head on 26B/31B assistants


def test_layer_table_knows_kv_sharing():
    rows = A.layer_table(A.load_config("E2B"))
    config = A.load_config("E2B").get_text_config()
    shared = [r for r in rows if r["kv"] != "own"]
    assert len(shared) == config.num_kv_shared_layers
    assert sum(g["count"] for g in A.layer_pattern(A.load_config("E2B"))) == config.num_hidden_layers
    assert rows[-1]["type"] == "full"


def test_names_resolve_and_unknown_names_fail():
    assert A.load_config("google/gemma-4-E2B-it").model_type == "gemma4"
    assert A.load_config("gemma-4-e2b-it-assistant").model_type == "gemma4_assistant"
    with pytest.raises(KeyError, match="known"):
        A.load_config("E3B")


@pytest.fixture(scope="module")
def scaled():
    return A.scaled_text_decoder("E2B", layers=2, vocab_size=512)


def test_scaled_decoder_keeps_the_real_geometry(scaled):
    real = {row["type"]: row for row in reversed(A.layer_table(A.load_config("E2B"))) if row["kv"] == "own"}
    keys = ("head_dim", "heads", "kv_heads", "mlp")
    rows = A.layer_table(scaled.config)
    assert [r["type"] for r in rows] == ["sliding", "full"]  # the last layer is always full
    for row in rows:
        assert {k: row[k] for k in keys} == {k: real[row["type"]][k] for k in keys}
    assert scaled.config.hidden_size == A.load_config("E2B").get_text_config().hidden_size
    out = scaled(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.logits.shape == (1, 3, 512) and out.logits.isfinite().all()


def test_scaled_decoder_respects_max_params():
    model = A.scaled_text_decoder("E2B", max_params=1.2e8, vocab_size=512)
    assert A.param_counts(model)["total"] <= 1.2e8


def test_forward_cost_curve_rows(scaled):
    rows = A.forward_cost_curve(scaled, ns=(1, 4, 16), context=8, repeats=1, threads=1)
    assert [n for n, _ in rows] == [1, 4, 16]
    assert all(t > 0 for _, t in rows)  # timings themselves are never asserted


def test_record_shapes_and_text_table(scaled):
    with A.record_shapes(scaled, ["model.layers.0.mlp"]) as log:
        scaled(input_ids=torch.tensor([[1, 2]]))
    assert log == [("model.layers.0.mlp", (1, 2, scaled.config.hidden_size))]
    table = A.text_table([{"a": 1, "b": "x"}, {"a": 1000, "b": None}])
    assert "1,000" in table and "–" in table
