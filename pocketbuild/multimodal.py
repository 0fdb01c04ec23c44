"""The pocket multimodal pair's processor, training steps and held-out measurement (scripts/train_multimodal.py).

Samples come from `labkit.synthetic` (pictures of two coloured shapes, sequences of beeps) and are
encoded by the pair's processor (`labkit.media`). Each `*_loss(step)` here is one step of a stage
of pocketbuild/recipes/multimodal.py, drawn from the step number alone so a resumed run sees the
samples an uninterrupted one would:
- `tower_loss`: each tower learns what its input holds, through a linear head on its soft tokens
  that is thrown away afterwards (trained only through the language model's answers, the towers
  never learned shapes or pitch). Vision: every soft token names what its centre shows; audio:
  every soft token of a sequence of beeps names what its 40 ms hold (a pooled label per beep
  taught pitch but not *when*).
- `target_loss`: cross-entropy on the answer tokens of a question about a picture or a sound;
  with a pool, the frozen vision tower's soft tokens of a sample are computed once (`SoftTokenPool`).
- `drafter_loss`: distillation (labkit.distill) on the target's own greedy and sampled (T = 0.8)
  answers, whose prompts hold the soft tokens the drafter attends to through the target's K/V.
`measure` is the held-out check: exact answers per modality and question, which parts of wrong
descriptions are right, and whether greedy decoding with the drafter gives the target's own tokens.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPooling

from labkit import distill, media, synthetic
from labkit.paths import TOKENIZER_DIR

AUDIO_MS_PER_TOKEN = 40  # Gemma 4's audio tower: one soft token per 40 ms
# what a document's vision tower learns to name per soft token's cell: none or a character
CHARACTERS = sorted(set("0123456789" + "".join(synthetic.DOC_WORDS) + "".join(synthetic.TABLE_COLUMNS)))
GRID = 8  # a picture's soft tokens form GRID x GRID cells (Gemma 4's 70-token budget: 8 x 8 = 64)
LINES = 1 + synthetic.PAGE_LINES[1]  # what a page cell's row holds: no line, or line 1, 2, 3 (a table's too)
# A document head's logits in order, each with the column of document_labels it is scored on: the
# character in the cell, the box, the line of text, and on a number's cells its tens and ones digit
# and table column; every cell's row and column come after them (position_loss).
DOCUMENT_HEAD: dict[str, tuple[slice, int]] = {}  # name -> (its slice of the logits, its label column)
for _name, _width, _label in (("character", 1 + len(CHARACTERS), 0), ("box", 2, 1), ("line", LINES, 2),
                              ("tens", 10, 5), ("ones", 10, 6), ("column", 1 + len(synthetic.TABLE_COLUMNS), 7)):
    _at = max((part.stop for part, _ in DOCUMENT_HEAD.values()), default=0)
    DOCUMENT_HEAD[_name] = (slice(_at, _at + _width), _label)


# ---------------------------------------------------------------- processor


def multimodal_processor(out: Path, digits_apart: bool = False):  # -> labkit.media processor
    """Write to `out` and load the pocket multimodal pair's processor: the pocket tokenizer with
    Gemma 4's named media tokens, Gemma 4's image (70-token budget) and audio settings. With
    `digits_apart`, a number is written digit by digit, as Gemma 4's tokenizer writes it (the pocket
    tokenizer made one token of 26 of the 90 two-digit numbers and two of the rest); a digit after a
    space keeps its space ("line 2" is tokenized as before)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TOKENIZER_DIR, out, dirs_exist_ok=True)
    tj = json.loads((out / "tokenizer.json").read_text())
    if digits_apart:
        tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": " ?\\p{N}"}, "behavior": "Isolated", "invert": False},
            tj["pre_tokenizer"]]}
    # Gemma4Processor adds "<|video|>" if the vocabulary lacks it, which would grow the vocabulary
    # past the model's; the pocket tokenizer reserved <unused0> for exactly this.
    for added in tj["added_tokens"]:
        if added["content"] == "<unused0>":
            added["content"] = "<|video|>"
    if "<unused0>" in tj["model"]["vocab"]:
        tj["model"]["vocab"]["<|video|>"] = tj["model"]["vocab"].pop("<unused0>")
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    tc = json.loads((out / "tokenizer_config.json").read_text())
    tc["extra_special_tokens"] = [t.replace("<unused0>", "<|video|>") for t in tc["extra_special_tokens"]]
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=1))
    media.write_processor(out, soft_tokens_per_image=70)
    return media.processor_from_folder(out)


# ---------------------------------------------------------------- samples


def prompt_text(processor, modality: str, question: str) -> str:
    item = {"type": media.FAMILY_INPUT[modality]}
    return processor.apply_chat_template(
        [{"role": "user", "content": [item, {"type": "text", "text": question}]}],
        tokenize=False, add_generation_prompt=True)


def encode(processor, modality: str, items: list, texts: list[str], padding_side: str = "right") -> dict:
    if modality == "clip":
        return media.frame_inputs(processor, items, texts, padding_side=padding_side)
    processor.tokenizer.padding_side = padding_side
    kw = {"audio": items} if modality == "audio" else {"images": [[i] for i in items]}
    batch = processor(text=texts, return_tensors="pt", **kw, **media.template_kwargs(processor.tokenizer, texts))
    batch.pop("mm_token_type_ids", None)
    return dict(batch)


def answer_weight(ids: torch.Tensor, attention: torch.Tensor, model_turn: list[int]) -> torch.Tensor:
    """(B, T): 1 at positions whose next token belongs to the answer (after '<|turn>model\\n')."""
    w = torch.zeros_like(ids, dtype=torch.float32)
    n = len(model_turn)
    for b in range(ids.shape[0]):
        row = ids[b].tolist()
        start = max(i for i in range(len(row) - n + 1) if row[i : i + n] == model_turn) + n
        end = int(attention[b].sum())  # right padding: real tokens first
        w[b, start - 1 : end - 1] = 1.0
    return w


def media_kwargs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}


@torch.no_grad()
def target_answers(target, processor, modality: str, rows: list, sampled: bool) -> dict:
    """The target's own answers to `rows`, as right-padded model inputs with the answer region."""
    prompts = [prompt_text(processor, modality, r.question) for r in rows]
    batch = encode(processor, modality, [r.item for r in rows], prompts, padding_side="left")
    out = target.generate(**batch, max_new_tokens=20, do_sample=sampled, top_k=0,
                          temperature=0.8 if sampled else None)
    texts = processor.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    full = [p + t.strip() + "<turn|>\n" for p, t in zip(prompts, texts)]
    return encode(processor, modality, [r.item for r in rows], full)


# ---------------------------------------------------------------- the stages' losses


def towers(target) -> dict[str, tuple]:
    """Each modality's tower and the embedder that projects its soft tokens to the text width."""
    m = target.model
    return {"image": (m.vision_tower, m.embed_vision), "audio": (m.audio_tower, m.embed_audio)}


def tower_head(target, modality: str) -> torch.nn.Linear:
    """The throwaway head: background or coloured shape per picture token; silence or pitch per
    sound token; for a document, the character centred in the token's cell (or none), whether the
    cell touches the box, which line of text its row holds (none, 1, 2, 3), and on a number's cells
    the whole number (its tens and its ones digit) and its table column (none, A, B). Picture and
    page tokens also name their cell's row and column: what a clip's direction and a line's reading
    order are read from."""
    position = 2 * GRID
    classes = {"image": 1 + len(synthetic.PARTS) + position, "audio": 1 + len(synthetic.PITCHES),
               "document": DOCUMENT_HEAD["column"][0].stop + position}[modality]
    return torch.nn.Linear(target.config.get_text_config().hidden_size, classes)


def document_labels(chars: list, box: tuple | None, side: int, size: int = synthetic.IMAGE_SIZE) -> torch.Tensor:
    """(side * side, 8) labels of a page's soft tokens, row by row: the character whose centre is in
    the token's cell (0 none, 1 + index in CHARACTERS; the type is about a cell wide), whether the
    cell overlaps the box (a table has none), the line of text whose characters' centres lie in the
    cell's row (0 none, 1 the top line), the cell's row and column, and on a cell that holds a digit
    of a number, that whole number's tens and ones digit and its table column (0 on a page, 1 for A;
    -100 elsewhere, not scored): a digit alone is read from one cell, a number from the cell over
    any of its digits, so the language model need not put two cells' digits together."""
    cell = size / side
    out = torch.zeros(side, side, 8, dtype=torch.long)
    out[..., 5:] = -100
    lines = sorted({c[2] for c in chars})  # one centre height per line, top to bottom
    for i, y in enumerate(lines):
        out[min(int(y // cell), side - 1), :, 2] = i + 1
    for ch, x, y, text, column in chars:
        r, c = min(int(y // cell), side - 1), min(int(x // cell), side - 1)
        if out[r, c, 0] == 0:
            out[r, c, 0] = 1 + CHARACTERS.index(ch)
        if text.isdigit():
            out[r, c, 5], out[r, c, 6], out[r, c, 7] = int(text[-2]), int(text[-1]), column
    x0, y0, x1, y1 = box or (0, 0, 0, 0)
    for r in range(side):
        for c in range(side):
            out[r, c, 1] = int(c * cell < x1 and (c + 1) * cell > x0 and r * cell < y1 and (r + 1) * cell > y0)
            out[r, c, 3], out[r, c, 4] = r, c
    return out.reshape(side * side, 8)


def position_loss(logits: torch.Tensor, side: int) -> torch.Tensor:
    """Cross-entropy of the last 2 * GRID logits of (B, side * side, ...) naming each token's row and column."""
    rows = torch.arange(side).repeat_interleave(side).repeat(logits.shape[0])
    cols = torch.arange(side).repeat(side * logits.shape[0])
    flat = logits[..., -2 * GRID:].flatten(0, 1)
    return F.cross_entropy(flat[:, :GRID], rows) + F.cross_entropy(flat[:, GRID:], cols)


def image_tokens(target, processor, images: list) -> torch.Tensor:
    """(B, soft tokens, width): the vision tower's soft tokens of `images`, projected to the text width."""
    pixels = processor.image_processor(images, return_tensors="pt")
    tokens = target.model.get_image_features(pixels["pixel_values"], pixels["image_position_ids"],
                                            return_dict=True).pooler_output
    tokens = torch.cat(list(tokens)) if isinstance(tokens, (tuple, list)) else tokens
    return tokens.reshape(len(images), -1, tokens.shape[-1])


def page_batch(target, processor, rng: random.Random, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` documents drawn by `rng`: their soft tokens (B, T, width) and labels (B, T, 8)."""
    drawn = [synthetic.draw_document(synthetic.random_document(rng), rng, labels=True) for _ in range(count)]
    tokens = image_tokens(target, processor, [image for image, _, _ in drawn])
    side = int(tokens.shape[1] ** 0.5)
    return tokens, torch.stack([document_labels(chars, box, side) for _, chars, box in drawn])


@torch.no_grad()
def reading_check(target, head, processor, pages: int = 16) -> dict:
    """How well a page's soft tokens name what the tower head was taught, on `pages` held-out pages:
    characters right on labelled cells (and digits alone), lines right on rows that hold one, and
    whole numbers (both digits and the table column) right on the cells of a number."""
    # never a training draw ("tower document <step>")
    tokens, labels = page_batch(target, processor, random.Random("reading check"), pages)
    labels, logits = labels.flatten(0, 1), head(tokens).flatten(0, 1)
    right = {name: logits[:, part].argmax(-1) == labels[:, label] for name, (part, label) in DOCUMENT_HEAD.items()}
    digit = torch.tensor([c > 0 and CHARACTERS[c - 1].isdigit() for c in labels[:, 0].tolist()])
    number = right["tens"] & right["ones"] & right["column"]

    def share(right: torch.Tensor, where: torch.Tensor) -> float:
        return round(float(right[where].float().mean()), 4)

    return {"characters": share(right["character"], labels[:, 0] > 0), "digits": share(right["character"], digit),
            "lines": share(right["line"], labels[:, 2] > 0), "numbers": share(number, labels[:, 5] >= 0)}


def tower_loss(target, head, processor, modality: str, batch: int):
    """Step -> (cross-entropy of the head's label for every soft token, {})."""
    m = target.model

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        rng = random.Random(f"tower {modality} {step}")
        if modality == "document":
            tokens, labels = page_batch(target, processor, rng, batch)
            side = int(tokens.shape[1] ** 0.5)
            logits = head(tokens)  # (B, T, classes)
            # most cells are blank: a character counts four times a blank, or the tower learns "ink"
            weight = torch.ones(1 + len(CHARACTERS))
            weight[0] = 0.25
            loss = sum(F.cross_entropy(logits[..., part].flatten(0, 1), labels[..., label].flatten(),
                                       weight=weight if name == "character" else None, ignore_index=-100)
                       for name, (part, label) in DOCUMENT_HEAD.items())  # -100: not scored
            return loss + position_loss(logits, side), {}
        if modality == "image":
            drawn = [synthetic.draw_scene(synthetic.random_scene(rng), rng, labels=True) for _ in range(batch)]
            tokens = image_tokens(target, processor, [image for image, _ in drawn])
            side = int(tokens.shape[1] ** 0.5)  # soft tokens form a side x side grid, row by row
            cell = synthetic.IMAGE_SIZE // side
            labels = torch.tensor(np.stack([np.asarray(lab)[cell // 2 :: cell, cell // 2 :: cell].flatten()
                                            for _, lab in drawn])).long()
            logits = head(tokens)
            parts = F.cross_entropy(logits[..., : 1 + len(synthetic.PARTS)].flatten(0, 1), labels.flatten())
            return parts + position_loss(logits, side), {}
        drawn = [synthetic.render_beeps(synthetic.random_beeps(rng), rng, labels=True) for _ in range(batch)]
        feats = processor.feature_extractor([wave for wave, _ in drawn], sampling_rate=synthetic.SAMPLE_RATE,
                                            return_tensors="pt")
        audio = m.get_audio_features(feats["input_features"], feats["input_features_mask"], return_dict=True)
        tokens, valid = audio.pooler_output, audio.attention_mask  # (B, soft tokens, width), (B, soft tokens)
        hop = synthetic.SAMPLE_RATE * AUDIO_MS_PER_TOKEN // 1000  # samples per soft token
        labels = torch.full(valid.shape, -100, dtype=torch.long)  # -100: padding, not scored
        for b, (_, marks) in enumerate(drawn):
            centres = marks[hop // 2 :: hop][: valid.shape[1]]
            labels[b, : len(centres)] = torch.from_numpy(centres)
        labels[~valid.bool()] = -100
        return F.cross_entropy(head(tokens).flatten(0, 1), labels.flatten(), ignore_index=-100), {}

    return loss_at


class SoftTokenPool:
    """A target stage's pictures, pages and clips with the vision tower's soft tokens, each computed
    once: the towers are frozen while the target learns, so a sample's soft tokens are the same each
    time it is drawn. `inputs` gives a step's model inputs from its prompts' token ids and the kept
    soft tokens (`mm_encoder_outputs`), which the language model reads as it reads the tower's: the
    same logits (tests/test_synthetic.py). A step then runs the language model alone, several times
    faster (docs/measured.md). Sounds go
    through their tower each time: transformers 5.24 takes no audio encoder outputs."""

    def __init__(self, model, processor):
        self.model, self.processor, self.kept = model, processor, {}

    @torch.no_grad()
    def tokens(self, modality: str, indices: list[int], items: list) -> list[torch.Tensor]:
        """Each sample's soft tokens: (tokens, width), a clip's frames one after another."""
        new = [(i, item) for i, item in zip(indices, items) if (modality, i) not in self.kept]
        if new:
            frames = [f for _, item in new for f in (item if modality == "clip" else [item])]
            per_frame = image_tokens(self.model, self.processor, frames)
            at = 0
            for i, item in new:
                n = len(item) if modality == "clip" else 1
                self.kept[modality, i] = per_frame[at : at + n].flatten(0, 1)
                at += n
        return [self.kept[modality, i] for i in indices]

    def inputs(self, modality: str, indices: list[int], items: list, texts: list[str]) -> dict:
        """`encode`'s model inputs for samples `indices` of `modality` (pictures, pages or clips,
        right-padded), their soft tokens kept after the first time."""
        p = self.processor
        kept = self.tokens(modality, indices, items)
        per_frame = kept[0].shape[0] // (len(items[0]) if modality == "clip" else 1)
        if modality == "clip":
            texts = [t.replace(p.video_token, media.video_layout(p, [per_frame] * len(item)), 1)
                     for t, item in zip(texts, items)]
        else:
            texts = [t.replace(p.image_token, media.image_layout(p, per_frame), 1) for t in texts]
        batch = media.tokenize_laid_out(p, texts)
        key = "video" if modality == "clip" else "image"
        batch["mm_encoder_outputs"] = {key: BaseModelOutputWithPooling(pooler_output=tuple(kept))}
        return batch


def asked_again(ex: synthetic.Example, rounds: int, questions: list[str] | None = None) -> synthetic.Example:
    """A page, table or clip drawn again from a pool, `rounds` times round: the next of its questions
    (a page's lines' numbers, its cells, the boxed word; a clip's direction and frame count, in turn),
    so its answer must be found in it each time rather than remembered with it. `questions`: the ones
    to go round instead of all it answers (one not among them is asked the first). Pictures and sounds
    come back as they were."""
    questions = questions or getattr(ex.truth, "questions", None)
    if not questions:
        return ex
    start = questions.index(ex.question) if ex.question in questions else 0
    question = questions[(start + rounds) % len(questions)]
    return ex if question == ex.question else replace(ex, question=question)


# A target stage's families beyond the lab's four: documents of one kind, asked only that kind's
# questions (a run that goes on where its pages are read worst): "table", a small table's cells;
# "lines", a page of lines asked the numbers on its lines (the boxed word only where it holds none);
# "letters", a table asked what heads a column, answered by the letter in the question: a question the
# target can only answer by reading its own question (training only: not among `Table.questions`).
DOCUMENT_KINDS = ("table", "lines", "letters")
LETTER_QUESTION = "What is at the top of column {c}?"


@torch.no_grad()
def soften_attention(model, scale: float) -> None:
    """Scale every query norm of the language model by `scale`: its attention logits by the same factor.
    A pocket target's attention ends up all but one-hot, which leaves a token it never looked at (a
    table's column letter in the question) no gradient to be looked at by (docs/measured.md)."""
    for layer in model.model.language_model.layers:
        layer.self_attn.q_norm.weight.mul_(scale)


@torch.no_grad()
def set_apart(model, tokenizer, texts: tuple[str, ...], seed: int = 0) -> None:
    """Push each of `texts`' (one token each) input embeddings along a random direction of its own
    norm: the pocket tokenizer's " A" and " B", rare in its Shakespeare, start nearly one vector."""
    weight = model.get_input_embeddings().weight
    g = torch.Generator().manual_seed(seed)
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{text!r} is {len(ids)} tokens for this tokenizer; set_apart takes one-token texts")
        r = torch.randn(weight.shape[1], generator=g)
        weight[ids[0]] += r / r.norm() * weight[ids[0]].norm()


def questions_of(family: str, ex: synthetic.Example) -> list[str] | None:
    """The questions a sample of `family` goes round (None: all it answers)."""
    if family != "lines":
        return None
    return [q for q in ex.truth.questions if q != synthetic.DOCUMENT_QUESTIONS[1]] or None


def target_loss(model, processor, batch: int, families: tuple[str, ...] = ("image", "image", "audio"),
                pool: dict[str, int] | None = None, first: int = 0):
    """Step -> (cross-entropy on the answer tokens, {"modality"}): step i asks about families[i % len].
    A family in `pool` (pictures, pages, clips) has its steps go round its first `pool[family]`
    samples, whose soft tokens are computed once (`SoftTokenPool`), a page asked its next question
    each time round (`asked_again`); the others draw new samples. A family in `DOCUMENT_KINDS` draws
    the documents of its kind only, in seed order.
    Samples are drawn from seed `first` + 1 on (a continued run skips those its first run drew)."""
    model_turn = processor.tokenizer.encode("<|turn>model\n", add_special_tokens=False)
    pool = pool or {}
    kept = SoftTokenPool(model, processor)
    of_kind: dict[str, list[int]] = {}  # a document kind's seeds from first + 1 on, as far as drawn

    def seed(family: str, d: int) -> int:
        """The seed of the d-th sample `family` draws."""
        if family not in DOCUMENT_KINDS:
            return first + 1 + d
        found = of_kind.setdefault(family, [])
        i = found[-1] if found else first
        while len(found) <= d:
            i += 1
            if synthetic.is_table(i) == (family != "lines"):
                found.append(i)
        return found[d]

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        family = families[step % len(families)]
        modality = "document" if family in DOCUMENT_KINDS else family
        if family not in pool:
            drawn, size = [step * batch + i for i in range(batch)], None
        else:  # this family's n-th step: samples n * batch ... of its pool
            n = step // len(families) * families.count(family) + families[: step % len(families)].count(family)
            drawn, size = [n * batch + i for i in range(batch)], pool[family]
        indices = [seed(family, d % size if size else d) for d in drawn]
        rows, answers = [], []
        for i, d in zip(indices, drawn):
            ex = synthetic.example(i, modality)
            if family == "letters":  # the columns in turn, each answered by its own letter
                letter = synthetic.TABLE_COLUMNS[d % len(synthetic.TABLE_COLUMNS)]
                rows.append(replace(ex, question=LETTER_QUESTION.format(c=letter)))
                answers.append(letter)
            else:
                rows.append(asked_again(ex, d // size if size else 0, questions_of(family, ex)))
                answers.append(rows[-1].answer)
        texts = [prompt_text(processor, modality, r.question) + a + "<turn|>\n" for r, a in zip(rows, answers)]
        if family in pool:
            enc = kept.inputs(modality, indices, [r.item for r in rows], texts)
        else:
            enc = encode(processor, modality, [r.item for r in rows], texts)
        ids = enc["input_ids"]
        w = answer_weight(ids, enc["attention_mask"], model_turn)
        logits = model(**enc, use_cache=False).logits.float()
        ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
        return (ce * w[:, :-1].flatten()).sum() / w.sum(), {"modality": family}

    return loss_at


def drafter_loss(target, drafter, processor, batch: int, k: int, seed: int,
                 families: tuple[str, ...] = ("image", "audio")):
    """Step -> (distillation loss, {"modality", "sampled", "agree"}) on the target's own answers:
    the families in turn, greedy and T = 0.8 answers in turn."""
    model_turn = processor.tokenizer.encode("<|turn>model\n", add_special_tokens=False)

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        modality = families[step % len(families)]
        sampled = (step // len(families)) % 2 == 1
        torch.manual_seed(seed * 7919 + step)
        rows = [synthetic.example(5_000_000 + step * batch + i, modality) for i in range(batch)]
        enc = target_answers(target, processor, modality, rows, sampled)
        w = answer_weight(enc["input_ids"], enc["attention_mask"], model_turn)
        view = distill.target_view(target, enc["input_ids"], **media_kwargs(enc))
        loss, agree = distill.distill_loss(drafter, view, k, weight=w)
        return loss, {"modality": modality, "sampled": sampled, "agree": agree}

    return loss_at


# ---------------------------------------------------------------- held-out measurement


@torch.no_grad()
def greedy_answer(target, processor, modality: str, ex: synthetic.Example) -> str:
    """The target's own answer to `ex`, alone and greedy, up to 20 tokens, without its end of turn."""
    batch = encode(processor, modality, [ex.item], [prompt_text(processor, modality, ex.question)])
    out = target.generate(**batch, max_new_tokens=20, do_sample=False, pad_token_id=0,
                          eos_token_id=target.generation_config.eos_token_id)
    return processor.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@torch.no_grad()
def answer_check(target, processor, families: tuple[str, ...], n: int = 12) -> dict:
    """The target's exact answers, alone and greedy, on `n` held-out samples a family (and a row per
    kind of question), drawn after the `n` samples `measure` reports: how a target stage is going."""
    was_training = target.training
    target.eval()
    per: dict[str, list[bool]] = {}
    for modality in families:
        for i in range(n):
            ex = synthetic.example(synthetic.HELD_OUT + 5000 + i, modality)
            right = greedy_answer(target, processor, modality, ex) == ex.answer
            for key in (modality, f"{modality}: {synthetic.question_kind(ex.question)}"):
                per.setdefault(key, []).append(right)
    target.train(was_training)
    return {key: f"{sum(v)}/{len(v)}" for key, v in per.items()}


@torch.no_grad()
def measure(target, drafter, processor, n: int, k: int = 4,
            families: tuple[str, ...] = ("image", "audio")) -> dict:
    """On n held-out samples per modality, greedy, k drafts per round: exact-answer accuracy per
    modality and question, whether the drafter changes any token, tau and acceptance by position."""
    from tqdm.auto import tqdm

    from labkit import metrics
    from labkit.trace import Decoding
    from labkit.tracing import trace_generate

    per: dict[str, list[bool]] = {}
    parts: dict[str, list[bool]] = {}
    traces: dict[str, list] = {}
    identical, wrong, seconds = True, [], {"plain": 0.0, "drafter": 0.0}
    eos = target.generation_config.eos_token_id
    for modality in families:
        for i in tqdm(range(n), desc=f"held-out {modality}"):
            ex = synthetic.example(synthetic.HELD_OUT + i, modality)
            batch = encode(processor, modality, [ex.item], [prompt_text(processor, modality, ex.question)])
            ids = batch.pop("input_ids")
            batch.pop("attention_mask")
            common = dict(eos_token_id=eos, pad_token_id=0, **batch)
            greedy = Decoding(k=k, max_new_tokens=20)
            plain = trace_generate(target, None, ids, greedy, **common)
            spec = trace_generate(target, drafter, ids, greedy, **common)
            identical &= plain.new_ids == spec.new_ids
            seconds["plain"] += plain.wall
            seconds["drafter"] += spec.wall
            text = processor.tokenizer.decode(list(plain.new_ids), skip_special_tokens=True).strip()
            ok = text == ex.answer
            asked = synthetic.question_kind(ex.question)  # one row for every line or cell asked about
            for key in (modality, f"{modality}: {asked}"):
                per.setdefault(key, []).append(ok)
                traces.setdefault(key, []).append(spec)
            if ex.question in (synthetic.IMAGE_QUESTIONS[0], synthetic.AUDIO_QUESTIONS[0]):
                for part, right in ex.truth.parts_right(text).items():  # where wrong captions go wrong
                    parts.setdefault(f"{modality}: {part}", []).append(right)
            if not ok and len(wrong) < 10:
                wrong.append({"modality": modality, "question": ex.question, "expected": ex.answer, "got": text})
    return {
        "accuracy": {key: round(sum(v) / len(v), 4) for key, v in per.items()},
        "samples": {key: len(v) for key, v in per.items()},
        "caption_parts": {key: round(sum(v) / len(v), 4) for key, v in parts.items()},
        "greedy_identical_with_drafter": bool(identical), "k": k,
        "tau": {key: round(metrics.tau(v), 3) for key, v in traces.items()},
        "acceptance_by_position": {key: [round(a, 3) for a in metrics.acceptance_by_position(v)]
                                   for key, v in traces.items()},
        "speedup": round(seconds["plain"] / seconds["drafter"], 3),
        "examples_wrong": wrong,
    }
