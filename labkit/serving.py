"""The lab's numbers in a server's vocabulary: vLLM's speculative-decoding counters, read and written.

A vLLM server that speculates exports four Prometheus counters on /metrics. `read_metrics` turns that
page into a `metrics.SpecDecodeCounts`, whose properties are vLLM's own formulas (acceptance rate,
mean acceptance length, per-position rate) next to the lab's α; `scrape` fetches the page; the
difference of two scrapes (`metrics.between`) is what happened in between. `exposition` writes the
page vLLM would show for rounds the lab measured, so the reader can be demonstrated offline.

Left out: histograms and gauges (vLLM exports none for speculation), per-request metrics
(--per-request-spec-decode-metrics), diffusion models' `vllm:diffusion_*` names, and other engines'
metric names (SGLang, TensorRT-LLM, TGI). Names, types and formulas: vLLM v0.33.0,
vllm/v1/spec_decode/metrics.py and vllm/v1/metrics/loggers.py (links below and in labkit.metrics).
"""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from labkit.errors import BadInputError, OfflineError
from labkit.metrics import SpecDecodeCounts

# name -> (type, labels, help), as `SpecDecodingProm.__init__` creates them:
# https://github.com/vllm-project/vllm/blob/v0.33.0/vllm/v1/spec_decode/metrics.py#L228-L264
# prometheus_client appends `_total` to counter samples when it writes the page.
VLLM_METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "vllm:spec_decode_num_drafts": ("counter", ("model_name", "engine"), "Number of spec decoding drafts."),
    "vllm:spec_decode_num_draft_tokens": ("counter", ("model_name", "engine"), "Number of draft tokens."),
    "vllm:spec_decode_num_accepted_tokens": ("counter", ("model_name", "engine"), "Number of accepted tokens."),
    "vllm:spec_decode_num_accepted_tokens_per_pos": (
        "counter", ("model_name", "engine", "position"), "Accepted tokens per draft position."),
}
_FIELDS = dict(zip(VLLM_METRICS, ("drafts", "draft_tokens", "accepted", "accepted_per_pos")))
# OpenMetrics output escapes `:` to `_` in sample names (prometheus_client's default), so match both
_BY_SPELLING = {name.replace(":", "_"): name for name in VLLM_METRICS}
NOT_VLLM = ("no speculative-decoding counter (vllm:spec_decode_*) on this page. vLLM exports these only "
            "when it serves with --speculative-config; is this a vLLM /metrics page?")


def _vllm_name(sample_name: str) -> str | None:
    """The vLLM name a sample belongs to, whichever spelling a server or version used; None if none."""
    name = sample_name.replace(":", "_")
    # older vLLMs named the counters with `_total`, `LLM.get_metrics()` without: both reach here
    name = name.removesuffix("_total")
    return _BY_SPELLING.get(name)


def read_metrics(text: str, model_name: str | None = None) -> SpecDecodeCounts:
    """vLLM's speculative-decoding counters from a /metrics page (Prometheus or OpenMetrics text).

    Counters are summed over the `engine` label (data-parallel engines of one model). A server with
    several models needs `model_name` (its served name). A counter an older vLLM did not export
    reads as 0, and a formula that needs it as nan. `_created` samples are ignored.
    """
    by_model: dict[str, dict[str, float]] = {}  # model_name -> field -> value ("accepted_per_pos:j")
    try:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except ValueError as e:  # an HTML page or a log file, say
        raise BadInputError(f"not Prometheus text ({e}); {NOT_VLLM}") from None
    for sample in samples:
        name = _vllm_name(sample.name)
        if name is None:
            continue
        fields = by_model.setdefault(sample.labels.get("model_name", ""), {})
        key = _FIELDS[name] + (f":{sample.labels.get('position', '0')}" if name.endswith("_per_pos") else "")
        fields[key] = fields.get(key, 0.0) + sample.value
    if not by_model:
        raise BadInputError(NOT_VLLM)
    if model_name is None and len(by_model) > 1:
        raise BadInputError(f"this server serves {len(by_model)} models ({', '.join(sorted(by_model))}): "
                            "choose one with model_name=...")
    if model_name is not None and model_name not in by_model:
        raise BadInputError(f"no speculative-decoding counters for model_name {model_name!r}; "
                            f"this page has {', '.join(repr(m) for m in sorted(by_model))}")
    fields = by_model[model_name] if model_name is not None else next(iter(by_model.values()))
    positions = sorted(int(key.split(":")[1]) for key in fields if key.startswith("accepted_per_pos:"))
    k = positions[-1] + 1 if positions else 0
    return SpecDecodeCounts(
        drafts=round(fields.get("drafts", 0)),
        draft_tokens=round(fields.get("draft_tokens", 0)),
        accepted=round(fields.get("accepted", 0)),
        accepted_per_pos=tuple(round(fields.get(f"accepted_per_pos:{j}", 0)) for j in range(k)),
    )


def scrape(url: str, timeout: float = 5.0, model_name: str | None = None) -> SpecDecodeCounts:
    """`read_metrics` of a live server's page, e.g. scrape("http://localhost:8000/metrics").

    One call gives totals since the server started; `metrics.between(before, after)` of two calls
    gives an interval. `model_name` as in `read_metrics`. Raises OfflineError when nothing answers
    within `timeout` seconds.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:  # something answered, but not with a metrics page
        raise BadInputError(f"{url} answered HTTP {e.code}; vLLM serves its counters at /metrics "
                            "on the API port, e.g. http://localhost:8000/metrics") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OfflineError(f"nothing answered at {url} ({reason}). Is a vLLM server running there, "
                           "started with `vllm serve MODEL --speculative-config ...`? Offline, "
                           "`exposition(metrics.vllm_counts(traces))` gives a page to read instead.") from None
    return read_metrics(text, model_name)


def exposition(counts: SpecDecodeCounts, model_name: str = "google/gemma-4-E4B-it") -> str:
    """The /metrics text vLLM would show for these counters, one engine ("0"), in the classic
    Prometheus format that `curl` gets.

    Generated here with prometheus_client (vLLM's own client library, the same names, labels and
    help strings), not by vLLM: a stand-in for a server, to show `read_metrics` on rounds the lab
    measured. The `_created` timestamps are this call's time.
    """
    registry = CollectorRegistry()  # a fresh one: the global registry would keep counts between calls
    counters = {name: Counter(name, help_, labels, registry=registry)
                for name, (_, labels, help_) in VLLM_METRICS.items()}
    for name, field in _FIELDS.items():
        if field == "accepted_per_pos":
            for j, value in enumerate(counts.accepted_per_pos):
                counters[name].labels(model_name, "0", str(j)).inc(value)
        else:
            counters[name].labels(model_name, "0").inc(getattr(counts, field))
    return generate_latest(registry).decode()
