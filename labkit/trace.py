"""Traces: what happened in every speculative round, as plain data.

A `Trace` is the lab's unit of evidence. The tracer (`labkit.tracing`, transformers' own path) and
the glass-box loop (`labkit.glassbox`) both produce one; metrics, plots and widgets only ever read
traces, so a trace saved to JSON renders anywhere, without torch or a model.

Introduced in `00_tour`; rounds are dissected in `03_verify_and_accept`. Trace sets measured by
`scripts/record_traces.py` ship in data/traces/ (`load_traces`, used from `04_acceptance` on).

Vocabulary (the same in every notebook): a *round* drafts `k` tokens, the target verifies them in
one forward, the longest agreeing prefix is `accepted`, and the target adds one token of its own,
the `bonus` (a correction when a draft was rejected). Round 0 is the prefill: no drafts, one token.

Left out on purpose: batches (speculative decoding here is batch size 1, like transformers'), tree
drafts, and full probability vectors (a round keeps summaries, not `(k, vocab)` tensors).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from labkit.chat import segments as label_segments
from labkit.errors import BadInputError
from labkit.paths import TRACES_DIR

SCHEMA_VERSION = 2  # 2: settings nested in a `Decoding`; schema 1 files (flat settings) still load


@dataclass(frozen=True)
class Decoding:
    """How one generation decodes. `run` builds one from its keywords, `speculate` and
    `trace_generate` take one, and every `Trace` keeps the one it ran with."""

    k: int = 4  # tokens drafted per round (the first round's under "heuristic"); 0 on plain traces
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0  # nucleus cut after the temperature; 1 keeps every token
    schedule: str = "constant"  # "heuristic": k + 2 after a fully accepted round, k - 1 after a rejection
    lossless: bool = True  # transformers' path, sampling: verify argmax drafts as the point masses they are
    kv: str = "exact"  # glass box: "transformers" slices the drafter's K/V as transformers does
    seed: int | None = 0  # sampling seed; None leaves torch's generator alone
    # glass box only, chapter 11's strategies (`labkit.strategies`); the defaults are the one chain of 03
    drafts: str = "sampled"  # "sampled": drafts drawn from q (min(1, p/q)); "argmax": point masses (kept w.p. p(x))
    verify: str = "token"  # "token": stop at the first rejection; "block": Sun et al.'s block verification
    stop_below: float = 0.0  # end a round's drafting after a draft whose top probability is below this
    tree: int = 1  # branches at the first draft position (the drafter's top W), one target pass; 1 = a chain

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def check_model_inputs(model_inputs: dict[str, Any]) -> None:
    """Decoding settings given as loose keywords would travel on to the model as inputs: stop them."""
    loose = sorted(set(model_inputs) & {f.name for f in fields(Decoding)})
    if loose:
        raise TypeError(f"{', '.join(loose)}: decoding settings go in one Decoding, "
                        "e.g. Decoding(k=4, max_new_tokens=32)")


@dataclass(frozen=True)
class Round:
    """One draft → verify → accept round. Round 0 is the prefill (k = 0)."""

    index: int  # 0 for the prefill, then 1, 2, ...
    position: int  # sequence position of the first drafted token (= tokens before this round)
    k: int  # tokens drafted this round (the schedule's choice, possibly cut by max length)
    drafted: tuple[int, ...]  # (k,) drafted token ids
    draft_probs: tuple[float, ...]  # (k,) drafter's probability q(x) of each drafted token
    target_probs: tuple[float, ...]  # (k,) target's probability p(x) of each drafted token
    target_top: tuple[int, ...]  # (k + 1,) target's most likely token at each verified position
    accepted: int  # drafted tokens kept (a prefix of `drafted`)
    emitted: tuple[int, ...]  # tokens this round added: accepted drafts, then the bonus
    t_draft: float  # seconds spent in drafter forwards
    t_verify: float  # seconds spent in the target forward
    t_rest: float  # seconds of everything else in the round (sampling, bookkeeping, cache)
    tv: float | None = None  # exact total variation distance, emitted vs target, first position

    @property
    def bonus(self) -> int | None:
        """The target's own token after the accepted prefix (None if cut by EOS or max length)."""
        return self.emitted[self.accepted] if len(self.emitted) > self.accepted else None

    @property
    def rejected(self) -> bool:
        """True when a drafted token was turned down by the target."""
        return self.accepted < self.k and len(self.emitted) > self.accepted

    @property
    def seconds(self) -> float:
        return self.t_draft + self.t_verify + self.t_rest


@dataclass(frozen=True)
class Trace:
    """A whole generation: the prompt, every round, and the settings that produced it."""

    path: str  # "plain", "transformers" or "glassbox"
    drafter: str  # "none", "mtp", "independent", "prompt-lookup"
    pair: str  # "pocket" or a model id
    prompt_ids: tuple[int, ...]  # (prompt_len,)
    rounds: tuple[Round, ...]  # (n_rounds,)
    settings: Decoding = Decoding(k=0)  # as run; lossless False only for transformers' biased sampling
    wall: float = 0.0  # seconds for the whole call, as the caller saw it
    pieces: tuple[str, ...] = ()  # decoded text of each new token, for plots without a tokenizer
    prompt_text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def new_ids(self) -> tuple[int, ...]:
        return tuple(t for r in self.rounds for t in r.emitted)

    @property
    def output_ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.new_ids

    # the settings read most, by their names in every notebook
    k = property(lambda self: self.settings.k, doc="the starting draft length (0: plain decoding)")
    temperature = property(lambda self: self.settings.temperature, doc="0 means greedy")
    top_p = property(lambda self: self.settings.top_p)
    schedule = property(lambda self: self.settings.schedule)
    lossless = property(lambda self: self.settings.lossless,
                        doc="False only for transformers' MTP sampling rule as shipped, which is biased")

    @property
    def greedy(self) -> bool:
        return self.settings.greedy

    @property
    def target_forwards(self) -> int:
        return len(self.rounds)

    @property
    def decoding(self) -> str:
        """Which decoding path and rule made this trace, in words: every figure names it."""
        mode = "greedy" if self.greedy else f"sampled at T = {self.temperature:g}" + (
            f", top-p {self.top_p:g}" if self.top_p < 1 else "")
        where = {"plain": "plain decoding (target alone)",
                 "transformers": "transformers' assisted generate",
                 "glassbox": "the glass-box loop"}.get(self.path, self.path)
        if self.path != "plain" and self.drafter not in ("mtp", "none"):
            where += f" ({self.drafter} drafter)"
        if not self.greedy and self.path != "plain":
            where += ", lossless" if self.lossless else ", as-shipped MTP sampling (biased)"
        return f"{mode}, {where}"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def segments(self, tokenizer: Any = None) -> tuple[str, ...]:
        """(len(new_ids),) what each new token is part of: "thought", "answer", "tool_call",
        "tool_response" or "template" (`labkit.chat.segments`, `10_chat_and_thinking`). `run` keeps
        them for a chat prompt (in `meta`, so a saved trace has them); any trace is labelled from
        its ids given the tokenizer. The prompt is labelled too, for the state it leaves."""
        if tokenizer is not None:
            return label_segments(self.output_ids, tokenizer)[len(self.prompt_ids):]
        if "segments" in self.meta:
            return tuple(self.meta["segments"])
        raise BadInputError("this trace carries no segment labels (its prompt was not rendered as chat "
                            "turns): pass the tokenizer, trace.segments(pair.tokenizer)")

    def with_pieces(self, tokenizer: Any) -> Trace:
        """Attach decoded pieces and prompt text, so the trace renders without a tokenizer."""
        pieces = tuple(tokenizer.decode([t]) for t in self.new_ids)
        return replace(self, pieces=pieces, prompt_text=tokenizer.decode(list(self.prompt_ids)))

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema: int | None = None) -> Trace:
        data = dict(data)
        schema = data.pop("schema", schema or SCHEMA_VERSION)
        if schema not in (1, SCHEMA_VERSION):
            raise ValueError(f"trace schema {schema} is not {SCHEMA_VERSION}; re-record the trace")
        if schema == 1:  # flat settings; max_new_tokens unrecorded: what was emitted
            flat = {name: data.pop(name) for name in ("temperature", "top_p", "k", "schedule", "lossless")
                    if name in data}
            kv = data.get("meta", {}).get("kv", "exact")
            emitted = sum(len(r["emitted"]) for r in data["rounds"])
            data["settings"] = dict(flat, kv=kv, max_new_tokens=emitted, seed=None)
        data["settings"] = Decoding(**data.get("settings", {}))
        round_names = {f.name for f in fields(Round)}
        rounds = tuple(
            Round(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items() if k in round_names})
            for r in data.pop("rounds")
        )
        tuples = {"prompt_ids", "pieces"}
        data = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        return cls(rounds=rounds, **data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _rounded(value: Any) -> Any:
    """Floats to 5 significant digits, recursively: a shipped trace set stays small and diffable."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def save_traces(path: str | Path, groups: dict[str, list[Trace]], **meta: Any) -> Path:
    """Write named groups of traces (one trace per prompt) and how they were measured to one JSON file."""
    path = Path(path)
    data = {"schema": SCHEMA_VERSION, "meta": meta,
            "groups": {name: [_rounded(asdict(t)) for t in traces] for name, traces in groups.items()}}
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return path


def load_traces(name: str | Path) -> tuple[dict[str, list[Trace]], dict[str, Any]]:
    """A trace set: a file, or the name of one shipped in data/traces/ ("acceptance", "speed").

    Returns ({group name: [trace per prompt]}, meta), meta saying the command, date and machine.
    """
    path = Path(name)
    if not path.suffix:
        path = TRACES_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in TRACES_DIR.glob("*.json"))
        raise FileNotFoundError(f"no trace set {name!r}; the lab ships {known or 'none'} in {TRACES_DIR}")
    data = json.loads(path.read_text())
    schema = data.get("schema")
    if schema not in (1, SCHEMA_VERSION):
        raise ValueError(f"{path.name}: trace schema {schema} is not {SCHEMA_VERSION}; re-record it")
    groups = {name: [Trace.from_dict(t, schema) for t in traces] for name, traces in data["groups"].items()}
    return groups, data["meta"]
