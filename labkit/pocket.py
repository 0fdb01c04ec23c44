"""The pocket pair: a small Gemma 4 target and its MTP drafter, trained in this repo (CPU or GPU).

Both are the real transformers classes (`Gemma4ForCausalLM`, `Gemma4AssistantForCausalLM`), only
small, so everything the lab shows with them holds for a real Gemma 4 pair too. The sizes were
chosen by measurement on a 2-core CPU, where decoding is overhead-bound: about 0.7-1 ms per layer
per step in per-op costs, whatever the width. So a drafter step costs what its 4 layers cost, and
a target's depth decides how cheap that is next to it: measured with transformers' generate, a
round of 4 drafts + 1 verify costs 2.5-2.9 target steps with `target_config`'s 8 layers (1.5x
would need tau ~4), 1.9-2.45 with 16 depending on the machine, and 1.88 with 24 where 16 cost 2.14
(`scripts/round_cost.py`). So `target_config` is the quick pair's shape (trains in minutes), and
the full recipe trains 24 layers of width 256 with a 2x MLP (`scripts/train_target.py`, ~10 min
on a GPU; issue "Pocket Gemma 4 pair") and a drafter of width 256 (`drafter_config`'s 128 is the
quick pair's).

Introduced in `00_tour`; trained by `scripts/train_target.py` and `scripts/train_drafter.py`.
The pocket *multimodal* pair (`06_multimodal`) is a separate, smaller `Gemma4ForConditionalGeneration`
with vision and audio towers, trained by `scripts/train_multimodal.py` on synthetic pictures and
beeps (`labkit.synthetic`), and its own drafter: `multimodal_config`, `multimodal_drafter_config`.
Left out: Per-Layer Embeddings, KV-shared layers in the target, MoE.
"""

from __future__ import annotations

from transformers import Gemma4AssistantConfig, Gemma4TextConfig

from labkit.paths import (  # noqa: F401  (pocket.TARGET_DIR etc.: the build, loading and tests read them here)
    DRAFT_MODEL_DIR,
    DRAFTER_DIR,
    MULTIMODAL_DIR,
    POCKET_DIR,
    TARGET_DIR,
    TOKENIZER_DIR,
)

NUM_ASSISTANT_TOKENS = 4  # k for the pocket pair: a small drafter's acceptance decays fast

# Shared by target and drafter: the drafter attends to the target's K/V cache, so the attention
# geometry (head dims, KV heads, sliding window) must be identical on both sides.
HEAD_DIM = 64  # sliding layers; 64 is the smallest head that still trains well at this width
GLOBAL_HEAD_DIM = 128  # full layers get wider heads, as in Gemma 4 (whose default would be 512)
NUM_KV_HEADS = 1  # multi-query attention, like E2B: the smallest KV cache
SLIDING_WINDOW = 128  # half the training length, so the lab's sequences do run past the window


def target_config(vocab_size: int = 4096, **changes) -> Gemma4TextConfig:
    """A pocket target: ~7M parameters, 8 layers of width 256 (about 1M of them embeddings).

    This is the quick pair's shape; the full recipe passes 24 layers and a 2x MLP (`scripts/train_target.py`).

    `changes` replace fields before the config is built (fields like the per-layer head sizes are
    derived from the layer list at construction, so a config must not be edited afterwards)."""
    return Gemma4TextConfig(**{**dict(
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
    ), **changes})


def drafter_config(target_cfg: Gemma4TextConfig, **changes) -> Gemma4AssistantConfig:
    """The pocket drafter: 4 layers [sliding x3, full] of width 128 reading the target's K/V
    (the quick pair's; `scripts/train_drafter.py`'s full recipe widens it to 256).

    `changes` replace fields of its text config (see `target_config`)."""
    text = Gemma4TextConfig(**{**dict(
        vocab_size=target_cfg.vocab_size,  # drafts tokens of the target's vocabulary
        hidden_size=128,  # narrower than the target; on a CPU its 4 layers' overhead costs more than width
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
    ), **changes})
    return Gemma4AssistantConfig(
        text_config=text,
        backbone_hidden_size=target_cfg.hidden_size,  # it reads the target's last hidden state
        # The E2B/E4B "centroid" head: score only top_k of num_centroids token clusters per step
        # (16 of 64 clusters = 1,024 of 4,096 rows here; E2B scores 32 of 2048 = 4,096 of 262,144).
        # A share far above E2B's 1.6 %: at this vocabulary a draft step costs the same with the
        # full head, and 8 clusters agreed 0.007 less often with the target per step, 16 0.001-0.002.
        use_ordered_embeddings=True,
        num_centroids=64,
        centroid_intermediate_top_k=16,
    )


def drafter_generation_config(target_generation_config):  # -> GenerationConfig
    """The drafter's generation config: transformers reads `num_assistant_tokens` from it."""
    import copy

    cfg = copy.deepcopy(target_generation_config)
    cfg.num_assistant_tokens = NUM_ASSISTANT_TOKENS
    cfg.num_assistant_tokens_schedule = "constant"  # predictable rounds for teaching; see 03_*
    return cfg


# E2B's window, for the next build: a six-frame clip (~450 tokens) fits it, so every layer, not only
# the one full layer, can compare its first frame with its last. (The shipped pair has 128.)
MULTIMODAL_SLIDING_WINDOW = 512


def multimodal_config(tokenizer):  # -> Gemma4Config
    """The pocket multimodal target: a 4-layer text model of width 128 with small vision and audio
    towers (~2.5M parameters). Image and audio settings are Gemma 4's (16-pixel patches pooled 3 x 3,
    128 mel bins, two stride-2 convolutions); only the widths and depths are small."""
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4VisionConfig

    text = target_config(len(tokenizer), hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=2,  # 2 x 64 = 128
                         layer_types=["sliding_attention"] * 3 + ["full_attention"])
    text.sliding_window = MULTIMODAL_SLIDING_WINDOW
    vision = Gemma4VisionConfig(
        hidden_size=96, intermediate_size=384, num_hidden_layers=3, num_attention_heads=3,
        num_key_value_heads=3, head_dim=32,
        position_embedding_size=32,  # patch coordinates up to 24 at the 70-token budget
        default_output_length=70,  # the smallest of Gemma 4's image budgets (70 ... 1120)
    )
    audio = Gemma4AudioConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=2, output_proj_dims=64,
        # the first count must stay 128: transformers sizes the projection after the convolutions
        # as (channels[0] // 4) * channels[1], which only equals (mel bins // 4) * channels[1] then
        subsampling_conv_channels=[128, 8],
    )
    ids = {name: tokenizer.convert_tokens_to_ids(getattr(tokenizer, name.removesuffix("_id")))
           for name in ("image_token_id", "audio_token_id", "video_token_id", "boi_token_id",
                        "eoi_token_id", "boa_token_id")}
    return Gemma4Config(text_config=text, vision_config=vision, audio_config=audio,
                        eoa_token_index=tokenizer.convert_tokens_to_ids(tokenizer.eoa_token),
                        vision_soft_tokens_per_image=70, **ids)


def multimodal_drafter_config(target_cfg) -> Gemma4AssistantConfig:
    """Its drafter: 4 layers of width 64 (one 64-wide head), full output head."""
    cfg = drafter_config(target_cfg.get_text_config(), hidden_size=64, intermediate_size=256,
                         num_attention_heads=1)
    # The full head: with 4096 tokens it costs little, and captions need every word right.
    cfg.use_ordered_embeddings = False
    return cfg

