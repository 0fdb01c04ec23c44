"""The pocket pair's build scripts: a continued drafter run's command line, and model cards
rendered from run records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import model_card  # noqa: E402

from pocketbuild import cards  # noqa: E402
from pocketbuild.recipes import drafter as drafter_recipes  # noqa: E402
from pocketbuild.recipes import multimodal as multimodal_recipes  # noqa: E402
from pocketbuild.runs import parse, plain  # noqa: E402


def _train_drafter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "train_drafter.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_continued_needs_a_checkpoint_to_go_on_from(tmp_path):
    """Argument errors are one line, before any model loads."""
    no_init = _train_drafter("--recipe", "continued", "--out", str(tmp_path / "d"))
    assert no_init.returncode != 0 and "--init" in no_init.stderr and "Traceback" not in no_init.stderr
    missing = _train_drafter("--recipe", "wide", "--init", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "d"))
    assert missing.returncode != 0 and "no such checkpoint" in missing.stderr and "Traceback" not in missing.stderr
    unknown = _train_drafter("--recipe", "huge")
    assert unknown.returncode == 2 and "choose one of" in unknown.stderr
    assert not (tmp_path / "d").exists()


def test_flags_mirror_the_recipe_and_start_from_the_named_one():
    from dataclasses import dataclass

    @dataclass
    class Args:
        recipe: str = "full"
        quick: bool = False

    args, recipe = parse(Args, drafter_recipes.RECIPES, ["--quick", "--batch", "4"])
    assert args.recipe == "quick" and recipe.batch == 4
    assert recipe.stages == drafter_recipes.QUICK.stages and recipe.width == drafter_recipes.QUICK.width


def _drafter_record(name: str, init: str | None, prompts: int, device: str = "cpu") -> dict:
    recipe = plain(drafter_recipes.RECIPES[name])
    recipe["prompts"] = prompts
    return {"recipe_name": name, "recipe": recipe, "init": init, "device": device,
            "agreement_full_head": [0.65, 0.66], "agreement_centroid_head": [0.64, 0.65],
            "calibration": {"temperature": 0.8, "scale": 0.75, "table": {"1.0": 1.58, "0.75": 1.81}}}


def test_a_drafter_card_names_the_runs_it_went_on_from(tmp_path):
    first, second = tmp_path / "drafter-laptop", tmp_path / "drafter2"
    for folder, record in ((first, _drafter_record("laptop", None, 4096)),
                           (second, _drafter_record("continued", str(first / "short.pt"), 8192))):
        folder.mkdir()
        (folder / "record.json").write_text(json.dumps(record))
    third = _drafter_record("wide", str(second / "short.pt"), 12288, device="cuda (H100)")
    chain = model_card.drafter_chain(third)
    assert [r["recipe_name"] for r in chain] == ["laptop", "continued"]
    text = cards.render("pocket.md.jinja", **_card_context(third, chain))
    assert text.index('recipe "laptop" (4096 prompts') < text.index('recipe "continued" (8192 prompts')
    assert "each from the one before" in text and 'recipe "wide" on cuda (H100)' in text
    # a stage is described from the recipe's stage list
    assert "350 more on the target's continuations only, rounds from the prompt's last token on" in text
    assert "{{" not in text and "drafter on cpu, then cuda (H100)" in text


def _card_context(drafter: dict, chain: list[dict]) -> dict:
    facts = {"hidden_size": 256, "intermediate_size": 512, "layers": 4, "layer_types": ["sliding", "full"],
             "heads": 4, "kv_heads": 1, "head_dim": "64 / 128", "sliding_window": 128, "vocab_size": 4096,
             "final_logit_softcapping": 30.0}
    target = {"recipe_name": "quick", "device": "cpu", "recipe": {"stages": [
        {"name": "pretrain", "train": {"steps": 6, "batch": 8, "seq_len": 128, "lr": 2e-3, "weight_decay": 0.1,
                                       "seed": 0}, "bos_first": False, "unlikelihood": None}]},
        "stages": {"pretrain": {"seconds": 60, "evals": [{"step": 0, "prose_bpb": 4.5, "code_bpb": 3.6}],
                                "final": {"prose_bpb": 3.1, "code_bpb": 2.7}}}}
    m = {"bars": {"tau_greedy": {"rule": ">= 3.2", "value": 3.3, "pass": True}}, "params_target": 15e6,
         "params_drafter": 3e6, "threads": 2, "example_prose": "a", "example_code": "b", "n_prompts": 24,
         "new_tokens": 128, **{k: 1 for k in (
             "bpb_prose", "bpb_code", "nats_per_token_prose", "nats_per_token_code", "distinct4_median",
             "distinct4_median_prose", "distinct4_median_code", "prose_turned_code", "identical_greedy",
             "tau_greedy", "tau_greedy_prose", "tau_greedy_code", "acceptance_by_position_greedy",
             "tau_sample_0.8", "tau_sample_0.8_prose", "tau_sample_0.8_code", "acceptance_by_position_sample_0.8",
             "tau_sample_0.8_transformers_lossless", "speedup_greedy", "load_seconds")}}
    return dict(m=m, target=target, drafter=drafter, chain=chain, target_facts=facts, drafter_facts=facts,
                devices=list(dict.fromkeys([r["device"] for r in chain] + [drafter["device"]])),
                config_table=model_card.config_table, today="2026-12-02", manifest={}, stored_dtype="bfloat16",
                versions={"torch": "2", "transformers": "5", "machine": "x86_64"})


def _model_facts(sliding_window: int) -> dict:
    """A multimodal pair's model facts as cards.model_facts gives them, for rendering cards."""
    return {"class": "Gemma4X", "params": 2e6, "text_params": 1e6, "layers": 4, "layer_types": ["sliding", "full"],
            "hidden_size": 128, "sliding_window": sliding_window, "vocab_size": 4096,
            "vision": {"params": 5e5, "layers": 2, "hidden_size": 64, "patch_size": 8, "pooling": 2},
            "audio": {"params": 5e5, "layers": 2, "hidden_size": 64}}


def _video_metrics(keys: tuple[str, ...]) -> dict:
    """A video run's `measure` figures, 90 % right on 100 samples of each of `keys`."""
    return {"accuracy": dict.fromkeys(keys, 0.9), "samples": dict.fromkeys(keys, 100),
            "tau": dict.fromkeys(keys, 2.0), "acceptance_by_position": dict.fromkeys(keys, [0.8]),
            "caption_parts": {}, "greedy_identical_with_drafter": True, "k": 4, "speedup": 1.1}


def test_the_multimodal_card_is_rendered_from_a_record():
    sys.path.insert(0, str(REPO / "scripts"))
    import train_multimodal

    stages = {s.name: {"seconds": 120.0, "resumed_at": [], "last": {"loss": 0.5}}
              for s in multimodal_recipes.FULL.stages}
    stages["target"]["resumed_at"] = [300]
    facts = _model_facts(sliding_window=128)
    keys = ("image", "audio", "image: Describe the picture.")
    metrics = {"accuracy": dict.fromkeys(keys, 0.95), "samples": dict.fromkeys(keys, 100),
               "tau": dict.fromkeys(keys, 3.0), "acceptance_by_position": dict.fromkeys(keys, [0.9, 0.8]),
               "caption_parts": {"image: colours": 1.0}, "greedy_identical_with_drafter": True, "k": 4,
               "speedup": 1.2}
    metrics["acceptance_by_position"]["audio"] = [0.9, float("nan")]  # no round had a second draft judged
    record = {"recipe_name": "full", "recipe": plain(multimodal_recipes.FULL), "stages": stages,
              "metrics": metrics, "models": {"target": facts, "drafter": facts}}
    text = train_multimodal.card(record)
    # exact answers with their 90 % Wilson interval; a draft position no round reached reads "–"
    assert "target at step 300" in text and "| image | 100 | 95.0% [90.1%-97.5%] | 3.00 | 0.90, 0.80 |" in text
    assert "| audio | 100 | 95.0% [90.1%-97.5%] | 3.00 | 0.90, – |" in text
    assert "2400 AdamW steps" in text and "**1.20x**" in text and "{{" not in text


def test_a_continued_multimodal_run_s_card_names_what_it_continued():
    sys.path.insert(0, str(REPO / "scripts"))
    import train_multimodal

    recipe = multimodal_recipes.VIDEO_READING
    stages = {s.name: {"seconds": 60.0, "resumed_at": [], "last": {"loss": 0.1}} for s in recipe.stages}
    facts = _model_facts(sliding_window=512)
    keys = ("image", "audio", "clip", "document", "document: What number is in row r, column c?")
    metrics = _video_metrics(keys)
    lineage = {"target": "runs/a/target.pt at step 600", "drafter": "data/pocket/multimodal/drafter"}
    record = {"recipe_name": "video-reading", "recipe": plain(recipe), "stages": stages, "lineage": lineage,
              "metrics": metrics, "models": {"target": facts, "drafter": facts}}
    text = train_multimodal.card(record)
    assert "- target: runs/a/target.pt at step 600" in text and "runs/pocket-video-stage3" in text
    assert "What number is in row r, column c?" in text and "{{" not in text


def test_a_digit_by_digit_pooled_run_s_card_says_so():
    sys.path.insert(0, str(REPO / "scripts"))
    import train_multimodal

    recipe = multimodal_recipes.VIDEO_DIGITS
    stages = {s.name: {"seconds": 60.0, "resumed_at": [], "last": {"loss": 0.1}} for s in recipe.stages}
    facts = _model_facts(sliding_window=512)
    keys = ("image", "audio", "clip", "document")
    metrics = _video_metrics(keys)
    borrowed = {"vision_tower": "its checkpoint is runs/a/vision_tower.pt, the same stage of run a"}
    record = {"recipe_name": "video-digits", "recipe": plain(recipe), "stages": stages, "borrowed": borrowed,
              "metrics": metrics, "models": {"target": facts, "drafter": facts}}
    text = train_multimodal.card(record)
    assert "(not run here: its checkpoint is runs/a/vision_tower.pt, the same stage of run a, 1.0 min there" in text
    assert text.count("min of this run") == 2
    assert "a digit a token" in text and "document steps going round its first 32,000 samples" in text and "{{" not in text
    full = multimodal_recipes.FULL
    full = train_multimodal.card({**record, "recipe_name": "full", "recipe": plain(full),
                                  "stages": {s.name: stages["target"] for s in full.stages}})
    assert "a digit a token" not in full and "going round" not in full
