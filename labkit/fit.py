"""One resumable training loop: AdamW, warm-up then cosine, gradient clipping, atomic checkpoints.

`07_train_a_drafter` runs it through `distill.fit`; the pocket build (`pocketbuild/`) trains the
pocket target, the multimodal towers and target, and the shipped drafters with it too.
A step is a function of its number alone: `loss_at(step)` draws its batch from a generator seeded
by the step, so a run killed and resumed from its checkpoint ends with the weights of an
uninterrupted one. What to log, evaluate or draw after a step is the caller's `every(record)`.
Everything runs on the model's device; checkpoints are written from and read to the CPU.
Left out: mixed precision, gradient accumulation, distributed training.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000  # optimizer steps in total (the cosine schedule ends here)
    batch: int = 16  # sequences per step
    seq_len: int = 256  # tokens per sequence (the model sees seq_len, predicts seq_len)
    lr: float = 2e-3  # peak learning rate; high because the models are tiny
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio, not to 0 (1.0: constant after warm-up)
    warmup: int = 100  # linear warm-up steps: Adam's moment estimates are noisy at first
    weight_decay: float = 0.1  # on matrices only, never on norms
    beta1: float = 0.9
    beta2: float = 0.95  # shorter memory than 0.999: steadier for small-batch training
    grad_clip: float = 1.0  # global grad-norm clip: guards against rare loss spikes
    eval_every: int = 200  # steps between validation passes (for callers that evaluate)
    eval_windows: int = 32  # windows per val set during training (the final pass can use all)
    ckpt_every: int = 100  # steps between checkpoints (a checkpoint takes well under a second)
    log_every: int = 10  # steps between train lines in a run's log
    threads: int = 2  # torch.set_num_threads: one per physical core is fastest
    seed: int = 0


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a model's weights are: inputs are moved there."""
    return next(model.parameters()).device


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on matrices (embeddings included)
    but not on norm weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' linear warm-up to lr, then cosine down to lr * min_lr_ratio at the last step."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup_lr_rate

    return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer, num_warmup_steps=cfg.warmup, num_training_steps=cfg.steps, min_lr_rate=cfg.min_lr_ratio)


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, cfg: TrainConfig) -> None:
    """Write to a temporary file, then rename: a kill mid-save never leaves a broken checkpoint."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "step": step, "config": asdict(cfg),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                     "python": random.getstate()}}
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> int:
    """Restore weights, optimizer, schedule and random states; returns the steps already done."""
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: trusted
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if "rng" in state:
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
    return state["step"]


Loss = Callable[[int], tuple[torch.Tensor, dict]]  # step -> (loss, what to log beside it)


def fit(
    model: torch.nn.Module,
    cfg: TrainConfig,
    loss_at: Loss,
    *,
    checkpoint: str | Path | None = None,
    then: Loss | None = None,
    start: Callable[[int], None] | None = None,
    every: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train the trainable parameters of `model` until cfg.steps; one record per step run here.

    Each step: `loss_at(step)`, backward, clip the global gradient norm, an AdamW step, then the
    schedule's. `then(step)`, if given, makes a second update on its loss alone (the pocket
    target's unlikelihood phase: summed with the first loss under one clipped update, it cost the
    target more bits per byte than as an update of its own). A record is {"step" (1-based),
    "loss", "grad_norm", "lr", **info}; `start(done)` sees the steps already done (0 unless resumed)
    before the first step, `every(record)` sees each record after its step.
    `checkpoint`: resumed from if it exists; written every cfg.ckpt_every steps and at the end.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, done = make_optimizer(model, cfg), 0
    scheduler = make_schedule(optimizer, cfg)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        done = load_checkpoint(checkpoint, model, optimizer, scheduler)
    if start is not None:
        start(done)

    def update(loss: torch.Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip).item()
        optimizer.step()
        return norm

    was_training = model.training
    model.train()
    history = []
    for step in range(done, cfg.steps):
        loss, info = loss_at(step)
        grad_norm = update(loss)
        if then is not None:
            second, more = then(step)
            update(second)
            info = {**info, **more}
        scheduler.step()
        record = {"step": step + 1, "loss": loss.item(), "grad_norm": grad_norm,
                  "lr": scheduler.get_last_lr()[0], **info}
        history.append(record)
        if checkpoint is not None and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == cfg.steps):
            save_checkpoint(checkpoint, model, optimizer, scheduler, step + 1, cfg)
        if every is not None:
            every(record)
    model.train(was_training)
    return history
