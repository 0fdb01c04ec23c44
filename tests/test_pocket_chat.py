"""The pocket chat pair (data/pocket-chat/, issue 42): its tokenizer carries Gemma 4's control tokens,
its chat template renders Gemma 4's turn format, it thinks on request and only then, and speculation
leaves its greedy output unchanged. Fast: three short held-out questions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from pocketbuild import chat

REPO = Path(__file__).resolve().parents[1]
# POCKET_CHAT_TEST_DIR: a run's pair before it is installed (a folder with target/, drafter/, tokenizer/)
FOLDER = Path(os.environ.get("POCKET_CHAT_TEST_DIR", REPO / "data" / "pocket-chat"))
HAVE_WEIGHTS = all((FOLDER / part / "model.safetensors").exists() for part in ("target", "drafter"))
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="the pocket chat pair's weights are not built")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(FOLDER / "tokenizer")


def test_control_tokens_are_single_ids(tokenizer):
    ids = {"<|turn>": 5, "<turn|>": 6, "<|think|>": 7, "<|channel>": 14, "<channel|>": 15, "<|tool_call>": 16,
           "<tool_call|>": 17, "<|tool_response>": 18, "<tool_response|>": 19, '<|"|>': 20}
    for text, i in ids.items():
        assert tokenizer.encode(text, add_special_tokens=False) == [i]
        assert tokenizer.decode([i]) == text
    assert len(tokenizer) == 4096


def test_template_renders_gemma4_turns(tokenizer):
    messages = [{"role": "user", "content": "What is 12 + 30?"},
                {"role": "assistant", "content": "<|channel>thought\n1 2 + 3 0<channel|>The answer is 42."},
                {"role": "user", "content": "Now add 7 to that."}]
    on = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    assert on == ("<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nWhat is 12 + 30?<turn|>\n"
                  "<|turn>model\nThe answer is 42.<turn|>\n<|turn>user\nNow add 7 to that.<turn|>\n<|turn>model\n")
    off = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert off == on.replace("<|turn>system\n<|think|><turn|>\n", "")
    system = [{"role": "system", "content": "Be concise."}] + messages[:1]
    assert tokenizer.apply_chat_template(system, tokenize=False, enable_thinking=True) == (
        "<bos><|turn>system\n<|think|>Be concise.<turn|>\n<|turn>user\nWhat is 12 + 30?<turn|>\n")


def test_model_text_is_one_token_per_digit(tokenizer):
    ids = chat.encode_model_text(tokenizer, "The answer is 933.")
    assert tokenizer.decode(ids) == "The answer is 933."
    digits = [tokenizer.decode([i]).strip() for i in ids if tokenizer.decode([i]).strip().isdigit()]
    assert digits == ["9", "3", "3"]


def test_dialogues_are_deterministic_and_held_out():
    a, b = chat.dialogues(20, 3, "eval"), chat.dialogues(20, 3, "eval")
    assert [d.messages for d in a] == [d.messages for d in b]
    train_templates = set(chat.split_list(chat.ADD, "train"))
    assert not train_templates & set(chat.split_list(chat.ADD, "eval"))
    assert chat.add_working(478, 65).endswith("result: 5 4 3")
    assert chat.sub_working(503, 67).endswith("result: 4 3 6")


@needs_weights
def test_thinks_on_request_and_speculation_keeps_greedy_output(tokenizer):
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    torch.set_num_threads(1)
    target = Gemma4ForCausalLM.from_pretrained(FOLDER / "target", dtype=torch.float32).eval()
    drafter = Gemma4AssistantForCausalLM.from_pretrained(FOLDER / "drafter", dtype=torch.float32).eval()
    drafter.generation_config.num_assistant_tokens = 4
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    assert json.loads((FOLDER / "target" / "generation_config.json").read_text())["eos_token_id"] == [6, 1]
    # three short held-out questions (single-turn additions, subtractions and counts)
    items = [d for d in chat.dialogues(40, 1000, "eval") if d.task in ("add", "sub", "count")
             and len(d.messages) <= 2][:3]
    for d in items:
        for thinking in (True, False):
            x = torch.tensor([chat.prompt_ids(tokenizer, d.messages, thinking)])
            kw = dict(attention_mask=torch.ones_like(x), max_new_tokens=160, do_sample=False, top_k=50, top_p=1.0,
                      eos_token_id=[6, 1], pad_token_id=0)
            with torch.no_grad():
                plain = target.generate(x, **kw)[0, x.shape[1]:].tolist()
                spec = target.generate(x, assistant_model=drafter, **kw)[0, x.shape[1]:].tolist()
            assert spec == plain
            assert plain[-1] == 6  # the turn ends with <turn|>
            assert (14 in plain) == thinking, tokenizer.decode(plain)
            if thinking:
                assert plain[0] == 14 and 15 in plain
