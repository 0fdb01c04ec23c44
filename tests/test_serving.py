"""vLLM's speculative-decoding counters: read from pages written the way vLLM writes them, and
vLLM's formulas checked against hand-computed answers and against the lab's own metrics."""

import math
import socket
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from labkit import metrics, plots, serving
from labkit.errors import BadInputError, OfflineError
from labkit.metrics import SpecDecodeCounts
from labkit.trace import Decoding, Round, Trace

MODEL = "google/gemma-4-E4B-it"
NOT_VLLM = "vLLM exports these only when it serves with --speculative-config; is this a vLLM /metrics page?"


def make_trace(accepted, k=3, seed=0):
    """A constant-k trace whose rounds keep the given numbers of drafts, each ending in a target token."""
    rounds = [Round(0, 5, 0, (), (), (), (7,), 0, (7,), 0.0, 0.01, 0.001)]
    nxt = 10 + seed
    for i, a in enumerate(accepted, start=1):
        drafted = tuple(range(nxt, nxt + k))
        rounds.append(Round(i, 5 + sum(len(r.emitted) for r in rounds), k, drafted, (0.9,) * k, (0.5,) * k,
                            drafted[:a] + (99,) * (k + 1 - a), a, drafted[:a] + (99,), 0.002 * k, 0.01, 0.001))
        nxt += k
    return Trace(path="glassbox", drafter="mtp", pair="pocket", prompt_ids=(1, 2, 3, 4, 5),
                 rounds=tuple(rounds), settings=Decoding(k=k))


TRACES = [make_trace((2, 0, 3, 1, 3)), make_trace((0, 1, 0, 0, 2), seed=1), make_trace((3, 3, 1), seed=2)]


def vllm_page(per_engine, openmetrics=False, total_suffix=True):
    """A /metrics page written as vLLM writes it, independently of `serving.exposition`:
    per_engine maps (model_name, engine) to counts. Names and help strings from
    vllm/v1/spec_decode/metrics.py (v0.33.0) L228-L264, labels from vllm/v1/metrics/loggers.py L499-L513."""
    registry = CollectorRegistry()
    labels = ["model_name", "engine"]
    drafts = Counter("vllm:spec_decode_num_drafts", "Number of spec decoding drafts.", labels, registry=registry)
    tokens = Counter("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.", labels, registry=registry)
    accepted = Counter("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.", labels,
                       registry=registry)
    per_pos = Counter("vllm:spec_decode_num_accepted_tokens_per_pos", "Accepted tokens per draft position.",
                      labels + ["position"], registry=registry)
    for (model, engine), c in per_engine.items():
        drafts.labels(model, engine).inc(c.drafts)
        tokens.labels(model, engine).inc(c.draft_tokens)
        accepted.labels(model, engine).inc(c.accepted)
        for j, a in enumerate(c.accepted_per_pos):
            per_pos.labels(model, engine, str(j)).inc(a)
    text = (generate_openmetrics if openmetrics else generate_latest)(registry).decode()
    return text if total_suffix else text.replace("_total{", "{")


def test_vllm_counts_follow_observe_draft():
    c = metrics.vllm_counts(TRACES)
    rounds = metrics.drafting_rounds(TRACES)
    assert c.drafts == len(rounds) == 13
    assert c.draft_tokens == 3 * 13
    assert c.accepted == sum(r.accepted for r in rounds) == sum(c.accepted_per_pos)
    assert c.accepted_per_pos == (9, 6, 4)


def test_read_metrics_reads_a_vllm_page():
    c = metrics.vllm_counts(TRACES)
    assert serving.read_metrics(vllm_page({(MODEL, "0"): c})) == c


def test_read_metrics_sums_engines():
    a, b = metrics.vllm_counts(TRACES[:2]), metrics.vllm_counts(TRACES[2:])
    assert serving.read_metrics(vllm_page({(MODEL, "0"): a, (MODEL, "1"): b})) == metrics.vllm_counts(TRACES)


def test_read_metrics_needs_a_model_name_when_a_server_has_two():
    a, b = metrics.vllm_counts(TRACES[:1]), metrics.vllm_counts(TRACES[1:])
    page = vllm_page({(MODEL, "0"): a, ("google/gemma-4-E2B-it", "0"): b})
    with pytest.raises(BadInputError, match="model_name"):
        serving.read_metrics(page)
    assert serving.read_metrics(page, model_name=MODEL) == a
    assert serving.read_metrics(page, model_name="google/gemma-4-E2B-it") == b
    with pytest.raises(BadInputError, match="gemma-4-E2B-it"):
        serving.read_metrics(page, model_name="nope")


@pytest.mark.parametrize("openmetrics, total_suffix", [(True, True), (False, False)])
def test_read_metrics_takes_every_spelling(openmetrics, total_suffix):
    c = metrics.vllm_counts(TRACES)
    page = vllm_page({(MODEL, "0"): c}, openmetrics=openmetrics, total_suffix=total_suffix)
    if openmetrics:
        assert "vllm_spec_decode_num_drafts_total{" in page  # `:` escaped to `_` in samples
    else:
        assert "vllm:spec_decode_num_drafts{" in page
    assert serving.read_metrics(page) == c


@pytest.mark.parametrize("page", ["", 'process_cpu_seconds_total 1.5\nvllm:num_requests_running{engine="0"} 0.0\n',
                                  "<html><body>Not Found</body></html>"])
def test_a_page_without_spec_decode_counters_says_why(page):
    with pytest.raises(BadInputError, match=NOT_VLLM.replace("?", r"\?")):
        serving.read_metrics(page)


def test_exposition_round_trips_and_names_the_metrics_as_vllm_does():
    c = metrics.vllm_counts(TRACES)
    page = serving.exposition(c, model_name="m")
    assert serving.read_metrics(page) == c
    for name, (kind, labels, help_) in serving.VLLM_METRICS.items():
        assert f"# HELP {name}_total {help_}\n# TYPE {name}_total {kind}\n" in page
    assert 'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="2"} 4.0' in page


def test_vllm_formulas_on_a_hand_computed_example():
    trace = make_trace((2, 1, 0), k=2)
    c = metrics.vllm_counts(trace)
    assert c == SpecDecodeCounts(drafts=3, draft_tokens=6, accepted=3, accepted_per_pos=(2, 1))
    assert c.acceptance_rate == 0.5
    assert c.mean_acceptance_length == 2.0
    assert c.per_position() == pytest.approx((2 / 3, 1 / 3))
    assert c.alpha() == pytest.approx(3 / (3 + 3 - 1)) == metrics.alpha(trace)
    assert c.mean_acceptance_length == metrics.tokens_per_round(trace)


@pytest.mark.parametrize("traces", [TRACES, TRACES[:1], [make_trace((0, 0, 1), k=1)], [make_trace((4, 4), k=4)]])
def test_alpha_from_counters_is_the_labs_alpha(traces):
    c = metrics.vllm_counts(traces)
    assert c.alpha() == pytest.approx(metrics.alpha(traces))
    assert c.per_position() == pytest.approx(tuple(metrics.acceptance_by_position(traces)))
    assert c.mean_acceptance_length == pytest.approx(metrics.tokens_per_round(traces))


def test_alpha_refuses_mixed_k_and_formulas_are_nan_without_drafts():
    mixed = metrics.vllm_counts([make_trace((1, 2), k=2), make_trace((3,), k=3)])
    with pytest.raises(BadInputError, match="same k"):
        mixed.alpha()
    with pytest.raises(BadInputError, match="per-position counter"):
        SpecDecodeCounts(4, 12, 5, ()).alpha()
    empty = SpecDecodeCounts(0, 0, 0, (0, 0))
    assert math.isnan(empty.acceptance_rate) and math.isnan(empty.mean_acceptance_length)
    assert math.isnan(empty.alpha()) and all(math.isnan(p) for p in empty.per_position())


def test_between_two_scrapes_is_the_interval():
    before = serving.read_metrics(vllm_page({(MODEL, "0"): metrics.vllm_counts(TRACES[:1])}))
    after = serving.read_metrics(vllm_page({(MODEL, "0"): metrics.vllm_counts(TRACES)}))
    assert metrics.between(before, after) == after - before == metrics.vllm_counts(TRACES[1:])
    with pytest.raises(BadInputError, match="restarted"):
        metrics.between(after, before)


def test_scrape_of_a_closed_port_is_offline_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(OfflineError, match="nothing answered"):
        serving.scrape(f"http://127.0.0.1:{port}/metrics", timeout=2.0)
    assert time.monotonic() - start < 3


def test_serving_position_figure():
    c = metrics.vllm_counts(TRACES[:2])
    fig = plots.serving_position_figure(c, "pocket pair, k = 3")
    assert "pocket pair, k = 3" in fig.layout.title.text and f"{c.drafts} drafts" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert len(fig.data) == 2 and fig.layout.legend.y < 0  # under the plot, clear of the title
    vllm_rate, conditional = fig.data
    assert list(vllm_rate.y) == pytest.approx(c.per_position())
    assert list(conditional.y) == pytest.approx(metrics.acceptance_by_position(TRACES[:2], conditional=True))
    for series in fig.data:
        assert all(0 <= y - lo and y + hi <= 1 for y, lo, hi in
                   zip(series.y, series.error_y.arrayminus, series.error_y.array))


@pytest.mark.parametrize("successes, trials", [(2, 3), (0, 10), (10, 10), (37, 120)])
def test_wilson_bounds_solve_the_score_equation(successes, trials):
    """Each Wilson bound p satisfies (p̂ - p)² = z² p (1 - p) / n: the definition, not the closed form."""
    z = 1.959963984540054
    lo, hi = metrics.wilson(successes, trials, level=0.95)
    p_hat = successes / trials
    for p in (lo, hi):
        assert (p_hat - p) ** 2 == pytest.approx(z * z * p * (1 - p) / trials, abs=1e-12)
    assert lo <= p_hat <= hi
    if successes == 0:
        assert lo == 0 and hi == pytest.approx(z * z / (trials + z * z))
