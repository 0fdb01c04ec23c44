"""Teach a Gemma 4 MTP drafter to predict its frozen target, exactly as it runs at inference.

For every position `a` of a training sequence at once, the drafter takes k steps as it would in a
round that starts at `a`: step 1 reads concat(target embedding of x_a, target hidden state at a-1),
later steps read the next token and the drafter's own `post_projection` output; every step sits
at position `a` and cross-attends to the target's K/V of positions < a (the sliding layer to the
window the drafter's own sliding mask allows). Step j is trained towards the target's distribution
for token a + j (a KL divergence), so the drafter learns to guess what the target would say.

The ordered-embedding ("centroid") head of the E2B/E4B assistants is built afterwards: tokens are
grouped into equal clusters by their output embeddings, and a small linear layer learns which
clusters hold the target's probability mass, so only top_k clusters' rows are scored per step.

`continuations` lets the target write the drafter's training data, `fit` trains the drafter (with
`labkit.fit`'s loop: AdamW, warm-up then cosine, resumable checkpoints), `agreement` the held-out check and
`logit_scale` a last calibration of the drafter's confidence for sampled drafting;
`07_train_a_drafter` trains a drafter live with them (`LiveRecipe`, a laptop's budget) and keeps
it with `save_run` in runs/07_train_a_drafter/, where its solutions find it (`load_run`) instead of
training it again; `scripts/train_drafter.py` trains the shipped one (with the centroid head's
clustering from pocketbuild/drafter.py).
Everything runs on the target's and drafter's device (put both on a GPU and token rows follow them;
rows returned by `continuations` are on the CPU). The drafter may train in float32 beside a half-precision
target: the target's view is cast to the drafter's dtype (`in_precision`).
Left out: mixed precision (autocast, loss scaling), multi-GPU, and training the target (pocketbuild/).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from labkit.fit import TrainConfig, device_of
from labkit.fit import fit as fit_loop
from labkit.paths import REPO_ROOT, RUNS_DIR  # noqa: F401  (distill.RUNS_DIR: 07 saves its runs there)


@dataclass(frozen=True)
class TargetView:
    """What the drafter sees of the target for a batch of sequences (computed without grad)."""

    embeds: torch.Tensor  # (B, T, target_hidden) scaled input embeddings of the tokens
    hidden: torch.Tensor  # (B, T, target_hidden) last hidden state (after the final norm)
    log_p: torch.Tensor  # (B, T, vocab) target's log-probabilities for the next token
    shared_kv: dict[str, tuple[torch.Tensor, torch.Tensor]]  # K/V, (B, kv_heads, T, head_dim)


@torch.no_grad()
def target_view(target: torch.nn.Module, x: torch.Tensor, **media: torch.Tensor) -> TargetView:
    """media: a multimodal target's pixel_values / input_features (...) for the soft tokens in x."""
    x = x.to(device_of(target))
    out = target(
        input_ids=x, use_cache=False, output_hidden_states=True, return_shared_kv_states=True, **media
    )
    return TargetView(
        embeds=target.get_input_embeddings()(x),
        hidden=out.hidden_states[-1],
        log_p=out.logits.float().log_softmax(-1),
        shared_kv=dict(out.shared_kv_states),
    )


class CachedViews:
    """Target views of fixed rows, computed once, for training that revisits its rows.

    A drafter's training data is a fixed set of rows seen many times over, and the target is
    frozen: keeping each row's last hidden state and shared K/V (the rest is recomputed per batch:
    embeddings by lookup, log-probabilities by one matmul) spares `fit` the target's forward pass on
    every step. `views[idx]` is the TargetView of rows idx, as `target_view` would compute it;
    `views.subset(idx)` a CachedViews of some of the rows, sharing the storage. Memory: T x
    (hidden + K/V widths) floats per row, ~4.2 GB for scripts/train_drafter.py's 10,240 rows.
    """

    def __init__(self, target: torch.nn.Module, rows: torch.Tensor, batch: int = 16, *, _parts=None):
        """target: a text target (Gemma4ForCausalLM); rows: (n, T) token ids. The views are kept on
        the target's device."""
        self.target, self.rows = target, rows.to(device_of(target))
        if _parts is not None:
            self.hidden, self.shared_kv, self.index = _parts
            return
        hidden, kv = [], {}
        with torch.no_grad():
            for i in range(0, len(rows), batch):
                out = target(input_ids=self.rows[i : i + batch], use_cache=False, output_hidden_states=True,
                             return_shared_kv_states=True)
                hidden.append(out.hidden_states[-1])
                for name, pair in out.shared_kv_states.items():
                    kv.setdefault(name, []).append(pair)
        self.hidden = torch.cat(hidden)
        self.shared_kv = {n: tuple(torch.cat(t) for t in zip(*pairs)) for n, pairs in kv.items()}
        self.index = torch.arange(len(rows))

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, idx: torch.Tensor) -> CachedViews:
        return CachedViews(self.target, self.rows, _parts=(self.hidden, self.shared_kv, self.index[idx]))

    @torch.no_grad()
    def __getitem__(self, idx: torch.Tensor) -> TargetView:
        at = self.index[idx].to(self.hidden.device)
        hidden = self.hidden[at]
        logits = self.target.lm_head(hidden)  # as Gemma4ForCausalLM.forward: the head, then the soft cap
        cap = self.target.config.get_text_config().final_logit_softcapping
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return TargetView(
            embeds=self.target.get_input_embeddings()(self.rows[at]),
            hidden=hidden,
            log_p=logits.float().log_softmax(-1),
            shared_kv={n: (k[at], v[at]) for n, (k, v) in self.shared_kv.items()},
        )


def in_precision(view: TargetView, dtype: torch.dtype) -> TargetView:
    """The target's view in the drafter's precision (log_p stays float32): a drafter trained in
    float32 beside a bfloat16 or float16 target (`07_train_a_drafter` on a GPU) reads the target's
    embeddings, hidden states and K/V cast up, since a matmul takes one dtype."""
    if view.hidden.dtype == dtype:
        return view
    return TargetView(embeds=view.embeds.to(dtype), hidden=view.hidden.to(dtype), log_p=view.log_p,
                      shared_kv={n: (k.to(dtype), v.to(dtype)) for n, (k, v) in view.shared_kv.items()})


def _masks(first: int, n_anchor: int, length: int, window: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Anchor a (positions first + 1 .. first + n_anchor) sees K/V of positions < a; the sliding
    layer only the last window + 1 of them, which is what the drafter's own sliding mask allows."""
    a = torch.arange(first + 1, first + n_anchor + 1, device=device)[:, None]  # (A, 1)
    i = torch.arange(length, device=device)[None, :]  # (1, T)
    full = i < a
    sliding = full & (i >= a - 1 - window)
    return {"full_attention": full[None, None], "sliding_attention": sliding[None, None]}


# Every anchor's output is needed, so say so. transformers 5.24's Gemma4TextModel otherwise takes its
# integer `logits_to_keep` (default 0) as leave to drop positions before the KV-shared layers, and
# in an assistant (every layer KV-shared, no per-layer embeddings) that step subscripts
# `per_layer_inputs`, which is None: a TypeError on any forward over more than one position
# (docs/transformers-5.24-assistant.md). A slice is never taken as that leave; older releases pass
# it on unused, so outputs are unchanged. tests/test_packaging.py has the canary for upstream's fix.
EVERY_POSITION = {"logits_to_keep": slice(None)}


def centroid_logits(drafter: torch.nn.Module, last: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """What the centroid head (`drafter.masked_embedding(last, weight)`) returns, computed cheaply.

    The head scores only the tokens of its top-k clusters and fills every other token with one below
    the lowest score of the whole batch. transformers gathers those rows of `weight` for every
    position first, (B, A, top_k x cluster size, hidden) floats: hundreds of MB for a batch of rows
    at every anchor, which made a held-out check four times slower than the full head. One matmul
    over the whole vocabulary and a mask give the same scores (same argmax, same fill); tests
    compare the two. last: (B, A, hidden); weight: (vocab, hidden); returns (B, A, vocab).
    """
    head = drafter.masked_embedding
    top = head.centroids(last).topk(head.centroid_intermediate_top_k, dim=-1).indices  # (B, A, top_k)
    cluster_of = torch.empty(head.vocab_size, dtype=torch.long, device=last.device)  # token -> its cluster
    members = head.token_ordering.long().view(head.num_centroids, -1)  # (clusters, tokens per cluster)
    cluster_of[members] = torch.arange(head.num_centroids, device=last.device)[:, None]
    chosen = torch.zeros(*top.shape[:-1], head.num_centroids, dtype=torch.bool, device=last.device)
    chosen.scatter_(-1, top, True)
    scored = chosen[..., cluster_of]  # (B, A, vocab): the token's cluster is among the top-k
    logits = last @ weight.T
    return logits.masked_fill(~scored, logits[scored].min().item() - 1.0)


def draft_steps(
    drafter: torch.nn.Module, view: TargetView, k: int, ordered: bool = False, first: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run k drafting steps from every anchor at once; return (logits, last_hidden) per step.

    logits: (B, A, vocab) from the full `lm_head` (or the centroid head when `ordered`),
    last_hidden: (B, A, drafter_hidden), A = T - k - first anchors: a = first + 1 .. T - k.
    `first` skips rounds that would start inside a prompt (at inference the first round starts
    at the prompt's last token), which saves their compute too.
    """
    view = in_precision(view, next(drafter.parameters()).dtype)
    B, T, _ = view.hidden.shape
    A = T - k - first
    device = view.hidden.device
    window = drafter.config.get_text_config().sliding_window
    masks = {n: m.expand(B, 1, A, T) for n, m in _masks(first, A, T, window, device).items()}
    positions = torch.arange(first + 1, first + A + 1, device=device).expand(B, A)
    hidden = view.hidden[:, first : first + A]  # hidden state at a - 1
    steps = []
    for j in range(1, k + 1):
        emb = view.embeds[:, first + j : first + j + A]  # token at a + j - 1: accepted drafts equal the target's
        inp = drafter.pre_projection(torch.cat([emb, hidden], dim=-1))
        last = drafter.model(
            inputs_embeds=inp,
            position_ids=positions,
            attention_mask=masks,
            shared_kv_states=view.shared_kv,
            use_cache=False,
            **EVERY_POSITION,
        ).last_hidden_state
        if ordered:
            logits = centroid_logits(drafter, last, drafter.lm_head.weight)
        else:
            logits = drafter.lm_head(last)
        steps.append((logits, last))
        hidden = drafter.post_projection(last)
    return steps


def distill_loss(
    drafter: torch.nn.Module, view: TargetView, k: int, weight: torch.Tensor | None = None, first: int = 0,
    hard: float = 0.0,
) -> tuple[torch.Tensor, list[float]]:
    """Mean KL(target || drafter) over steps, and the argmax agreement at each step.

    weight: (B, T), 1 where the target's next-token distribution is worth learning (for a
    captioning target: the answer, not the prompt or the padding). Step j from anchor a counts
    when both position a - 1 (where the round starts) and a + j - 1 (what it predicts) do.
    first: anchors start at first + 1 (see `draft_steps`).
    hard: weight of an added cross-entropy on the target's argmax. Greedy drafting is accepted only
    when the drafter's argmax is the target's; the KL alone spends a small drafter's capacity on
    the whole distribution, which only sampling uses.
    """
    A = view.hidden.shape[1] - k - first
    # The target's side of KL(p || q) = sum p log p - sum p log q, once for all k steps (positions
    # first + 1 .. first + A + k - 1): a step then costs one pass over the vocabulary, not four.
    log_p = view.log_p[:, first + 1 : first + A + k]
    p = log_p.exp()
    neg_entropy = (p * log_p).sum(-1)  # (B, A + k - 1)
    tops = log_p.argmax(-1)  # (B, A + k - 1)
    losses, agree = [], []
    for j, (logits, _) in enumerate(draft_steps(drafter, view, k, first=first), start=1):
        at = slice(j - 1, j - 1 + A)  # position a + j - 1 for anchors a = first + 1 ...
        log_q = logits.float().log_softmax(-1)
        kl = neg_entropy[:, at] - torch.linalg.vecdot(p[:, at], log_q)  # (B, A)
        top = tops[:, at]  # (B, A)
        if hard:
            kl = kl - hard * log_q.gather(-1, top[..., None])[..., 0]
        hit = (logits.argmax(-1) == top).float()
        w = torch.ones_like(kl) if weight is None else weight[:, first : first + A] * weight[:, first + j : first + j + A]
        n = w.sum().clamp(min=1)
        losses.append((kl * w).sum() / n)
        agree.append(float((hit * w).sum() / n))
    return torch.stack(losses).mean(), agree


@torch.no_grad()
def logit_scale(
    target: torch.nn.Module, drafter: torch.nn.Module, data: torch.Tensor, k: int, temperature: float,
    *, ordered: bool = False, first: int = 0, batch: int = 16, scales: torch.Tensor | None = None,
) -> tuple[float, dict[float, float]]:
    """The factor s on the drafter's logits (its `lm_head` rows) that drafts sampled text best.

    Sampling keeps a draft drawn from q with probability min(1, p/q), so a step's acceptance is
    sum(min(p, q)) over the vocabulary, at the sampling temperature: an overconfident q (sharpened by
    a cross-entropy on the target's argmax) loses acceptance that rescaling alone wins back, and a
    positive factor never moves an argmax, so greedy drafting is untouched. This is temperature
    scaling (Guo et al. 2017) for the speculative-sampling objective: for each s in `scales` it
    measures, on `data` (n, T), from every anchor after `first`, the expected accepted drafts of a
    round, the sum over steps j of the product of acceptances 1..j, and returns the best s with the
    table {s: expected accepted drafts}. Multiply `drafter.lm_head.weight` by s to apply it.
    """
    scales = torch.cat([torch.arange(0.5, 0.99, 0.05), torch.arange(1.0, 3.01, 0.1)]) if scales is None else scales
    weight = drafter.lm_head.weight
    total = torch.zeros(len(scales), dtype=torch.float64)
    count = 0
    for i in range(0, len(data), batch):
        view = target_view(target, data[i : i + batch])
        A = view.hidden.shape[1] - k - first
        lasts = [last for _, last in draft_steps(drafter, view, k, ordered, first)]
        ps = [(view.log_p[:, first + j : first + j + A] / temperature).softmax(-1) for j in range(1, k + 1)]
        for n, s in enumerate(scales.tolist()):
            run = torch.ones(view.hidden.shape[0], A, device=view.hidden.device)  # (B, A) chance that steps 1..j were all kept
            for last, p in zip(lasts, ps):
                logits = centroid_logits(drafter, last, s * weight) if ordered else last @ (s * weight).T
                q = (logits.float() / temperature).softmax(-1)
                run = run * torch.minimum(p, q).sum(-1)
                total[n] += run.sum().item()
        count += view.hidden.shape[0] * A
    table = {round(s, 4): round(float(t / count), 4) for s, t in zip(scales.tolist(), total)}
    return max(table, key=table.get), table


# ---------------------------------------------------------------- data, training loop, check


@torch.no_grad()
def continuations(
    target: torch.nn.Module, prompts: torch.Tensor, new_tokens: int, temperature: float = 0.0, seed: int = 0
) -> torch.Tensor:
    """(n, prompt_len + new_tokens): the target continues each row of `prompts` (n, prompt_len),
    greedy at temperature 0, else sampled (top-k off). A drafter serves both modes only if it is
    trained on both kinds of text."""
    torch.manual_seed(seed)
    sampling = temperature > 0
    prompts = prompts.to(device_of(target))
    return target.generate(
        prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new_tokens,
        min_new_tokens=new_tokens, do_sample=sampling, temperature=temperature if sampling else 1.0,
        # set, not None: None is filled in from a real checkpoint's sampling defaults (top_p 0.95)
        top_k=0 if sampling else 50, top_p=1.0, pad_token_id=target.config.pad_token_id,
    ).cpu()


def step_loss(
    drafter: torch.nn.Module, target: torch.nn.Module, data: torch.Tensor | CachedViews, *, k: int, batch: int,
    seed: int = 0, first: int = 0, hard: float = 0.0,
) -> Callable[[int], tuple[torch.Tensor, dict]]:
    """The loss of `fit`'s step `step` (from 0): `distill_loss` on `batch` random rows of `data`,
    drawn from (seed, step) alone, so a resumed run sees the rows an uninterrupted one would."""

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        g = torch.Generator().manual_seed(seed * 7919 + step)
        idx = torch.randint(0, len(data), (batch,), generator=g)
        view = data[idx] if isinstance(data, CachedViews) else target_view(target, data[idx])
        loss, agree = distill_loss(drafter, view, k, first=first, hard=hard)
        return loss, {"agree": agree}

    return loss_at


def fit(
    drafter: torch.nn.Module,
    target: torch.nn.Module,
    data: torch.Tensor | CachedViews,  # (n, T) token ids the target has read or written, or their views
    *,
    steps: int,
    k: int = 4,
    batch: int = 8,
    lr: float = 2e-3,
    warmup: int = 10,
    seed: int = 0,
    every: Callable[[int, float, list[float]], None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    first: int = 0,
    hard: float = 0.0,
) -> list[dict]:
    """Distil `drafter` towards the frozen `target` for `steps` steps on random rows of `data`, with
    `labkit.fit`'s loop (AdamW; warm-up, then cosine down to a tenth; gradients clipped at 1).

    Returns one record per step run by this call: {"step", "kl", "agree"} (agreement of the
    drafter's argmax with the target's at each of the k draft steps, on that batch).
    `every(step, kl, agree)` is called after each step (a progress bar, a live plot, a log).
    `checkpoint`: a file written every `checkpoint_every` steps and at the end; if it exists, the
    run resumes from it, and since each step's rows depend on (seed, step) only, a resumed run ends
    with the weights of an uninterrupted one. The centroid head is not trained here: draft with
    the full `lm_head` (`ordered=False`) or train it afterwards with `centroid_loss`.
    `first`: train only rounds from anchor first + 1 on (rows that are a prompt of `first` + 1
    tokens and the target's continuation: the rounds inference runs).
    `hard`: see `distill_loss` (the records' "kl" then includes that cross-entropy).
    `data` as CachedViews: the same rows and steps, without the target's forward pass per step.
    """
    if getattr(drafter, "masked_embedding", None) is not None:  # the centroid head: a later stage
        drafter.masked_embedding.requires_grad_(False)
    loss_at = step_loss(drafter, target, data, k=k, batch=batch, seed=seed, first=first, hard=hard)

    def after(record: dict) -> None:
        if every is not None:
            every(record["step"], record["loss"], record["agree"])

    cfg = TrainConfig(steps=steps, lr=lr, warmup=warmup, seed=seed, ckpt_every=checkpoint_every)
    history = fit_loop(drafter, cfg, loss_at, checkpoint=checkpoint, every=after)
    return [{"step": r["step"], "kl": r["loss"], "agree": r["agree"]} for r in history]


@torch.no_grad()
def agreement(target: torch.nn.Module, drafter: torch.nn.Module, data: torch.Tensor, k: int,
              ordered: bool = False, batch: int = 16, first: int = 0) -> list[float]:
    """Per draft step, how often the drafter's argmax equals the target's on `data` (n, T), from
    every anchor after `first`: the greedy acceptance odds of each step given that the earlier
    ones were right."""
    hits, total = torch.zeros(k), 0
    A = data.shape[1] - k - first
    for i in range(0, len(data), batch):
        view = target_view(target, data[i : i + batch])
        for j, (logits, _) in enumerate(draft_steps(drafter, view, k, ordered, first), start=1):
            hits[j - 1] += (logits.argmax(-1) == view.log_p[:, first + j : first + j + A].argmax(-1)).sum().item()
        total += view.log_p.shape[0] * A
    return [round(float(h / total), 4) for h in hits]


# ---------------------------------------------------------------- the chapter's live run, kept for its solutions


@dataclass(frozen=True)
class LiveRecipe:
    """What `07_train_a_drafter` trains live within a laptop's budget (its solutions train the same way).

    Good for 2 CPU cores: the whole chapter runs in under two minutes. Sized on the pocket pair
    (2026-12-06, one run each, same rows): 150 steps of 8 rows at lr 2e-3 (the chapter's recipe
    before) reached held-out agreement 0.29-0.33 per draft step and a greedy race tau of 1.35
    [1.26, 1.45]; these 100 steps of 4 rows at lr 3e-3, a third of the compute, 0.24-0.25 and 1.37
    [1.30, 1.45], against 1.00 untrained: the same story. The shipped drafter's recipes
    (pocketbuild/recipes.py) train on far more rows for far longer.
    """

    prompts: int = 16  # held-out prompts of each kind (prose, code) whose starts seed the training rows
    seed_tokens: int = 12  # tokens kept of each prompt (the shortest has 14); rounds start at the last
    new_tokens: int = 48  # tokens the target writes after each seed
    samples: int = 3  # sampled continuations per seed, besides the greedy one
    temperature: float = 0.8  # of the sampled continuations
    k: int = 4  # draft steps trained per round
    steps: int = 100  # AdamW steps
    batch: int = 4  # rows per step
    lr: float = 3e-3  # peak learning rate (warm-up, then cosine down to a tenth)
    warmup: int = 10  # warm-up steps
    seed: int = 0  # torch.manual_seed before the fresh drafter is built; fit draws its rows from it too

    @property
    def first(self) -> int:
        """The anchor before the first trained round: a seed's last token, where inference starts."""
        return self.seed_tokens - 1

    def fit(self, drafter: torch.nn.Module, target: torch.nn.Module, data: torch.Tensor | CachedViews,
            k: int | None = None, **kw) -> list[dict]:
        """`fit` with this recipe's steps, batch, schedule, seed and rounds (k: this recipe's unless given)."""
        return fit(drafter, target, data, steps=self.steps, k=self.k if k is None else k, batch=self.batch,
                   lr=self.lr, warmup=self.warmup, seed=self.seed, first=self.first, **kw)



def run_folder(pair) -> Path:
    """Where `07_train_a_drafter` keeps its run on `pair` (anything with `label` and `is_pocket`):
    runs/07_train_a_drafter/ for the pocket pair, where the solutions read it, and a folder named
    after any other pair below it, so a run on another pair never overwrites the pocket pair's."""
    folder = RUNS_DIR / "07_train_a_drafter"
    return folder if pair.is_pocket else folder / re.sub(r"[^\w.-]+", "--", pair.label).strip("-")


def fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: a saved run matches only the target it was trained on."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _identity(recipe: LiveRecipe, target: torch.nn.Module, drafter: torch.nn.Module) -> dict:
    """Everything a live run's result depends on, as JSON would store it."""
    facts = {**asdict(recipe), "target": fingerprint(target), "drafter_config": drafter.config.to_dict()}
    return json.loads(json.dumps(facts, default=str))


def _shown(folder: Path) -> str:
    folder = Path(folder).resolve()
    return str(folder.relative_to(REPO_ROOT)) if folder.is_relative_to(REPO_ROOT) else str(folder)


def save_run(folder: str | Path, drafter: torch.nn.Module, target: torch.nn.Module, recipe: LiveRecipe,
             **tensors: torch.Tensor) -> Path:
    """Keep a trained drafter with its recipe and the tensors a later notebook needs (the training
    rows) in `folder`/drafter.pt (recipe.json beside it, for reading); returns the file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    identity = _identity(recipe, target, drafter)
    path, tmp = folder / "drafter.pt", folder / "drafter.tmp"
    state = {k: v.detach().cpu() for k, v in drafter.state_dict().items()}
    torch.save({"recipe": identity, "drafter": state, "tensors": {k: v.cpu() for k, v in tensors.items()}}, tmp)
    os.replace(tmp, path)  # a kill mid-save never leaves a broken file
    (folder / "recipe.json").write_text(json.dumps(identity, indent=1) + "\n")
    return path


def load_run(folder: str | Path, drafter: torch.nn.Module, target: torch.nn.Module,
             recipe: LiveRecipe) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Load a run `save_run` kept into `drafter` (built with the run's configuration, untrained) when
    it was trained with this recipe on this target; returns (its tensors, what happened), or
    (None, why not) and leaves `drafter` untouched."""
    path = Path(folder) / "drafter.pt"
    if not path.exists():
        return None, f"no saved run in {_shown(folder)}/"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        differ = sorted(key for key, value in _identity(recipe, target, drafter).items()
                        if saved["recipe"].get(key) != value)
    except Exception as err:  # noqa: BLE001 - a broken or foreign file is a reason to train, not to stop
        return None, f"{_shown(path)} could not be read ({type(err).__name__})"
    if differ:
        return None, f"the run saved in {_shown(folder)}/ has another recipe ({', '.join(differ)} differ)"
    drafter.load_state_dict(saved["drafter"])
    return saved["tensors"], f"loaded the drafter trained by the same recipe from {_shown(path)}"
