"""The pocket pair: a small Gemma 4 target and its MTP drafter, trained in this repo on a CPU.

Both are the real transformers classes (`Gemma4ForCausalLM`, `Gemma4AssistantForCausalLM`), only
small, so everything the lab shows with them holds for a real Gemma 4 pair too. The sizes were
chosen by measurement on a 2-core CPU: decoding there is overhead-bound (per-layer Python and
kernel launch costs, not FLOPs), so a deep-narrow target (8 layers) makes a 4-layer drafter of half
the width cheap relative to it, and a ~7M-parameter target still trains in about an hour.

Introduced in `00_tour`; trained by `scripts/train_target.py` and `scripts/train_drafter.py`.
Left out: Per-Layer Embeddings, KV-shared layers in the target, MoE, and multimodal towers.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Gemma4AssistantConfig, Gemma4TextConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
POCKET_DIR = REPO_ROOT / "data" / "pocket"  # committed weights + tokenizer of the pocket pair
TARGET_DIR = POCKET_DIR / "target"
DRAFTER_DIR = POCKET_DIR / "drafter"
TOKENIZER_DIR = POCKET_DIR / "tokenizer"

NUM_ASSISTANT_TOKENS = 4  # k for the pocket pair: a small drafter's acceptance decays fast

# Shared by target and drafter: the drafter attends to the target's K/V cache, so the attention
# geometry (head dims, KV heads, sliding window) must be identical on both sides.
HEAD_DIM = 64  # sliding layers; 64 is the smallest head that still trains well at this width
GLOBAL_HEAD_DIM = 128  # full layers get wider heads, as in Gemma 4 (whose default would be 512)
NUM_KV_HEADS = 1  # multi-query attention, like E2B: the smallest KV cache
SLIDING_WINDOW = 128  # half the training length, so the lab's sequences do run past the window


def target_config(vocab_size: int = 4096) -> Gemma4TextConfig:
    """The pocket target: ~7M parameters, 8 layers of width 256 (about 1M of them embeddings)."""
    return Gemma4TextConfig(
        vocab_size=vocab_size,  # our byte-level BPE (scripts/train_tokenizer.py)
        hidden_size=256,  # narrow: CPU decode cost is dominated by per-layer overhead, not width
        intermediate_size=768,  # 3x hidden: Gemma's MLP ratio is 4x, shaved to keep training fast
        num_hidden_layers=8,  # deep-narrow, so a 4-layer drafter is cheap next to it
        num_attention_heads=4,  # 4 x 64 = hidden width on sliding layers
        num_key_value_heads=NUM_KV_HEADS,
        head_dim=HEAD_DIM,
        global_head_dim=GLOBAL_HEAD_DIM,  # a constructor kwarg only: read back via per_layer_config
        # Gemma 4's hybrid attention in miniature: 3 local layers, then a global one; last is global.
        layer_types=(["sliding_attention"] * 3 + ["full_attention"]) * 2,
        sliding_window=SLIDING_WINDOW,
        max_position_embeddings=2048,  # far beyond the lab's prompts + generations
        hidden_size_per_layer_input=0,  # no Per-Layer Embeddings: they only pay off at E2B scale
        vocab_size_per_layer_input=0,
        num_kv_shared_layers=0,  # every target layer keeps its own K/V (E2B shares 20 of 35)
        tie_word_embeddings=True,  # output head = input embeddings, as in every Gemma
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        final_logit_softcapping=30.0,  # Gemma's tanh cap on logits; keeps early training stable
    )


def drafter_config(target_cfg: Gemma4TextConfig) -> Gemma4AssistantConfig:
    """The pocket drafter: 4 layers [sliding x3, full] of width 128 reading the target's K/V."""
    text = Gemma4TextConfig(
        vocab_size=target_cfg.vocab_size,  # drafts tokens of the target's vocabulary
        hidden_size=128,  # half the target's width: the drafter must be much cheaper per step
        intermediate_size=512,  # 4x hidden, Gemma's usual ratio
        num_hidden_layers=4,  # like every Gemma 4 assistant
        num_attention_heads=2,  # 2 x 64 = 128
        num_key_value_heads=NUM_KV_HEADS,  # must match the target's: it reads the target's K/V
        head_dim=HEAD_DIM,  # ditto
        global_head_dim=GLOBAL_HEAD_DIM,  # ditto, for the full-attention layer
        layer_types=["sliding_attention"] * 3 + ["full_attention"],  # as in the real assistants
        sliding_window=target_cfg.sliding_window,  # ditto: same mask over the same cache
        max_position_embeddings=target_cfg.max_position_embeddings,
        hidden_size_per_layer_input=0,  # the assistant config rejects anything else
        vocab_size_per_layer_input=0,
        tie_word_embeddings=True,
        pad_token_id=target_cfg.pad_token_id,
        eos_token_id=target_cfg.eos_token_id,
        bos_token_id=target_cfg.bos_token_id,
        final_logit_softcapping=target_cfg.final_logit_softcapping,
    )
    return Gemma4AssistantConfig(
        text_config=text,
        backbone_hidden_size=target_cfg.hidden_size,  # it reads the target's last hidden state
        # The E2B/E4B "centroid" head: score only top_k of num_centroids token clusters per step
        # (8 of 64 clusters = 512 of 4096 rows here; E2B scores 32 of 2048 = 4096 of 262,144).
        use_ordered_embeddings=True,
        num_centroids=64,
        centroid_intermediate_top_k=8,
    )


def drafter_generation_config(target_generation_config):  # -> GenerationConfig
    """The drafter's generation config: transformers reads `num_assistant_tokens` from it."""
    import copy

    cfg = copy.deepcopy(target_generation_config)
    cfg.num_assistant_tokens = NUM_ASSISTANT_TOKENS
    cfg.num_assistant_tokens_schedule = "constant"  # predictable rounds for teaching; see 03_*
    return cfg
