"""Restructuring labkit must not change a single trace: a golden file pins them.

On the shipped pocket pair (offline, on the CPU), a few prompts and seeds, greedy and sampled at
T = 1, on every path (plain, transformers, glass box) and every drafting method of the glass box
(mtp, draft-model, prompt-lookup, none), plus the glass box's heuristic schedule and
transformers-style K/V, its sampled-round records, a batched run, the drafter's measured round
(`diagram.measure_round`) and its attention (`media.drafter_attention`): the generated ids, every
round's drafts, accepted count and emitted tokens, and the float summaries a chapter reads (q(x),
p(x), the per-round TV). tests/fixtures/trace_identity.json was recorded from the code before
issue 40's restructure; re-record it only when a change is *meant* to change traces:

    .venv/bin/python tests/test_trace_identity.py --record

Token ids and counts must be equal; floats must agree to 1e-9 relative (1e-12 absolute): the same
operations give the same bits, but a BLAS run with another thread count may sum in another order.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "fixtures" / "trace_identity.json"
K, NEW = 3, 12


def _trace(trace) -> dict:
    return {
        "path": trace.path, "drafter": trace.drafter, "new_ids": list(trace.new_ids),
        "rounds": [{"index": r.index, "position": r.position, "k": r.k, "drafted": list(r.drafted),
                    "accepted": r.accepted, "emitted": list(r.emitted), "target_top": list(r.target_top),
                    "draft_probs": list(r.draft_probs), "target_probs": list(r.target_probs), "tv": r.tv}
                   for r in trace.rounds],
    }


def record() -> dict:
    """Everything the golden file holds, computed by the code as it is now."""
    import labkit
    from labkit import batching, diagram, generation, glassbox, media, methods
    from labkit.trace import Decoding

    pair = labkit.load_pair(device="cpu")
    draft_model = methods.load_draft_model(pair)
    prompts = generation.load_prompts("prose", limit=1) + generation.load_prompts("code", limit=1)
    out: dict = {"runs": {}, "sampled_rounds": {}}
    for i, prompt in enumerate(prompts):
        for temperature, seeds in ((0.0, (0,)), (1.0, (i, 10 + i))):
            for seed in seeds:
                kw = dict(k=K, max_new_tokens=NEW, temperature=temperature, seed=seed, stop_at_eos=False)
                name = f"prompt {i}, T = {temperature:g}, seed {seed}"
                out["runs"][f"{name}, plain"] = _trace(generation.run(pair, prompt, path="plain", **kw))
                out["runs"][f"{name}, transformers"] = _trace(generation.run(pair, prompt, path="transformers", **kw))
                if temperature:
                    out["runs"][f"{name}, transformers as shipped"] = _trace(
                        generation.run(pair, prompt, path="transformers", lossless=False, **kw))
                for method in methods.METHODS:
                    drafter = draft_model if method == "draft-model" else method
                    out["runs"][f"{name}, glassbox {method}"] = _trace(
                        generation.run(pair, prompt, path="glassbox", drafter=drafter, **kw))
                out["runs"][f"{name}, glassbox heuristic"] = _trace(
                    generation.run(pair, prompt, path="glassbox", schedule="heuristic", **kw))
                out["runs"][f"{name}, glassbox kv transformers"] = _trace(
                    generation.run(pair, prompt, path="glassbox", kv="transformers", **kw))
        ids = generation.encode(pair, prompt)
        trace, records = glassbox.sampled_rounds(pair.target, pair.drafter, ids,
                                                 Decoding(k=K, max_new_tokens=NEW, temperature=1.0, seed=i))
        out["sampled_rounds"][f"prompt {i}"] = {
            "trace": _trace(trace),
            "records": [{"index": r.index, "position": r.position, "k": r.k, "token": r.token,
                         "emitted": list(r.emitted), "top": [list(t) for t in r.top],
                         "drafts": [[d.token, d.q, d.p, d.accept, d.u] for d in r.drafts]} for r in records],
        }
    ids = generation.encode(pair, prompts[0])
    run = batching.batched_run(pair, ids, 2, k=K, max_new_tokens=NEW)
    out["batched_run"] = {name: run[name] for name in ("rounds", "tokens_per_round", "tau", "identical")}
    measured = diagram.measure_round(pair, prompts[0], k=K)
    out["measure_round"] = {"drafts": measured["drafts"], "context": measured["context"],
                            "steps": [{name: list(v) if isinstance(v, tuple) else v for name, v in s.items()
                                       if name not in ("layers",)} for s in measured["steps"]]}
    attention = media.drafter_attention(pair, ids)
    out["drafter_attention"] = [a.tolist() for a in attention]
    return json.loads(json.dumps(out))  # as the file holds it: tuples become lists


def _same(want, got, where: str) -> None:
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(want, (int, float)) and isinstance(got, (int, float)), f"{where}: {want!r} vs {got!r}"
        assert math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {want!r} became {got!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(want) == set(got), f"{where}: keys {sorted(want)} vs {sorted(got)}"
        for key in want:
            _same(want[key], got[key], f"{where}/{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(want) == len(got), f"{where}: {want!r} became {got!r}"
        for i, (a, b) in enumerate(zip(want, got)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert want == got, f"{where}: {want!r} became {got!r}"


def test_traces_are_what_they_were_before_the_restructure():
    want = json.loads(GOLDEN.read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded: one thread sums in one order
    try:
        got = record()
    finally:
        torch.set_num_threads(threads)
    sampled = [r for name, r in want["runs"].items() if "T = 1" in name and "glassbox mtp" in name]
    assert any(r["tv"] is not None for t in sampled for r in t["rounds"]), "the golden file holds per-round TV"
    _same(want, got, "golden")


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/test_trace_identity.py --record   (rewrites " + str(GOLDEN) + ")")
    torch.set_num_threads(1)
    GOLDEN.write_text(json.dumps(record(), indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")


def test_run_takes_one_decoding_and_keywords_override_it():
    """`labkit.run(pair, prompt, settings, **overrides)`, as `generate` takes a GenerationConfig: a
    Decoding and the same settings as keywords give the same trace; keywords override its fields."""
    import labkit
    from labkit import generation
    from labkit.errors import BadInputError
    from labkit.trace import Decoding

    pair = labkit.load_pair(device="cpu")
    prompt = generation.load_prompts("code", limit=1)[0]
    settings = Decoding(k=2, max_new_tokens=8, temperature=1.0, seed=3)
    for path in ("transformers", "glassbox"):
        by_keywords = generation.run(pair, prompt, path=path, k=2, max_new_tokens=8, temperature=1.0, seed=3)
        given = generation.run(pair, prompt, settings, path=path)
        assert given.settings == by_keywords.settings == settings
        assert _trace(given) == _trace(by_keywords)
        overridden = generation.run(pair, prompt, settings, path=path, temperature=0.0)
        assert overridden.settings == Decoding(k=2, max_new_tokens=8, temperature=0.0, seed=3)
        assert overridden.new_ids == generation.run(pair, prompt, path=path, k=2, max_new_tokens=8).new_ids
    try:
        generation.run(pair, prompt, {"k": 2})
    except BadInputError as e:
        assert "Decoding" in str(e)
    else:
        raise AssertionError("a dict for settings must be refused with a clear error")
