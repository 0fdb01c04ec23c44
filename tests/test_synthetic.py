"""labkit.synthetic's clips and documents (issue 44's data): deterministic, answerable from the
pixels, and the answers follow from what was drawn."""

from __future__ import annotations

import re

import numpy as np

from labkit import synthetic


def _centre(frame) -> tuple[float, float] | None:
    """Where the shape is in a frame: the mean position of its coloured pixels (None if absent)."""
    a = np.asarray(frame).astype(int)
    coloured = (a.max(-1) - a.min(-1)) > 60  # the background is grey
    if not coloured.any():
        return None
    ys, xs = np.nonzero(coloured)
    return float(xs.mean()), float(ys.mean())


def test_clips_move_the_way_their_answer_says_in_the_frames_it_counts():
    for i in range(40):
        ex = synthetic.example(synthetic.HELD_OUT + i, "clip")
        clip, frames = ex.truth, ex.item
        assert len(frames) == clip.frames and 4 <= clip.frames <= 6 and sum(clip.shown) >= 2
        centres = [_centre(f) for f in frames]
        assert [c is not None for c in centres] == list(clip.shown)
        seen = [c for c in centres if c is not None]
        dx, dy = synthetic.DIRECTIONS[clip.direction]
        moves = [((b[0] - a[0]) * dx + (b[1] - a[1]) * dy) for a, b in zip(seen, seen[1:])]
        assert all(m > 10 for m in moves), (clip, moves)  # steps of many pixels, the named way
        assert clip.answer(synthetic.CLIP_QUESTIONS[0]) == clip.direction
        assert clip.answer(synthetic.CLIP_QUESTIONS[1]).split()[0] in synthetic.NUMBERS[2:]
    a, b = synthetic.example(7, "clip"), synthetic.example(7, "clip")
    assert a.truth == b.truth and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.item, b.item))


def test_documents_ask_what_their_lines_say():
    kinds = set()
    for i in range(80):
        ex = synthetic.example(synthetic.HELD_OUT + i, "document")
        doc = ex.truth
        assert ex.question in doc.questions and ex.answer and doc.answer(ex.question) == ex.answer
        if isinstance(doc, synthetic.Table):
            assert len(doc.rows) == synthetic.TABLE_ROWS and all(len(c) == 2 and c.isdigit() for r in doc.rows for c in r)
            r, c = re.fullmatch(r"What number is in row (\d), column ([AB])\?", ex.question).groups()
            assert ex.answer == doc.rows[int(r) - 1][synthetic.TABLE_COLUMNS.index(c)]
            kinds.add("table")
        else:
            page = doc
            assert 2 <= len(page.lines) <= 3 and page.lines[page.boxed].isalpha()
            assert ex.answer in page.lines
            if ex.question == synthetic.DOCUMENT_QUESTIONS[1]:
                assert ex.answer == page.lines[page.boxed]
                kinds.add("box")
            else:
                n = int(ex.question.split("line ")[1].rstrip("?"))
                assert ex.answer == page.lines[n - 1] and ex.answer.isdigit() and len(ex.answer) == 2
                kinds.add("line")
        ink = (np.asarray(ex.item).min(-1) < 100).mean()
        assert 0.01 < ink < 0.3  # text is drawn, and inside the page
    assert kinds == {"box", "line", "table"}
    assert synthetic.question_kind("What number is in row 2, column B?") == "What number is in row r, column c?"
    assert synthetic.question_kind("What number is on line 3?") == "What number is on line n?"
    assert np.array_equal(np.asarray(synthetic.example(3, "document").item), np.asarray(synthetic.example(3, "document").item))


def test_tables_are_ruled_and_read_row_by_row():
    """A table's frame and rules are drawn where its labels say the cells are not: each number sits
    inside its column, under the header."""
    import random

    from pocketbuild.multimodal import CHARACTERS, document_labels

    for seed in range(20):
        rng = random.Random(seed)
        table = synthetic.random_table(rng)
        image, chars, box = synthetic.draw_table(table, rng, labels=True)
        assert box is None
        a = np.asarray(image).min(-1)
        assert (a[:2] > 150).all() and (a[-2:] > 150).all()  # the frame stays inside the picture
        labels = document_labels(chars, box, 8).reshape(8, 8, 8)
        rows = [labels[r, :, 0].tolist() for r in range(8) if labels[r, 0, 2]]
        read = ["".join(CHARACTERS[c - 1] for c in row if c) for row in rows]
        assert read == ["AB"] + ["".join(r) for r in table.rows], (read, table)
        assert not labels[..., 1].any()  # no box
        for r, row in enumerate(table.rows):  # every cell of a number names the whole number and its column
            at = labels[labels[:, 0, 2] == r + 2][0]
            named = {(int(t), int(o), int(c)) for t, o, c in at[:, 5:].tolist() if t >= 0}
            assert named == {(int(x[0]), int(x[1]), j + 1) for j, x in enumerate(row)}, (named, row)
        assert (labels[..., 5][labels[..., 0] == 0] == -100).all()  # not scored where no character is


def test_the_old_modalities_are_unchanged():
    """Clips and documents draw from their own seeds: pictures and sounds stay what they were."""
    ex = synthetic.example(synthetic.HELD_OUT + 3, "image")
    assert ex.truth == synthetic.random_scene(__import__("random").Random((synthetic.HELD_OUT + 3) * 2))


def test_page_labels_name_each_cell_s_character_line_row_and_column():
    """The vision tower's page labels (pocketbuild.multimodal.document_labels): every character sits
    in a cell of its own line's row, lines are numbered top to bottom, the boxed word's cells touch
    the box, and every cell names its own row and column."""
    import random

    from pocketbuild.multimodal import CHARACTERS, document_labels

    for seed in range(40):
        rng = random.Random(seed)
        page = synthetic.random_page(rng)
        _, chars, box = synthetic.draw_page(page, rng, labels=True)
        labels = document_labels(chars, box, 8).reshape(8, 8, 8)
        line_of_row = labels[:, 0, 2].tolist()
        assert sorted(n for n in line_of_row if n) == list(range(1, len(page.lines) + 1))
        assert [n for n in line_of_row if n] == sorted(n for n in line_of_row if n)  # top to bottom
        for n, line in enumerate(page.lines, 1):
            row = line_of_row.index(n)
            assert (labels[row, :, 2] == n).all()
            read = "".join(CHARACTERS[c - 1] for c in labels[row, :, 0].tolist() if c)
            rest = iter(line)
            assert all(ch in rest for ch in read), (line, read)  # in order; narrow letters may share a cell
            assert read == line or not line.isdigit(), (line, read)  # a number's digits, each in a cell
            numbers = {tuple(x) for x in labels[row, :, 5:].tolist() if x[0] >= 0}
            assert numbers == ({(int(line[0]), int(line[1]), 0)} if line.isdigit() else set())
            if n - 1 == page.boxed:
                assert all(labels[row, c, 1] for c in range(8) if labels[row, c, 0])
        assert (labels[..., 3] == __import__("torch").arange(8)[:, None]).all()
        assert (labels[..., 4] == __import__("torch").arange(8)[None, :]).all()


def test_a_pool_s_kept_soft_tokens_give_the_logits_the_tower_gives(tiny, tmp_path):
    """pocketbuild.multimodal.SoftTokenPool: a picture's, a page's and a clip's soft tokens, computed
    once and handed to the model as encoder outputs, give the token ids and the logits the processor
    and the tower give; the second time a sample is drawn its kept soft tokens are used."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    from pocketbuild import multimodal

    processor = multimodal.multimodal_processor(tmp_path / "processor")
    model = Gemma4ForConditionalGeneration.from_pretrained(tiny / "target-vision").train()
    pool = multimodal.SoftTokenPool(model, processor)
    for modality in ("image", "document", "clip"):
        rows = [synthetic.example(i, modality) for i in (1, 2, 3)]
        texts = [multimodal.prompt_text(processor, modality, r.question) + r.answer + "<turn|>\n" for r in rows]
        items = [r.item for r in rows]
        plain = multimodal.encode(processor, modality, items, texts)
        with torch.no_grad():
            want = model(**plain, use_cache=False).logits
            for time in ("first", "again"):
                kept = pool.inputs(modality, [1, 2, 3], items, texts)
                assert torch.equal(kept["input_ids"], plain["input_ids"]), (modality, time)
                got = model(**kept, use_cache=False).logits
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=f"{modality}, {time}")
    assert len(pool.kept) == 9


def test_digits_apart_writes_a_number_digit_by_digit_and_leaves_the_rest(tmp_path):
    """multimodal_processor(digits_apart=True): every number is one token a digit (the pocket
    tokenizer has "13" as one token, "47" as two), questions keep their tokens, text round-trips."""
    from pocketbuild import multimodal

    apart = multimodal.multimodal_processor(tmp_path / "apart", digits_apart=True).tokenizer
    merged = multimodal.multimodal_processor(tmp_path / "merged").tokenizer
    digit = {d: apart.convert_tokens_to_ids(d) for d in "0123456789"}
    for number in range(10, 100):
        ids = apart.encode(f"<|turn>model\n{number}<turn|>\n", add_special_tokens=False)
        assert [digit[d] for d in str(number)] == ids[-4:-2], number
    assert len(merged.encode("13", add_special_tokens=False)) == 1  # why it is needed
    for text in (*synthetic.DOCUMENT_QUESTIONS, *synthetic.TABLE_QUESTIONS, *synthetic.CLIP_QUESTIONS,
                 "What number is on line 2?", "three frames"):
        assert apart.encode(text, add_special_tokens=False) == merged.encode(text, add_special_tokens=False), text
        assert apart.decode(apart.encode(text, add_special_tokens=False)) == text


def test_a_page_or_clip_drawn_again_is_asked_its_next_question():
    from pocketbuild.multimodal import asked_again

    for index in range(1, 40):
        ex = synthetic.example(index, "document")
        asked = [asked_again(ex, r).question for r in range(len(ex.truth.questions))]
        assert asked[0] == ex.question and sorted(asked) == sorted(ex.truth.questions), index
        assert asked_again(ex, len(asked)).item is ex.item
    clip = synthetic.example(1, "clip")  # a clip too: its two questions in turn
    other = next(q for q in synthetic.CLIP_QUESTIONS if q != clip.question)
    assert [asked_again(clip, r).question for r in range(3)] == [clip.question, other, clip.question]
    picture = synthetic.example(1, "image")
    assert asked_again(picture, 3) == picture


def test_a_pooled_family_s_steps_go_round_its_pool_and_lose_what_fresh_samples_lose(tiny, tmp_path):
    """target_loss with a pool: a pooled family's n-th step draws samples n * batch ... of its pool
    (round again after `pool`, a page then asked its next question), with the loss the unpooled path
    gives on the same samples; `first` starts both paths at a later seed."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    from pocketbuild import multimodal

    processor = multimodal.multimodal_processor(tmp_path / "processor")
    model = Gemma4ForConditionalGeneration.from_pretrained(tiny / "target-vision").train()
    families = ("document", "image")
    fresh = multimodal.target_loss(model, processor, 2, families)
    pooled = multimodal.target_loss(model, processor, 2, families, pool={"document": 4})
    with torch.no_grad():
        first = pooled(0)[0]  # documents 1, 2: what the unpooled step 0 draws
        torch.testing.assert_close(first, fresh(0)[0])
        assert not torch.equal(pooled(2)[0], first)  # documents 3, 4
        # round again: documents 1, 2, each asked its next question (asked_again), so another loss
        assert all(len(synthetic.example(i, "document").truth.questions) > 1 for i in (1, 2))
        assert not torch.equal(pooled(4)[0], first)
        torch.testing.assert_close(pooled(1)[0], fresh(1)[0])  # pictures are not pooled here
        # a continued run draws from seed first + 1 on: pooled or not, its step 0 is fresh step 2's
        later = multimodal.target_loss(model, processor, 2, families, pool={"document": 4}, first=4)
        torch.testing.assert_close(later(0)[0], fresh(2)[0])
        torch.testing.assert_close(later(1)[0], fresh(3)[0])


def test_a_document_kind_draws_its_kind_only_and_asks_its_questions(tiny, tmp_path, monkeypatch):
    """target_loss's "table" and "lines" families (multimodal.DOCUMENT_KINDS): the documents of one
    kind, in seed order from first + 1 on; a table asked its cells, a page its lines' numbers (the
    boxed word only where no line holds a number), each asked its next one when drawn again."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    from pocketbuild import multimodal

    processor = multimodal.multimodal_processor(tmp_path / "processor")
    model = Gemma4ForConditionalGeneration.from_pretrained(tiny / "target-vision").train()
    asked = []
    real = multimodal.asked_again
    monkeypatch.setattr(multimodal, "asked_again", lambda *a: asked.append(real(*a)) or asked[-1])
    families = ("table", "lines")
    loss_at = multimodal.target_loss(model, processor, 2, families, pool={"table": 2, "lines": 3}, first=10)
    with torch.no_grad():
        for step in range(6):
            loss_at(step)
    tables = [i for i in range(11, 200) if synthetic.is_table(i)][:2]
    pages = [i for i in range(11, 200) if not synthetic.is_table(i)][:3]
    drawn = {family: [ex for n, ex in enumerate(asked) if n // 2 % 2 == k] for k, family in enumerate(families)}
    assert [ex.truth for ex in drawn["table"]] == [synthetic.example(i, "document").truth for i in tables * 3]
    assert [ex.truth for ex in drawn["lines"]] == [synthetic.example(i, "document").truth for i in (pages * 2)[:6]]
    for n, ex in enumerate(drawn["table"]):  # round r asks the cell r after the one it was first asked
        first_asked = synthetic.example(tables[n % 2], "document").question
        cells = list(synthetic.TABLE_QUESTIONS)
        assert ex.question == cells[(cells.index(first_asked) + n // 2) % len(cells)]
    for ex in drawn["lines"]:
        numbers = [q for q in ex.truth.questions if q != synthetic.DOCUMENT_QUESTIONS[1]]
        assert ex.question in numbers if numbers else ex.question == synthetic.DOCUMENT_QUESTIONS[1]


def test_a_letters_step_asks_what_heads_a_column_and_the_letter_answers(tiny, tmp_path, monkeypatch):
    """The "letters" family: tables in seed order, asked LETTER_QUESTION for column A, B in turn, the
    answer the letter; soften_attention scales the logits and set_apart moves only the texts' rows."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    from pocketbuild import multimodal

    processor = multimodal.multimodal_processor(tmp_path / "processor")
    model = Gemma4ForConditionalGeneration.from_pretrained(tiny / "target-vision").train()
    texts = []
    real = multimodal.prompt_text
    monkeypatch.setattr(multimodal, "prompt_text", lambda p, m, q: texts.append(q) or real(p, m, q))
    loss_at = multimodal.target_loss(model, processor, 2, ("letters",), pool={"letters": 3})
    with torch.no_grad():
        loss_at(0)
    assert texts == [multimodal.LETTER_QUESTION.format(c=c) for c in "AB"]
    before = {n: p.clone() for n, p in model.named_parameters()}
    multimodal.soften_attention(model, 0.25)
    multimodal.set_apart(model, processor.tokenizer, (" A", " B"))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {n for n in before if n.startswith("model.language_model.layers") and n.endswith("q_norm.weight")} | {
        "model.language_model.embed_tokens.weight"}
    q = next(n for n in changed if n.endswith("q_norm.weight"))
    torch.testing.assert_close(dict(model.named_parameters())[q], before[q] * 0.25)
    rows = (dict(model.named_parameters())["model.language_model.embed_tokens.weight"]
            != before["model.language_model.embed_tokens.weight"]).any(1).nonzero().flatten().tolist()
    assert rows == sorted(processor.tokenizer.encode(t, add_special_tokens=False)[0] for t in (" A", " B"))
