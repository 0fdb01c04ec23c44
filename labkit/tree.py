"""A draft tree: W branches at the first draft position, verified in one target pass (`11_beyond_one_chain`).

The chain of `glassbox.speculative_loop` bets every draft on the drafter's first choice. A tree
hedges the first position, where a chain loses most: the MTP drafter's top W tokens each start a
branch, and each branch is drafted on for k drafts in all (`MTPDrafter.propose_tree`, one batch
row per branch). The target reads the last kept token (the root) and every node in ONE forward:

- a tree attention mask: each node sees the prompt and its own ancestors, never a sibling branch
  (Medusa's `generate_medusa_buffers`); on sliding-window layers also only the last `window`
  positions, as a chain would. Gemma 4's text model takes the masks as a dict {layer type: mask}
  through its public forward (`tree_mask`, `draw`);
- per-node positions: the prefix length + the node's depth, so a branch is read exactly as the
  chain of its tokens would be.

Then the first position is judged by `rules.multi_draft_sample` (the branches' first drafts one
after another: the top W as point masses, or W independent draws from q with SpecInfer's rule when
drafts are sampled), the chosen branch by the chain's own rule (`glassbox.accept`: token or block,
argmax or sampled drafts), and only that branch's K/V stays in the cache (`keep`).

Shape: W branches of depth k (W k nodes + the root). Why this shape: the drafter's first draft is
where most rounds end, and branching only there keeps the verify width at 1 + W k and the drafter
at k batched steps. Left out: deeper branching, dynamic trees (EAGLE-2), the transformers path.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import torch
from transformers import DynamicCache

from labkit import rules
from labkit.errors import BadInputError
from labkit.glassbox import Context, Step, _picker, _until_eos, accept, verify_step
from labkit.trace import Decoding


def layout(branches: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """The tree flattened for one forward: (tokens after the root, parent of each node, depth of
    each node). Node 0 is the root; branch b's drafts follow one another, parents pointing back."""
    tokens, parents, depth = [], [], []
    for branch in branches:
        parent = 0
        for d, t in enumerate(branch, start=1):
            tokens.append(t)
            parents.append(parent)
            depth.append(d)
            parent = len(tokens)  # this node's index (the root is 0)
    return tokens, parents, depth


def ancestors(parents: list[int]) -> torch.Tensor:
    """(n, n) bool, n = len(parents) + 1 with the root: [i, j] when node j is node i or an ancestor of it."""
    n = len(parents) + 1
    seen = torch.eye(n, dtype=torch.bool)
    for i, parent in enumerate(parents, start=1):
        seen[i] |= seen[parent]
    return seen


def tree_mask(parents: list[int], depth: list[int], prefix: int, window: int | None,
              dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Additive masks (0 where a node may look, the dtype's minimum elsewhere) for one tree forward:
    {"full_attention": (1, 1, n, prefix + n), "sliding_attention": (1, 1, n, min(prefix, window - 1) + n)}.

    prefix: tokens already in the cache (the root's position); n = nodes with the root. The sliding
    layers' cache holds only the last window - 1 of them, so their mask covers those keys; a node
    at position t sees a key at position s when t - s < window (transformers' sliding rule).
    """
    sees = ancestors(parents)  # (n, n)
    pos = torch.tensor([prefix, *[prefix + d for d in depth]])  # (n,) per-node positions
    n = len(pos)
    allowed = {"full_attention": torch.cat([torch.ones(n, prefix, dtype=torch.bool), sees], 1)}
    if window is not None:
        cached = min(prefix, window - 1)
        keys = torch.cat([torch.arange(prefix - cached, prefix), pos])  # (cached + n,) key positions
        near = (pos[:, None] - keys[None, :]) < window
        allowed["sliding_attention"] = torch.cat([torch.ones(n, cached, dtype=torch.bool), sees], 1) & near
    low = torch.finfo(dtype).min
    return {name: torch.where(a, 0.0, low).to(dtype=dtype, device=device)[None, None] for name, a in allowed.items()}


def keep(cache: DynamicCache, n: int, rows: list[int]) -> None:
    """Keep, of the n entries the tree forward appended to every cache layer, only `rows` (the root
    and the accepted branch, in order), then let sliding layers fall back to their window."""
    for layer in cache.layers:
        if not getattr(layer, "is_initialized", False) or layer.keys is None or layer.keys.numel() == 0:
            continue  # a KV-shared layer stores nothing
        idx = torch.tensor(rows, device=layer.keys.device)
        layer.keys = torch.cat([layer.keys[:, :, :-n], layer.keys[:, :, -n:].index_select(2, idx)], 2)
        layer.values = torch.cat([layer.values[:, :, :-n], layer.values[:, :, -n:].index_select(2, idx)], 2)
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length -= n - len(rows)
    cache.crop(0)


def select_kv(kv: dict[str, tuple[torch.Tensor, torch.Tensor]], n: int, rows: list[int]) -> dict:
    """The drafter's view after a tree round: the K/V before the tree and the kept rows of it."""
    def pick(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :, :-n], x[:, :, -n:].index_select(2, torch.tensor(rows, device=x.device))], 2)

    return {name: (pick(k), pick(v)) for name, (k, v) in kv.items()}


def accept_tree(branches: list[list[int]], qs: list[list[torch.Tensor]], logits: torch.Tensor,
                settings: Decoding, generator: torch.Generator | None) -> tuple[int, int, int, torch.Tensor | None, list[float], list[int]]:
    """The verdict on a tree: (branch followed, drafts kept, the target's own token, p of that
    branch (k + 1, vocab) or None, the uniform draws, the branch's rows in the forward).

    logits: (n, vocab) for the root and every node. The first position: the branches' first drafts
    judged one after another (`rules.multi_draft_sample`; greedy: the one equal to the target's
    argmax); on the branch kept, the rest of its drafts by the chain's rule (`accept`).
    """
    _, parents, _ = layout(branches)
    starts = [i + 1 for i, parent in enumerate(parents) if parent == 0]  # each branch's first node
    draws: list[float] = []
    if settings.greedy:
        top = int(logits[0].argmax())
        chosen = next((b for b, branch in enumerate(branches) if branch[0] == top), -1)
        token = top
    else:  # sampled candidates were drawn from q, the top W are point masses
        p0 = rules.warp(logits[0], settings.temperature, settings.top_p)
        q0 = qs[0][0] if settings.drafts == "sampled" else None
        chosen, token = rules.multi_draft_sample(p0, [branch[0] for branch in branches], generator, draws, q0)
    follow = max(chosen, 0)  # no branch kept: the trace shows the first branch, none of it kept
    rows = [0] + list(range(starts[follow], starts[follow] + len(branches[follow])))
    p = None if settings.greedy else rules.warp(logits[rows], settings.temperature, settings.top_p)
    if chosen < 0:
        return follow, 0, token, p, draws, rows
    rest, token, _, more = accept(branches[chosen][1:], qs[chosen][1:], logits[rows[1:]], settings, generator)
    return chosen, 1 + rest, token, p, draws + more, rows


@torch.no_grad()
def tree_loop(
    target: torch.nn.Module,
    drafter: Any,
    input_ids: torch.Tensor,
    settings: Decoding = Decoding(),
    eos: Collection[int] = (),
    **prefill_inputs: Any,
) -> Iterator[Step]:
    """`glassbox.speculative_loop` with a tree round: `settings.tree` branches at the first draft
    position, one target forward over all of them, only the accepted branch kept. One `Step` per
    round (the branch followed), round 0 the prefill. drafter: an `MTPDrafter` (`propose_tree`)."""
    if not hasattr(drafter, "propose_tree"):
        raise BadInputError(f"a tree needs the MTP drafter; the {getattr(drafter, 'name', drafter)!r} drafter "
                            "drafts one chain")
    device, prompt, width = input_ids.device, input_ids[0].tolist(), settings.tree
    generator = torch.Generator(device=device).manual_seed(settings.seed) if settings.seed is not None else None
    pick = _picker(settings, generator)
    config = target.config.get_text_config()
    window = getattr(config, "sliding_window", None) if "sliding_attention" in (config.layer_types or ()) else None
    cache = DynamicCache(config=config)
    cache.activate_past_recording()

    out = verify_step(target, cache, torch.tensor([prompt], device=device), 0, **prefill_inputs)
    logits = out.logits[0, -1:].float()
    _, token, p, draws = accept([], [], logits, settings, generator)
    ctx = Context(prompt + [token], out.hidden_states[-1][:, -1:], out.shared_kv_states)
    yield Step(len(prompt), prompt, [], [], logits, p, draws, 0, token, [token])

    while len(ctx.ids) - len(prompt) < settings.max_new_tokens and ctx.ids[-1] not in eos:
        position = len(ctx.ids)
        room = settings.max_new_tokens - (position - len(prompt))
        k_round = min(settings.k, room - 1)
        sampled = not settings.greedy and settings.drafts == "sampled"
        branches, qs = drafter.propose_tree(ctx, k_round, width, pick, sampled) if k_round > 0 else ([[]], [[]])
        tokens, parents, depth = layout(branches)
        n = len(tokens) + 1  # the nodes and the root
        mask = tree_mask(parents, depth, position - 1, window, target.dtype, device)
        positions = torch.tensor([[position - 1, *[position - 1 + d for d in depth]]], device=device)
        out = verify_step(target, cache, torch.tensor([[ctx.ids[-1], *tokens]], device=device), position - 1,
                          mask=mask, positions=positions)
        logits = out.logits[0].float()  # (n, vocab)
        if k_round > 0:
            b, accepted, token, p, draws, rows = accept_tree(branches, qs, logits, settings, generator)
        else:
            b, rows = 0, [0]
            accepted, token, p, draws = accept([], [], logits, settings, generator)
        drafted = branches[b]
        emitted = _until_eos(drafted[:accepted] + [token], eos)[:room]
        kept = rows[: accepted + 1]  # the root and the kept drafts
        keep(cache, n, kept)
        step = Step(position, ctx.ids, drafted, qs[b], logits[rows], p, draws, accepted, token, emitted,
                    tuple(branch[0] for branch in branches) if k_round > 0 and not settings.greedy else ())
        ctx = Context(ctx.ids + emitted, out.hidden_states[-1][:, kept[-1] : kept[-1] + 1],
                      select_kv(out.shared_kv_states, n, kept))
        yield step
