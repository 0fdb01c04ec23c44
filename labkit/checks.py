"""Checkers for the notebooks' exercises: each builds its own small cases, so it needs no model.

A learner writes a function in the notebook and uncomments `check_...(their_function)`; the
checker compares it with labkit's reference on synthetic traces or random tensors and prints what
passed, or raises an AssertionError that says which case failed. The solutions in
`notebooks/solutions/` run every checker. Left out: hints beyond the failing case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from labkit import architecture, media, methods, metrics, parts, rules
from labkit.architecture import knee
from labkit.batching import costs_at
from labkit.experiments import CostModel
from labkit.generation import encode, load_prompts
from labkit.glassbox import MTPDrafter, speculate
from labkit.media import token_runs
from labkit.paths import MEDIA_DIR
from labkit.trace import Decoding, Round, Trace


def synthetic_trace(accepted: Sequence[int], k: int) -> Trace:
    """A trace whose drafting rounds accept the given numbers of drafts (token ids are arbitrary)."""
    rounds = [Round(0, 3, 0, (), (), (), (5,), 0, (5,), 0.0, 0.0, 0.0)]
    for i, a in enumerate(accepted, start=1):
        drafted = tuple(range(10 * i, 10 * i + k))
        rounds.append(Round(i, 0, k, drafted, (0.5,) * k, (0.5,) * k, drafted[:a] + (1,) * (k + 1 - a),
                            a, drafted[:a] + (1,), 0.0, 0.0, 0.0))
    return Trace(path="glassbox", drafter="mtp", pair="synthetic", prompt_ids=(1, 2, 3), rounds=tuple(rounds),
                 settings=Decoding(k=k))


def _cases() -> list[Trace]:
    return [synthetic_trace([], 4), synthetic_trace([4, 4], 4), synthetic_trace([0, 1, 2, 3], 3),
            synthetic_trace([2, 0, 5, 1], 5)]


def check_tokens_per_forward(fn: Callable[[Trace], float]) -> None:
    """00_tour: new tokens per target forward (the prefill counts as a forward)."""
    for tr in _cases():
        want = metrics.tau(tr)
        got = fn(tr)
        assert abs(got - want) < 1e-9, f"rounds accepting {[r.accepted for r in tr.rounds[1:]]}: got {got}, want {want}"
    print("✓ tokens_per_forward agrees with labkit.metrics.tau on", len(_cases()), "traces")


def check_greedy_verify(fn: Callable[[torch.Tensor, torch.Tensor], tuple[int, int]]) -> None:
    """03_verify_and_accept: (accepted, bonus) from drafts (k,) and target logits (k + 1, vocab)."""
    gen = torch.Generator().manual_seed(0)
    for case in range(50):
        k, vocab = 1 + case % 6, 8
        logits = torch.randn(k + 1, vocab, generator=gen)
        top = logits.argmax(-1)
        drafted = top[:k].clone()
        cut = case % (k + 1)  # the first draft that disagrees (k: none)
        if cut < k:
            drafted[cut] = (drafted[cut] + 1) % vocab
        want = rules.greedy_accept(drafted, logits)
        got = tuple(int(x) for x in fn(drafted, logits))
        assert got == want, f"drafted {drafted.tolist()}, target argmax {top.tolist()}: got {got}, want {want}"
    print("✓ greedy_verify agrees with the reference rule on 50 cases")


def check_expected_tau(fn: Callable[[float, int], float]) -> None:
    """04_acceptance: expected tokens per target forward with acceptance alpha and k drafts."""
    for a in (0.0, 0.3, 0.5, 0.8, 0.99):
        for k in (1, 2, 4, 8):
            want, got = metrics.expected_tau(a, k), fn(a, k)
            assert abs(got - want) < 1e-6, f"alpha = {a}, k = {k}: got {got}, want {want}"
    # and by simulation: i.i.d. coins, stop at the first rejection, plus one target token
    gen = torch.Generator().manual_seed(0)
    coins = torch.rand(20000, 4, generator=gen) < 0.6
    simulated = float(coins.int().cumprod(1).sum(1).float().mean()) + 1
    assert abs(fn(0.6, 4) - simulated) < 0.05, f"simulation says {simulated:.3f} for alpha 0.6, k 4"
    print(f"✓ expected_tau matches the closed form and a simulation ({simulated:.3f} at alpha 0.6, k 4)")


def check_token_runs(fn: Callable[[Sequence[int], int], list[tuple[int, int]]]) -> None:
    """06_multimodal: the (start, end) runs of one token id in a sequence, as labkit.media finds them."""
    gen = torch.Generator().manual_seed(6)
    cases = [[], [8], [8, 8, 8], [1, 2, 3], [8, 1, 8, 8, 2]]
    cases += [torch.randint(0, 3, (n,), generator=gen).add(7).tolist() for n in range(1, 40)]
    for ids in cases:
        want, got = token_runs(ids, 8), [tuple(r) for r in fn(ids, 8)]
        assert got == want, f"ids {ids}: got {got}, want {want}"
    print(f"✓ token_runs finds the same runs as labkit.media on {len(cases)} sequences")


def check_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """07_train_a_drafter: KL(p || q) per position from log-probabilities (..., vocab) -> (...)."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(7)
    for shape in ((5,), (3, 7), (2, 4, 16)):
        log_p = torch.randn(shape, generator=gen).mul(3).log_softmax(-1)
        log_q = torch.randn(shape, generator=gen).mul(3).log_softmax(-1)
        want = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
        got = fn(log_p, log_q)
        assert got.shape == want.shape, f"shape {tuple(shape)}: got {tuple(got.shape)}, want {tuple(want.shape)}"
        assert torch.allclose(got, want, atol=1e-5), f"shape {tuple(shape)}: got {got}, want {want}"
        assert torch.allclose(fn(log_p, log_p), torch.zeros_like(want), atol=1e-6), "KL(p || p) must be 0"
    print("✓ kl agrees with torch.nn.functional.kl_div on 3 shapes, and KL(p || p) = 0")


def check_sample_step(fn: Callable[..., tuple[bool, int]]) -> None:
    """03_verify_and_accept: one draft's verdict under sampling, fn(p, q, x, u, generator) → (kept, token).

    Checked case by case against `labkit.rules.sample_step`, then by simulation: drafting x from q
    and drawing u, the tokens it emits must be distributed like p.
    """
    gen = torch.Generator().manual_seed(3)
    for case in range(40):
        p = (2 * torch.randn(6, generator=gen)).softmax(-1)
        q = (2 * torch.randn(6, generator=gen)).softmax(-1)
        x = int(torch.randint(0, 6, (), generator=gen))
        u = float(torch.rand((), generator=gen))
        want_kept, _ = rules.sample_step(p, q, x, u, torch.Generator().manual_seed(case))
        kept, token = fn(p, q, x, u, torch.Generator().manual_seed(case))
        where = f"p = {[round(v, 3) for v in p.tolist()]}, q = {[round(v, 3) for v in q.tolist()]}, x = {x}, u = {u:.3f}"
        assert bool(kept) == want_kept, f"{where}: kept = {bool(kept)}, but min(1, p(x)/q(x)) = " \
            f"{rules.accept_probability(float(p[x]), float(q[x])):.3f}"
        if kept:
            assert int(token) == x, f"{where}: a kept draft emits x itself, got {int(token)}"
        else:
            r = rules.residual(p, q)
            assert float(r[int(token)]) > 0, f"{where}: token {int(token)} has no mass left after p − q"
    p = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])
    q = torch.tensor([0.10, 0.50, 0.05, 0.20, 0.10, 0.05])
    n = 5000
    xs = torch.multinomial(q, n, replacement=True, generator=gen).tolist()
    us = torch.rand(n, generator=gen).tolist()
    counts = torch.zeros(6)
    for x, u in zip(xs, us):
        counts[int(fn(p, q, x, u, gen)[1])] += 1
    tv = rules.tv_distance(counts / n, p)
    assert tv < 0.04, f"drafting from q and judging with your step emits tokens {tv:.3f} (TV) away from p"
    print(f"✓ sample_step agrees with the reference rule on 40 cases, and emits p: TV {tv:.3f} on {n} simulated drafts")


def check_q_equals_p(prediction: dict[str, float]) -> None:
    """03_verify_and_accept, predict then measure: when the drafter's q equals the target's p,
    prediction["keep"] is the chance a draft drawn from q is kept, prediction["tv_argmax"] the TV
    distance to p of what argmax drafting verified against q emits (the as-shipped MTP rule)."""
    p = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])
    q = p.clone()
    measured = {
        "keep": float(torch.minimum(p, q).sum()),  # Σ min(p, q): the expected keep probability
        "tv_argmax": rules.tv_distance(rules.emitted_distribution(p, q, rules.point_mass(int(q.argmax()), 6)), p),
    }
    for name, value in measured.items():
        guess = prediction.get(name)
        assert guess is not None, f"put your guess for {name!r} in the dict before measuring"
        print(f"{name:10s} you predicted {float(guess):.2f}, measured {value:.2f}")
    assert all(abs(float(prediction[n]) - v) < 0.01 for n, v in measured.items()), \
        "a prediction missed: work out from min(1, p/q) and emitted_distribution why"
    print("✓ both predictions hold")


def check_prediction(predicted: dict, measured: dict, unit: str = "") -> None:
    """Predict then measure (00, 01, 02): your guesses next to the measurement, and by how much
    they missed. It fails only on a missing guess: a wrong prediction is what the exercise is for."""
    missing = [name for name in measured if predicted.get(name) is None]
    assert not missing, f"write down a guess for {missing} before you measure"
    for name, value in measured.items():
        guess = float(predicted[name])
        if value:
            off = abs(guess - value) / abs(value)
            verdict = "close (within 25 %)" if off <= 0.25 else f"off by {off:.0%}: what did you leave out?"
        else:  # a relative miss means nothing against 0
            verdict = "right" if abs(guess) < 0.5 else "not 0: what did you expect to change it?"
        print(f"{str(name):>12}: you predicted {guess:.3g}{unit}, measured {value:.3g}{unit}, {verdict}")
    print("✓ predictions recorded; compare your reasoning with the solutions notebook")


def check_speculative_round(fn: Callable, pair, k: int = 6, prompts: int = 4) -> None:
    """00_tour: one greedy speculative round, fn(draft, target, ids, k) → the tokens it adds.

    draft(ids, k) and target(ids) come from `labkit.parts`; the answer must equal round 1 of
    labkit's glass-box loop on the same prompt, and must call the target exactly once. On the
    pocket pair the first four prose prompts accept 5, 6, 5 and 0 of 6 drafts: every branch runs.
    """
    draft = parts.draft_fn(pair)
    accepted = []
    for text in load_prompts("prose", limit=prompts):
        ids = encode(pair, text)
        trace = speculate(pair.target, pair.drafter, ids, Decoding(k=k, max_new_tokens=k + 2), pair=pair.name)
        first, second = trace.rounds[0], trace.rounds[1]
        context = ids[0].tolist() + list(first.emitted)
        target = parts.target_fn(pair)
        got = [int(t) for t in fn(draft, target, context, k)]
        assert target.forwards == 1, f"your round ran {target.forwards} target forwards; verification takes one"
        assert got == list(second.emitted), (
            f"prompt {text[:30]!r}…: drafts {list(second.drafted)}, the target's own choices "
            f"{list(second.target_top)}; you added {got}, the glass box adds {list(second.emitted)}")
        accepted.append(second.accepted)
    print(f"✓ speculative_round matches labkit's glass box on {len(accepted)} prompts "
          f"({pair.label}, greedy, k = {k}; drafts accepted: {accepted})")


def check_verification_cost(fn: Callable[[Sequence[tuple[int, float]], int], float]) -> None:
    """01_one_token_at_a_time: one forward over k + 1 tokens, as a share of k + 1 one-token forwards."""
    rows = [(1, 0.010), (2, 0.011), (4, 0.013), (8, 0.020), (16, 0.035)]
    for k, want in ((1, 0.011 / 0.020), (3, 0.013 / 0.040), (7, 0.020 / 0.080), (15, 0.035 / 0.160)):
        got = fn(rows, k)
        assert abs(got - want) < 1e-9, f"k = {k} on rows {rows}: got {got}, want {want}"
    print(f"✓ verification_cost: on these rows, checking 7 drafts costs {fn(rows, 7):.2f} of 8 forwards")


def check_knee(fn: Callable[[Sequence[tuple[int, float]]], float]) -> None:
    """01_one_token_at_a_time: the knee of a cost curve, as `labkit.architecture.knee` finds it."""
    gen = torch.Generator().manual_seed(1)
    ns = (1, 2, 4, 8, 16)
    cases = {
        "flat then linear (a = 10 ms, b = 1 ms)": [(n, 0.010 + 0.001 * n) for n in ns],
        "steep": [(n, 0.002 + 0.004 * n) for n in ns],
        "never rises": [(n, 0.010) for n in ns],
        "measured-looking": [(n, 0.012 + 0.0007 * n + 0.0005 * float(torch.rand((), generator=gen))) for n in ns],
    }
    for name, rows in cases.items():
        want, got = knee(rows), float(fn(rows))
        ok = got == want if want == float("inf") else abs(got - want) < 1e-6 * max(1.0, want)
        assert ok, f"{name}: rows {[(n, round(t, 5)) for n, t in rows]}: got {got}, want {want}"
    print(f"✓ knee agrees with labkit.architecture.knee on {len(cases)} curves")


def check_mtp_round(fn: Callable, pair, k: int = 4, prompts: int = 3) -> None:
    """02_inside_the_mtp_drafter: a drafting round from the assistant's parts,
    fn(drafter, embed, ids, hidden, shared_kv, k) → k draft ids, equal to labkit's MTPDrafter."""
    reference = MTPDrafter(pair.target, pair.drafter)
    for text in load_prompts("prose", limit=prompts):
        ids = encode(pair, text)[0].tolist()
        with torch.no_grad():
            nxt = int(pair.target(input_ids=torch.tensor([ids], device=pair.device)).logits[0, -1].argmax())
        ctx = parts.drafter_context(pair, ids + [nxt])
        want, _ = reference.propose(ctx, k, lambda logits: (int(logits.argmax()), logits))
        with torch.no_grad():
            got = [int(t) for t in fn(pair.drafter, pair.target.get_input_embeddings(), list(ctx.ids),
                                      ctx.hidden, ctx.shared_kv, k)]
        assert len(got) == k, f"a round of k = {k} drafts; you returned {len(got)}"
        assert got == want, f"prompt {text[:30]!r}…: you drafted {got}, labkit's MTPDrafter drafts {want}"
    print(f"✓ your drafting round matches labkit.glassbox.MTPDrafter on {prompts} prompts ({pair.label}, k = {k})")


def _shipped_summaries() -> dict:
    return {s: architecture.assistant_summary(architecture.load_config(s), architecture.load_config(f"{s}-assistant"))
            for s in architecture.MODELS}


def check_rows_scored(fn: Callable[[int, int, int], int]) -> None:
    """02_inside_the_mtp_drafter: vocabulary rows the centroid head scores per draft step."""
    done = []
    for name, s in _shipped_summaries().items():
        if s["centroid_head"]:
            got = fn(s["vocab_size"], s["num_centroids"], s["centroids_kept"])
            assert got == s["rows_scored"], f"{name}: got {got}, the assistant scores {s['rows_scored']:,} rows"
            done.append(name)
    assert fn(64, 16, 4) == 16 and fn(1000, 10, 3) == 300, "try a tiny case by hand: 64 rows, 16 clusters, keep 4"
    print(f"✓ rows_scored matches the {' and '.join(done)} assistants and two small cases")


def check_kv_source_layers(fn: Callable[[list[str], int], dict[str, int]]) -> None:
    """02_inside_the_mtp_drafter: the two target layers whose K/V the assistant reads."""
    for name, s in _shipped_summaries().items():
        cfg = architecture.load_config(name).get_text_config()
        types = [t.removesuffix("_attention") for t in cfg.layer_types]
        got = fn(types, cfg.num_kv_shared_layers or 0)
        assert got == s["reads_kv_of_target_layers"], f"{name}: got {got}, want {s['reads_kv_of_target_layers']}"
    print("✓ kv_source_layers agrees with all four shipped Gemma 4 configs")


def check_audio_token_prediction(prediction: dict[str, int], pair: object) -> None:
    """06_multimodal, predict then measure: prediction maps each shipped sound file to the number
    of audio soft tokens you expect the processor to give it; they are counted with `pair`'s own
    processor (`labkit.media`), and a guess within one token passes."""
    import json

    sounds = [r["file"] for r in json.loads((MEDIA_DIR / "samples.json").read_text())
              if r["modality"] == "audio"]
    missed = []
    for name in sounds:
        wave = media.load_audio(MEDIA_DIR / name)
        inputs = media.media_inputs(pair, "Describe the sound.", audio=wave, sampling_rate=media.SAMPLE_RATE)
        measured = sum(e - s for s, e in media.soft_token_spans(inputs["input_ids"], pair.target.config)["audio"])
        guess = prediction.get(name)
        assert guess is not None, f"put your guess for {name} in the dict before measuring"
        print(f"{name}: {1000 * len(wave) / media.SAMPLE_RATE:5.0f} ms, you predicted {int(guess)}, measured {measured}")
        if abs(int(guess) - measured) > 1:
            missed.append(name)
    assert not missed, f"off by more than one token on {missed}: how many milliseconds does one soft token cover?"
    print(f"✓ every prediction within one token of the processor's count ({len(sounds)} sounds)")


def check_clip_token_prediction(prediction: dict[str, int], pair: object, clip: str = "clip_2.gif") -> None:
    """06_multimodal, predict then measure: prediction["frames"] and prediction["soft tokens"] for
    the shipped `clip`, counted from the prompt `pair`'s processor builds for it (`labkit.media`)."""
    assert all(prediction.get(k) is not None for k in ("frames", "soft tokens")), \
        "put your guesses for 'frames' and 'soft tokens' in the dict before measuring"
    inputs = media.media_inputs(pair, "Which way does the shape move?", video=MEDIA_DIR / clip)
    runs = media.soft_token_spans(inputs["input_ids"], pair.target.config)["video"]
    frames, soft = len(runs), sum(e - s for s, e in runs)
    print(f"{clip}: you predicted {prediction['frames']} frames and {prediction['soft tokens']} soft tokens; "
          f"measured {frames} frames, {soft} soft tokens, in a prompt of {inputs['input_ids'].shape[1]} tokens")
    assert int(prediction["frames"]) == frames, "count the frames again (media.load_video gives them)"
    assert int(prediction["soft tokens"]) == soft, \
        "each frame is read as one picture: how many soft tokens does a picture take here?"
    print("✓ frames × soft tokens per frame: the prompt's length is in the frames")


def check_untrained_question(prediction: dict[str, object], plain: object, spec: object) -> None:
    """06_multimodal, predict then measure: prediction["same"] is whether the answer with the drafter
    is the target's own, token for token, on a question the target never trained on; plain and spec
    are the traces you measured without and with the drafter (greedy)."""
    same = plain.new_ids == spec.new_ids
    guess = prediction.get("same")
    assert guess is not None, "put your guess for 'same' in the dict before measuring"
    print(f"same tokens: you predicted {bool(guess)}, measured {same}")
    if "tau" in prediction and prediction["tau"] is not None:
        print(f"tau: you predicted {float(prediction['tau']):.2f}, measured {metrics.tau(spec):.2f}")
    assert plain.temperature == 0 and spec.temperature == 0, "measure with greedy decoding (temperature 0)"
    assert bool(guess) == same, "greedy verification keeps only tokens the target itself would pick: think again"
    print("✓ the answer cannot depend on the drafter; only the speed (tau) can")


def check_one_step_prediction(prediction: dict[str, str], traces: Sequence[Trace]) -> None:
    """07_train_a_drafter, predict then measure: prediction["step_2"] says whether a drafter trained
    with k = 1 keeps its second draft "more", "as often" or "less" often than its first, given the
    first was kept (conditional acceptance); `traces` are greedy runs drafting k >= 2 with it.

    The answer depends on the drafter and its data, so a wrong guess is reported, not failed: the
    measurement is the answer. What must hold is that you guessed first and measured properly.
    """
    guess = prediction.get("step_2")
    assert guess in ("more", "as often", "less"), 'set prediction["step_2"] to "more", "as often" or "less"'
    traces = list(traces)
    assert traces and all(t.greedy and t.k >= 2 for t in traces), "measure greedy runs that draft k >= 2"
    rates = metrics.acceptance_by_position(traces, conditional=True)
    judged = sum(r.accepted >= 1 and (r.accepted >= 2 or r.rejected) for t in traces for r in t.rounds if r.k >= 2)
    assert judged >= 20, f"only {judged} rounds judged a second draft: generate more tokens or more prompts"
    first, second = rates[0], rates[1]
    measured = "more" if second > first + 0.1 else "less" if second < first - 0.1 else "as often"
    print(f"kept given the drafts before were kept: step 1 {first:.2f}, step 2 {second:.2f} "
          f"({judged} rounds judged a second draft)")
    print(f"you predicted step 2 is kept {guess}; measured: {measured} (within 0.1 counts as 'as often')")
    print("✓ prediction holds" if guess == measured else
          "✗ not what you predicted: what does draft step 2 read, and which of its inputs did training reach?")


def check_alpha_from_rounds(fn: Callable[[Sequence[Round]], float]) -> None:
    """04_acceptance: per-token acceptance, accepted drafts over drafts the target judged."""
    cut = Round(3, 0, 4, (7, 8, 9, 10), (0.5,) * 4, (0.5,) * 4, (7, 8), 2, (7, 8), 0.0, 0.0, 0.0)  # cut by max length
    cases = [t for t in _cases() if t.rounds[1:]] + [synthetic_trace([4, 4, 0], 4), synthetic_trace([1, 3], 4)]
    for trace in cases:
        rounds = [r for r in trace.rounds if r.k > 0]
        want, got = metrics.alpha(trace), fn(rounds)
        assert abs(got - want) < 1e-9, (f"rounds accepting {[r.accepted for r in rounds]} of k = {trace.k}: "
                                        f"got {got:.3f}, want {want:.3f}")
    rounds = [r for r in synthetic_trace([1], 4).rounds if r.k > 0] + [cut]
    got = fn(rounds)  # 1 kept of 2 judged, then 2 kept of 2 judged: the cut round never judged a third
    assert abs(got - 0.75) < 1e-9, (f"a round cut short by the token budget after 2 kept drafts judged no third "
                                    f"draft: got {got:.3f}, want 0.750 (3 kept of 4 judged)")
    print(f"✓ alpha_from_rounds matches labkit.metrics.alpha on {len(cases) + 1} sets of rounds, "
          "a fully accepted round and a cut one among them")


def check_best_k_for_costs(fn: Callable[[Any, float, Sequence[int]], int]) -> None:
    """05_speed_and_cost: the k with the highest predicted speedup, from a fitted CostModel and alpha."""
    settings = [CostModel(t_target=0.02, loop_plain=o, t_draft=d, verify=(0.02 - s, s), loop_round=(o, 0.0),
                          prefill=0.05)
                for o in (0.0, 0.004) for d in (0.001, 0.004) for s in (0.0, 0.003)]
    for costs in settings:
        for a in (0.3, 0.6, 0.85):
            ks = range(1, 11)
            want = max(ks, key=lambda k: costs.speedup(metrics.expected_tau(a, k), k))
            got = fn(costs, a, ks)
            assert got == want, (f"alpha {a}, c {costs.c:.2f}, v(5) {costs.v(5):.2f}, loop {costs.loop_plain}: "
                                 f"got k = {got}, the cost model says {want}")
    print(f"✓ best_k agrees with the cost model on {3 * len(settings)} settings of alpha, c, v and the loop's work")


def check_hybrid_drafter(fn: Callable, pair, k: int = 4, per_task: int = 2) -> None:
    """08_choosing_a_drafter: fn(ctx, k, pick, lookup, mtp) → (drafts, qs), prompt lookup's drafts
    when it finds a match, else the MTP drafter's. Run through the glass box on quote and prose
    prompts: the output must be the target's, and the drafts exactly the rule's."""
    lookup, mtp = methods.glassbox_drafter("prompt-lookup", pair), methods.glassbox_drafter("mtp", pair)

    class Yours:
        name = "hybrid"

        def propose(self, ctx: Any, k: int, pick: Any) -> Any:
            got = fn(ctx, k, pick, lookup, mtp)
            found = lookup.propose(ctx, k, pick)
            want = found if found[0] else mtp.propose(ctx, k, pick)
            assert list(got[0]) == list(want[0]), (
                f"at {len(ctx.ids)} tokens: you drafted {list(got[0])}, the hybrid rule drafts {list(want[0])}")
            return got

    rows = [r for r in methods.load_tasks(per_task) if r["task"] in ("quote", "prose")]
    for row in rows:
        ids = encode(pair, row["text"])
        plain = speculate(pair.target, methods.glassbox_drafter("none", pair), ids, Decoding(k=k, max_new_tokens=24))
        yours = speculate(pair.target, Yours(), ids, Decoding(k=k, max_new_tokens=24))
        assert yours.new_ids == plain.new_ids, f"{row['id']}: your drafter changed the target's greedy output"
    print(f"✓ your hybrid drafts what the rule says and keeps the target's output on {len(rows)} prompts "
          f"(quote and prose, {pair.label}, k = {k})")


def check_vllm_rates(fn: Callable) -> None:
    """09_serving: fn(traces) → (acceptance_rate, mean_acceptance_length) in vLLM's words: kept drafts
    over drafted tokens, and 1 + kept drafts per drafting round. Checked against `metrics.vllm_counts`."""
    cases = [([4, 0, 2, 4, 1], 4), ([0, 0, 1], 2), ([3, 3, 3], 3), ([1, 2, 0, 5, 5, 2], 5)]
    for accepted, k in cases:
        traces = [synthetic_trace(accepted, k), synthetic_trace(accepted[::-1], k)]
        want = metrics.vllm_counts(traces)
        got = fn(traces)
        assert len(got) == 2, "return two numbers: (acceptance_rate, mean_acceptance_length)"
        assert abs(got[0] - want.acceptance_rate) < 1e-9, (
            f"accepted per round {accepted}, k = {k}: acceptance rate {got[0]:.4f}, vLLM's is "
            f"{want.acceptance_rate:.4f} (kept drafts / drafted tokens, every drafted token counts)")
        assert abs(got[1] - want.mean_acceptance_length) < 1e-9, (
            f"accepted per round {accepted}, k = {k}: mean acceptance length {got[1]:.4f}, vLLM's is "
            f"{want.mean_acceptance_length:.4f} (1 + kept drafts per round: the bonus token counts)")
    print(f"✓ vLLM's acceptance rate and mean acceptance length on {len(cases)} sets of rounds")


def check_alpha_from_counters(fn: Callable) -> None:
    """09_serving: fn(drafts, draft_tokens, accepted, accepted_per_pos) → the lab's α from vLLM's four
    counters (same k every round). Checked against `SpecDecodeCounts.alpha` and `metrics.alpha`."""
    cases = [([4, 0, 2, 4, 1], 4), ([0, 0, 1], 2), ([3, 3, 3, 0], 3), ([1, 2, 0, 5, 5, 2], 5)]
    for accepted, k in cases:
        trace = synthetic_trace(accepted, k)
        c = metrics.vllm_counts(trace)
        got = fn(c.drafts, c.draft_tokens, c.accepted, c.accepted_per_pos)
        assert abs(got - metrics.alpha(trace)) < 1e-9, (
            f"accepted per round {accepted}, k = {k}: you gave α = {got:.4f}, the lab's is {metrics.alpha(trace):.4f} "
            "(kept / judged: a round's drafts after its first rejection were never judged)")
    print(f"✓ the lab's α from vLLM's counters on {len(cases)} sets of rounds")


def check_expected_tokens(fn: Callable[[Sequence[float]], float]) -> None:
    """04_acceptance: fn(alphas) → the expected tokens a round yields when draft j is kept with
    probability alphas[j - 1] *given* drafts 1..j-1 were kept (conditional acceptance by position;
    k = len(alphas)). Checked against a simulation of 20,000 rounds per case."""
    gen = torch.Generator().manual_seed(0)
    cases = [[0.8] * 4, [0.9, 0.7, 0.5], [0.0, 0.9], [1.0, 1.0, 1.0], [0.6], [0.95, 0.8, 0.8, 0.6, 0.4, 0.3]]
    for alphas in cases:
        draws = torch.rand(20_000, len(alphas), generator=gen) < torch.tensor(alphas)
        simulated = float(draws.int().cumprod(1).sum(1).float().mean()) + 1  # kept leading drafts + 1
        got = float(fn(list(alphas)))
        assert abs(got - simulated) < 0.03, (
            f"conditional acceptance {alphas}: you gave {got:.3f} tokens a round, 20,000 simulated rounds "
            f"give {simulated:.3f}")
    print(f"✓ expected_tokens agrees with {len(cases)} simulations of 20,000 rounds each "
          "(equal alphas give the coin model's closed form)")


def check_direction_prediction(prediction: dict[str, Any], without: Sequence[Trace], with_: Sequence[Trace],
                               change: str = "the chat template") -> None:
    """04_acceptance, predict then measure: prediction["direction"] ("higher", "lower" or "no clear
    difference") and prediction["alpha change"] (α with minus α without), written before measuring;
    `without` and `with_` are traces of the same prompts. Prints both α with 90 % intervals over
    prompts and the verdict those intervals allow. It fails only on a missing guess."""
    for name in ("direction", "alpha change"):
        assert prediction.get(name) is not None, f"write down your guess for {name!r} before you measure"
    allowed = ("higher", "lower", "no clear difference")
    assert prediction["direction"] in allowed, f"direction is one of {allowed}"
    a0, a1 = metrics.interval(metrics.alpha, without), metrics.interval(metrics.alpha, with_)
    verdict = a1.versus(a0)
    print(f"α without {change} {a0}, with it {a1} ({a0.sample})")
    print(f"α change: you predicted {float(prediction['alpha change']):+.2f}, measured {a1.value - a0.value:+.2f}")
    print(f"direction: you predicted {prediction['direction']!r}; the intervals say {verdict!r}"
          + (" ✓" if verdict == prediction["direction"] else ": what did the sample size leave open?"))
    print("✓ prediction recorded; compare your reasoning with the solutions notebook")


def check_alpha_needed(fn: Callable[[Any, float, int], float]) -> None:
    """05_speed_and_cost: fn(costs, speedup, k) → the per-token acceptance α at which the cost model
    (coin-model tokens per round) predicts exactly `speedup` at k drafts per round, or nan when no
    α ≤ 1 reaches it. Checked against bisection on `CostModel.speedup`."""
    def want(costs: Any, target: float, k: int) -> float:
        lo, hi = 0.0, 1.0
        if costs.speedup(metrics.expected_tau(hi, k), k) < target:
            return float("nan")
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if costs.speedup(metrics.expected_tau(mid, k), k) < target else (lo, mid)
        return (lo + hi) / 2

    settings = [CostModel(t_target=0.02, loop_plain=o, t_draft=d, verify=(0.02 - s, s), loop_round=(o, 0.0),
                          prefill=0.05)
                for o in (0.0, 0.004) for d in (0.001, 0.004) for s in (0.0, 0.003)]
    n = 0
    for costs in settings:
        for target, k in ((1.0, 4), (1.5, 3), (2.0, 4), (4.5, 2)):
            w, got = want(costs, target, k), float(fn(costs, target, k))
            if w != w:
                assert got != got, f"k = {k}, speedup {target}: no α ≤ 1 reaches it (even α = 1), return nan; you gave {got}"
            else:
                assert abs(got - w) < 1e-3, (f"k = {k}, speedup {target}, c {costs.c:.2f}, v(5) {costs.v(5):.2f}: "
                                             f"you gave α = {got:.4f}, the cost model needs {w:.4f}")
            n += 1
    print(f"✓ alpha_needed agrees with the cost model on {n} cases (nan where even α = 1 falls short)")


def check_conditional_from_counters(fn: Callable[[int, Sequence[int]], list[float]]) -> None:
    """09_serving: fn(drafts, accepted_per_pos) → the lab's conditional acceptance by position,
    P(draft j kept | drafts before it kept), from vLLM's counters (every round drafted the same k).
    Checked against `metrics.acceptance_by_position(..., conditional=True)` on the same rounds."""
    cases = [([4, 0, 2, 4, 1], 4), ([0, 0, 1], 2), ([3, 3, 3, 0], 3), ([1, 2, 0, 5, 5, 2], 5)]
    for accepted, k in cases:
        trace = synthetic_trace(accepted, k)
        c = metrics.vllm_counts(trace)
        want = metrics.acceptance_by_position(trace, conditional=True)
        got = list(fn(c.drafts, c.accepted_per_pos))
        assert len(got) == k, f"k = {k}: return one rate per position, {k} of them; you gave {len(got)}"
        for j, (g, w) in enumerate(zip(got, want), start=1):
            same = (g != g and w != w) or abs(g - w) < 1e-9
            assert same, (f"accepted per round {accepted}, k = {k}: at position {j} you gave {g:.4f}, the lab's "
                          f"conditional rate is {w:.4f} (kept at j over rounds that kept every draft before j)")
    print(f"✓ conditional acceptance by position from vLLM's counters on {len(cases)} sets of rounds")


def check_furthest_from_coin(fn: Callable[[Sequence[dict]], int], rows: Sequence[dict]) -> None:
    """04_acceptance: fn(rows) → the k whose measured tokens per full round (`row["per_round"]`, an
    Estimate) is furthest, above or below, from the coin model with that row's α (`row["alpha"]`).
    Prints every gap and whether the coin model sits inside the row's interval."""
    gaps = {r["k"]: r["per_round"].value - metrics.expected_tau(r["alpha"], r["k"]) for r in rows}
    want = max(gaps, key=lambda k: abs(gaps[k]))
    got = fn(rows)
    for r in rows:
        coin = metrics.expected_tau(r["alpha"], r["k"])
        print(f"k = {r['k']}: measured {r['per_round']}, coin model {coin:.2f}, gap {gaps[r['k']]:+.2f} "
              f"({'inside' if r['per_round'].contains(coin) else 'outside'} the interval)")
    assert got == want, f"you gave k = {got}; the largest gap, {gaps[want]:+.2f}, is at k = {want}"
    print(f"✓ k = {want} is furthest from the coin model; whether that gap is real, the interval above says")


def check_serving_k(fn: Callable[[dict, int, Any, float, Sequence[int]], int]) -> None:
    """09_serving: fn(row, k0, loop, alpha, ks) → the k in ks with the highest predicted speedup at
    the batch size of `row` (a recorded batch-cost row, verification measured at k0), with the loop's
    work from `loop` (`batching.costs_at`) and coin-model tokens per round; 0 when no k in ks is
    predicted faster than plain decoding (serve without drafting). Checked on synthetic rows."""
    loop = CostModel(t_target=0.02, loop_plain=0.002, t_draft=0.004, verify=(0.02, 0.001), loop_round=(0.002, 0.0002),
                     prefill=0.05)
    rows = [{"batch": b, "plain": 0.02 * (1 + b / 32), "verify": 0.02 * (1 + 5 * b / 32) + 0.002, "draft": 0.004 * (1 + b / 64)}
            for b in (1, 4, 16, 64, 256)]
    n = 0
    for row in rows:
        for alpha in (0.25, 0.6, 0.85):
            model = costs_at(row, 4, loop)
            ks = range(1, 9)
            best = max(ks, key=lambda k: model.speedup(metrics.expected_tau(alpha, k), k))
            want = best if model.speedup(metrics.expected_tau(alpha, best), best) > 1 else 0
            got = fn(row, 4, loop, alpha, ks)
            assert got == want, (f"B = {row['batch']}, α = {alpha}: you gave k = {got}, the cost model says "
                                 f"{want}" + (" (no k beats plain decoding)" if want == 0 else ""))
            n += 1
    print(f"✓ serve_k agrees with the cost model on {n} cases of batch size and α, 0 where drafting never pays")


def check_segments(fn: Callable[[Sequence[int], Any], Sequence[str]], tokenizer: Any,
                   traces: Sequence[Trace] = ()) -> None:
    """`10_chat_and_thinking`, exercise 1: your segment labeller against `labkit.chat.segments`, on a
    hand-made reply (thought, answer, end of turn) and on every prompt + reply in `traces`."""
    from labkit.chat import segments

    ids = tokenizer.convert_tokens_to_ids
    made = [ids("<|turn>"), *tokenizer.encode("model\n", add_special_tokens=False), ids("<|channel>"),
            *tokenizer.encode("thought\n1 + 2 = 3", add_special_tokens=False), ids("<channel|>"),
            *tokenizer.encode("The answer is 3.", add_special_tokens=False), ids("<turn|>")]
    cases = [("a hand-made reply", made)] + [
        (f"reply {n}", [*t.prompt_ids, *t.new_ids]) for n, t in enumerate(traces)]
    for name, seq in cases:
        want, got = list(segments(seq, tokenizer)), list(fn(seq, tokenizer))
        assert len(got) == len(want), f"{name}: {len(got)} labels for {len(want)} tokens"
        wrong = [n for n, (a, b) in enumerate(zip(got, want)) if a != b]
        if wrong:
            n = wrong[0]
            raise AssertionError(f"{name}: token {n} ({tokenizer.decode([seq[n]])!r}) labelled {got[n]!r}, "
                                 f"expected {want[n]!r} ({len(wrong)} of {len(seq)} labels differ)")
    print(f"✓ your labeller agrees with labkit.chat.segments on {len(cases)} sequences")
