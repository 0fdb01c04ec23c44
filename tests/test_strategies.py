"""Chapter 11's strategies are lossless, each on its own and composed (labkit.strategies, labkit.tree).

The rules are checked exactly, by enumerating every draft block on small vocabularies; the glass
box runs every strategy on the tiny trained Gemma 4 pair (tests/fixtures/trained_tiny.py, fp32):
greedy output equals the target's own greedy output, every sampled round's exact first-position
TV is below 1e-6, and block verification and the tree sample like the target.
"""

from __future__ import annotations

import pytest
import torch

from labkit import metrics, rules, strategies, tree
from labkit.errors import BadInputError
from labkit.glassbox import PromptLookupDrafter, speculate
from labkit.trace import Decoding, Trace

from fixtures import trained_tiny

STRATEGIES = {
    "argmax drafts": dict(drafts="argmax"),
    "block": dict(verify="block"),
    "stop below 0.5": dict(stop_below=0.5),
    "tree of 2": dict(tree=2),
    "argmax tree of 3, block, stop": dict(drafts="argmax", tree=3, verify="block", stop_below=0.3),
    "sampled tree of 2, stop": dict(tree=2, stop_below=0.3),
}


def _random_model(vocab: int, seed: int, zeros: bool = False):  # noqa: ANN202
    """A context-dependent distribution over `vocab` tokens, drawn once per context."""
    g, table = torch.Generator().manual_seed(seed), {}

    def dist(context: tuple[int, ...]) -> torch.Tensor:
        if context not in table:
            x = torch.rand(vocab, generator=g, dtype=torch.float64) ** 3
            if zeros:
                x[int(torch.randint(vocab, (1,), generator=g))] = 0.0
            table[context] = x / x.sum()
        return table[context]

    return dist


def test_the_toy_case_by_hand():
    """Sun et al.'s two-token case: p = (1/3, 2/3), q = (2/3, 1/3) at both positions, two drafts."""
    p = lambda c: torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)  # noqa: E731
    q = lambda c: torch.tensor([2 / 3, 1 / 3], dtype=torch.float64)  # noqa: E731
    assert strategies.expected_accepted("token", p, q, 2, 2) == pytest.approx(10 / 9, abs=1e-12)
    assert strategies.expected_accepted("block", p, q, 2, 2) == pytest.approx(11 / 9, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_block_and_token_verification_are_exact(seed):
    vocab, k = 3, 2 + seed % 2
    target, drafter = _random_model(vocab, seed, zeros=seed >= 4), _random_model(vocab, 100 + seed, zeros=seed >= 4)
    want = strategies.target_joint(target, k, vocab)
    for rule in ("token", "block"):
        got = strategies.exact_joint(rule, target, drafter, k, vocab)
        assert rules.tv_distance(got, want) < 1e-12, rule
    assert strategies.expected_accepted("block", target, drafter, k, vocab) >= \
        strategies.expected_accepted("token", target, drafter, k, vocab) - 1e-12


def test_block_verification_is_greedy_verification_at_temperature_zero():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        k, vocab = 4, 5
        logits = torch.randn(k + 1, vocab, generator=g)
        drafted = torch.where(torch.rand(k, generator=g) < 0.7, logits[:k].argmax(-1), torch.randint(vocab, (k,), generator=g))
        p = rules.warp(logits, 0.0)  # one-hot
        q = torch.stack([rules.point_mass(int(x), vocab) for x in drafted])
        assert rules.block_verify(drafted, q, p, g) == rules.greedy_accept(drafted, logits)


def test_the_tree_first_position_is_exact():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        p = torch.rand(7, generator=g, dtype=torch.float64) ** 4
        p /= p.sum()
        candidates = torch.randperm(7, generator=g)[:3].tolist()
        assert rules.tv_distance(rules.multi_draft_distribution(p, candidates), p) < 1e-12
    # W candidates drawn independently from q (SpecInfer): every draw enumerated, each step's rule exact
    import itertools

    p, q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)
    emitted = torch.zeros(3, dtype=torch.float64)
    for draws in itertools.product(range(3), repeat=2):
        chance, left = float(q[draws[0]] * q[draws[1]]), p
        for c in draws:
            keep = rules.accept_probability(float(left[c]), float(q[c]))
            emitted[c] += chance * keep
            chance *= 1 - keep
            left = rules.residual(left, q)
        emitted += chance * left
    assert rules.tv_distance(emitted, p) < 1e-12
    assert rules.tv_distance(rules.multi_draft_distribution(p, 2, q), emitted) < 1e-12
    p = torch.tensor([0.0, 1.0, 0.0])  # greedy: the candidate equal to the argmax is kept
    assert rules.multi_draft_sample(p, [2, 1], g) == (1, 1)
    assert rules.multi_draft_sample(p, [0, 2], g) == (-1, 1)


def test_exact_acceptance_of_the_three_rules_matches_enumeration():
    """`exact_acceptance` (vectorised, two positions held fixed) equals the enumeration."""
    g = torch.Generator().manual_seed(2)
    for zeros in (False, True):
        p = torch.rand(2, 5, generator=g, dtype=torch.float64) ** 2
        q = torch.rand(2, 5, generator=g, dtype=torch.float64) ** 2
        if zeros:  # a warped target at low temperature puts exactly 0 on some tokens
            p[0, 1] = p[1, 2] = q[1, 3] = 0.0
        p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
        got = strategies.exact_acceptance(p, q)
        target, drafter = (lambda c: p[min(len(c), 1)]), (lambda c: q[len(c)])  # the bonus row does not count
        assert got.token == pytest.approx(strategies.expected_accepted("token", target, drafter, 2, 5), abs=1e-12)
        assert got.block == pytest.approx(strategies.expected_accepted("block", target, drafter, 2, 5), abs=1e-12)
        a = q.argmax(-1)
        assert got.point_mass == pytest.approx(float(p[0, a[0]] * (1 + p[1, a[1]])), abs=1e-12)
        assert got.block >= got.token - 1e-12


def test_the_tree_mask_and_positions():
    """Each node sees the prefix and its ancestors, never the other branch; sliding layers see only
    the last `window` positions; positions are prefix + depth."""
    tokens, parents, depth = tree.layout([[10, 11, 12], [20, 21, 22]])
    assert tokens == [10, 11, 12, 20, 21, 22] and parents == [0, 1, 2, 0, 4, 5] and depth == [1, 2, 3, 1, 2, 3]
    masks = tree.tree_mask(parents, depth, prefix=5, window=4)
    full = masks["full_attention"][0, 0] == 0  # (7, 5 + 7)
    assert full.shape == (7, 12) and full[:, :5].all()
    nodes = full[:, 5:]
    assert nodes[6].tolist() == [True, False, False, False, True, True, True]  # root, its branch, itself
    assert nodes[3].tolist() == [True, True, True, True, False, False, False]
    sliding = masks["sliding_attention"][0, 0] == 0  # (7, 3 cached + 7)
    assert sliding.shape == (7, 10)
    assert sliding[0, :3].all()  # the root at position 5 sees 2, 3, 4
    assert sliding[3, :3].tolist() == [False, False, False]  # depth 3 = position 8 sees nothing before 5
    assert sliding[3, 3:].tolist() == nodes[3].tolist()


@pytest.fixture(scope="module")
def pair():
    return trained_tiny.load()


def prompts(n=3, length=10):
    return [torch.randint(3, trained_tiny.VOCAB, (1, length), generator=torch.Generator().manual_seed(s))
            for s in range(n)]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_is_lossless_on_the_glass_box(pair, name):
    target, drafter = pair
    kw = STRATEGIES[name]
    for ids in prompts():
        plain = target.generate(ids, do_sample=False, max_new_tokens=40)[0].tolist()
        assert list(speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, **kw)).output_ids) == plain
    tvs = []
    for seed, ids in enumerate(prompts(2)):
        trace = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, temperature=1.0, seed=seed, **kw))
        assert trace.settings.tree == kw.get("tree", 1)
        tvs += [r.tv for r in trace.rounds if r.tv is not None]
    if kw.get("verify") != "block":  # block verification's per-round check: test_block_rounds_are_exact
        assert tvs and max(tvs) < 1e-6


def test_block_first_distribution_matches_enumeration():
    """The vectorised sum over every two-draft block (strategies.block_first_distribution) against
    block_outcomes block by block, q2 with zeros among them; both give exactly p1."""
    import itertools

    g = torch.Generator().manual_seed(3)
    vocab = 5
    for case in range(12):
        p1, q1 = ((torch.randn(vocab, generator=g, dtype=torch.float64) * 2).softmax(-1) for _ in range(2))
        p2, q2 = ((torch.randn(vocab, vocab, generator=g, dtype=torch.float64) * 2).softmax(-1) for _ in range(2))
        if case % 3 == 0:
            q2[:, 0] = 0.0
            q2 = q2 / q2.sum(-1, keepdim=True)
        want = torch.zeros(vocab, dtype=torch.float64)
        kept = {"token": 0.0, "block": 0.0}
        for x1, x2 in itertools.product(range(vocab), repeat=2):
            chance = float(q1[x1] * q2[x1, x2])
            if chance == 0:
                continue
            q, p = torch.stack([q1, q2[x1]]), torch.stack([p1, p2[x1], p1])
            for t, source in strategies.block_outcomes(torch.tensor([x1, x2]), q, p):
                if t == 0:
                    want += chance * source
                else:
                    want[x1] += chance * float(source.sum())
            for rule in kept:
                kept[rule] += sum(chance * t * float(source.sum())
                                  for t, source in strategies.RULES[rule](torch.tensor([x1, x2]), q, p))
        got = strategies.block_first_distribution(p1, q1, p2, q2)
        assert rules.tv_distance(got, want) < 1e-12 and rules.tv_distance(got, p1) < 1e-12
        token, block = strategies.kept_exactly(p1, q1, p2, q2)
        assert abs(token - kept["token"]) < 1e-12 and abs(block - kept["block"]) < 1e-12 and block >= token - 1e-12


def test_block_rounds_are_exact(pair):
    """speculate(check_block=True): every round of two block-verified drafts gets its exact TV,
    re-read from what the drafter really saw (past the sliding window too), off the clock; the
    tokens are those of the unchecked run."""
    target, drafter = pair
    ids = prompts(1)[0]
    settings = Decoding(k=2, max_new_tokens=30, temperature=1.0, seed=0, verify="block")
    checked = speculate(target, drafter, ids, settings, check_block=True)
    tvs = [r.tv for r in checked.rounds if r.tv is not None]
    assert len(tvs) == sum(r.k == 2 for r in checked.rounds) >= 10 and max(tvs) < 1e-9
    assert checked.new_ids == speculate(target, drafter, ids, settings).new_ids
    with pytest.raises(BadInputError, match="assistant"):
        speculate(target, PromptLookupDrafter(trained_tiny.VOCAB), ids, settings, check_block=True)


@torch.no_grad()
@pytest.mark.parametrize("kw", [dict(verify="block"), dict(tree=2, drafts="argmax"), dict(tree=2)])
def test_block_and_tree_sample_like_the_target(pair, kw):
    """As test_glassbox's sampling test: the second new token's distribution given the first."""
    target, drafter = pair
    ids = prompts(1)[0]
    counts: dict[int, torch.Tensor] = {}
    for seed in range(400):
        t = speculate(target, drafter, ids, Decoding(k=3, max_new_tokens=2, temperature=1.0, seed=seed, **kw))
        first, second = t.new_ids
        counts.setdefault(first, torch.zeros(trained_tiny.VOCAB))[second] += 1
    first, c = max(counts.items(), key=lambda kv: kv[1].sum())
    p = rules.warp(target(torch.cat([ids, torch.tensor([[first]])], 1)).logits[0, -1], 1.0)
    n = int(c.sum())
    assert n > 150 and rules.tv_distance(c / n, p) < 2.0 / n**0.5


def test_confidence_stopping_drafts_fewer_and_argmax_drafts_are_point_masses(pair):
    target, drafter = pair
    ids = prompts(1)[0]
    chain = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40))
    stopped = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, stop_below=0.9))
    assert sum(r.k for r in stopped.rounds) < sum(r.k for r in chain.rounds)
    assert any(0 < r.k < 4 for r in stopped.rounds[1:-1])
    argmax = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, temperature=1.0, drafts="argmax"))
    assert all(q == 1.0 for r in argmax.rounds for q in r.draft_probs)


def test_a_tree_accepts_at_least_as_much_as_its_chain_when_greedy(pair):
    """Greedy: the tree's first branch is the chain, so it never keeps fewer drafts per round."""
    target, drafter = pair
    for ids in prompts():
        chain = speculate(target, drafter, ids, Decoding(k=3, max_new_tokens=40))
        wide = speculate(target, drafter, ids, Decoding(k=3, max_new_tokens=40, tree=2))
        assert metrics.tau(wide) >= metrics.tau(chain) - 0.35  # rounds fall differently; the sum is close or better


def test_refusals_and_old_traces():
    with pytest.raises(BadInputError):
        strategies.check(Decoding(drafts="top"))
    with pytest.raises(BadInputError):
        strategies.check(Decoding(tree=2, kv="transformers"))
    target, _ = trained_tiny.load()
    with pytest.raises(BadInputError):
        speculate(target, PromptLookupDrafter(trained_tiny.VOCAB), prompts(1)[0], Decoding(tree=2))
    from labkit.glassbox import sampled_rounds

    with pytest.raises(ValueError):
        sampled_rounds(target, trained_tiny.load()[1], prompts(1)[0], Decoding(temperature=1.0, verify="block"))
    old = {"path": "glassbox", "drafter": "mtp", "pair": "pocket", "prompt_ids": [1, 2], "rounds": [],
           "settings": {"k": 4, "max_new_tokens": 8}}
    settings = Trace.from_dict(old, schema=2).settings
    assert (settings.drafts, settings.verify, settings.stop_below, settings.tree) == ("sampled", "token", 0.0, 1)
    assert strategies.describe(Decoding(temperature=1.0, verify="block", tree=2)) == \
        "sampled drafts, block verification, tree of 2"


def test_bench_runs_a_strategy_on_the_glass_box(tiny, capsys):
    """`labkit bench --drafts argmax --verify block --stop-below P --tree W`: the usual keys, the
    strategy named, greedy output still identical; a tree with another drafter is refused."""
    import json

    from labkit import cli

    base = ["bench", "--json", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"), "--n", "1",
            "--max-new-tokens", "12", "--quiet", "--device", "cpu", "--repeats", "1", "--prompts", "code"]
    assert cli.main(base + ["--drafts", "argmax", "--verify", "block", "--stop-below", "0.2", "--tree", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["identical"] is True and result["tree"] == 2 and result["verify"] == "block"
    for key in ("tau_glassbox", "speedup_glassbox", "acceptance_by_position_glassbox", "strategy",
                "tau_glassbox_interval", "speedup_glassbox_interval"):
        assert key in result
    assert cli.main(base + ["--temperature", "1.0", "--drafts", "argmax", "--tree", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tv_glassbox"] < 1e-5
    assert cli.main(base + ["--temperature", "1.0", "--verify", "block"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tv_glassbox"] is None  # unchecked
    assert cli.main(base + ["--temperature", "1.0", "--verify", "block", "--k", "2", "--check-block"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tv_glassbox_max"] < 1e-9 and result["tv_glassbox_rounds"] >= 3
    assert result["identical_detail"]["checked_vs_timed"] is True
    assert cli.main(base + ["--temperature", "1.0", "--check-block"]) == 2  # token-wise: nothing to check
    assert cli.main(base + ["--method", "prompt-lookup", "--tree", "2"]) == 2


def test_the_cost_model_prices_a_tree_by_its_verify_width():
    """`fit_costs` reads a tree round's verify as 1 + W k tokens, and `round_seconds(k, width=W)`
    prices it so; a round stopped early keeps its own (smaller) k."""
    from dataclasses import replace as with_

    from labkit import experiments
    from labkit.trace import Round

    def trace(ks, tree_width, t_of_width):  # noqa: ANN001, ANN202
        rounds = [Round(0, 5, 0, (), (), (), (1,), 0, (1,), 0.0, 0.02, 0.0)]
        for i, k in enumerate(ks, start=1):
            width = 1 + tree_width * k
            rounds.append(Round(i, 5 + i, k, (1,) * k, (0.5,) * k, (0.5,) * k, (1,) * (k + 1), k, (1,) * (k + 1),
                                0.001 * k, t_of_width(width), 0.0005))
        return Trace("glassbox", "mtp", "t", (0,) * 5, tuple(rounds), Decoding(k=max(ks), tree=tree_width))

    line = lambda n: 0.01 + 0.002 * n  # noqa: E731  seconds for a verify over n tokens
    plain = Trace("glassbox", "none", "t", (0,) * 5,
                  tuple(Round(i, 5 + i, 0, (), (), (), (1,), 0, (1,), 0.0, 0.012, 0.0003) for i in range(10)))
    chain, tree = trace([4, 4, 2, 1], 1, line), trace([4, 3, 4, 2], 2, line)
    costs = experiments.fit_costs([plain], [chain, tree])
    assert costs.verify == pytest.approx((0.01, 0.002), abs=1e-9)
    assert costs.round_seconds(4, width=2) - costs.round_seconds(4) == pytest.approx(0.002 * 4, abs=1e-9)
    assert experiments.verify_width(tree, tree.rounds[1]) == 9
    assert experiments.predict(costs, [tree]) < experiments.predict(costs, [with_(tree, settings=Decoding(k=4))])


def test_a_tree_on_a_target_with_kv_shared_layers():
    """E2B and E4B reuse earlier layers' K/V in their last layers (and read per-layer inputs): the
    tree's per-layer-type masks reach those layers too. A random tiny target of that shape: greedy
    trees give its own greedy output, sampled trees stay exact at the first position."""
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

    from fixtures import tiny_pair

    _, drafter_config = tiny_pair._configs(256)
    geometry = dict(num_key_value_heads=1, head_dim=16, global_head_dim=32, sliding_window=16,
                    max_position_embeddings=256, hidden_size_per_layer_input=8, vocab_size_per_layer_input=256,
                    tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2,
                    final_logit_softcapping=30.0)
    config = Gemma4TextConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=8,
                              num_attention_heads=4, num_kv_shared_layers=4,
                              layer_types=(["sliding_attention"] * 3 + ["full_attention"]) * 2, **geometry)
    torch.manual_seed(0)
    target, drafter = Gemma4ForCausalLM(config).eval(), Gemma4AssistantForCausalLM(drafter_config).eval()
    for s in range(3):
        ids = torch.randint(3, 256, (1, 12), generator=torch.Generator().manual_seed(s))
        plain = target.generate(ids, do_sample=False, max_new_tokens=40)[0].tolist()
        for kw in (dict(tree=2), dict(tree=3, verify="block")):
            trace = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, **kw), eos_token_id=1)
            assert list(trace.output_ids) == plain, kw
        sampled = speculate(target, drafter, ids, Decoding(k=4, max_new_tokens=30, temperature=1.0, tree=2))
        assert max(r.tv for r in sampled.rounds if r.tv is not None) < 1e-6
