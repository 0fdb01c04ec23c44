"""What the shipped drafters need beyond labkit.distill: their training rows and their centroid head
(scripts/train_drafter.py).

The target writes the rows: `make_data` continues training-text prompts greedily and sampled, and
mixes in untouched text; `short_rows` and `calib_rows` add continuations of short prompts and fresh
samples for the calibration. Gemma 4's E2B/E4B assistants score only the vocabulary rows of their
top clusters: `balanced_clusters` groups the rows into equal clusters by their output embeddings,
`centroid_loss` trains the small layer that picks the clusters holding the target's probability
mass. Notebook 07 trains a drafter without this head, so it lives here, not in labkit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit import distill
from labkit.distill import TargetView, draft_steps
from pocketbuild.corpus import random_windows
from pocketbuild.recipes.drafter import DrafterRecipe


def balanced_clusters(weight: torch.Tensor, n_clusters: int, iters: int = 8, seed: int = 0) -> torch.Tensor:
    """Group vocabulary rows into n_clusters equal clusters (greedy balanced k-means).

    weight: (vocab, hidden). Returns token_ordering (vocab,): cluster c owns the ids in
    token_ordering[c * size : (c + 1) * size], the layout Gemma4AssistantMaskedEmbedder reads.
    """
    vocab = weight.shape[0]
    size = vocab // n_clusters
    if size * n_clusters != vocab:
        raise ValueError(f"vocabulary {vocab} must split into {n_clusters} equal clusters")
    w = F.normalize(weight.detach().float().cpu(), dim=-1)
    g = torch.Generator().manual_seed(seed)
    centers = w[torch.randperm(vocab, generator=g)[:n_clusters]].clone()
    for _ in range(iters):
        score = w @ centers.T  # (vocab, n_clusters)
        assign = torch.full((vocab,), -1, dtype=torch.long)
        room = torch.full((n_clusters,), size)
        # Most confident (token, cluster) pairs first; a full cluster takes no more tokens.
        for flat in score.flatten().argsort(descending=True).tolist():
            t, c = divmod(flat, n_clusters)
            if assign[t] < 0 and room[c] > 0:
                assign[t] = c
                room[c] -= 1
        centers = F.normalize(torch.stack([w[assign == c].mean(0) for c in range(n_clusters)]), dim=-1)
    return torch.cat([(assign == c).nonzero().flatten() for c in range(n_clusters)])


def centroid_loss(drafter: torch.nn.Module, view: TargetView, k: int) -> tuple[torch.Tensor, float]:
    """Train the centroid head to put the target's probability mass in its top clusters.

    Returns the loss and the coverage: the share of the target's probability that falls in the
    top_k clusters the head would pick.
    """
    emb = drafter.masked_embedding
    A = view.hidden.shape[1] - k
    ordering = emb.token_ordering.long()
    cluster_of = torch.empty_like(ordering)
    cluster_of[ordering] = torch.arange(ordering.numel(), device=ordering.device) // emb.vocab_size_per_centroid
    losses, covered = [], []
    with torch.no_grad():
        lasts = [last for _, last in draft_steps(drafter, view, k)]
    for j, last in enumerate(lasts, start=1):
        p = view.log_p[:, j : j + A].exp()  # (B, A, vocab)
        mass = torch.zeros(*p.shape[:2], emb.num_centroids, device=p.device)
        mass.index_add_(2, cluster_of, p)  # (B, A, clusters)
        c_logits = emb.centroids(last)
        losses.append(-(mass * c_logits.log_softmax(-1)).sum(-1).mean())
        top = c_logits.topk(emb.centroid_intermediate_top_k, dim=-1).indices
        covered.append(float(mass.gather(-1, top).sum(-1).mean()))
    return torch.stack(losses).mean(), sum(covered) / len(covered)


# ---------------------------------------------------------------- the training rows


def row_mode(i: int, recipe: DrafterRecipe) -> str:
    """How row i of `make_data` was written: batches alternate prose and code, pairs of batches
    cycle through greedy, sampled and plain text."""
    return ("greedy", "sample", "text")[(i // (2 * recipe.gen_batch)) % 3]


def bos_prompts(target, stream, n: int, length: int, g: torch.Generator) -> torch.Tensor:
    """(n, length): random windows of a training stream, each starting with <bos> as the lab's prompts do."""
    prompts = random_windows(stream, n, length - 1, g)
    prompts[:, 0] = target.config.bos_token_id
    return prompts


def make_data(target, streams, recipe: DrafterRecipe, split: str, n: int, seed: int, start: int = 0) -> torch.Tensor:
    """(n - start, prompt_len + new_tokens) token ids: rows start..n-1 of target continuations and plain
    training text (start > 0 extends rows already written; a multiple of gen_batch)."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed + start)
    length = recipe.prompt_len + recipe.new_tokens
    rows = []
    for i in tqdm(range(start, n, recipe.gen_batch), desc=f"{split} data"):
        m = min(recipe.gen_batch, n - i)
        stream = streams[("prose" if (i // recipe.gen_batch) % 2 == 0 else "code") + f"_{split}"]
        mode = row_mode(i, recipe)
        if mode == "text":
            rows.append(random_windows(stream, m, length - 1, g))
            continue
        prompts = bos_prompts(target, stream, m, recipe.prompt_len, g)
        rows.append(distill.continuations(target, prompts, recipe.new_tokens, 0.8 if mode == "sample" else 0.0,
                                          seed=seed + i)[:, :length])
    return torch.cat(rows)


def short_rows(target, streams, recipe: DrafterRecipe, seed: int) -> torch.Tensor:
    """(short_prompts, prompt_len + new_tokens): the target's greedy continuations of training-text
    prompts of short_prompt_len tokens from <bos>, half prose then half code."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    new_tokens = recipe.prompt_len + recipe.new_tokens - recipe.short_prompt_len
    rows = []
    for kind in ("prose", "code"):
        for _ in tqdm(range(0, recipe.short_prompts // 2, recipe.gen_batch), desc=f"short {kind} prompts"):
            prompts = bos_prompts(target, streams[f"{kind}_train"], recipe.gen_batch, recipe.short_prompt_len, g)
            rows.append(distill.continuations(target, prompts, new_tokens))
    return torch.cat(rows)


def calib_rows(target, streams, recipe: DrafterRecipe, seed: int) -> torch.Tensor:
    """(calib_prompts, prompt_len + new_tokens): the target's continuations of training-text prompts
    sampled at calib_temperature, half prose then half code (fresh samples, not training rows)."""
    g = torch.Generator().manual_seed(seed)
    half = recipe.calib_prompts // 2
    return torch.cat([distill.continuations(target, bos_prompts(target, streams[f"{kind}_train"], half,
                                                                recipe.prompt_len, g),
                                            recipe.new_tokens, recipe.calib_temperature, seed=seed + n)
                      for n, kind in enumerate(("prose", "code"))])
