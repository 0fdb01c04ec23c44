"""Images and sounds into a Gemma 4 target: its processor, input checks, and where soft tokens sit.

A Gemma 4 target reads an image as a run of soft tokens (`<|image>` + n x `<|image|>` + `<image|>`)
and a sound likewise (`<|audio>` ... `<audio|>`); the vision and audio towers replace those
placeholders' embeddings in the prefill. The drafter never sees pixels or samples: it attends to
the target's K/V, where the soft tokens already sit.

    inputs = media_inputs(pair, "Describe the picture.", image="data/media/scene_0.png")
    trace = labkit.run(pair, inputs.pop("input_ids"), **inputs)

Every input is checked first and a bad one raises `MediaError` with what to do: an unreadable or
unsupported image, empty or corrupt audio, audio for a target without an audio tower, more images
than the context holds. Audio at another sample rate is resampled to 16 kHz (`resample`).
`widgets.media_runner(pair)` answers with and without the drafter for 06's panel
(`widgets.MediaPanel`, which takes traces, never models).

Introduced in `06_multimodal`. Left out: video (Gemma 4's video processor needs torchvision, which
has no CPU build here), batches, and several audio clips in one prompt.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from labkit.errors import MediaError
from labkit.glassbox import draft_step
from labkit.paths import MEDIA_DIR  # noqa: F401  (media.MEDIA_DIR: 06 reads its samples there)

if TYPE_CHECKING:  # for annotations only: labkit.loading imports this module
    from labkit.loading import Pair

SAMPLE_RATE = 16_000  # Gemma 4's audio feature extractor works at 16 kHz
MEDIA_TOKENS = {  # the tokenizer attribute the processor reads -> the token in Gemma 4's vocabulary
    "image_token": "<|image|>", "boi_token": "<|image>", "eoi_token": "<image|>",
    "audio_token": "<|audio|>", "boa_token": "<|audio>", "eoa_token": "<audio|>",
    "video_token": "<|video|>",
}
# Gemma 4's turn format with image and audio items in a message's content list.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<|turn>' + role + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<|image|>' }}"
    "{% elif item['type'] == 'audio' %}{{ '<|audio|>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<turn|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|turn>model\n' }}{% endif %}"
)


@functools.cache  # one class, so processors built twice are instances of the same type
def _processor_class():
    from transformers.models.gemma4.processing_gemma4 import Gemma4Processor

    class Gemma4MediaProcessor(Gemma4Processor):
        """Gemma4Processor for images, audio and text, without its video processor.

        The video processor needs torchvision, which CPU-only installs may lack; images go through
        the PIL image processor instead, with the same settings and the same output.
        """

        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    return Gemma4MediaProcessor


def build_processor(tokenizer: Any, image: dict | None = None, audio: dict | None = None,
                    **settings: Any) -> Any:
    """A Gemma 4 processor from a tokenizer and the image processor / feature extractor settings
    (a `processor_config.json`'s "image_processor" and "feature_extractor" entries)."""
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    def clean(d: dict | None) -> dict:
        return {k: v for k, v in (d or {}).items() if not k.endswith("_type") and k != "processor_class"}

    keep = ("image_seq_length", "audio_seq_length", "audio_ms_per_token")
    return _processor_class()(
        feature_extractor=Gemma4AudioFeatureExtractor(**clean(audio)),
        image_processor=Gemma4ImageProcessorPil(**clean(image)),
        tokenizer=tokenizer, video_processor=None,
        chat_template=settings.get("chat_template") or getattr(tokenizer, "chat_template", None),
        **{k: v for k, v in settings.items() if k in keep},
    )


def save_processor(processor: Any, folder: str | Path) -> None:
    """Write `processor_config.json` (and the tokenizer) the way Gemma 4's hub folders hold them."""
    folder = Path(folder)
    processor.tokenizer.save_pretrained(folder)
    config = {
        "processor_class": "Gemma4Processor",
        "image_processor": json.loads(processor.image_processor.to_json_string()),
        "feature_extractor": json.loads(processor.feature_extractor.to_json_string()),
        "image_seq_length": processor.image_seq_length,
        "audio_seq_length": processor.audio_seq_length,
        "audio_ms_per_token": processor.audio_ms_per_token,
    }
    (folder / "processor_config.json").write_text(json.dumps(config, indent=1) + "\n")


def write_processor(folder: str | Path, soft_tokens_per_image: int) -> Any:
    """Add Gemma 4's chat template and a processor_config.json to a folder holding a tokenizer
    (tokenizer.json with Gemma 4's media tokens), and return the processor they make."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    tokenizer = AutoTokenizer.from_pretrained(folder, extra_special_tokens=MEDIA_TOKENS)
    processor = build_processor(tokenizer, {"max_soft_tokens": soft_tokens_per_image}, {},
                                image_seq_length=soft_tokens_per_image, chat_template=CHAT_TEMPLATE)
    save_processor(processor, folder)
    return processor


def processor_from_folder(folder: str | Path, tokenizer: Any = None) -> Any:
    """The processor saved by `save_processor` (or a hub folder's processor_config.json)."""
    from transformers import AutoTokenizer

    config = json.loads((Path(folder) / "processor_config.json").read_text())
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(folder)
    return build_processor(tokenizer, config.get("image_processor"), config.get("feature_extractor"),
                           **config)


# ---------------------------------------------------------------- inputs, checked


def load_image(image: Any) -> Any:
    """A PIL RGB image from a path, bytes, a PIL image or an (H, W[, C]) uint8 array."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        picture = image
    elif isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or image.size == 0:
            raise MediaError(f"an image array must be (height, width) or (height, width, 3); "
                             f"got shape {image.shape}")
        picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    else:
        source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else Path(image)
        if isinstance(source, Path) and not source.exists():
            raise MediaError(f"no image at {source}")
        try:
            picture = Image.open(source)
            picture.load()
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            name = source if isinstance(source, Path) else "the given bytes"
            raise MediaError(f"cannot read {name} as an image ({type(e).__name__}); use a PNG, JPEG, "
                             "GIF or WebP file") from None
    if min(picture.size) < 1:
        raise MediaError(f"the image is {picture.size[0]} x {picture.size[1]} pixels: nothing to see")
    return picture.convert("RGB")


def image_html(image: Any, caption: str = "", width: int = 160) -> str:
    """An inline <figure> (PNG as a data URL): renders in JupyterLab, Colab and VS Code alike."""
    import base64
    import html

    buf = io.BytesIO()
    load_image(image).save(buf, format="PNG")
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return (f'<figure style="margin:0 12px 0 0"><img src="{src}" width="{width}">'
            f'<figcaption style="font-size:0.85em">{html.escape(caption)}</figcaption></figure>')


def audio_html(audio: Any, caption: str = "", sampling_rate: int | None = None) -> str:
    """An inline audio player with the clip's length beside it (`06_multimodal`).

    Browsers show a player's time in whole seconds, so a 0.6 s clip reads "0:00 / 0:00"; the
    length is written out next to it. `audio` is anything `load_audio` reads.
    """
    import html

    from IPython.display import Audio

    wave = load_audio(audio, sampling_rate)
    player = Audio(wave, rate=SAMPLE_RATE)._repr_html_()
    seconds = len(wave) / SAMPLE_RATE
    label = f"{html.escape(caption)} · " if caption else ""
    return (f'<figure style="margin:0 12px 0 0">{player}<figcaption style="font-size:0.85em">'
            f"{label}{seconds:.1f} s</figcaption></figure>")


END_OF_TURN = ("<turn|>", "<eos>")  # what a chat target ends its answer with: not part of the answer


def without_end(trace: Any) -> Any:
    """The trace with the end-of-turn token(s) it stopped on dropped from its text, for showing an
    answer (`06_multimodal`); the token ids, and so every count, are untouched."""
    from dataclasses import replace

    pieces = list(trace.pieces)
    while pieces and pieces[-1].strip() in END_OF_TURN:
        pieces.pop()
    return replace(trace, pieces=tuple(pieces))


def answer(trace: Any) -> str:
    """The generated text as an answer: without the end-of-turn token, stripped (`06_multimodal`)."""
    return without_end(trace).text.strip()


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling by the FFT: keep the frequencies both rates can hold."""
    if rate == target:
        return wave
    n = int(round(len(wave) * target / rate))
    spectrum = np.fft.rfft(wave)
    keep = min(len(spectrum), n // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n) * (n / len(wave))
    return out.astype(np.float32)


def load_audio(audio: Any, sampling_rate: int | None = None) -> np.ndarray:
    """float32 mono samples at 16 kHz from a path, bytes, or an array with its `sampling_rate`.

    Stereo is averaged to mono; another sample rate is resampled (`resample`), never misread.
    """
    import soundfile

    if isinstance(audio, (str, Path, bytes, bytearray)):
        source = io.BytesIO(audio) if isinstance(audio, (bytes, bytearray)) else Path(audio)
        if isinstance(source, Path) and not source.exists():
            raise MediaError(f"no audio file at {source}")
        try:
            wave, sampling_rate = soundfile.read(source, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
            name = source if isinstance(source, Path) else "the given bytes"
            raise MediaError(f"cannot read {name} as audio ({str(e).strip() or type(e).__name__}); "
                             "use a WAV, FLAC or OGG file") from None
        wave = wave.mean(axis=1)
    else:
        wave = np.asarray(audio, dtype=np.float32)
        if sampling_rate is None:
            raise MediaError("an audio array needs its sampling_rate (e.g. sampling_rate=16000); "
                             "without it the sound would play at the wrong speed")
        if wave.ndim == 2:  # (samples, channels) as soundfile gives, or (channels, samples)
            wave = wave.mean(axis=1 if wave.shape[0] > wave.shape[1] else 0)
        if wave.ndim != 1:
            raise MediaError(f"audio must be (samples,) or (samples, channels); got shape {wave.shape}")
    if wave.size == 0 or not np.any(wave):
        raise MediaError("the audio is empty or silent: record or pick a sound with something in it")
    if not np.all(np.isfinite(wave)):
        raise MediaError("the audio holds NaN or infinite samples: it is corrupt")
    if sampling_rate <= 0:
        raise MediaError(f"sampling_rate = {sampling_rate}: it must be positive (Gemma 4 uses 16000)")
    return resample(wave, int(sampling_rate))


def media_inputs(pair: Pair, prompt: str, *, image: Any = None, audio: Any = None,
                 sampling_rate: int | None = None) -> dict[str, torch.Tensor]:
    """Chat-formatted model inputs (input_ids, pixel_values, input_features, ...) for one user turn
    holding an image and/or a sound before `prompt`, on the pair's device."""
    if pair.processor is None:
        why = pair.media_unavailable or f"{pair.name} reads text only"
        raise MediaError(f"{pair.label} cannot take images or audio: {why}")
    config = pair.target.config
    images = [] if image is None else list(image) if isinstance(image, (list, tuple)) else [image]
    if images and getattr(config, "vision_config", None) is None:
        raise MediaError(f"{pair.label} has no vision tower: it cannot read images")
    if audio is not None and getattr(config, "audio_config", None) is None:
        raise MediaError(f"{pair.label} has no audio tower (Gemma 4's 26B and 31B read images and text "
                         "only; E2B and E4B hear too): drop the audio or pick an E2B/E4B target")
    pictures = [load_image(i) for i in images]
    wave = None if audio is None else load_audio(audio, sampling_rate)
    content = [{"type": "image"} for _ in pictures] + ([{"type": "audio"}] if wave is not None else [])
    content.append({"type": "text", "text": prompt})
    proc = pair.processor
    text = proc.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                    add_generation_prompt=True)
    per_image = proc.image_processor.max_soft_tokens + 2  # soft tokens + <|image> and <image|>
    limit = config.get_text_config().max_position_embeddings
    if len(pictures) * per_image >= limit:
        raise MediaError(f"{len(pictures)} images take about {len(pictures) * per_image} tokens, more than "
                         f"{pair.label}'s context of {limit}; use at most {max(1, limit // per_image - 1)}")
    inputs = proc(text=text, images=pictures or None, audio=[wave] if wave is not None else None,
                  return_tensors="pt")
    inputs.pop("mm_token_type_ids", None)  # generate() rebuilds it from the ids
    return {k: v.to(pair.device, pair.dtype) if v.is_floating_point() else v.to(pair.device)
            for k, v in inputs.items()}


def token_runs(input_ids: Any, token_id: int | None) -> list[tuple[int, int]]:
    """[(start, end), ...]: the maximal runs of `token_id` in a sequence of ids."""
    ids = torch.as_tensor(input_ids).reshape(-1).tolist()
    runs, start = [], None
    for i, t in enumerate(ids + [None]):
        if t == token_id and start is None:
            start = i
        elif t != token_id and start is not None:
            runs.append((start, i))
            start = None
    return runs


def soft_token_ids(config: Any) -> dict[str, int | None]:
    """{"image": id, "audio": id}: the placeholder token each tower's soft tokens use (None: no such
    token), as plain data for what counts them without the model (`widgets.MediaPanel`)."""
    return {m: getattr(config, f"{m}_token_id", None) for m in ("image", "audio")}


def soft_token_spans(input_ids: Any, config: Any) -> dict[str, list[tuple[int, int]]]:
    """{"image": [(start, end), ...], "audio": [...]}: where each run of soft tokens sits."""
    return {m: token_runs(input_ids, t) for m, t in soft_token_ids(config).items()}


def segments(input_ids: Any, config: Any, generated: int = 0) -> list[tuple[str, int, int]]:
    """(kind, start, end) runs covering a prompt (text / image / audio) plus `generated` new tokens."""
    n = torch.as_tensor(input_ids).reshape(-1).numel()
    marks = sorted((start, end, kind) for kind, spans in soft_token_spans(input_ids, config).items()
                   for start, end in spans)
    out, at = [], 0
    for start, end, kind in marks:
        if start > at:
            out.append(("text", at, start))
        out.append((kind, start, end))
        at = end
    if at < n:
        out.append(("text", at, n))
    if generated:
        out.append(("generated", n, n + generated))
    return out


@torch.no_grad()
def drafter_attention(pair: Pair, input_ids: torch.Tensor, **media: torch.Tensor) -> list[torch.Tensor]:
    """Where the drafter looks when it drafts the first token after the prompt's answer starts.

    Runs the target's prefill on the prompt, takes its greedy first token, then one drafting step
    with the attention weights kept: one (positions,) tensor per drafter layer, averaged over heads,
    over the target K/V rows that layer reads (soft tokens included). Measured, not inferred.
    """
    out = pair.target(input_ids=input_ids, **media, use_cache=False, output_hidden_states=True,
                      return_shared_kv_states=True)
    first = out.logits[0, -1].argmax().view(1, 1)  # (1, 1)
    drafter = pair.drafter
    before = drafter.config._attn_implementation
    drafter.set_attn_implementation("eager")  # sdpa does not return attention weights
    try:  # the first token sits at position n, after the prompt's n tokens
        step = draft_step(drafter, pair.target.get_input_embeddings(), first, out.hidden_states[-1][:, -1:],
                          dict(out.shared_kv_states), input_ids.shape[1], output_attentions=True)
    finally:
        drafter.set_attn_implementation(before)
    return [a[0, :, -1].float().mean(0).cpu() for a in step.attentions]
