"""Pictures of coloured shapes and sequences of beeps, with the words that describe them.

The pocket multimodal target (`06_multimodal`) learns to caption these, so a learner can check
every answer by eye and by ear: "a red circle left of a blue square", "two low beeps then a high
one". Everything is drawn from a seed, so a sample is the same on every machine.

    ex = example(HELD_OUT + 3, "image")     # ex.item: a PIL image; ex.question, ex.answer
    ex = example(HELD_OUT + 3, "audio")     # ex.item: float32 samples at 16 kHz
    ex = example(HELD_OUT + 3, "clip")      # ex.item: a list of PIL frames (video as a frame sequence)
    ex = example(HELD_OUT + 3, "document")  # ex.item: a PIL image of rendered text lines or a small table

Clips and documents are the video and reading tasks of the multimodal pair's next training: a shape that moves one way across a few frames, or appears and disappears; a page of
short lines (numbers, words, one word in a box) or a small table of numbers, rendered at varied
sizes and positions, whose answers are read off the picture.

Used by `scripts/train_multimodal.py` (training and held-out data) and `06_multimodal`.
Left out: anything a real photo, recording, film or scan has (textures, overlap, speech, noise
floors, motion blur, fonts other than PIL's default, skew).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SAMPLE_RATE = 16_000  # what Gemma 4's audio feature extractor expects
IMAGE_SIZE = 192  # pixels; the processor resizes to its own grid (384 x 384 at 70 soft tokens)

# Okabe-Ito colours: told apart with every common colour-vision deficiency.
COLOURS = {"red": (213, 94, 0), "blue": (0, 114, 178), "yellow": (240, 228, 66), "green": (0, 158, 115)}
SHAPES = ("circle", "square", "triangle")
RELATIONS = ("left of", "above")
PARTS = [(c, sh) for c in sorted(COLOURS) for sh in SHAPES]  # what a pixel of a picture can show
PITCHES = {"low": 330.0, "high": 880.0}  # Hz: an octave and a half apart, easy to hear
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")

# Questions the pocket target answers; the answer is a function of the sample.
IMAGE_QUESTIONS = ("Describe the picture.", "Which colours do you see?")
AUDIO_QUESTIONS = ("Describe the sound.", "How many beeps?")
HELD_OUT = 10_000_000  # examples from this index on are never trained on (accuracy, shipped samples)


@dataclass(frozen=True)
class Scene:
    """Two shapes of different colours, the first left of or above the second."""

    first: tuple[str, str]  # (colour, shape)
    relation: str  # one of RELATIONS
    second: tuple[str, str]

    @property
    def caption(self) -> str:
        return f"a {' '.join(self.first)} {self.relation} a {' '.join(self.second)}"

    def answer(self, question: str) -> str | None:
        """The right answer to one of IMAGE_QUESTIONS (None for any other question)."""
        return {IMAGE_QUESTIONS[0]: self.caption,
                IMAGE_QUESTIONS[1]: f"{self.first[0]} and {self.second[0]}"}.get(question)

    def parts_right(self, caption: str) -> dict[str, bool]:
        """Which parts of a caption (a model's answer to "Describe the picture.") are right: the two
        colours, the two shapes, the relation, in the caption's order. A caption of another form
        gets every part wrong."""
        m = re.fullmatch(r"a (\w+) (\w+) (left of|above) a (\w+) (\w+)", caption.strip())
        if not m:
            return {"colours": False, "shapes": False, "relation": False}
        return {"colours": (m[1], m[4]) == (self.first[0], self.second[0]),
                "shapes": (m[2], m[5]) == (self.first[1], self.second[1]),
                "relation": m[3] == self.relation}


@dataclass(frozen=True)
class Beeps:
    """A short sequence of low and high beeps."""

    pitches: tuple[str, ...]  # each "low" or "high", in the order heard

    @property
    def runs(self) -> list[tuple[str, int]]:
        """Runs of equal pitch, in order: (pitch, how many beeps)."""
        runs: list[tuple[str, int]] = []
        for p in self.pitches:
            if runs and runs[-1][0] == p:
                runs[-1] = (p, runs[-1][1] + 1)
            else:
                runs.append((p, 1))
        return runs

    @property
    def caption(self) -> str:
        """Runs of equal pitch: "two low beeps then a high one"."""
        words = []
        for i, (pitch, n) in enumerate(self.runs):
            noun = ("beep" if i == 0 else "one") + ("s" if n > 1 else "")
            words.append(f"{'a' if n == 1 else NUMBERS[n]} {pitch} {noun}")
        return " then ".join(words)

    def parts_right(self, caption: str) -> dict[str, bool]:
        """Which parts of a caption (a model's answer to "Describe the sound.") are right: the
        pitches of the runs, in order, and the number of beeps."""
        said = re.findall(r"\b(a|two|three|four) (\w+) (?:beep|one)s?\b", caption)
        counts = [1 if n == "a" else NUMBERS.index(n) for n, _ in said]
        return {"pitches": [p for _, p in said] == [p for p, _ in self.runs],
                "count": sum(counts) == len(self.pitches)}

    def answer(self, question: str) -> str | None:
        """The right answer to one of AUDIO_QUESTIONS (None for any other question)."""
        n = len(self.pitches)
        return {AUDIO_QUESTIONS[0]: self.caption,
                AUDIO_QUESTIONS[1]: f"{NUMBERS[n]} beep{'s' if n > 1 else ''}"}.get(question)


def random_scene(rng: random.Random) -> Scene:
    colour_a, colour_b = rng.sample(sorted(COLOURS), 2)
    return Scene((colour_a, rng.choice(SHAPES)), rng.choice(RELATIONS), (colour_b, rng.choice(SHAPES)))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        s = r * 0.9
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)


def draw_scene(scene: Scene, rng: random.Random, size: int = IMAGE_SIZE, labels: bool = False):
    """The scene on a light background, sizes and positions jittered by `rng`. With `labels`, also a
    map of what each pixel shows: 0 background, then 1 + the index of (colour, shape) in `PARTS`."""
    shade = rng.randint(225, 255)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draws = [(ImageDraw.Draw(image), lambda part: COLOURS[part[0]])]
    if labels:  # only the towers' pretraining asks (scripts/train_multimodal.py)
        label_map = Image.new("L", (size, size), 0)
        draws.append((ImageDraw.Draw(label_map), lambda part: 1 + PARTS.index(part)))
    # Large shapes, each about 3 x 3 of the target's 64 soft tokens, so that a small vision tower
    # can tell their outlines apart (at half this size a 3-layer tower saw only colours).
    r1, r2 = (rng.uniform(0.16, 0.19) * size for _ in range(2))  # never touching: see a1, a2
    m = 0.21 * size  # keeps shapes inside the frame
    # along the relation's axis the first shape sits in the first third, the second in the last:
    # centres at least 0.40 apart, radii at most 0.19 each
    a1, a2 = rng.uniform(m, 0.30 * size), rng.uniform(0.70 * size, size - m)
    # across it the two stay in line (within 6 %), so "left of" never also reads as "above"
    b1 = rng.uniform(m + 0.06 * size, size - m - 0.06 * size)
    b2 = b1 + rng.uniform(-0.06, 0.06) * size
    (x1, y1), (x2, y2) = ((a1, b1), (a2, b2)) if scene.relation == "left of" else ((b1, a1), (b2, a2))
    for draw, fill in draws:
        _draw_shape(draw, scene.first[1], x1, y1, r1, fill(scene.first))
        _draw_shape(draw, scene.second[1], x2, y2, r2, fill(scene.second))
    return (image, label_map) if labels else image


def random_beeps(rng: random.Random, max_beeps: int = 4) -> Beeps:
    return Beeps(tuple(rng.choice(sorted(PITCHES)) for _ in range(rng.randint(1, max_beeps))))


def render_beeps(beeps: Beeps, rng: random.Random, sample_rate: int = SAMPLE_RATE, labels: bool = False):
    """float32 mono samples in [-1, 1]: each beep ~0.15 s with soft edges, gaps ~0.1 s, a little hiss.

    With `labels=True`, also what each sample holds: 0 for silence, 1 + the index of its pitch in
    `sorted(PITCHES)` for a beep (what the audio tower is pretrained to hear, token by token)."""
    parts = [np.zeros(int(rng.uniform(0.05, 0.15) * sample_rate), np.float32)]
    marks = [np.zeros(len(parts[0]), np.int64)]
    for p in beeps.pitches:
        n = int(rng.uniform(0.12, 0.18) * sample_rate)
        t = np.arange(n) / sample_rate
        envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
        f = PITCHES[p] * rng.uniform(0.97, 1.03)
        parts.append((rng.uniform(0.3, 0.6) * envelope * np.sin(2 * np.pi * f * t)).astype(np.float32))
        parts.append(np.zeros(int(rng.uniform(0.08, 0.14) * sample_rate), np.float32))
        marks += [np.full(n, 1 + sorted(PITCHES).index(p)), np.zeros(len(parts[-1]), np.int64)]
    wave = np.concatenate(parts)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 0.005, wave.shape)
    wave = np.clip(wave + noise, -1, 1).astype(np.float32)
    return (wave, np.concatenate(marks)) if labels else wave


CLIP_QUESTIONS = ("Which way does the shape move?", "In how many frames is the shape?")
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
DOCUMENT_QUESTIONS = ("What number is on line {n}?", "Read the word in the box.")
PAGE_LINES = (2, 3)  # the fewest and the most lines of text a page holds
TABLE_QUESTION = "What number is in row {r}, column {c}?"
TABLE_COLUMNS = ("A", "B")
TABLE_ROWS = 2  # under its header row: three lines of type, as many as a page holds
TABLE_QUESTIONS = tuple(TABLE_QUESTION.format(r=r + 1, c=c) for r in range(TABLE_ROWS) for c in TABLE_COLUMNS)
TABLE_SHARE = 0.25  # of documents; the rest are pages of lines
DOC_WORDS = ("apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "robot", "candle", "garden",
             "planet", "silver", "window", "yellow", "pocket", "rocket")


@dataclass(frozen=True)
class Clip:
    """A video as a short frame sequence: one shape that moves one way, visible in some frames."""

    shape: tuple[str, str]  # (colour, shape)
    direction: str  # one of DIRECTIONS
    frames: int  # frames in the clip
    shown: tuple[bool, ...]  # in which frames the shape is there (it appears late or leaves early)

    @property
    def questions(self) -> list[str]:
        return list(CLIP_QUESTIONS)

    def answer(self, question: str) -> str | None:
        n = sum(self.shown)
        return {CLIP_QUESTIONS[0]: self.direction,
                CLIP_QUESTIONS[1]: f"{NUMBERS[n]} frame{'s' if n != 1 else ''}"}.get(question)


@dataclass(frozen=True)
class Page:
    """A document: short lines of text, one of them a word drawn in a box."""

    lines: tuple[str, ...]  # top to bottom; numbers and words
    boxed: int  # the index of the line whose word is in a box

    @property
    def questions(self) -> list[str]:
        """Every question the page answers: the boxed word, and the number on each line that holds one."""
        return [DOCUMENT_QUESTIONS[1]] + [DOCUMENT_QUESTIONS[0].format(n=n + 1)
                                          for n, line in enumerate(self.lines) if line.isdigit()]

    def answer(self, question: str) -> str | None:
        if question == DOCUMENT_QUESTIONS[1]:
            return self.lines[self.boxed]
        m = re.fullmatch(r"What number is on line (\d+)\?", question)
        return self.lines[int(m[1]) - 1] if m and self.lines[int(m[1]) - 1].isdigit() else None


@dataclass(frozen=True)
class Table:
    """A document: a small table, its columns headed A and B, a two-digit number in every cell."""

    rows: tuple[tuple[str, str], ...]  # top to bottom, under the header

    @property
    def questions(self) -> list[str]:
        """Every question the table answers: one per cell."""
        return list(TABLE_QUESTIONS)

    def answer(self, question: str) -> str | None:
        m = re.fullmatch(r"What number is in row (\d+), column ([A-Z])\?", question)
        if m and 1 <= int(m[1]) <= len(self.rows) and m[2] in TABLE_COLUMNS:
            return self.rows[int(m[1]) - 1][TABLE_COLUMNS.index(m[2])]
        return None


def question_kind(question: str) -> str:
    """A question with its line, row and column made generic: one row of a table per kind asked."""
    question = re.sub(r"line \d+", "line n", question)
    return re.sub(r"row \d+, column [A-Z]", "row r, column c", question)


def random_clip(rng: random.Random) -> Clip:
    frames = rng.randint(4, 6)
    start, stop = 0, frames
    if rng.random() < 0.5:  # it appears late or leaves early, and stays at least two frames: a way to move
        start = rng.randint(0, frames - 2)
        stop = rng.randint(start + 2, frames)
    shown = tuple(start <= i < stop for i in range(frames))
    return Clip((rng.choice(sorted(COLOURS)), rng.choice(SHAPES)), rng.choice(sorted(DIRECTIONS)), frames, shown)


def draw_clip(clip: Clip, rng: random.Random, size: int = IMAGE_SIZE) -> list[Image.Image]:
    """The frames: the shape steps along its direction by the same amount each frame (jittered start
    and size), absent from the frames `clip.shown` leaves out; the background the same in all."""
    shade = rng.randint(225, 255)
    r = rng.uniform(0.12, 0.15) * size
    dx, dy = DIRECTIONS[clip.direction]
    span = size - 2.4 * r  # the path stays inside the frame
    step = span / (clip.frames - 1)
    across = rng.uniform(1.2 * r, size - 1.2 * r)
    out = []
    for i, there in enumerate(clip.shown):
        image = Image.new("RGB", (size, size), (shade, shade, shade))
        along = 1.2 * r + (i if dx + dy > 0 else clip.frames - 1 - i) * step
        x, y = (along, across) if dx else (across, along)
        if there:
            _draw_shape(ImageDraw.Draw(image), clip.shape[1], x, y, r, COLOURS[clip.shape[0]])
        out.append(image)
    return out


def random_page(rng: random.Random) -> Page:
    n = rng.randint(*PAGE_LINES)
    boxed = rng.randrange(n)
    words = rng.sample(DOC_WORDS, n)
    lines = tuple(words[i] if i == boxed or rng.random() < 0.3 else str(rng.randint(10, 99)) for i in range(n))
    return Page(lines, boxed)


def _sheet(rng: random.Random, size: int):
    """A blank document in a light shade, its drawer, the font and the pitch of its lines: type
    about one soft token wide a character (each of the 8 x 8 soft tokens covers 24 of 192 pixels,
    and a 3-layer tower could not tell digits apart at two to a token), three lines to a page."""
    from PIL import ImageFont

    shade = rng.randint(230, 255)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    font = ImageFont.load_default(size=int(rng.uniform(0.21, 0.24) * size))
    return image, ImageDraw.Draw(image), font, (size * 0.9) / 3


def _centres(draw: ImageDraw.ImageDraw, text: str, font, x: float, y: float, column: int = 0) -> list[tuple]:
    """(char, x, y, text, column) of the centre of each character of `text` drawn from `x`, all at
    height `y`: with the word or number it belongs to and its table column (0 on a page, 1 for A)."""
    edges = [draw.textlength(text[:j], font=font) for j in range(len(text) + 1)]
    return [(ch, x + (a + b) / 2, y, text, column) for ch, a, b in zip(text, edges, edges[1:])]


def draw_page(page: Page, rng: random.Random, size: int = IMAGE_SIZE, labels: bool = False):
    """The lines in dark ink on a light page, one under another, the boxed one framed; the text's
    size and the block's position jittered by `rng` (large type: a small vision tower reads it).
    With `labels`, also where each character's centre is, [(char, x, y, its line, 0), ...], and the box
    (x0, y0, x1, y1): only the vision tower's pretraining asks (scripts/train_multimodal.py)."""
    image, draw, font, pitch = _sheet(rng, size)
    top = rng.uniform(0.03 * size, size - 0.03 * size - pitch * len(page.lines))
    left = rng.uniform(0.03, 0.09) * size
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    chars, box = [], None
    for i, line in enumerate(page.lines):
        y = top + i * pitch
        draw.text((left, y), line, fill=ink, font=font)
        x0, y0, x1, y1 = draw.textbbox((left, y), line, font=font)
        if i == page.boxed:
            box = (x0 - 4, y0 - 4, x1 + 4, y1 + 4)
            draw.rectangle(box, outline=ink, width=2)
        chars += _centres(draw, line, font, left, (y0 + y1) / 2)
    return (image, chars, box) if labels else image


def random_table(rng: random.Random) -> Table:
    return Table(tuple(tuple(str(rng.randint(10, 99)) for _ in TABLE_COLUMNS) for _ in range(TABLE_ROWS)))


def draw_table(table: Table, rng: random.Random, size: int = IMAGE_SIZE, labels: bool = False):
    """The table in dark ink on a light page: a header row A, B, the numbers under it, ruled like a
    table (a frame, a line under the header, one between the columns); type size, position and ink
    jittered by `rng` as a page's. With `labels`, as `draw_page`: every character's centre (with its
    cell's text and column, 1 for A), and no box (None)."""
    image, draw, font, pitch = _sheet(rng, size)
    lines = [TABLE_COLUMNS, *table.rows]
    top = rng.uniform(0.06 * size, size - 0.03 * size - pitch * len(lines))  # room for the frame above
    left = rng.uniform(0.03, 0.09) * size
    width = draw.textlength("00", font=font) + 0.12 * size  # a column: two digits and a margin
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    chars = []
    for i, cells in enumerate(lines):
        y = top + i * pitch
        _, y0, _, y1 = draw.textbbox((left, y), "".join(cells), font=font)  # one centre height a row
        for j, text in enumerate(cells):
            x = left + j * width + (width - draw.textlength(text, font=font)) / 2
            draw.text((x, y), text, fill=ink, font=font)
            chars += _centres(draw, text, font, x, (y0 + y1) / 2, column=j + 1)
    line_y = [top + i * pitch - 0.04 * size for i in range(len(lines))] + [top + len(lines) * pitch - 0.04 * size]
    x0, x1 = left - 0.02 * size, left + len(TABLE_COLUMNS) * width
    draw.rectangle((x0, line_y[0], x1, line_y[-1]), outline=ink, width=2)
    draw.line((x0, line_y[1], x1, line_y[1]), fill=ink, width=2)
    draw.line((left + width, line_y[0], left + width, line_y[-1]), fill=ink, width=2)
    return (image, chars, None) if labels else image


def random_document(rng: random.Random) -> Page | Table:
    """A page of lines or, one time in four, a small table (what the vision tower's pretraining draws)."""
    return random_table(rng) if rng.random() < TABLE_SHARE else random_page(rng)


def draw_document(document: Page | Table, rng: random.Random, size: int = IMAGE_SIZE, labels: bool = False):
    return (draw_table if isinstance(document, Table) else draw_page)(document, rng, size, labels)


@dataclass(frozen=True)
class Example:
    """One training or held-out sample: the picture or sound, what it shows, the question asked."""

    item: Image.Image | np.ndarray | list[Image.Image]  # a PIL image, float32 samples at SAMPLE_RATE, or frames
    truth: Scene | Beeps | Clip | Page | Table
    question: str

    @property
    def answer(self) -> str:
        return self.truth.answer(self.question) or ""


def is_table(index: int) -> bool:
    """Whether document number `index` is a small table (one in four) rather than a page of lines."""
    return random.Random(f"document-kind-{index}").random() < TABLE_SHARE


def example(index: int, modality: str) -> Example:
    """Example number `index` of "image", "audio", "clip" or "document"; indices from HELD_OUT on are
    held out from training. The same on every machine."""
    if modality == "clip":
        rng = random.Random(f"clip-{index}")
        clip = random_clip(rng)
        return Example(draw_clip(clip, rng), clip, rng.choice(CLIP_QUESTIONS))
    if modality == "document" and is_table(index):
        rng = random.Random(f"table-{index}")  # its own seeds: the pages of the other indices stay as they were
        table = random_table(rng)
        return Example(draw_table(table, rng), table, rng.choice(table.questions))
    if modality == "document":
        rng = random.Random(f"document-{index}")
        page = random_page(rng)
        numbered = [i for i, line in enumerate(page.lines) if line.isdigit()]
        question = (DOCUMENT_QUESTIONS[0].format(n=rng.choice(numbered) + 1)
                    if numbered and rng.random() < 0.5 else DOCUMENT_QUESTIONS[1])
        return Example(draw_page(page, rng), page, question)
    rng = random.Random(index * 2 + (modality == "audio"))
    if modality == "image":
        scene = random_scene(rng)
        return Example(draw_scene(scene, rng), scene, rng.choice(IMAGE_QUESTIONS))
    beeps = random_beeps(rng)
    return Example(render_beeps(beeps, rng), beeps, rng.choice(AUDIO_QUESTIONS))
