"""labkit.distill's data, training loop and check (07_train_a_drafter), on the tiny trained pair."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from fixtures import trained_tiny

from labkit import checks, distill


@pytest.fixture(scope="module")
def models():
    return trained_tiny.load()


def test_continuations_are_the_targets_own_greedy_text(models):
    target, _ = models
    prompts = torch.randint(3, trained_tiny.VOCAB, (3, 6), generator=torch.Generator().manual_seed(0))
    rows = distill.continuations(target, prompts, 10)
    assert rows.shape == (3, 16) and torch.equal(rows[:, :6], prompts)
    for row in rows:  # one row at a time, greedy: the same tokens
        alone = target.generate(row[None, :6], max_new_tokens=10, do_sample=False, pad_token_id=0)
        assert torch.equal(alone[0], row)
    a, b = (distill.continuations(target, prompts, 10, temperature=0.8, seed=s) for s in (1, 1))
    assert torch.equal(a, b), "same seed, same samples"
    assert not torch.equal(a, distill.continuations(target, prompts, 10, temperature=0.8, seed=2))


def test_fit_teaches_a_fresh_drafter_the_target(models):
    target, drafter = models
    config = copy.deepcopy(drafter.config)
    config.use_ordered_embeddings = False
    torch.manual_seed(0)
    fresh = type(drafter)(config)
    g = torch.Generator().manual_seed(1)
    data = trained_tiny.markov_batch(64, 40, g)
    check = trained_tiny.markov_batch(16, 40, g)
    before = distill.agreement(target, fresh, check, k=3)
    seen = []
    history = distill.fit(fresh, target, data, steps=40, k=3, batch=16, lr=3e-3,
                          every=lambda step, kl, agree: seen.append(step))
    after = distill.agreement(target, fresh.eval(), check, k=3)
    assert seen == list(range(1, 41)) and [h["step"] for h in history] == seen
    # measured: KL 3.48 -> 2.52, agreement [0.02, 0.01, 0.01] -> [0.39, 0.39, 0.37]
    assert history[-1]["kl"] < 0.8 * history[0]["kl"]
    assert len(after) == 3 and all(a > b + 0.2 for a, b in zip(after, before)), (before, after)
    assert not fresh.training


def test_kl_checker_accepts_the_right_answer_and_rejects_a_wrong_one():
    checks.check_kl(lambda log_p, log_q: (log_p.exp() * (log_p - log_q)).sum(-1))
    with pytest.raises(AssertionError):
        checks.check_kl(lambda log_p, log_q: (log_q.exp() * (log_q - log_p)).sum(-1))  # KL(q || p)


def test_fit_resumes_from_its_checkpoint_to_the_same_weights(models, tmp_path):
    """As scripts/train_drafter.py runs it: killed after step 3 of 6, then run again."""
    target, drafter = models
    data = trained_tiny.markov_batch(32, 24, torch.Generator().manual_seed(2))

    def fresh():
        torch.manual_seed(0)
        return type(drafter)(copy.deepcopy(drafter.config))

    def stop_after_3(step, kl, agree):
        if step == 3:
            raise KeyboardInterrupt

    kw = dict(steps=6, k=2, batch=4, checkpoint_every=1)
    straight = fresh()
    distill.fit(straight, target, data, checkpoint=tmp_path / "a.pt", **kw)
    resumed = fresh()
    with pytest.raises(KeyboardInterrupt):
        distill.fit(resumed, target, data, checkpoint=tmp_path / "b.pt", every=stop_after_3, **kw)
    resumed = fresh()  # a new process: fresh weights, then the checkpoint
    history = distill.fit(resumed, target, data, checkpoint=tmp_path / "b.pt", **kw)
    assert [h["step"] for h in history] == [4, 5, 6]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_rounds_from_a_later_anchor_are_the_same_rounds(models):
    """`first` (train_drafter's focus stage) skips the rounds that start inside a prompt; the
    rounds it keeps are computed exactly as when every anchor runs."""
    target, drafter = models
    rows = trained_tiny.markov_batch(4, 30, torch.Generator().manual_seed(3))
    view = distill.target_view(target, rows)
    every = distill.draft_steps(drafter.eval(), view, k=3)
    later = distill.draft_steps(drafter, view, k=3, first=9)
    for (logits, last), (logits9, last9) in zip(every, later):
        assert logits9.shape[1] == 30 - 3 - 9
        torch.testing.assert_close(logits9, logits[:, 9:])
        torch.testing.assert_close(last9, last[:, 9:])
    # The centroid head fills unscored tokens with one below the whole batch's lowest: compare choices.
    every = distill.draft_steps(drafter, view, k=3, ordered=True)
    later = distill.draft_steps(drafter, view, k=3, ordered=True, first=9)
    for (logits, _), (logits9, _) in zip(every, later):
        assert torch.equal(logits9.argmax(-1), logits[:, 9:].argmax(-1))
    loss, agree = distill.distill_loss(drafter, view, k=3, first=9)
    assert len(agree) == 3 and loss.item() > 0


def test_distill_loss_is_the_mean_kl_of_its_steps_plus_hard_times_the_argmax_cross_entropy(models):
    """The textbook form of what distill_loss computes (it takes the target's side of the KL once
    per batch); `hard`, train_drafter's greedy stage, adds -log q(target's argmax) per step."""
    target, drafter = models
    rows = trained_tiny.markov_batch(3, 20, torch.Generator().manual_seed(5))
    view = distill.target_view(target, rows)
    drafter.eval()
    with torch.no_grad():
        loss, agree = distill.distill_loss(drafter, view, k=3, first=4)
        both, agree_hard = distill.distill_loss(drafter, view, k=3, first=4, hard=0.5)
        kls, ces, hits = [], [], []
        for j, (logits, _) in enumerate(distill.draft_steps(drafter, view, k=3, first=4), start=1):
            log_p = view.log_p[:, 4 + j : 4 + j + logits.shape[1]]
            log_q = logits.float().log_softmax(-1)
            kls.append(torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).mean())
            ces.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), log_p.argmax(-1).flatten()))
            hits.append(float((logits.argmax(-1) == log_p.argmax(-1)).float().mean()))
    torch.testing.assert_close(loss, torch.stack(kls).mean())
    assert agree == pytest.approx(hits)
    assert agree_hard == agree
    torch.testing.assert_close(both, loss + 0.5 * torch.stack(ces).mean())


def test_logit_scale_cools_an_overconfident_drafter_and_keeps_its_argmax(models):
    """train_drafter's calibration: a drafter made 3x too confident is scaled back by ~1/3.

    The tiny drafter itself is underconfident: measured, its best scale is 3 (expected accepted
    drafts 0.56 at 1, 1.27 at 3, 1.09 at 6), so 9x is 3x past its best."""
    target, drafter = models
    hot = copy.deepcopy(drafter).eval()
    with torch.no_grad():
        hot.lm_head.weight.mul_(9.0)
    rows = distill.continuations(target, trained_tiny.markov_batch(8, 6, torch.Generator().manual_seed(6)), 18,
                                 temperature=0.8, seed=6)
    ordered = hot.config.use_ordered_embeddings
    scales = torch.tensor([0.2, 1 / 3, 0.5, 1.0])
    s, table = distill.logit_scale(target, hot, rows, k=3, temperature=0.8, ordered=ordered, first=5,
                                   scales=scales)
    assert list(table) == [round(x, 4) for x in scales.tolist()]
    assert s < 1.0 and table[s] > table[1.0] + 0.05, table
    view = distill.target_view(target, rows)
    with torch.no_grad():
        before = [lg.argmax(-1) for lg, _ in distill.draft_steps(hot, view, 3, ordered, first=5)]
        hot.lm_head.weight.mul_(s)
        after = [lg.argmax(-1) for lg, _ in distill.draft_steps(hot, view, 3, ordered, first=5)]
    assert all(torch.equal(a, b) for a, b in zip(before, after)), "a positive scale moves no argmax"


def test_cached_views_are_the_targets_views_and_fit_the_same(models):
    """train_drafter computes the target's views of its rows once; a step then sees the same view."""
    target, drafter = models
    rows = trained_tiny.markov_batch(12, 20, torch.Generator().manual_seed(7))
    views = distill.CachedViews(target, rows, batch=5)
    idx = torch.tensor([3, 0, 11, 3])
    got, want = views[idx], distill.target_view(target, rows[idx])
    for name in ("embeds", "hidden", "log_p"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name))
    assert got.shared_kv.keys() == want.shared_kv.keys()
    for name, pair in want.shared_kv.items():
        torch.testing.assert_close(got.shared_kv[name], pair)
    part = views.subset(torch.tensor([2, 5, 7]))
    torch.testing.assert_close(part[torch.tensor([1])].hidden, views[torch.tensor([5])].hidden)

    def fresh():
        torch.manual_seed(0)
        return type(drafter)(copy.deepcopy(drafter.config))

    kw = dict(steps=3, k=2, batch=4)
    plain = distill.fit(fresh(), target, rows, **kw)
    cached = distill.fit(fresh(), target, views, **kw)
    assert [h["kl"] for h in cached] == pytest.approx([h["kl"] for h in plain], rel=1e-4)


def test_a_saved_run_loads_back_only_for_its_own_recipe_and_target(models, tmp_path):
    """07 keeps its trained drafter in runs/07_train_a_drafter/; its solutions load it when the recipe,
    the target and the drafter's configuration match, and otherwise say why and train afresh."""
    target, drafter = models
    recipe = distill.LiveRecipe(steps=3, batch=2, k=2, seed_tokens=5)
    config = copy.deepcopy(drafter.config)

    def fresh():
        torch.manual_seed(recipe.seed)
        return type(drafter)(copy.deepcopy(config))

    rows = trained_tiny.markov_batch(6, 16, torch.Generator().manual_seed(8))
    trained = fresh()
    history = recipe.fit(trained, target, rows)
    assert [h["step"] for h in history] == [1, 2, 3] and len(history[0]["agree"]) == 2
    path = distill.save_run(tmp_path / "run", trained, target, recipe, rows=rows)
    assert path.exists() and (tmp_path / "run" / "recipe.json").exists()

    loaded = fresh()
    tensors, why = distill.load_run(tmp_path / "run", loaded, target, recipe)
    assert tensors is not None and torch.equal(tensors["rows"], rows) and "loaded" in why
    for (name, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name

    untouched = fresh()
    before = copy.deepcopy(untouched.state_dict())
    tensors, why = distill.load_run(tmp_path / "run", untouched, target, replace(recipe, steps=4))
    assert tensors is None and "steps" in why
    assert all(torch.equal(before[n], t) for n, t in untouched.state_dict().items())
    other = copy.deepcopy(target)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    tensors, why = distill.load_run(tmp_path / "run", fresh(), other, recipe)
    assert tensors is None and "target" in why
    tensors, why = distill.load_run(tmp_path / "nothing", fresh(), target, recipe)
    assert tensors is None and "no saved run" in why
    (tmp_path / "run" / "drafter.pt").write_bytes(b"not a checkpoint")
    tensors, why = distill.load_run(tmp_path / "run", fresh(), target, recipe)
    assert tensors is None and "could not be read" in why


def test_runs_live_under_the_repository_whatever_the_working_folder():
    """Notebooks run with their own folder as cwd (notebooks/, notebooks/solutions/): both must find one runs/."""
    from labkit.env import REPO_ROOT

    assert distill.RUNS_DIR == REPO_ROOT / "runs" and distill.RUNS_DIR.is_absolute()


def test_centroid_logits_are_the_centroid_heads_own(models):
    """distill.centroid_logits computes what transformers' masked_embedding returns, without gathering
    a copy of the scored rows per position: the same scores where the head scores a token, the
    same fill elsewhere, so the same argmax."""
    _, drafter = models
    assert drafter.config.use_ordered_embeddings
    last = torch.randn(3, 7, drafter.config.get_text_config().hidden_size, generator=torch.Generator().manual_seed(9))
    for scale in (1.0, 0.4):
        weight = scale * drafter.lm_head.weight
        with torch.no_grad():
            want = drafter.masked_embedding(last, weight)
            got = distill.centroid_logits(drafter, last, weight)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert torch.equal(got.argmax(-1), want.argmax(-1))
