"""Train the pocket pair's tokenizer: byte-level BPE, 4096 ids, Gemma-style special tokens.

    python scripts/train_tokenizer.py      # reads build/pocket_data/, writes data/pocket/tokenizer/

Byte-level means every string round-trips exactly (indentation, odd unicode) with no `<unk>`.
The special tokens sit at the same kinds of ids Gemma 4 uses (<pad>=0, <eos>=1, <bos>=2, <unk>=3)
so the lab's code paths (pad/eos/bos handling, chat template) behave as with a real Gemma 4 pair.
Left out: Gemma's SentencePiece normaliser, byte fallback and digit splitting rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.pocket import TOKENIZER_DIR  # noqa: E402

VOCAB_SIZE = 4096
SPECIAL_TOKENS = [
    "<pad>", "<eos>", "<bos>", "<unk>",  # fixed ids 0..3, as in Gemma
    "<mask>",
    "<|turn>", "<turn|>",  # Gemma 4 chat turns: <|turn>user\n ... <turn|>\n
    "<|think|>",  # switches thinking mode on when placed in the system turn
    "<|image|>", "<|audio|>", "<|image>", "<image|>", "<|audio>", "<audio|>",  # multimodal slots
    *[f"<unused{i}>" for i in range(8)],  # reserved so later tokens need no new ids
]
# Gemma 4's turn format; the pocket target is not instruction-tuned, but the lab shows how a chat
# template changes acceptance, so the pair must render one the same way a real pair does.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<|turn>' + role + '\n' + message['content'] | trim + '<turn|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|turn>model\n' }}{% endif %}"
)


def documents(data_dir: Path, split: str) -> Iterator[str]:
    for kind in ("prose", "code"):
        with open(data_dir / f"{kind}_{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)["text"]


def build(data_dir: Path) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # GPT-2 style regex split + byte mapping: merges never cross word/space/punctuation borders,
    # which keeps tokens meaningful and code indentation as its own (mergeable) runs of spaces.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,  # ids 0.. in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is unknown
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(documents(data_dir, "train"), trainer=trainer)
    # Prepend <bos> like Gemma's tokenizer does; the model was trained with it at every doc start.
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", tok.token_to_id("<bos>"))]
    )
    return tok


def save(tok: Tokenizer, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
        unk_token="<unk>", mask_token="<mask>", additional_special_tokens=SPECIAL_TOKENS[5:],
        chat_template=CHAT_TEMPLATE, model_max_length=2048,
        clean_up_tokenization_spaces=False,  # would eat spaces before punctuation in code
    )
    hf.save_pretrained(out)


def bytes_per_token(tok: Tokenizer, data_dir: Path) -> dict[str, float]:
    out = {}
    for kind in ("prose", "code"):
        with open(data_dir / f"{kind}_val.jsonl", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        n_tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
        out[kind] = sum(len(t.encode()) for t in texts) / n_tokens
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "build" / "pocket_data")
    ap.add_argument("--out", type=Path, default=TOKENIZER_DIR)
    args = ap.parse_args()
    tok = build(args.data)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    save(tok, args.out)
    for kind, bpt in bytes_per_token(tok, args.data).items():
        print(f"val {kind}: {bpt:.3f} bytes/token")
    print(f"saved {tok.get_vocab_size()} tokens to {args.out}")


if __name__ == "__main__":
    main()
