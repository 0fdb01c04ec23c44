"""The pieces of one speculative round, handed out one at a time so a learner can assemble them.

`00_tour` asks for one greedy round end to end: `draft_fn(pair)` gives the drafter's proposal for a
context, `target_fn(pair)` one target forward (it counts its calls, so a checker can tell one
forward from k). `02_inside_the_mtp_drafter` goes one level down and builds the drafter's round from
the assistant's own modules (`labkit.architecture.assistant_layers`, `assistant_logits`).

Both run without a KV cache: each call recomputes the whole context, which is slow but leaves
nothing hidden. The glass-box loop (`labkit.glassbox.speculative_loop`) is the cached, fast version.
Left out: sampling (the pieces are greedy), batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from labkit.architecture import assistant_layers, assistant_logits
from labkit.glassbox import Context, MTPDrafter


@torch.no_grad()
def drafter_context(pair, ids: Sequence[int]) -> Context:
    """What the drafter may read before drafting after `ids`: the target's last hidden state and
    K/V from one target forward over ids[:-1] (the last token has not been through the target)."""
    device = pair.device
    out = pair.target(input_ids=torch.tensor([list(ids[:-1])], device=device), use_cache=True,
                      output_hidden_states=True, return_shared_kv_states=True)
    return Context(list(ids), out.hidden_states[-1][:, -1:], out.shared_kv_states)


def draft_fn(pair) -> Callable[[Sequence[int], int], list[int]]:
    """draft(ids, k) → k token ids the MTP drafter proposes after `ids`, greedily (`00_tour`)."""
    drafter = MTPDrafter(pair.target, pair.drafter)

    def greedy(logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        return int(logits.argmax()), logits

    def draft(ids: Sequence[int], k: int) -> list[int]:
        tokens, _ = drafter.propose(drafter_context(pair, ids), k, greedy)
        return tokens

    return draft


@dataclass
class TargetForward:
    """target(ids) → logits (len(ids), vocab) of one target forward over `ids`; counts its calls."""

    pair: object
    forwards: int = 0

    @torch.no_grad()
    def __call__(self, ids: Sequence[int]) -> torch.Tensor:
        self.forwards += 1
        out = self.pair.target(input_ids=torch.tensor([list(ids)], device=self.pair.device))
        return out.logits[0].float()


def target_fn(pair) -> TargetForward:
    """One target forward at a time, counted (`00_tour`)."""
    return TargetForward(pair)


@torch.no_grad()
def mtp_drafts(pair, ids: Sequence[int], k: int, *, position_step: int = 0) -> list[int]:
    """The assistant's k greedy drafts after `ids`, assembled from its parts (`02`).

    position_step = 0 keeps the position id constant within the round, as the assistant was
    trained; 1 advances it by one per draft, as an ordinary decoder would (02's experiment).
    """
    ctx = drafter_context(pair, ids)
    drafter, embed, device = pair.drafter, pair.target.get_input_embeddings(), pair.device
    mask = torch.ones(1, len(ids), dtype=torch.long, device=device)
    token, hidden, drafts = ids[-1], ctx.hidden, []
    for step in range(k):
        position = torch.tensor([[len(ids) - 1 + step * position_step]], device=device)
        x = drafter.pre_projection(torch.cat([embed(torch.tensor([[token]], device=device)), hidden], dim=-1))
        h = assistant_layers(drafter, x, ctx.shared_kv, position, mask)
        token = int(assistant_logits(drafter, h)[0, -1].argmax())
        hidden = drafter.post_projection(h)
        drafts.append(token)
    return drafts
