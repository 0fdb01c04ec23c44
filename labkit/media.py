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

A video is a sequence of frames (a list, an animated GIF, a (frames, H, W, 3) array): Gemma 4
reads each frame as a picture, after its timestamp, and hands them to the vision tower as
`pixel_values_videos`. Its video processor needs torchvision (no release matches the lab's CPU
torch here); without it `frame_inputs` builds the same layout from the frames.

Introduced in `06_multimodal`. Left out: decoding video files (MP4 and the like: extract frames
first), a video in the same turn as a picture or sound, batches, and several audio clips in one prompt.
"""

from __future__ import annotations

import functools
import io
import json
import warnings
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
    "{% elif item['type'] == 'video' %}{{ '<|video|>' }}"
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


# ---------------------------------------------------------------- video as frames

FRAMES_PER_SECOND = 1.0  # the pocket clips' frame rate: their timestamps read 00:00, 00:01, ...


def timestamps(frames: int, fps: float = FRAMES_PER_SECOND) -> list[str]:
    """The mm:ss stamp Gemma 4's processor writes before each frame of a video."""
    return [f"{int(i / fps) // 60:02d}:{int(i / fps) % 60:02d}" for i in range(frames)]


def video_layout(processor: Any, soft_tokens: list[int], fps: float = FRAMES_PER_SECOND) -> str:
    """What one `<|video|>` of a prompt becomes, as Gemma4Processor.replace_video_token writes it:
    per frame its timestamp, then `<|image>` + n x `<|video|>` + `<image|>`, frames joined by spaces."""
    return " ".join(f"{t} {processor.boi_token}{processor.video_token * n}{processor.eoi_token}"
                    for t, n in zip(timestamps(len(soft_tokens), fps), soft_tokens))


def template_kwargs(tokenizer: Any, texts: list[str]) -> dict[str, bool]:
    """`add_special_tokens=False` where the chat template already wrote `<bos>`: tokenizing a
    templated prompt adds one more, and a prompt starting `<bos><bos>` is not what Gemma 4 was
    trained on (transformers' own `apply_chat_template(tokenize=True)` does the same check)."""
    bos = getattr(tokenizer, "bos_token", None)
    return {"add_special_tokens": False} if bos and all(t.startswith(bos) for t in texts) else {}


def image_layout(processor: Any, soft_tokens: int) -> str:
    """What one `<|image|>` of a prompt becomes, as Gemma4Processor writes it: `<|image>` +
    n x `<|image|>` + `<image|>`."""
    return f"{processor.boi_token}{processor.image_token * soft_tokens}{processor.eoi_token}"


def tokenize_laid_out(processor: Any, texts: list[str], padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Templated prompts whose media placeholders are already laid out as soft tokens (`image_layout`,
    `video_layout`), tokenized as one padded batch with one `<bos>` each (`template_kwargs`): what the
    processor's own tokenizing would give. `frame_inputs` and pocketbuild's kept soft tokens both use it."""
    processor.tokenizer.padding_side = padding_side
    return dict(processor.tokenizer(texts, return_tensors="pt", padding=True,
                                    **template_kwargs(processor.tokenizer, texts)))


def frame_inputs(processor: Any, videos: list[list[Any]], texts: list[str], fps: float = FRAMES_PER_SECOND,
                 padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Model inputs for prompts that each hold one `<|video|>`, the video given as its frames.

    Gemma 4's video processor needs torchvision; without it the frames go through the image
    processor (the same resize to 70 soft tokens, 16-pixel patches, pixel values in [0, 1]) and are
    handed to the model as `pixel_values_videos`, `video_position_ids` and `num_frames_per_video`,
    with the prompt laid out as the video processor would lay it out (`video_layout`)."""
    if len(videos) != len(texts) or any(t.count(processor.video_token) != 1 for t in texts):
        raise MediaError("each prompt must hold exactly one video placeholder for its frames")
    if any(len(frames) == 0 for frames in videos):
        raise MediaError("a video needs at least one frame")
    pixels = processor.image_processor([load_image(f) for frames in videos for f in frames], return_tensors="pt")
    per_frame = pixels["num_soft_tokens_per_image"].tolist()
    expanded, at = [], 0
    for text, frames in zip(texts, videos):
        before, after = text.split(processor.video_token)
        expanded.append(before + video_layout(processor, per_frame[at : at + len(frames)], fps) + after)
        at += len(frames)
    batch = tokenize_laid_out(processor, expanded, padding_side)
    batch.update(pixel_values_videos=pixels["pixel_values"], video_position_ids=pixels["image_position_ids"],
                 num_frames_per_video=torch.tensor([len(frames) for frames in videos]))
    return batch


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


def image_url(image: Any) -> str:
    """The image as a PNG data URL, for HTML that renders in JupyterLab, Colab and VS Code alike."""
    import base64

    buf = io.BytesIO()
    load_image(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_html(image: Any, caption: str = "", width: int = 160) -> str:
    """An inline <figure> (PNG as a data URL)."""
    import html

    src = image_url(image)
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


# What carries each family of `labkit.synthetic` (a samples.json "modality"): the `media_inputs`
# keyword and the chat template's item type, which share their names.
FAMILY_INPUT = {"image": "image", "audio": "audio", "clip": "video", "document": "image"}


def sample_input(row: dict) -> dict[str, Path]:
    """`media_inputs` keywords for a shipped sample (a row of data/media/samples.json)."""
    return {FAMILY_INPUT[row["modality"]]: MEDIA_DIR / row["file"]}


MAX_FRAMES = 32  # Gemma 4's video processor samples at most 32 frames of a video


def load_video(video: Any) -> list:
    """The frames of a video as PIL RGB images: from a list of frames (anything `load_image` takes),
    an animated GIF/WebP (path or bytes), or a (frames, height, width, 3) uint8 array. (A GIF
    writer merges identical neighbouring frames: such a clip reads back with fewer frames.)"""
    from PIL import Image, ImageSequence

    if isinstance(video, np.ndarray) and video.ndim == 4:
        video = list(video)
    if isinstance(video, (list, tuple)):
        frames = [load_image(f) for f in video]
    else:
        source = io.BytesIO(video) if isinstance(video, (bytes, bytearray)) else Path(video)
        if isinstance(source, Path) and not source.exists():
            raise MediaError(f"no video at {source}")
        try:
            with Image.open(source) as clip:
                frames = [f.convert("RGB") for f in ImageSequence.Iterator(clip)]
        except (OSError, SyntaxError) as e:
            raise MediaError(f"cannot read the video ({type(e).__name__}): give an animated GIF or WebP, "
                             "or a list of frames (extract them from an MP4 with e.g. ffmpeg first)") from None
    if not frames:
        raise MediaError("the video has no frames")
    if len(frames) > MAX_FRAMES:
        raise MediaError(f"the video has {len(frames)} frames; Gemma 4 reads at most {MAX_FRAMES}: "
                         f"pass every n-th frame (e.g. frames[::{-(-len(frames) // MAX_FRAMES)}])")
    return frames


def media_inputs(pair: Pair, prompt: str, *, image: Any = None, audio: Any = None, video: Any = None,
                 sampling_rate: int | None = None, fps: float = FRAMES_PER_SECOND) -> dict[str, torch.Tensor]:
    """Chat-formatted model inputs (input_ids, pixel_values, input_features, pixel_values_videos, ...)
    for one user turn holding an image and/or a sound, or a video (frames `fps` apart), before
    `prompt`, on the pair's device."""
    if pair.processor is None:
        why = pair.media_unavailable or f"{pair.name} reads text only"
        raise MediaError(f"{pair.label} cannot take images, audio or video: {why}")
    if video is not None:
        return _video_inputs(pair, prompt, video, fps, with_others=image is not None or audio is not None)
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
                  return_tensors="pt", **template_kwargs(proc.tokenizer, [text]))
    return _on_device(pair, dict(inputs))


def _on_device(pair: Pair, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The processor's tensors on the pair's device, floats in its dtype; without
    `mm_token_type_ids`, which generate() rebuilds from the ids."""
    inputs.pop("mm_token_type_ids", None)
    return {k: v.to(pair.device, pair.dtype) if v.is_floating_point() else v.to(pair.device)
            for k, v in inputs.items()}


def _video_inputs(pair: Pair, prompt: str, video: Any, fps: float, with_others: bool) -> dict[str, torch.Tensor]:
    """`media_inputs` for a video: Gemma 4's own video processor where the processor has one
    (torchvision installed), else the frames through the image processor (`frame_inputs`)."""
    if with_others:
        raise MediaError("a video goes alone in its turn here: ask about the picture or sound in another turn")
    if getattr(pair.target.config, "vision_config", None) is None:
        raise MediaError(f"{pair.label} has no vision tower: it cannot watch a video")
    if fps <= 0:
        raise MediaError(f"fps = {fps}: frames per second must be positive")
    frames = load_video(video)
    proc = pair.processor
    per_frame = proc.image_processor.max_soft_tokens + 8  # soft tokens, <|image>, <image|>, the timestamp
    limit = pair.target.config.get_text_config().max_position_embeddings
    if len(frames) * per_frame >= limit:
        raise MediaError(f"{len(frames)} frames take about {len(frames) * per_frame} tokens, more than "
                         f"{pair.label}'s context of {limit}; use at most {max(1, limit // per_frame - 1)}")
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}],
                                    tokenize=False, add_generation_prompt=True)
    if text.count(proc.video_token) != 1:
        raise MediaError(f"{pair.label}'s chat template has no video item (it wrote {text.count(proc.video_token)} "
                         f"{proc.video_token}); give its processor Gemma 4's template (labkit.media.CHAT_TEMPLATE)")
    inputs = None
    if getattr(proc, "video_processor", None) is not None:  # the real processor, torchvision present
        from transformers.video_utils import VideoMetadata

        clip = np.stack([np.asarray(f) for f in frames])  # (frames, height, width, 3)
        metadata = VideoMetadata(total_num_frames=len(frames), fps=fps, frames_indices=list(range(len(frames))))
        try:  # not run where the lab is tested (no torchvision there): if it fails, say so and go on
            inputs = dict(proc(text=text, videos=[clip], video_metadata=[metadata], do_sample_frames=False,
                               return_tensors="pt", **template_kwargs(proc.tokenizer, [text])))
        except (TypeError, ValueError, RuntimeError) as e:
            warnings.warn(f"Gemma 4's video processor failed ({type(e).__name__}: {e}); the frames go through "
                          "the image processor instead (media.frame_inputs, the same layout)", stacklevel=2)
    return _on_device(pair, inputs if inputs is not None else frame_inputs(proc, [frames], [text], fps))


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
    """{"image": id, "audio": id, "video": id}: the placeholder token each tower's soft tokens use
    (None: no such token), as plain data for what counts them without the model (`widgets.MediaPanel`)."""
    return {m: getattr(config, f"{m}_token_id", None) for m in ("image", "audio", "video")}


def soft_token_spans(input_ids: Any, config: Any) -> dict[str, list[tuple[int, int]]]:
    """{"image": [(start, end), ...], "audio": [...], "video": [...]}: where each run of soft tokens
    sits (a video has one run per frame)."""
    return {m: token_runs(input_ids, t) for m, t in soft_token_ids(config).items()}


def segments(input_ids: Any, config: Any, generated: int = 0) -> list[tuple[str, int, int]]:
    """(kind, start, end) runs covering a prompt (text / image / audio / video) plus `generated` new tokens."""
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
