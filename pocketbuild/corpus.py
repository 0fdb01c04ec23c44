"""The pocket target's corpus as token streams: cached tokenization, random and evaluation windows,
and the UTF-8 bytes each token stands for (for bits per byte).

Used by `scripts/train_target.py` and `scripts/train_drafter.py`. Streams and windows stay on the CPU.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch


def bytes_per_token_table(tokenizer) -> torch.Tensor:
    """UTF-8 bytes each token id stands for (0 for special tokens); used for bits per byte.

    In a byte-level BPE every character of a token's string is one mapped byte, so a token's
    byte count is simply its string length.
    """
    special = set(tokenizer.all_special_ids)
    table = torch.zeros(len(tokenizer), dtype=torch.long)
    for token, i in tokenizer.get_vocab().items():
        table[i] = 0 if i in special else len(token)
    return table


def tokenize_jsonl(path: str | Path, tokenizer, cache: str | Path | None = None) -> np.ndarray:
    """All documents of a `{"text"}` jsonl file as one token stream: <bos> doc <eos> <bos> doc ...

    The stream is cached as uint16 (the vocabulary fits) under a key of the tokenizer and of the
    file's bytes, so the second run loads in milliseconds and neither a new tokenizer nor a new
    corpus ever reuses stale tokens.
    """
    h = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode())
    h.update(Path(path).read_bytes())
    key = h.hexdigest()[:12]
    cache = Path(f"{cache}.{key}.npy") if cache is not None else None
    if cache is not None and cache.exists():
        return np.load(cache)
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    ids: list[int] = []
    # split_special_tokens: a literal "<eos>" inside source code is text, not end of document
    for enc in tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]:
        ids += [tokenizer.bos_token_id, *enc, tokenizer.eos_token_id]
    stream = np.array(ids, dtype=np.uint16)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, stream)
    return stream


def random_windows(stream: np.ndarray, n: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
    """n random windows of seq_len + 1 tokens (inputs are [:-1], labels [1:])."""
    starts = torch.randint(0, len(stream) - seq_len - 1, (n,), generator=g).tolist()
    return torch.from_numpy(np.stack([stream[s : s + seq_len + 1] for s in starts]).astype(np.int64))


def eval_windows(stream: np.ndarray, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows over the whole stream, evenly spaced when capped: deterministic."""
    n = (len(stream) - 1) // seq_len
    picks = range(n) if max_windows is None or max_windows >= n else \
        [i * n // max_windows for i in range(max_windows)]
    return torch.from_numpy(np.stack([stream[i * seq_len : i * seq_len + seq_len + 1] for i in picks])
                            .astype(np.int64))
