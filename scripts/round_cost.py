"""What one speculative round costs, in target steps, for pocket shapes with random weights.

    python scripts/round_cost.py                      # 16, 20 and 24 layers, 2 threads
    python scripts/round_cost.py --shapes 24x512 --threads 4

transformers' generate, greedy, plain against assisted (k = 4, constant schedule), 100 new tokens,
fastest of 3. Random weights reject nearly every draft, so an assisted round yields one token and
its time over a plain token's is the round's cost: 4 draft steps and one verify pass over 5 tokens.
Speedup is then tau / cost. This chose the full pocket target's depth (`scripts/train_target.py`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit.pocket import HEAD_DIM, drafter_config, target_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", nargs="+", default=["16x768", "20x640", "24x512"], help="LAYERSxMLP, width 256")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    for shape in args.shapes:
        layers, mlp = (int(v) for v in shape.split("x"))
        torch.manual_seed(0)
        target = Gemma4ForCausalLM(target_config(
            4096, num_hidden_layers=layers, hidden_size=256, intermediate_size=mlp, num_attention_heads=256 // HEAD_DIM,
            layer_types=(["sliding_attention"] * 3 + ["full_attention"]) * (layers // 4))).eval()
        drafter = Gemma4AssistantForCausalLM(drafter_config(
            target.config, hidden_size=256, intermediate_size=512, num_attention_heads=256 // HEAD_DIM)).eval()
        drafter.generation_config.num_assistant_tokens = 4
        drafter.generation_config.num_assistant_tokens_schedule = "constant"
        ids = torch.randint(3, 4096, (1, 30), generator=torch.Generator().manual_seed(0))
        kw = dict(max_new_tokens=100, min_new_tokens=100, do_sample=False, pad_token_id=0)
        best: dict[str, float] = {}
        for _ in range(3):
            for name, extra in (("plain", {}), ("assisted", {"assistant_model": drafter})):
                t0 = time.perf_counter()
                target.generate(ids, **kw, **extra)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
        print(f"{layers} layers, MLP {mlp}: {sum(p.numel() for p in target.parameters()):,} parameters; "
              f"plain {best['plain'] * 10:.2f} ms per token, assisted {best['assisted'] * 10:.2f} ms per round: "
              f"a round costs {best['assisted'] / best['plain']:.2f} target steps", flush=True)


if __name__ == "__main__":
    main()
