"""Losses and evaluation of a causal LM in training: next-token cross-entropy, bits per byte, and
the sequence-level unlikelihood of the model's own greedy loops.

Validation reports nats per token and bits per byte; only bits per byte compares across
tokenizers (a tokenizer with longer tokens has higher nats per token for the same model quality).
`sequence_unlikelihood` is the loss of the pocket target's last stage: a small model trained by
maximum likelihood alone writes greedy loops, and this pushes down the tokens it repeated.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from labkit.fit import device_of


def lm_loss(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of windows (B, T+1)."""
    windows = windows.to(device_of(model))
    logits = model(input_ids=windows[:, :-1], use_cache=False).logits  # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())


@torch.no_grad()
def evaluate(model: torch.nn.Module, windows: torch.Tensor, byte_lengths: torch.Tensor,
             batch: int = 16) -> dict[str, float]:
    """nats/token and bits/byte: bpb = total nats / ln 2 / total UTF-8 bytes of predicted tokens."""
    was_training = model.training
    model.eval()
    nats, tokens, nbytes = 0.0, 0, 0
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch]
        nbytes += int(byte_lengths[w[:, 1:]].sum())
        w = w.to(device_of(model))
        logits = model(input_ids=w[:, :-1], use_cache=False).logits
        nats += F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
        tokens += w[:, 1:].numel()
    model.train(was_training)
    return {"nats_per_token": nats / tokens, "bpb": nats / math.log(2) / nbytes,
            "tokens": tokens, "bytes": nbytes}


# ---------------------------------------------------------------- unlikelihood against loops


def repeated_ngrams(tokens: torch.Tensor, n: int = 4) -> torch.Tensor:
    """(B, L) bool: True on every token of an n-gram that already occurred earlier in its row.

    These are the tokens of a loop: in `a b c d a b c d` the second `a b c d` is marked."""
    mask = torch.zeros(tokens.shape, dtype=torch.bool)
    for b, row in enumerate(tokens.tolist()):
        seen: set[tuple[int, ...]] = set()
        for i in range(len(row) - n + 1):
            gram = tuple(row[i : i + n])
            if gram in seen:
                mask[b, i : i + n] = True
            seen.add(gram)
    return mask


def unlikelihood_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of -log(1 - p(token)) over the masked tokens (Welleck et al. 2019): large only where
    the model was sure of a token it should not have repeated. logits (B, L, vocab) predict tokens (B, L)."""
    p = logits.float().softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return -(torch.log1p(-p.clamp(max=1 - 1e-5)) * mask).sum() / mask.sum().clamp(min=1)


def sequence_unlikelihood(model: torch.nn.Module, prefixes: torch.Tensor, new_tokens: int,
                          n: int = 4) -> tuple[torch.Tensor, float]:
    """The model continues `prefixes` (B, P) greedily, as it will for a learner; the loss is the
    unlikelihood of its repeated n-grams. Returns (loss, share of continuation tokens repeated).

    Sequence-level, not token-level: maximum likelihood on human text never shows the model its
    own loops, which appear only once it feeds on its own output."""
    was_training = model.training
    model.eval()
    prefixes = prefixes.to(device_of(model))
    with torch.no_grad():
        seq = model.generate(prefixes, attention_mask=torch.ones_like(prefixes), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=model.config.pad_token_id)
    model.train(was_training)
    p = prefixes.shape[1]
    cont = seq[:, p:]  # (B, new_tokens)
    mask = repeated_ngrams(cont.cpu(), n).to(cont.device)
    logits = model(input_ids=seq[:, :-1], use_cache=False).logits[:, p - 1 :]  # predicts cont
    return unlikelihood_loss(logits, cont, mask), mask.float().mean().item()
