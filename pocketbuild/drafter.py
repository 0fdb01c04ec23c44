"""The shipped drafters' centroid head, built after distillation (scripts/train_drafter.py).

Gemma 4's E2B/E4B assistants score only the vocabulary rows of their top clusters. `balanced_clusters`
groups the rows into equal clusters by their output embeddings; `centroid_loss` trains the small
layer that picks the clusters holding the target's probability mass. Notebook 07 trains a drafter
without this head, so it lives here, not in labkit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit.distill import TargetView, draft_steps


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
