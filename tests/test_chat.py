"""Chat prompts (issue 42's API): messages rendered by the chat template, thinking on and off,
segment labels on a trace, acceptance and tau per segment, and the same call on a folder pair
carrying a Gemma 4-format template. On the pocket weights with the pocket chat tokenizer
(Gemma 4's control tokens in the pocket tokenizer's unused slots), so it needs no chat training.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from dataclasses import replace

import pytest
from transformers import AutoTokenizer

import labkit
from labkit import chat, generation, loading, metrics
from labkit.errors import BadInputError, ModelNotFoundError
from labkit.paths import POCKET_CHAT_DIR, REPO_ROOT
from labkit.trace import Round, Trace

CHAT_TOKENIZER = POCKET_CHAT_DIR / "tokenizer"
QUESTION = [{"role": "user", "content": "What is 478 + 65?"}]

# A Gemma 4-format template, written for this test from Google's "Gemma 4 prompt formatting" page and
# the released templates' behaviour (condensed: no tool declarations, text content only): the system
# turn carries "<|think|>\n" when thinking is on; with thinking off the generation prompt closes an
# empty thought channel, as the 26B/31B templates do (E2B/E4B's end at "<|turn>model\n"); tool calls
# and responses sit in their own control tokens, strings between <|"|>.
GEMMA4_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set thinking = enable_thinking | default(false) -%}"
    "{%- set loop_messages = messages -%}"
    "{%- if thinking or messages[0]['role'] == 'system' -%}"
    "{{- '<|turn>system\\n' -}}{%- if thinking -%}{{- '<|think|>\\n' -}}{%- endif -%}"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] | trim -}}"
    "{%- set loop_messages = messages[1:] -%}{%- endif -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- for m in loop_messages -%}"
    "{{- '<|turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' -}}"
    "{%- for call in m.get('tool_calls') or [] -%}"
    "{{- '<|tool_call>call:' + call['name'] + '{' -}}"
    "{%- for key, value in call['arguments'] | dictsort -%}"
    "{{- key + ':' + ('<|\"|>' + value + '<|\"|>' if value is string else value | string) -}}"
    "{%- if not loop.last -%},{%- endif -%}"
    "{%- endfor -%}{{- '}<tool_call|>' -}}"
    "{%- endfor -%}"
    "{%- if m['role'] == 'tool' -%}{{- '<|tool_response>response:' + m['content'] + '<tool_response|>' -}}"
    "{%- elif m['content'] -%}{{- m['content'] | trim -}}{%- endif -%}"
    "{{- '<turn|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}"
    "{%- if not thinking -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}{%- endif -%}"
)


def _need_chat_tokenizer() -> None:
    if not (CHAT_TOKENIZER / "tokenizer.json").exists():
        pytest.skip(f"no pocket chat tokenizer in {CHAT_TOKENIZER} (pocketbuild/chat.py make_tokenizer writes it)")


@pytest.fixture(scope="module")
def tok():
    _need_chat_tokenizer()
    return AutoTokenizer.from_pretrained(CHAT_TOKENIZER)


@pytest.fixture(scope="module")
def pair(tok):
    """The pocket weights with the chat tokenizer, dressed as the pocket chat pair."""
    pocket = labkit.load_pair("pocket", device="cpu")
    return replace(pocket, tokenizer=tok, target_id=str(POCKET_CHAT_DIR / "target"), name="pocket (chat)")


def _ids(tok, *parts: str) -> list[int]:
    """Ids of hand-written pieces: a control token by name, other text encoded as it is."""
    out: list[int] = []
    for part in parts:
        single = tok.convert_tokens_to_ids(part)
        out += [single] if part in tok.all_special_tokens else tok.encode(part, add_special_tokens=False)
    return out


# -- rendering ---------------------------------------------------------------------------------------


def test_messages_render_in_turns_with_think_in_the_system_turn(pair, tok):
    on = tok.decode(generation.encode(pair, QUESTION, thinking=True)[0].tolist())
    off = tok.decode(generation.encode(pair, QUESTION, thinking=False)[0].tolist())
    assert on == "<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nWhat is 478 + 65?<turn|>\n<|turn>model\n"
    assert off == "<bos><|turn>user\nWhat is 478 + 65?<turn|>\n<|turn>model\n"
    system = [{"role": "system", "content": "Be brief."}, *QUESTION,
              {"role": "assistant", "content": "<|channel>thought\n478+65<channel|>The answer is 543."},
              {"role": "user", "content": "Now add 7 to that."}]
    text = tok.decode(generation.encode(pair, system, thinking=True)[0].tolist())
    assert text.startswith("<bos><|turn>system\n<|think|>Be brief.<turn|>\n")
    # earlier model turns go back without their thoughts, as Gemma 4's template does
    assert "<|turn>model\nThe answer is 543.<turn|>\n<|turn>user\nNow add 7 to that.<turn|>\n<|turn>model\n" in text
    # a string prompt to the chat pair is one user turn (chat=None: speaks_chat)
    assert generation.speaks_chat(pair)
    assert generation.encode(pair, "What is 478 + 65?").tolist() == generation.encode(pair, QUESTION).tolist()


# -- the segment labeller -------------------------------------------------------------------------------


def test_segments_of_a_thinking_reply(tok):
    ids = _ids(tok, "<|turn>", "model\n", "<|channel>", "thought\n", "8+5=13", "<channel|>", "The answer is 13.",
               "<turn|>")
    pieces = [tok.decode([i]) for i in ids]
    labels = chat.segments(ids, tok)
    assert len(labels) == len(ids)
    got = {p: s for p, s in zip(pieces, labels)}
    for p in ("<|turn>", "mod", "el", "\n", "<|channel>", "th", "ought", "<channel|>", "<turn|>"):
        assert got[p] == "template", p
    first_thought = pieces.index("8")
    assert set(labels[first_thought:pieces.index("<channel|>")]) == {"thought"}
    assert set(labels[pieces.index("The"):-1]) == {"answer"}
    assert labels[:first_thought] == ("template",) * first_thought


def test_segments_of_a_tool_call_and_its_response(tok):
    ids = _ids(tok, "<|tool_call>", "call:add{a:", '<|"|>', "478", '<|"|>', "}", "<tool_call|>",
               "<|tool_response>", "response:543", "<tool_response|>", "It is 543.", "<turn|>", "\n")
    labels = chat.segments(ids, tok)
    pieces = [tok.decode([i]) for i in ids]
    inside_call = labels[1:pieces.index("<tool_call|>")]
    assert set(inside_call) == {"tool_call", "template"}  # <|"|> is a control token: template
    assert [lab for p, lab in zip(pieces, labels) if p == '<|"|>'] == ["template", "template"]
    response = labels[pieces.index("<|tool_response>") + 1:pieces.index("<tool_response|>")]
    assert set(response) == {"tool_response"}
    assert set(labels[pieces.index("<tool_response|>") + 1:pieces.index("<turn|>")]) == {"answer"}
    assert labels[-1] == "template"  # between turns


def test_segments_carry_the_prompts_state(tok):
    """A prompt that ends inside a thought channel: the first new tokens are thought, not answer."""
    ids = _ids(tok, "<|turn>", "model\n", "<|channel>", "thought\n", "carry 1", "<channel|>", "Done.")
    labels = chat.segments(ids, tok)
    cut = len(_ids(tok, "<|turn>", "model\n", "<|channel>", "thought\n"))
    assert labels[cut] == "thought" and labels[-1] == "answer"
    # a control token ends a header: an empty channel closes straight into the answer
    empty = chat.segments(_ids(tok, "<|channel>", "<channel|>", "Hi"), tok)
    assert empty[-1] == "answer"


# -- by_segment ---------------------------------------------------------------------------------------


def _round(i, k, drafted, accepted, emitted):
    return Round(index=i, position=0, k=k, drafted=tuple(drafted), draft_probs=(1.0,) * k,
                 target_probs=(1.0,) * k, target_top=(0,) * (k + 1), accepted=accepted, emitted=tuple(emitted),
                 t_draft=0.0, t_verify=0.0, t_rest=0.0)


def test_by_segment_attributes_drafts_to_their_positions_and_sums_up():
    rounds = (
        _round(0, 0, [], 0, [10]),                    # prefill: 1 token, position 0 (template)
        _round(1, 3, [11, 12, 13], 1, [11, 20]),      # drafts for 1, 2, 3; 1 accepted, 2 rejected
        _round(2, 3, [21, 22, 23], 3, [21, 22, 23, 24]),  # positions 3..5 all accepted, bonus at 6
        _round(3, 2, [30, 31], 0, [32]),              # position 7 rejected; draft for 8 never judged
    )
    trace = Trace(path="glassbox", drafter="mtp", pair="test", prompt_ids=(1, 2), rounds=rounds)
    labels = ("template", "thought", "thought", "thought", "answer", "answer", "answer", "answer")
    assert len(labels) == len(trace.new_ids)
    seg = metrics.by_segment([trace], [labels])
    assert list(seg) == ["thought", "answer", "template"]  # the order of chat.SEGMENTS
    assert seg["template"] == {**seg["template"], "tokens": 1, "drafted": 0, "judged": 0, "rounds": 1, "tau": 1.0}
    assert math.isnan(seg["template"]["acceptance"])
    # thought: positions 1, 2, 3 (round 1) and 3 (round 2): accepted 1 + 1, judged 2 + 1
    assert {k: seg["thought"][k] for k in ("tokens", "drafted", "judged", "accepted", "rounds")} == \
        {"tokens": 3, "drafted": 4, "judged": 3, "accepted": 2, "rounds": 2}
    # answer: positions 4, 5 (round 2), 7 and 8 (round 3; 8 is past the end: counted nowhere)
    assert {k: seg["answer"][k] for k in ("tokens", "drafted", "judged", "accepted", "rounds")} == \
        {"tokens": 4, "drafted": 3, "judged": 3, "accepted": 2, "rounds": 1}
    # rounds 1 and 2 start at positions 1 and 3 (thought): 2 + 4 tokens, though 3 of them are answer
    assert seg["thought"]["tau"] == 3.0 and seg["answer"]["tau"] == 1.0
    assert sum(s["rounds"] for s in seg.values()) == trace.target_forwards
    total = sum(s["tokens"] for s in seg.values())
    assert total == len(trace.new_ids)
    assert sum(s["accepted"] for s in seg.values()) == sum(r.accepted for r in rounds)
    judged = sum(s["judged"] for s in seg.values())
    assert sum(s["accepted"] for s in seg.values()) / judged == pytest.approx(metrics.alpha(trace))
    for s in seg.values():
        if s["judged"]:
            lo, hi = s["interval"]
            assert 0 <= lo <= s["acceptance"] <= hi <= 1
            assert (lo, hi) == metrics.wilson(s["accepted"], s["judged"])


def test_by_segment_on_a_run_matches_tau_and_alpha(pair, tok):
    traces = [labkit.run(pair, [{"role": "user", "content": q}], thinking=t, max_new_tokens=20, k=3)
              for q, t in (("What is 12 + 30?", True), ("Sort 5, 3, 9.", False))]
    seg = metrics.by_segment(traces)
    relabelled = metrics.by_segment(traces, tok)  # labels kept by run == labels from the tokenizer
    assert {s: (v["tokens"], v["accepted"], v["judged"], v["rounds"]) for s, v in seg.items()} == \
        {s: (v["tokens"], v["accepted"], v["judged"], v["rounds"]) for s, v in relabelled.items()}
    assert sum(s["rounds"] * s["tau"] for s in seg.values()) == pytest.approx(sum(len(t.new_ids) for t in traces))
    assert sum(s["rounds"] for s in seg.values()) == sum(t.target_forwards for t in traces)
    assert sum(s["rounds"] * s["tau"] for s in seg.values()) / sum(s["rounds"] for s in seg.values()) == \
        pytest.approx(metrics.tau(traces))
    with pytest.raises(BadInputError, match="one label per new token"):
        metrics.by_segment(traces, [("answer",)])
    saved = Trace.from_dict(json.loads(json.dumps(traces[0].to_dict())))
    assert saved.segments() == traces[0].segments()  # a saved chat trace keeps its labels


# -- runs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [True, False])
def test_greedy_chat_run_is_identical_plain_and_speculative(pair, thinking):
    kw = dict(thinking=thinking, max_new_tokens=24, k=3)
    plain = labkit.run(pair, QUESTION, path="plain", **kw)
    spec = labkit.run(pair, QUESTION, path="transformers", **kw)
    glass = labkit.run(pair, QUESTION, path="glassbox", **kw)
    assert plain.new_ids == spec.new_ids == glass.new_ids
    assert len(spec.segments()) == len(spec.new_ids) and spec.meta["thinking"] is thinking
    assert ("<|think|>" in spec.prompt_text) is thinking


def test_a_chat_run_stops_at_the_end_of_its_turn(pair, tok, monkeypatch):
    seen = {}

    def fake(*args, eos_token_id=None, **kw):
        seen["eos"] = eos_token_id
        raise KeyboardInterrupt

    monkeypatch.setattr(generation, "trace_generate", fake)
    for prompt in (QUESTION, "text to continue"):
        with pytest.raises(KeyboardInterrupt):
            generation.run(pair, prompt, max_new_tokens=4, **({} if isinstance(prompt, str) else {"thinking": True}))
        assert tok.convert_tokens_to_ids("<turn|>") in seen["eos"]  # the string is a user turn: speaks_chat
    base = replace(pair, target_id="data/pocket/target", name="pocket")
    with pytest.raises(KeyboardInterrupt):
        generation.run(base, "text to continue", max_new_tokens=4)
    assert seen["eos"] == pair.target.generation_config.eos_token_id  # raw text: the target's own


def test_refusals_say_what_to_do(pair, tok):
    with pytest.raises(BadInputError, match="one prompt at a time"):
        labkit.run(pair, [QUESTION, QUESTION])
    with pytest.raises(BadInputError, match="'role'"):
        labkit.run(pair, [{"content": "hi"}])
    with pytest.raises(BadInputError, match="no user turn"):
        labkit.run(pair, [{"role": "system", "content": "Be brief."}])
    with pytest.raises(BadInputError, match="chat=False"):
        labkit.run(pair, QUESTION, chat=False)
    base = labkit.load_pair("pocket", device="cpu")  # the base pocket pair: raw text, a template without thinking
    assert not generation.speaks_chat(base)
    with pytest.raises(BadInputError, match="needs a chat prompt"):
        labkit.run(base, "What is 2 + 3?", thinking=True)
    with pytest.raises(BadInputError, match="no thinking switch"):
        labkit.run(base, QUESTION, thinking=True)
    bare = AutoTokenizer.from_pretrained(CHAT_TOKENIZER)
    bare.chat_template = None
    with pytest.raises(BadInputError, match="no chat template"):
        labkit.run(replace(base, tokenizer=bare), QUESTION)


def test_pocket_chat_pair_loads_or_says_how_to_build_it(tmp_path, monkeypatch):
    if (POCKET_CHAT_DIR / "target" / "config.json").exists() and (POCKET_CHAT_DIR / "drafter" / "config.json").exists():
        chat_pair = labkit.load_pair("pocket-chat", device="cpu")
        assert chat_pair.is_pocket and chat_pair.name.startswith("pocket (chat") and generation.speaks_chat(chat_pair)
    monkeypatch.setattr(loading, "POCKET_CHAT_DIR", tmp_path)
    with pytest.raises(ModelNotFoundError, match="train_chat.py"):
        labkit.load_pair("pocket-chat", device="cpu")


# -- a folder pair with a Gemma 4-format template -----------------------------------------------------


def test_a_folder_it_pair_with_gemma4s_template_takes_the_same_call(tmp_path):
    _need_chat_tokenizer()
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from hub_pair import save_hub_pair

    target, _ = save_hub_pair(tmp_path / "gemma-4-pocket-it")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(CHAT_TOKENIZER / name, target / name)
    (target / "chat_template.jinja").write_text(GEMMA4_TEMPLATE)
    config = json.loads((target / "generation_config.json").read_text())
    (target / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [1, 6]}))  # <eos>, <turn|>
    it = labkit.load_pair(target, device="cpu")
    assert not it.is_pocket and generation.speaks_chat(it)

    off = labkit.run(it, QUESTION, thinking=False, max_new_tokens=12, k=3)
    on = labkit.run(it, QUESTION, thinking=True, max_new_tokens=12, k=3)
    assert off.prompt_text.endswith("<|turn>model\n<|channel>thought\n<channel|>")
    assert on.prompt_text.startswith("<bos><|turn>system\n<|think|>\n<turn|>\n") and on.prompt_text.endswith("model\n")
    assert labkit.run(it, QUESTION, thinking=False, max_new_tokens=12, path="plain").new_ids == off.new_ids
    assert "thought" not in off.segments()  # the empty channel was closed in the prompt

    tool_turns = [*QUESTION, {"role": "assistant", "content": None,
                              "tool_calls": [{"name": "calculator", "arguments": {"expression": "478 + 65", "digits": 3}}]},
                  {"role": "tool", "content": "543"}]
    ids = generation.encode(it, tool_turns, thinking=False)[0].tolist()
    labels = chat.segments(ids, it.tokenizer)
    text = {lab: "".join(it.tokenizer.decode([i]) for i, x in zip(ids, labels) if x == lab) for lab in set(labels)}
    assert text["tool_call"] == "call:calculator{digits:3,expression:478 + 65}"  # <|"|> is template
    assert text["tool_response"] == "response:543"


# -- the tour and the race take messages ----------------------------------------------------------------


def test_tour_and_race_runners_take_messages(pair):
    from labkit.bench import race_runner

    tour = generation.tour_runner(pair, repeats=1, thinking=True, load=lambda name: pytest.fail(f"loaded {name}"))
    label, plain, spec = tour("pocket-chat", QUESTION, labkit.Decoding(k=2, max_new_tokens=8))
    assert label == "pocket pair (chat)" and plain.trace.new_ids == spec.trace.new_ids
    assert "<|think|>" in spec.trace.prompt_text and len(spec.trace.segments()) == len(spec.trace.new_ids)
    race = race_runner(pair, max_new_tokens=8, thinking=False)
    mtp, alone = race(QUESTION, "mtp", 2), race(QUESTION, "none", 1)
    assert mtp.new_ids == alone.new_ids and mtp.prompt_text.endswith("<|turn>model\n")


def test_tour_panel_and_race_widget_send_messages_with_the_edited_turn():
    from labkit.widgets import DrafterRace, TourPanel

    def make_trace(accepted, k, path="glassbox"):  # one drafting round per entry of `accepted`
        rounds = [_round(0, 0, [], 0, [7])] + [_round(i, k, range(10, 10 + k), a, [*range(10, 10 + a), 99])
                                               for i, a in enumerate(accepted, start=1)]
        new = [t for r in rounds for t in r.emitted]
        return Trace(path=path, drafter="mtp", pair="pocket (chat)", prompt_ids=(1, 2), rounds=tuple(rounds),
                     settings=labkit.Decoding(k=k), wall=0.1, pieces=tuple(f"t{t} " for t in new))

    sent = []

    def fake_tour(pair, prompt, settings):
        sent.append(prompt)
        return ("pocket pair (chat)", make_trace((0, 0, 0), k=0, path="plain"), make_trace((2, 0), k=2))

    turns = [{"role": "system", "content": "Be brief."}, *QUESTION]
    panel = TourPanel(fake_tour, turns, pair="pocket-chat")
    assert panel.prompt.value == "What is 478 + 65?" and panel.prompt.description == "message"
    panel.prompt.value = "What is 12 + 30?"
    panel.button.click()
    assert sent[-1] == [turns[0], {"role": "user", "content": "What is 12 + 30?"}] and turns[1] == QUESTION[0]
    assert "pocket pair (chat)" in panel.result.value

    def fake_race(text, method, k):
        sent.append(text)
        return make_trace(accepted=() if method == "none" else (1,), k=max(k, 1))

    race = DrafterRace(fake_race, ("mtp", "none"), examples={"chat": turns, "text": "to be or not"}, ks=(2,), repeats=1)
    race.example.value = "chat"
    assert race.text.value == "What is 478 + 65?"
    race.text.value = "Sort 5, 3, 9."
    race.button.click()
    assert sent[-1] == [turns[0], {"role": "user", "content": "Sort 5, 3, 9."}]
    race.example.value = "text"
    race.button.click()
    assert sent[-1] == "to be or not"
