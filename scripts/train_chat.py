"""Fine-tune the pocket pair into the pocket chat pair: Gemma 4's turns, thinking on request.

    OMP_NUM_THREADS=1 nohup .venv/bin/python scripts/train_chat.py target > runs/pocket-chat/target.log 2>&1 &
    OMP_NUM_THREADS=1 nohup .venv/bin/python scripts/train_chat.py drafter > runs/pocket-chat/drafter.log 2>&1 &
    .venv/bin/python scripts/measure_chat.py --card --install   # the bars; weights go to data/pocket-chat/ if all pass
    .venv/bin/python scripts/train_chat.py target --device cuda --steps 6000 --out runs/pc-gpu   # on a GPU

The shipped pair took two target stages (its card, data/pocket-chat/MODEL_CARD.md, has both runs'
figures, rendered from their records): stage 1 is the defaults above; stage 2 continued from its
weights on fresh dialogues, and the drafter was distilled from stage 1's drafter:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_chat.py target --init runs/pocket-chat/target/final \
        --seed 1 --steps 1000 --lr 6e-4 --warmup 20 --out runs/pocket-chat2
    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_chat.py drafter --init runs/pocket-chat/drafter/final \
        --seed 1 --out runs/pocket-chat2
    .venv/bin/python scripts/measure_chat.py --target runs/pocket-chat2/target/final \
        --drafter runs/pocket-chat2/drafter/final --runs runs/pocket-chat2 --earlier runs/pocket-chat --card --install

`target`: full fine-tune of data/pocket/target on synthetic dialogues (pocketbuild/chat.py): AdamW,
warm-up then cosine, bf16 autocast on the CPU, loss on the model's turns only (thought, answer,
<turn|>); batches are dialogues of similar length padded to the longest, about `tokens` tokens per
step. Half the dialogues have thinking on. Writes runs/pocket-chat/target/{target.pt,final/,record.json}.
`drafter`: data/pocket/drafter distilled against the new target on the same dialogues (labkit.distill,
as scripts/train_drafter.py does), its centroid head refitted (pocketbuild.drafter). Writes
runs/pocket-chat/drafter/{final/,record.json}.
Every stage checkpoints every `ckpt_every` steps and resumes where it stopped.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.fit import TrainConfig  # noqa: E402
from pocketbuild import chat  # noqa: E402
from pocketbuild.runs import Run  # noqa: E402

OUT = REPO / "runs" / "pocket-chat"
TOKENIZER = REPO / "data" / "pocket-chat" / "tokenizer"
POCKET = REPO / "data" / "pocket"
EOS_IDS = [6, 1]  # <turn|> ends a model turn; <eos> too


def tokenizer():
    from transformers import AutoTokenizer

    if not (TOKENIZER / "tokenizer.json").exists():
        chat.make_tokenizer(POCKET / "tokenizer", TOKENIZER)
    return AutoTokenizer.from_pretrained(TOKENIZER)


def encoded(tok, n: int, seed: int, split: str, path: Path | None = None) -> list[tuple[list[int], int, bool]]:
    """(ids, prompt length, thinking) for `n` dialogues; thinking on for a random half."""
    if path is not None and path.exists():
        return torch.load(path)
    rng = random.Random(seed + 7)
    rows = []
    for d in chat.dialogues(n, seed, split):
        thinking = rng.random() < 0.5
        ids, p = chat.encode(tok, d, thinking)
        rows.append((ids, p, thinking))
    if path is not None:
        torch.save(rows, path)
    return rows


def batches(rows, tokens: int, seed: int, max_len: int = 320) -> list[list[int]]:
    """Row indices per step: shuffled, then sorted by length within chunks of 400 rows, cut into
    batches of about `tokens` tokens (rows x longest row), shuffled again."""
    rng = random.Random(seed)
    order = [i for i in range(len(rows)) if len(rows[i][0]) <= max_len]
    rng.shuffle(order)
    out = []
    for c in range(0, len(order), 400):
        chunk = sorted(order[c:c + 400], key=lambda i: len(rows[i][0]))
        cur: list[int] = []
        for i in chunk:
            if cur and (len(cur) + 1) * len(rows[i][0]) > tokens:
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def collate(rows, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input ids (right-padded with <pad>), attention mask, labels (-100 outside the model's turn)."""
    n = max(len(rows[i][0]) for i in idx)
    ids = torch.zeros(len(idx), n, dtype=torch.long)
    mask = torch.zeros(len(idx), n, dtype=torch.long)
    labels = torch.full((len(idx), n), -100, dtype=torch.long)
    for r, i in enumerate(idx):
        seq, p, _ = rows[i]
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        labels[r, p:len(seq)] = torch.tensor(seq[p:])
    return ids, mask, labels


def model_turn_loss(model, rows, idx, autocast: bool = True) -> tuple[torch.Tensor, float]:
    """Mean cross-entropy over the model-turn tokens, and the share of them predicted right."""
    device = next(model.parameters()).device
    ids, mask, labels = (t.to(device) for t in collate(rows, idx))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids, attention_mask=mask).logits
    logits, target = logits[:, :-1].float(), labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                             ignore_index=-100)
    keep = target != -100
    acc = (logits.argmax(-1)[keep] == target[keep]).float().mean().item()
    return loss, acc


def train_target(a) -> None:
    from transformers import Gemma4ForCausalLM

    out = a.out / "target"
    out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    t0 = time.time()
    rows = encoded(tok, a.dialogues, a.seed, "train", out / "data.pt")
    val = encoded(tok, 96, a.seed + 1, "eval")
    plan = batches(rows, a.tokens, a.seed)
    print(f"{len(rows)} dialogues ({time.time() - t0:.0f} s), {len(plan)} batches of ~{a.tokens} tokens", flush=True)
    model = Gemma4ForCausalLM.from_pretrained(a.init, dtype=torch.float32).to(a.device)
    cfg = TrainConfig(steps=a.steps, batch=0, seq_len=a.tokens, lr=a.lr, warmup=a.warmup, min_lr_ratio=0.1,
                      weight_decay=0.01, eval_every=a.eval_every, ckpt_every=a.ckpt_every, log_every=10,
                      threads=1, seed=a.seed)
    run = Run(out, "scripts/train_chat.py target", "chat", cfg, init=str(a.init.relative_to(REPO)),
              dialogues=len(rows), batches=len(plan), tokens_per_step=a.tokens, autocast=f"bfloat16 ({a.device})",
              params=sum(p.numel() for p in model.parameters()))

    def loss_at(step: int):
        loss, acc = model_turn_loss(model, rows, plan[step % len(plan)])
        return loss, {"token_acc": acc}

    @torch.no_grad()
    def evaluate() -> dict:
        model.eval()
        losses, accs = [], []
        for i in range(0, len(val), 16):
            loss, acc = model_turn_loss(model, val, list(range(i, min(i + 16, len(val)))), autocast=False)
            losses.append(loss.item())
            accs.append(acc)
        model.train()
        return {"val_loss": sum(losses) / len(losses), "val_token_acc": sum(accs) / len(accs)}

    run.stage("target", model, cfg, loss_at, evaluate=evaluate)
    save_target(model, out / "final")
    run.save(final=str((out / "final").relative_to(REPO)))


def save_target(model, folder: Path) -> None:
    model = model.to(torch.bfloat16)
    model.config.eos_token_id = EOS_IDS
    model.generation_config.eos_token_id = EOS_IDS
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    model.float()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["target", "drafter"])
    p.add_argument("--steps", type=int, default=None, help="target 1330, drafter 120")
    p.add_argument("--tokens", type=int, default=2048, help="tokens per step (rows x longest row)")
    p.add_argument("--lr", type=float, default=None, help="target 1e-3, drafter 5e-4")
    p.add_argument("--warmup", type=int, default=None, help="target 30, drafter 10")
    p.add_argument("--dialogues", type=int, default=36000)
    p.add_argument("--eval-every", type=int, default=None, help="target 100, drafter 1000 (start and end only)")
    p.add_argument("--ckpt-every", type=int, default=None, help="target 40, drafter 20")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    p.add_argument("--target", type=Path, default=None, help="drafter: the target (default <out>/target/final)")
    p.add_argument("--rows", type=int, default=512, help="drafter: packed rows of dialogues")
    p.add_argument("--row-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=8, help="drafter: rows per step")
    p.add_argument("--k", type=int, default=4, help="drafter: steps trained per anchor")
    p.add_argument("--hard", type=float, default=1.0, help="drafter: weight of the argmax cross-entropy")
    p.add_argument("--centroid-steps", type=int, default=40)
    a = p.parse_args()
    defaults = {"target": dict(steps=1330, lr=1e-3, warmup=30, eval_every=100, ckpt_every=40),
                "drafter": dict(steps=120, lr=5e-4, warmup=10, eval_every=1000, ckpt_every=20)}[a.stage]
    for name, value in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, value)
    a.out = a.out.resolve()
    a.init = a.init.resolve() if a.init else None
    a.target = a.target.resolve() if a.target else None
    torch.set_num_threads(a.threads)
    if a.stage == "target":
        a.init = a.init or POCKET / "target"
        train_target(a)
    else:
        train_drafter(a)


def packed_rows(rows, n: int, length: int, seed: int) -> torch.Tensor:
    """(n, length): whole dialogues (each from its own <bos>) laid end to end, the last one cut."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        row: list[int] = []
        while len(row) < length:
            row += rows[rng.randrange(len(rows))][0]
        out.append(row[:length])
    return torch.tensor(out)


def train_drafter(a) -> None:
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    from labkit import distill
    from pocketbuild.drafter import balanced_clusters, centroid_loss

    out = a.out / "drafter"
    out.mkdir(parents=True, exist_ok=True)
    target_dir = a.target or a.out / "target" / "final"
    tok = tokenizer()
    rows = encoded(tok, a.dialogues, a.seed, "train", a.out / "target" / "data.pt")
    val = encoded(tok, 96, a.seed + 1, "eval")
    target = Gemma4ForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval().requires_grad_(False).to(a.device)
    init = a.init or POCKET / "drafter"
    drafter = Gemma4AssistantForCausalLM.from_pretrained(init, dtype=torch.float32).to(a.device)
    data = packed_rows(rows, a.rows, a.row_len, a.seed + 11)
    val_rows = packed_rows(val, 32, a.row_len, a.seed + 12)
    t0 = time.time()
    views = distill.CachedViews(target, data, batch=32)
    print(f"target views of {len(data)} rows x {a.row_len}: {time.time() - t0:.0f} s", flush=True)
    cfg = TrainConfig(steps=a.steps, batch=a.batch, seq_len=a.row_len, lr=a.lr, warmup=a.warmup, seed=a.seed,
                      ckpt_every=a.ckpt_every, eval_every=a.eval_every, threads=1)
    run = Run(out, "scripts/train_chat.py drafter", "chat", cfg, init=str(init.relative_to(REPO)),
              target=str(Path(target_dir).relative_to(REPO)), rows=len(data), row_len=a.row_len, k=a.k,
              hard=a.hard, params=sum(p.numel() for p in drafter.parameters()))
    drafter.masked_embedding.requires_grad_(False)  # the centroid head: after distillation
    loss_at = distill.step_loss(drafter, target, views, k=a.k, batch=a.batch, seed=a.seed, hard=a.hard)

    def evaluate() -> dict:
        drafter.eval()
        agree = distill.agreement(target, drafter, val_rows, a.k)
        drafter.train()
        return {"val_agreement": agree}

    run.stage("distil", drafter, cfg, loss_at, evaluate=evaluate)
    drafter.eval()
    # the centroid head: clusters from the (changed) output embeddings, then the small layer alone
    emb = drafter.masked_embedding
    with torch.no_grad():
        emb.token_ordering.copy_(balanced_clusters(drafter.lm_head.weight, emb.num_centroids))
    drafter.requires_grad_(False)
    emb.centroids.requires_grad_(True)

    def centroid_at(step: int):
        g = torch.Generator().manual_seed(a.seed * 104729 + step)
        loss, coverage = centroid_loss(drafter, views[torch.randint(0, len(views), (a.batch,), generator=g)], a.k)
        return loss, {"coverage": coverage}

    ccfg = TrainConfig(steps=a.centroid_steps, lr=1e-2, warmup=0, min_lr_ratio=1.0, weight_decay=0.01,
                       beta2=0.999, grad_clip=float("inf"), seed=a.seed, ckpt_every=50, threads=1)
    run.stage("centroids", drafter, ccfg, centroid_at)
    drafter.eval()
    run.save(agreement_full_head=distill.agreement(target, drafter, val_rows, a.k),
             agreement_centroid_head=distill.agreement(target, drafter, val_rows, a.k, ordered=True))
    drafter = drafter.to(torch.bfloat16)
    drafter.generation_config.eos_token_id = EOS_IDS
    drafter.save_pretrained(out / "final")
    run.save(final=str((out / "final").relative_to(REPO)))
    print("agreement", run.record["agreement_full_head"], run.record["agreement_centroid_head"], flush=True)


if __name__ == "__main__":
    main()
