"""A build run: its flags, its log, its stages trained with labkit's one loop, and its record.

Every training script of the pocket build writes into one folder `<out>/`:
- `log.jsonl`: one line per event (config, resume, train, eval), appended: a resumed run keeps its past;
- `<stage>.pt`: each stage's checkpoint (`labkit.fit`), so a killed run resumes where it stopped;
- `record.json`: the recipe, what each stage did, and the figures measured; the model cards are
  rendered from records (`pocketbuild.cards`), never from logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from labkit.fit import TrainConfig, fit


@dataclass
class RunArgs:
    """The flags every build script has; a script's own flags subclass it."""

    recipe: str = field(default="full", metadata={"help": "the named recipe in pocketbuild/recipes/ to start from"})
    quick: bool = field(default=False, metadata={"help": "the quick recipe: minutes on 2 CPU cores"})


def parse(args_type: type, recipes: dict[str, Any], argv: list[str] | None = None) -> tuple[Any, Any]:
    """(args, recipe) from the command line: `--recipe NAME` (or `--quick`) picks a named recipe,
    and every scalar field of the recipe is a flag that overrides it (transformers.HfArgumentParser)."""
    from transformers import HfArgumentParser

    argv = sys.argv[1:] if argv is None else argv
    recipe_type = type(next(iter(recipes.values())))
    parser = HfArgumentParser((args_type, recipe_type))
    example = next(iter(recipes.values()))
    for action in parser._actions:
        if action.dest == "recipe":
            action.help = f"the named recipe to start from: {', '.join(recipes)} (pocketbuild/recipes/)"
        elif isinstance(getattr(example, action.dest, None), tuple) or dataclasses.is_dataclass(
                getattr(example, action.dest, None)):  # data, not a flag: stage lists, training configs
            action.help = argparse.SUPPRESS
    first, _ = parser.parse_known_args(argv)
    name = "quick" if getattr(first, "quick", False) else first.recipe
    if name not in recipes:
        parser.error(f"--recipe {name}: choose one of {', '.join(recipes)}")
    chosen = recipes[name]
    parser.set_defaults(**{f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen)})
    args, recipe = parser.parse_args_into_dataclasses(argv)
    args.recipe = name
    return args, recipe


def training_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU (Apple's MPS is untested for training)."""
    from labkit.env import choose

    device = choose(None if name == "auto" else name, torch.float32)[0]
    return torch.device("cpu" if device.startswith("mps") and name == "auto" else device)


def device_name(device: torch.device) -> str:
    """For logs and model cards: `cuda (NVIDIA H200)`, `cpu`."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type


def plain(value: Any) -> Any:
    """A recipe (nested dataclasses, tuples, paths) as JSON-ready data."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


class Run:
    """One script's run in `out`: `stage()` trains, `write()` logs, `record` is saved by `save()`."""

    def __init__(self, out: Path, script: str, recipe_name: str, recipe: Any, **about: Any):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._log = open(self.out / "log.jsonl", "a")
        old = self.out / "record.json"
        self.record = json.loads(old.read_text()) if old.exists() else {"stages": {}}
        self.record.update(script=script, recipe_name=recipe_name, recipe=plain(recipe), **plain(about))
        self.write({"kind": "config", "recipe_name": recipe_name, **self.record["recipe"], **plain(about)})

    def write(self, event: dict) -> None:
        self._log.write(json.dumps({**event, "time": time.time()}) + "\n")
        self._log.flush()  # others (and tests) tail this file while we train

    def stage(self, name: str, model: torch.nn.Module, cfg: TrainConfig,
              loss_at: Callable[[int], tuple[torch.Tensor, dict]], *,
              then: Callable[[int], tuple[torch.Tensor, dict]] | None = None,
              evaluate: Callable[[], dict] | None = None, offset: int = 0) -> list[dict]:
        """Train one stage with `labkit.fit.fit`, checkpointed in `<out>/<name>.pt`: a progress bar,
        a log line every cfg.log_every steps, `evaluate()` (a dict of figures) before the first step
        and every cfg.eval_every steps. Its entry in the record: the config, the steps, the minutes,
        where it resumed, the last logged line and the evaluations. `offset` shifts the logged steps
        (stages that continue one count)."""
        from tqdm.auto import tqdm

        entry = self.record["stages"].setdefault(name, {"evals": [], "resumed_at": [], "seconds": 0.0})
        entry.update(config=dataclasses.asdict(cfg), params=sum(p.numel() for p in model.parameters()
                                                                 if p.requires_grad))
        ckpt = self.out / f"{name}.pt"

        def run_eval(step: int) -> None:
            figures = {"stage": name, "step": offset + step, **evaluate()}
            self.write({"kind": "eval", **figures})
            entry["evals"].append(figures)

        bar = None

        def start(done: int) -> None:  # fit has loaded the checkpoint, if there is one
            nonlocal bar
            if 0 < done < cfg.steps:  # a stage that ran to its end is only loaded back
                self.write({"kind": "resume", "stage": name, "step": done})
                entry["resumed_at"].append(done)
            if evaluate is not None and done == 0:
                run_eval(0)
            # redraw at most every few seconds when logging to a file (nohup), live in a terminal
            bar = tqdm(total=cfg.steps, initial=done, desc=name, dynamic_ncols=True,
                       mininterval=0.1 if sys.stderr.isatty() else 5.0)

        t0 = time.time()

        def every(record: dict) -> None:
            step = record["step"]
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", refresh=False)
            if step % cfg.log_every == 0 or step == cfg.steps:
                line = {"kind": "train", "stage": name, **record, "step": offset + step}
                self.write(line)
                entry["last"] = line
            if evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                run_eval(step)

        history = fit(model, cfg, loss_at, checkpoint=ckpt, then=then, start=start, every=every)
        bar.close()
        entry["steps"] = cfg.steps
        entry["seconds"] += time.time() - t0
        self.save()
        return history

    def save(self, **figures: Any) -> dict:
        """Add figures to the record and write `<out>/record.json` (atomically)."""
        self.record.update(plain(figures))
        tmp = self.out / "record.json.tmp"
        tmp.write_text(json.dumps(self.record, indent=1) + "\n")
        tmp.replace(self.out / "record.json")
        return self.record
