"""The pocket chat pair's data: Gemma 4's turn format, its control tokens, and synthetic dialogues.

The pocket chat target is the pocket target fine-tuned to speak in Gemma 4's turns and to think on
request (Google, "Gemma 4 prompt formatting", https://ai.google.dev/gemma/docs/core/prompt-formatting-gemma4):

    <bos><|turn>system\\n<|think|><turn|>\\n            (only when thinking is on, or a system message is given)
    <|turn>user\\nWhat is 478 + 65?<turn|>\\n
    <|turn>model\\n<|channel>thought\\n...working...<channel|>The answer is 543.<turn|>

With thinking off the model answers straight after `<|turn>model\\n`. Model turns in the history are
rendered without their thoughts, as Gemma 4's own template does.

Dialogues have checkable answers: 2-3-digit addition and subtraction, sorting 3-5 numbers, counting a
letter in a word, follow-ups that refer to the previous answer ("Now add 7 to that."), and a greeting.
Thoughts are the step-by-step working in one fixed, regular format per task (column arithmetic with
carries and borrows, selection sort, spelling with a running count): a 15M-parameter model learns a
regular format fast. Numbers the model writes are one token per digit (the pocket BPE merges digits
oddly: "933" is " ", "9", "33"), so the answer still reads "The answer is 933.".

Phrasings: many question templates per task with random casing, punctuation and politeness; one
quarter of the templates, prefixes and suffixes are held out (split "eval") and never trained on.
Everything is deterministic given (seed, split).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

# Gemma 4's control tokens that the pocket tokenizer lacked, put in its unused slots (ids 14-20)
CONTROL_TOKENS = {
    "<unused0>": "<|channel>", "<unused1>": "<channel|>", "<unused2>": "<|tool_call>", "<unused3>": "<tool_call|>",
    "<unused4>": "<|tool_response>", "<unused5>": "<tool_response|>", "<unused6>": '<|"|>',
}
TURN_OPEN, TURN_CLOSE, THINK, CHANNEL_OPEN, CHANNEL_CLOSE = "<|turn>", "<turn|>", "<|think|>", "<|channel>", "<channel|>"
THOUGHT_PREFIX = CHANNEL_OPEN + "thought\n"

# Gemma 4's format: system turn with <|think|> when thinking is on; earlier model turns without thoughts.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set thinking = enable_thinking is defined and enable_thinking -%}"
    "{%- set loop_messages = messages -%}"
    "{%- set system = none -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] | trim -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- endif -%}"
    "{%- if thinking or system is not none -%}"
    "{{- '<|turn>system\\n' -}}"
    "{%- if thinking -%}{{- '<|think|>' -}}{%- endif -%}"
    "{%- if system is not none -%}{{- system -}}{%- endif -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] in ('assistant', 'model') else message['role'] -%}"
    "{%- set content = message['content'] -%}"
    "{%- if role == 'model' and '<channel|>' in content -%}"
    "{%- set content = content.split('<channel|>')[-1] -%}"
    "{%- endif -%}"
    "{{- '<|turn>' + role + '\\n' + content | trim + '<turn|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}{%- endif -%}"
)


def make_tokenizer(src: Path, dst: Path) -> None:
    """Copy the pocket tokenizer to `dst`, naming ids 14-20 as Gemma 4's control tokens and writing
    the chat template. The vocabulary and merges are unchanged: every other id means what it meant."""
    dst.mkdir(parents=True, exist_ok=True)
    tok = json.loads((src / "tokenizer.json").read_text())
    for added in tok["added_tokens"]:
        if added["content"] in CONTROL_TOKENS:
            added["content"] = CONTROL_TOKENS[added["content"]]
    vocab = tok["model"]["vocab"]
    for old, new in CONTROL_TOKENS.items():
        if old in vocab:
            vocab[new] = vocab.pop(old)
    (dst / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2) + "\n")
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg["extra_special_tokens"] = [CONTROL_TOKENS.get(t, t) for t in cfg["extra_special_tokens"]]
    cfg.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n")
    (dst / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    for extra in src.iterdir():
        if extra.name not in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            shutil.copyfile(extra, dst / extra.name)


# ---------------------------------------------------------------------------------------------
# Phrasings. Every list is split: the last quarter (every 4th item, by position) is held out.

ADD = [
    "What is {a} + {b}?", "What's {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
    "{a} + {b} = ?", "Can you add {a} to {b}?", "What do you get when you add {a} and {b}?",
    "Sum {a} and {b}.", "Calculate {a} plus {b}.", "How much is {a} + {b}?", "{a} plus {b}?",
    "Find the sum of {a} and {b}.", "What is the sum of {a} and {b}?", "Work out {a} + {b}.",
    "If I have {a} and get {b} more, how many do I have?", "Add {b} to {a}.", "Tell me {a} + {b}.",
    "What does {a} + {b} come to?", "{a} and {b} added together is?", "Solve {a} + {b}.",
    "I need {a} + {b}.", "Total of {a} and {b}?", "Give me the total of {a} and {b}.",
    "What is {a} added to {b}?", "Increase {a} by {b}.", "How much are {a} and {b} together?",
    "Evaluate {a}+{b}.", "{a}+{b}", "Plus: {a} and {b}.", "Do {a} + {b} for me.",
    "What number is {b} more than {a}?", "Combine {a} and {b}: what's the total?",
]
SUB = [
    "What is {a} - {b}?", "What's {a} minus {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.",
    "{a} - {b} = ?", "Can you take {b} away from {a}?", "What do you get when you subtract {b} from {a}?",
    "Calculate {a} minus {b}.", "How much is {a} - {b}?", "{a} minus {b}?",
    "Find the difference between {a} and {b}.", "What is the difference of {a} and {b}?",
    "Work out {a} - {b}.", "If I have {a} and give away {b}, how many are left?", "Take {b} from {a}.",
    "Tell me {a} - {b}.", "What does {a} - {b} come to?", "Solve {a} - {b}.", "I need {a} - {b}.",
    "What is {a} take away {b}?", "Decrease {a} by {b}.", "How much is left when {b} is taken from {a}?",
    "Evaluate {a}-{b}.", "{a}-{b}", "Minus: {a} less {b}.", "Do {a} - {b} for me.",
    "What number is {b} less than {a}?", "Reduce {a} by {b}: what's left?",
]
SORT = [
    "Sort these numbers: {l}.", "Put {l} in order.", "Sort {l} from smallest to largest.",
    "Arrange {l} in ascending order.", "Can you sort {l}?", "Order these from low to high: {l}.",
    "Sort: {l}", "Please put these in increasing order: {l}.", "What is {l} sorted?",
    "List {l} from least to greatest.", "Rank {l} smallest first.", "Sort the list {l}.",
    "Give me {l} in order.", "Ascending order of {l}?", "Rearrange {l} so they go up.",
    "Order {l}.", "Smallest to biggest: {l}.", "Help me sort {l}.", "Sort the numbers {l} for me.",
    "How do {l} look sorted?", "Put these numbers in order, lowest first: {l}.",
    "{l}: sort them.", "Line up {l} from small to large.", "Can you order {l} ascending?",
]
COUNT = [
    'How many {c}\'s are in "{w}"?', 'Count the letter {c} in {w}.', 'How many times does {c} appear in {w}?',
    'In the word "{w}", how many {c}s are there?', 'Count {c} in "{w}".', 'How often is the letter {c} in {w}?',
    'Number of {c} in {w}?', 'How many letter {c} does "{w}" have?', 'Count how many {c}s the word {w} has.',
    'Tell me how many {c}\'s "{w}" contains.', 'In {w}, count the {c}s.', 'How many {c} are there in the word {w}?',
    'Does "{w}" have any {c}? How many?', 'Letter count: {c} in {w}.', 'How many times is {c} used in "{w}"?',
    'What is the number of {c}\'s in {w}?', 'Find how many {c} letters are in {w}.',
    'Spell {w} and count the {c}s.', 'Count occurrences of {c} in {w}.', '"{w}": how many {c}?',
    'How many {c}s does {w} contain?', 'Check {w} for the letter {c}: how many?',
    'I wonder how many {c}\'s are in {w}.', 'Give me the count of {c} in "{w}".',
]
FOLLOW_ADD = [
    "Now add {n} to that.", "And add {n}?", "Plus {n}?", "Add {n} more.", "What if you add {n}?",
    "Now add {n}.", "Add {n} to the result.", "And {n} more?", "Then add {n}.", "Increase that by {n}.",
    "Now plus {n}.", "What is that plus {n}?", "Add another {n}.", "And if I add {n} to it?",
    "Take that and add {n}.", "Now {n} more.",
]
FOLLOW_SUB = [
    "Now subtract {n} from that.", "And subtract {n}?", "Minus {n}?", "Take away {n}.",
    "What if you subtract {n}?", "Now subtract {n}.", "Subtract {n} from the result.", "And {n} less?",
    "Then take away {n}.", "Decrease that by {n}.", "Now minus {n}.", "What is that minus {n}?",
    "Take {n} off.", "And if I take {n} from it?", "Take that and subtract {n}.", "Now {n} fewer.",
]
GREET = ["Hello!", "Hi there.", "Hey, who are you?", "Good morning!", "What can you do?", "Hi!",
         "Hello, can you help me?", "Yo!"]
PREFIX = ["", "", "", "", "Please ", "Hey, ", "Quick question: ", "Hi! ", "Could you help? ",
          "Excuse me, ", "OK. ", "So, ", "Hmm, ", "I have a question. ", "Question: ", "Hello. "]
SUFFIX = ["", "", "", "", " Thanks!", " Please.", " Thank you.", " Quickly, please.", " :)", " Cheers.",
          " Show your answer.", " Be precise.", " thx", " Go.", " Ty!", " Thanks a lot."]
SYSTEMS = [None, None, None, "You are a helpful assistant.", "You are a careful math helper.",
           "Answer briefly.", "You are Pocket, a tiny assistant.", "Be concise."]
WORDS = """strawberry banana apple letter little mississippi committee balloon coffee bookkeeper
assessment pepper puppy rabbit summer winter yellow hello bottle butter cabbage parallel success
tomorrow occurrence address accessory dinner mirror terror error carrot arrow barrel cherry
berry sorrow narrow happy paper pizza jazz fizz buzz puzzle dazzle needle cheese freedom tree
engineer referee teeth beetle keeper sleep green queen screen street week moon spoon school
balloon cool noodle kangaroo igloo goose book cookie bubble rubber number lemon melon banana
potato tomato avocado elephant giraffe zebra monkey donkey turkey hockey keyboard computer
program python window river rocket pocket ticket basket planet garden orange purple silver
golden table chair pillow blanket candle castle kitten mitten button cotton ribbon robot""".split()
WORDS = list(dict.fromkeys(WORDS))
LETTERS = "abcdefghijklmnoprstuy"


def split_list(items: list, split: str) -> list:
    """Three quarters of a phrasing list for training, every fourth item held out for evaluation."""
    keep = [x for i, x in enumerate(items) if (i % 4 == 3) == (split == "eval")]
    return keep or items


def dress(rng: random.Random, text: str, split: str) -> str:
    """Random prefix, suffix, casing and end punctuation (the held-out split has its own)."""
    text = rng.choice(split_list(PREFIX, split)) + text
    if rng.random() < 0.2:
        text = text.rstrip("?.!")
    elif rng.random() < 0.15:
        text = text.rstrip("?.!") + rng.choice(["??", "!", " ?", "..."])
    text = text + rng.choice(split_list(SUFFIX, split))
    r = rng.random()
    if r < 0.15:
        text = text.lower()
    elif r < 0.2:
        text = text.upper() if len(text) < 60 else text
    elif r < 0.3:
        text = text[0].lower() + text[1:]
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Working (the thought) for each task, in one regular format.

PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands"]


def digits(n: int, width: int) -> str:
    return " ".join(str(n).zfill(width))


def add_working(a: int, b: int) -> str:
    width = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]
    lines, carry, out = [f"{digits(a, width)} + {digits(b, width)}"], 0, []
    for i in range(width):
        s = int(da[i]) + int(db[i]) + carry
        lines.append(f"{PLACES[i]}: {da[i]} + {db[i]} + {carry} = {s}, write {s % 10}, carry {s // 10}")
        carry = s // 10
        out.append(s % 10)
    if carry:
        lines.append(f"{PLACES[width]}: carry 1, write 1")
        out.append(1)
    lines.append("result: " + " ".join(str(d) for d in reversed(out)))
    return "\n".join(lines)


def sub_working(a: int, b: int) -> str:
    width = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]
    lines, borrow, out = [f"{digits(a, width)} - {digits(b, width)}"], 0, []
    for i in range(width):
        x, y = int(da[i]), int(db[i]) + borrow
        if x >= y:
            lines.append(f"{PLACES[i]}: {db[i]} + {borrow} = {y}, {x} >= {y}, {x} - {y} = {x - y}, write {x - y}, borrow 0")
            out.append(x - y)
            borrow = 0
        else:
            lines.append(f"{PLACES[i]}: {db[i]} + {borrow} = {y}, {x} < {y}, 1{x} - {y} = {10 + x - y}, "
                         f"write {10 + x - y}, borrow 1")
            out.append(10 + x - y)
            borrow = 1
    lines.append("result: " + " ".join(str(d) for d in reversed(out)))
    return "\n".join(lines)


def sort_working(nums: list[int]) -> str:
    rest, lines = list(nums), ["list: " + ", ".join(map(str, nums))]
    while len(rest) > 1:
        m = min(rest)
        rest.remove(m)
        lines.append(f"smallest {m}, rest " + ", ".join(map(str, rest)))
    lines.append(f"last {rest[0]}")
    lines.append("sorted: " + ", ".join(map(str, sorted(nums))))
    return "\n".join(lines)


def count_working(word: str, letter: str) -> str:
    n, parts = 0, []
    for ch in word:
        if ch == letter:
            n += 1
            parts.append(f"{ch} {n}")
        else:
            parts.append(ch)
    return f"{word}: " + ", ".join(parts) + f"\ntotal {n}"


# ---------------------------------------------------------------------------------------------
# Dialogues


@dataclass
class Dialogue:
    messages: list[dict]  # the history and the last user turn (no thoughts), as a user would pass them
    thought: str  # the working of the last model turn
    answer: str  # the last model turn's visible text
    value: object  # the checkable answer: an int, or a list of ints
    task: str  # add, sub, sort, count, follow_add, follow_sub, greet
    extra: dict = field(default_factory=dict)


def _operands(rng: random.Random) -> tuple[int, int]:
    da, db = rng.choice([2, 3, 3]), rng.choice([2, 3])
    return rng.randrange(10 ** (da - 1), 10 ** da), rng.randrange(10 ** (db - 1), 10 ** db)


def _arith(rng: random.Random, split: str, op: str) -> tuple[str, str, int]:
    a, b = _operands(rng)
    if op == "sub" and a < b:
        a, b = b, a
    if op == "sub" and a == b:
        a += rng.randrange(1, 9)
    template = rng.choice(split_list(ADD if op == "add" else SUB, split))
    working = add_working(a, b) if op == "add" else sub_working(a, b)
    return template.format(a=a, b=b), working, a + b if op == "add" else a - b


def answer_text(task: str, value) -> str:
    if task == "sort":
        return "The sorted list is " + ", ".join(map(str, value)) + "."
    if task == "greet":
        return "Hello! I can add, subtract, sort numbers and count letters."
    return f"The answer is {value}."


def dialogue(rng: random.Random, split: str) -> Dialogue:
    """One dialogue with a checkable last answer; the task mix is fixed."""
    r = rng.random()
    system = rng.choice(SYSTEMS)
    messages = [{"role": "system", "content": system}] if system else []
    if r < 0.27 or r >= 0.97:
        op = "add" if r < 0.27 else "sub"
        question, working, value = _arith(rng, split, op)
        task = op
    elif r < 0.50:
        question, working, value = _arith(rng, split, "sub")
        task = "sub"
    elif r < 0.64:
        nums = rng.sample(range(1, 100), rng.choice([3, 4, 5]))
        question = rng.choice(split_list(SORT, split)).format(l=", ".join(map(str, nums)))
        working, value, task = sort_working(nums), sorted(nums), "sort"
    elif r < 0.78:
        word = rng.choice(WORDS)
        letter = rng.choice(word) if rng.random() < 0.85 else rng.choice(LETTERS)
        question = rng.choice(split_list(COUNT, split)).format(c=letter, w=word)
        working, value, task = count_working(word, letter), word.count(letter), "count"
    elif r < 0.96:
        # a follow-up: one or two earlier arithmetic turns, then "now add 7 to that"
        op = rng.choice(["add", "sub"])
        q, _, prev = _arith(rng, split, op)
        messages += [{"role": "user", "content": dress(rng, q, split)},
                     {"role": "assistant", "content": answer_text(op, prev)}]
        turns = rng.choice([1, 1, 2])
        for turn in range(turns):
            fop = rng.choice(["add", "sub"]) if prev > 30 else "add"
            n = rng.randrange(2, 100) if rng.random() < 0.6 else rng.randrange(100, 400)
            if fop == "sub":
                n = min(n, prev - 1)
            template = rng.choice(split_list(FOLLOW_ADD if fop == "add" else FOLLOW_SUB, split))
            question = template.format(n=n)
            value = prev + n if fop == "add" else prev - n
            working = add_working(prev, n) if fop == "add" else sub_working(prev, n)
            working = f"that is {prev}\n" + working
            if turn < turns - 1:
                messages += [{"role": "user", "content": dress(rng, question, split)},
                             {"role": "assistant", "content": answer_text(fop, value)}]
                prev = value
        task = "follow_" + fop
    else:
        question, working, value, task = rng.choice(split_list(GREET, split)), "a greeting, no working needed", None, "greet"
        messages.append({"role": "user", "content": question})
        return Dialogue(messages, working, answer_text(task, value), value, task)
    messages.append({"role": "user", "content": dress(rng, question, split)})
    return Dialogue(messages, working, answer_text(task, value), value, task)


def dialogues(n: int, seed: int, split: str = "train") -> list[Dialogue]:
    """`n` dialogues, deterministic given (seed, split); split "eval" uses only held-out phrasings."""
    rng = random.Random(f"{split}-{seed}")
    return [dialogue(rng, split) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Tokens



_VOCABS: dict[int, dict] = {}


def _vocab(tokenizer) -> dict:
    if id(tokenizer) not in _VOCABS:
        _VOCABS[id(tokenizer)] = tokenizer.get_vocab()
    return _VOCABS[id(tokenizer)]


def encode_model_text(tokenizer, text: str) -> list[int]:
    """Token ids of text the model writes, one token per digit (" 9", "3", "3" for " 933"); the text
    between digits is encoded as usual. Decodes back to exactly `text`."""
    ids: list[int] = []
    vocab = _vocab(tokenizer)
    for chunk in re.split(r"( ?\d)", text):
        if not chunk:
            continue
        single = chunk.replace(" ", "\u0120")
        if re.fullmatch(r" ?\d", chunk) and single in vocab:
            ids.append(tokenizer.convert_tokens_to_ids(single))
        elif re.fullmatch(r" ?\d", chunk):  # " 9" is no token of the pocket BPE: " " then "9"
            ids += [tokenizer.convert_tokens_to_ids(c) for c in single]
        else:
            ids += tokenizer.encode(chunk, add_special_tokens=False)
    return ids


def completion_text(d: Dialogue, thinking: bool) -> str:
    return (THOUGHT_PREFIX + d.thought + CHANNEL_CLOSE if thinking else "") + d.answer + TURN_CLOSE


def prompt_ids(tokenizer, messages: list[dict], thinking: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         enable_thinking=thinking)
    return tokenizer.encode(text, add_special_tokens=False)


def encode(tokenizer, d: Dialogue, thinking: bool) -> tuple[list[int], int]:
    """(ids, prompt length): the prompt as the chat template renders it, then the model's turn
    (thought if thinking, answer, <turn|>); the loss is on the model's turn only."""
    prompt = prompt_ids(tokenizer, d.messages, thinking)
    done = []
    if thinking:
        done += tokenizer.convert_tokens_to_ids([CHANNEL_OPEN]) + encode_model_text(tokenizer, "thought\n" + d.thought)
        done += tokenizer.convert_tokens_to_ids([CHANNEL_CLOSE])
    done += encode_model_text(tokenizer, d.answer) + tokenizer.convert_tokens_to_ids([TURN_CLOSE])
    return prompt + done, len(prompt)


# ---------------------------------------------------------------------------------------------
# Reading a model's reply


def split_reply(text: str) -> tuple[str | None, str]:
    """(thought or None, answer) of a decoded model turn (special tokens kept)."""
    text = text.split(TURN_CLOSE)[0].replace("<eos>", "")
    if CHANNEL_OPEN in text:
        rest = text.split(CHANNEL_OPEN, 1)[1]
        thought, _, answer = rest.partition(CHANNEL_CLOSE)
        return thought, answer.strip()
    return None, text.strip()


def parse_answer(task: str, answer: str):
    if task == "sort":
        m = re.search(r"sorted list is ([\d, ]+)", answer)
        return [int(x) for x in re.findall(r"\d+", m.group(1))] if m else None
    if task == "greet":
        return None
    m = re.search(r"answer is (-?\d+)", answer)
    return int(m.group(1)) if m else None


def correct(d: Dialogue, answer: str) -> bool:
    if d.task == "greet":
        return answer.startswith("Hello")
    return parse_answer(d.task, answer) == d.value
