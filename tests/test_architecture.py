"""The shipped Gemma 4 configs and labkit.architecture: shapes and counts, no weights, no timing asserts."""

import pytest
import torch

from labkit import architecture as A
from labkit import plots

TARGETS = list(A.MODELS)
ALL = TARGETS + [f"{t}-assistant" for t in TARGETS]

# Published parameter counts, each compared with the count of the same kind (`A.sizes`): Google's
# "effective" sizes leave out the per-layer embedding table and the vision and audio towers,
# E2B's 5.1B and E4B's 8B are totals with everything, 26B-A4B's 25.2B and 31B's 30.7B count the
# text model only. Cards round to two digits (and E4B's 4.5B sits 3 % under our 4.64B), so 5 %.
ASSISTANTS = {  # the assistants have no towers: their one count is the total
    "E2B-assistant": 78e6,
    "E4B-assistant": 78.8e6,
    "26B-A4B-assistant": 0.4e9,
    "31B-assistant": 0.5e9,
}
TOLERANCE = {"26B-A4B-assistant": 0.10, "31B-assistant": 0.10}  # published only to one digit
# What labkit's own counter gives today; a change here means the configs or the counter changed.
MEASURED = {("E2B", "total"): 5.104e9, ("26B-A4B", "text"): 25.233e9, ("31B", "text"): 30.697e9}


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


@pytest.mark.parametrize("name", TARGETS)
def test_target_sizes_match_the_published_count_of_the_same_kind(name):
    counts = A.param_counts(A.build_on_meta(A.load_config(name)))
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    sizes = A.sizes(counts)
    assert sizes["effective"] <= sizes["text"] <= sizes["total"]
    for kind, published in A.PUBLISHED_SIZES[name].items():
        assert abs(sizes[kind] / published - 1) < 0.05, (kind, sizes[kind], published)
    for (short, kind), value in MEASURED.items():
        if short == name:
            assert abs(sizes[kind] - value) < 1e6, (kind, sizes[kind])


def test_towers_are_what_separates_total_from_text():
    """The mismatch this test once hid: 26B-A4B's total includes a 0.57B vision tower."""
    counts = A.param_counts(A.build_on_meta(A.load_config("26B-A4B")))
    assert counts["vision tower"] > 0.5e9
    assert A.sizes(counts)["total"] - A.sizes(counts)["text"] == counts["vision tower"]
    assert abs(A.sizes(counts)["total"] / 25.2e9 - 1) > 0.02  # the total is not the card's figure


@pytest.mark.parametrize("name", list(ASSISTANTS))
def test_assistant_counts_near_published(name):
    counts = A.param_counts(A.build_on_meta(A.load_config(name)))
    assert abs(counts["total"] / ASSISTANTS[name] - 1) < TOLERANCE.get(name, 0.05), counts
    assert A.sizes(counts)["total"] == A.sizes(counts)["text"]


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


def test_record_shapes_and_tables(scaled):
    with A.record_shapes(scaled, ["model.layers.0.mlp"]) as log:
        scaled(input_ids=torch.tensor([[1, 2]]))
    assert log == [("model.layers.0.mlp", (1, 2, scaled.config.hidden_size))]
    rows = [{"a": 1, "b": "x", "proj": (3072, 256)}, {"a": 1000, "b": None, "proj": (256, 1536)}]
    table = A.text_table(rows)
    assert "1,000" in table and "–" in table and "3,072 → 256" in table
    html = A.Table(rows, caption="c")._repr_html_()
    assert html.count("<tr>") == 3 and "nowrap" in html and "<caption" in html
    assert str(A.Table(rows, caption="c")).startswith("c\n")


def test_knee_of_a_measured_curve():
    flat_then_linear = [(n, 0.010 + 0.001 * n) for n in (1, 2, 4, 8, 16)]  # a = 10 ms, b = 1 ms
    assert A.knee(flat_then_linear) == pytest.approx(10.0)
    assert A.knee([(1, 0.01), (2, 0.01), (4, 0.0099)]) == float("inf")  # never rises: no knee
    assert A.knee([(1, 0.0), (2, 1.0), (4, 3.0)]) == 0.0  # all arithmetic: the knee is at the start
    with pytest.raises(ValueError):
        A.knee([(1, 0.01)])
    fig = plots.cost_curve_figure({"model": flat_then_linear, "flat": [(1, 0.01), (16, 0.0101)]}, title="t", sample="s")
    ticks = list(fig.layout.yaxis.ticktext)
    assert ticks[0] == "1×" and all(t.endswith("×") for t in ticks)  # no bare "9", "8" minor labels
    assert any("knee ≈ 10" in (a.text or "") for a in fig.layout.annotations)
    assert "no knee up to n = 16" in fig.data[2].name
