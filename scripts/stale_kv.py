"""Minimal reproduction: transformers 5.22's MTP drafter reads K/V of rejected drafts.

    python scripts/stale_kv.py                    # the pocket pair (default)
    python scripts/stale_kv.py --pair PATH --drafter PATH --n 8
    python scripts/stale_kv.py --tiny             # the tests' tiny trained pair: rejects often

1. Audit: run transformers' own greedy assisted `generate` and compare, each round, the K/V the
   drafter receives with a fresh target forward over the kept tokens only.
2. Effect: acceptance of the glass-box loop with transformers' slicing (kv="transformers") vs
   exact slicing (kv="exact"), same prompts. Output tokens are identical either way (greedy).
See docs/stale-kv.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="pocket")
    ap.add_argument("--drafter", default=None)
    ap.add_argument("--n", type=int, default=8, help="prompts per set (prose, code)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--tiny", action="store_true",
                    help="tests/fixtures/trained_tiny (trained in seconds), 2n random prompts")
    args = ap.parse_args()

    from labkit import metrics
    from labkit.generation import encode, load_prompts
    from labkit.glassbox import speculate
    from labkit.loading import load_pair
    from labkit.trace import Decoding
    from labkit.tracing import audit_drafter_kv, trace_generate

    if args.tiny:  # no tokenizer: random token prompts, as in the tests
        import torch

        sys.path.insert(0, str(REPO / "tests"))
        from fixtures import trained_tiny

        target, drafter = trained_tiny.load()
        name, window = "tests/fixtures/trained_tiny", trained_tiny.WINDOW
        inputs = [torch.randint(3, trained_tiny.VOCAB, (1, 10), generator=torch.Generator().manual_seed(s))
                  for s in range(2 * args.n)]
    else:
        pair = load_pair(args.pair, args.drafter)
        target, drafter, name = pair.target, pair.drafter, pair.name
        window = drafter.config.get_text_config().sliding_window
        inputs = [encode(pair, text) for text in load_prompts("prose", args.n) + load_prompts("code", args.n)]
    audits, tf, exact, compat = [], [], [], []
    for ids in inputs:
        audits += audit_drafter_kv(target, drafter, ids, k=args.k,
                                   max_new_tokens=args.max_new_tokens)
        greedy = Decoding(k=args.k, max_new_tokens=args.max_new_tokens)
        tf.append(trace_generate(target, drafter, ids, greedy))
        compat.append(speculate(target, drafter, ids, replace(greedy, kv="transformers")))
        exact.append(speculate(target, drafter, ids, replace(greedy, kv="exact")))
    result = {
        "pair": name,
        "prompts": len(inputs),
        "k": args.k,
        "rounds_audited": len(audits),
        "rounds_with_stale_full_kv": sum(a.full_stale > 0 for a in audits),
        "rounds_with_stale_sliding_kv": sum(a.sliding_stale > 0 for a in audits),
        "max_stale_full": max((a.full_stale for a in audits), default=0),
        "max_stale_sliding_past_window": max(
            (a.sliding_stale for a in audits if a.position > window), default=0),
        "glassbox_transformers_mode_reproduces_transformers": all(
            [(r.drafted, r.accepted) for r in a.rounds] == [(r.drafted, r.accepted) for r in b.rounds]
            for a, b in zip(tf, compat)),
        "same_tokens_exact_vs_transformers": all(a.new_ids == b.new_ids for a, b in zip(exact, tf)),
        "tau_transformers": round(metrics.tau(tf), 4),
        "tau_glassbox_transformers_kv": round(metrics.tau(compat), 4),
        "tau_glassbox_exact_kv": round(metrics.tau(exact), 4),
        "acceptance_transformers_kv": [round(a, 4) for a in metrics.acceptance_by_position(compat)],
        "acceptance_exact_kv": [round(a, 4) for a in metrics.acceptance_by_position(exact)],
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
