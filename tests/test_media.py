"""Images and audio through a Gemma 4 target with its drafter: labkit.media and labkit.synthetic.

Tiny random-weight `Gemma4ForConditionalGeneration` targets (tests/fixtures/tiny_pair.py) with the
pocket multimodal processor stand in for E2B/E4B: the same classes, the same processor settings,
the same loading path (a folder or a hub id), no downloads. The shipped pocket multimodal pair
is checked on the shipped samples.
"""

import io
import json

import numpy as np
import pytest
import soundfile
from fixtures import tiny_pair
from PIL import Image

import labkit
from labkit import media, pocket, synthetic
from labkit.errors import MediaError
from labkit.generation import run


@pytest.fixture(scope="module")
def pair(tiny):
    return labkit.load_pair(tiny / "target-media", tiny / "drafter")


@pytest.fixture(scope="module")
def scene():
    return synthetic.example(synthetic.HELD_OUT, "image").item


@pytest.fixture(scope="module")
def wave():
    return synthetic.example(synthetic.HELD_OUT, "audio").item


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV")
    return buf.getvalue()


# ---------------------------------------------------------------- synthetic tasks


def test_examples_are_deterministic_and_captions_read_right():
    a, b = (synthetic.example(synthetic.HELD_OUT + 1, "image") for _ in range(2))
    assert np.array_equal(np.asarray(a.item), np.asarray(b.item)) and (a.question, a.answer) == (b.question, b.answer)
    w1, w2 = (synthetic.example(7, "audio").item for _ in range(2))
    assert np.array_equal(w1, w2) and w1.dtype == np.float32 and np.abs(w1).max() <= 1
    assert synthetic.Beeps(("low", "low", "high")).caption == "two low beeps then a high one"
    assert synthetic.Beeps(("high",)).caption == "a high beep"
    assert synthetic.Beeps(("high", "low", "low")).answer("How many beeps?") == "three beeps"
    s = synthetic.Scene(("red", "circle"), "left of", ("blue", "square"))
    assert s.caption == "a red circle left of a blue square"
    assert s.answer("Which colours do you see?") == "red and blue"


def test_wrong_captions_are_graded_part_by_part():
    s = synthetic.Scene(("red", "circle"), "left of", ("blue", "square"))
    assert all(s.parts_right(s.caption).values())
    assert s.parts_right("a red triangle left of a blue triangle") == {"colours": True, "shapes": False, "relation": True}
    assert s.parts_right("a red circle above a blue square") == {"colours": True, "shapes": True, "relation": False}
    assert not any(s.parts_right("red and blue").values())
    b = synthetic.Beeps(("low", "low", "high"))
    assert all(b.parts_right(b.caption).values())
    assert b.parts_right("a low beep then two high ones") == {"pitches": True, "count": True}
    assert b.parts_right("two high beeps then a low one") == {"pitches": False, "count": True}
    assert b.parts_right("two low beeps") == {"pitches": False, "count": False}
    alternating = synthetic.Beeps(("high", "low", "high", "low"))
    assert all(alternating.parts_right(alternating.caption).values())


def test_scene_layout_matches_its_relation():
    """The first shape's colour sits left of (or above) the second's, never touching it."""
    for i in range(20):
        rng = __import__("random").Random(i)
        sc = synthetic.random_scene(rng)
        img = np.asarray(synthetic.draw_scene(sc, rng)).astype(int)
        centers = []
        for colour, _ in (sc.first, sc.second):
            ys, xs = np.nonzero((np.abs(img - synthetic.COLOURS[colour]).sum(-1) < 30))
            assert len(xs) > 100, f"scene {i}: {colour} shape missing"
            centers.append((xs.mean(), ys.mean()))
        axis = 0 if sc.relation == "left of" else 1
        assert centers[0][axis] + 40 < centers[1][axis], f"scene {i}: {sc.caption}"


def test_label_map_names_what_each_pixel_shows():
    """The towers' pretraining labels (scripts/train_multimodal.py) agree with the picture."""
    rng = __import__("random").Random(3)
    sc = synthetic.random_scene(rng)
    img, labels = synthetic.draw_scene(sc, rng, labels=True)
    img, labels = np.asarray(img).astype(int), np.asarray(labels)
    assert set(np.unique(labels)) == {0, 1 + synthetic.PARTS.index(sc.first), 1 + synthetic.PARTS.index(sc.second)}
    for part in (sc.first, sc.second):
        painted = np.abs(img - synthetic.COLOURS[part[0]]).sum(-1) < 30
        labelled = labels == 1 + synthetic.PARTS.index(part)
        assert (painted == labelled).mean() > 0.99  # anti-aliasing aside, the same pixels


def test_beep_labels_mark_each_beep_and_leave_the_sound_unchanged():
    """The audio tower's pretraining labels: one run per beep, in order, silence between; asking for
    them draws the same sound (held-out samples stay the same)."""
    beeps = synthetic.Beeps(("low", "high", "high"))
    wave, marks = synthetic.render_beeps(beeps, __import__("random").Random(5), labels=True)
    assert np.array_equal(wave, synthetic.render_beeps(beeps, __import__("random").Random(5)))
    assert marks.shape == wave.shape and marks[0] == 0 and marks[-1] == 0
    starts = np.flatnonzero(np.diff(marks) != 0) + 1
    runs = [int(marks[i]) for i in starts if marks[i] != 0]
    assert runs == [1 + sorted(synthetic.PITCHES).index(p) for p in beeps.pitches]
    loud = np.abs(wave) > 0.05  # the hiss is ~0.005: every loud sample lies inside a beep
    assert (marks[loud] != 0).all()


# ---------------------------------------------------------------- processor and inputs


def test_processor_builds_offline_without_torchvision(tiny):
    proc = media.processor_from_folder(tiny / "target-media")
    assert proc.video_processor is None and proc.image_processor.max_soft_tokens == 70
    tok = proc.tokenizer
    assert tok.convert_tokens_to_ids("<|video|>") < len(tok) == 4096  # no id added past the model's
    cfg = json.loads((tiny / "target-media" / "processor_config.json").read_text())
    assert cfg["image_processor"]["patch_size"] == 16 and cfg["feature_extractor"]["sampling_rate"] == 16000


def test_media_inputs_place_soft_tokens(pair, scene, wave):
    inputs = media.media_inputs(pair, "Describe the picture.", image=scene, audio=wave,
                                sampling_rate=synthetic.SAMPLE_RATE)
    spans = media.soft_token_spans(inputs["input_ids"], pair.target.config)
    (i0, i1), = spans["image"]
    (a0, a1), = spans["audio"]
    assert i1 - i0 == 64  # 192 px -> 384 x 384 at the 70-token budget -> 24 x 24 patches / 3 x 3
    ms = 1000 * len(wave) / synthetic.SAMPLE_RATE
    assert abs((a1 - a0) - ms / 40) <= 2  # one audio soft token per 40 ms
    assert inputs["pixel_values"].dtype == pair.dtype and inputs["input_ids"].shape[0] == 1


def test_a_media_prompt_starts_with_one_bos_as_transformers_tokenizes_it(pair, scene, wave, frames):
    """The chat template writes <bos>; tokenizing its text must not add a second one, as
    Gemma 4's processor does not when it applies the template itself (tokenize=True)."""
    bos = pair.tokenizer.bos_token_id
    chat = [{"role": "user", "content": [{"type": "image", "image": media.load_image(scene)},
                                         {"type": "text", "text": "Describe it."}]}]
    own = pair.processor.apply_chat_template(chat, tokenize=True, return_dict=True, add_generation_prompt=True)
    for kw in ({"image": scene}, {"audio": wave, "sampling_rate": 16000}, {"video": frames}):
        ids = media.media_inputs(pair, "Describe it.", **kw)["input_ids"][0].tolist()
        assert ids[0] == bos and ids[1] != bos, kw.keys()
        if "image" in kw:
            assert ids == list(own["input_ids"][0]), "not the ids the processor's own template path gives"


def test_greedy_with_drafter_equals_target_with_image_and_audio(pair, scene, wave):
    inputs = media.media_inputs(pair, "Describe the picture.", image=scene, audio=wave,
                                sampling_rate=synthetic.SAMPLE_RATE)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    plain = run(pair, ids, path="plain", max_new_tokens=16, stop_at_eos=False, **inputs)
    for path in ("transformers", "glassbox"):
        assert run(pair, ids, path=path, k=3, max_new_tokens=16, stop_at_eos=False, **inputs).new_ids == plain.new_ids
    text_only = run(pair, ids, path="plain", max_new_tokens=16, stop_at_eos=False)
    assert text_only.new_ids != plain.new_ids  # the image and audio do reach the target


def test_audio_alone_and_image_alone(pair, scene, wave):
    for kw in ({"audio": wave, "sampling_rate": 16000}, {"image": scene}):
        inputs = media.media_inputs(pair, "Describe it.", **kw)
        spans = media.soft_token_spans(inputs["input_ids"], pair.target.config)
        assert [m for m, v in spans.items() if v] == ["audio" if "audio" in kw else "image"]
        ids = inputs.pop("input_ids")
        inputs.pop("attention_mask")
        plain = run(pair, ids, path="plain", max_new_tokens=8, stop_at_eos=False, **inputs)
        assert run(pair, ids, path="transformers", k=3, max_new_tokens=8, stop_at_eos=False,
                   **inputs).new_ids == plain.new_ids


def test_drafter_attention_covers_the_soft_tokens(pair, scene):
    from labkit import plots

    inputs = media.media_inputs(pair, "Describe the picture.", image=scene)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    impl = pair.drafter.config._attn_implementation
    weights = media.drafter_attention(pair, ids, **inputs)
    assert pair.drafter.config._attn_implementation == impl  # switched back after the eager step
    assert len(weights) == 4 and all(abs(float(w.sum()) - 1) < 1e-4 for w in weights)
    assert all(len(w) == ids.shape[1] for w in weights)  # one weight per target K/V row
    fig = plots.attention_figure(weights, media.segments(ids, pair.target.config))
    shares = sum(sum(t.x) for t in fig.data) / len(weights)
    assert abs(shares - 1) < 1e-4 and {t.name for t in fig.data} <= {"text", "image"}


def test_audio_is_resampled_and_read_from_files(wave, tmp_path):
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = media.load_audio(tone, sampling_rate=8000)
    assert len(out) == 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(out))) - 440) <= 1  # 1 s at 16 kHz: bin = Hz
    stereo = np.stack([tone, tone], axis=1)
    assert np.allclose(media.load_audio(wav_bytes(stereo, 8000)), out, atol=1e-3)
    path = tmp_path / "beeps.wav"
    soundfile.write(path, wave, 16000)
    assert np.allclose(media.load_audio(path), wave, atol=1e-4)


@pytest.mark.parametrize("image, message", [
    (b"not an image at all", "cannot read the given bytes as an image"),
    ("missing.png", "no image at"),
    (np.zeros((0, 4, 3), np.uint8), "got shape"),
])
def test_bad_images_are_named(pair, image, message):
    with pytest.raises(MediaError, match=message):
        media.media_inputs(pair, "Describe the picture.", image=image)


def test_text_file_is_not_an_image(pair, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(MediaError, match="use a PNG, JPEG"):
        media.media_inputs(pair, "Describe the picture.", image=bad)


@pytest.mark.parametrize("audio, rate, message", [
    (np.zeros(0, np.float32), 16000, "empty or silent"),
    (np.zeros(16000, np.float32), 16000, "empty or silent"),
    (np.full(100, np.nan, np.float32), 16000, "corrupt"),
    (np.ones(100, np.float32), None, "needs its sampling_rate"),
    (b"RIFF....WAVEfmt garbage", None, "cannot read the given bytes as audio"),
])
def test_bad_audio_is_named(pair, audio, rate, message):
    with pytest.raises(MediaError, match=message):
        media.media_inputs(pair, "Describe the sound.", audio=audio, sampling_rate=rate)


def test_audio_for_a_target_without_audio_tower(tiny, wave):
    pair = labkit.load_pair(tiny / "target-vision", tiny / "drafter")
    with pytest.raises(MediaError, match="no audio tower"):
        media.media_inputs(pair, "Describe the sound.", audio=wave, sampling_rate=16000)


def test_too_many_images_for_the_context(pair, scene):
    # the tiny target's context is 256 tokens; each image takes 72
    with pytest.raises(MediaError, match="more than .* context of 256"):
        media.media_inputs(pair, "Describe the pictures.", image=[scene] * 4)


def test_text_only_pair_refuses_media_clearly(tiny, scene):
    pair = labkit.load_pair(tiny / "target", tiny / "drafter")
    with pytest.raises(MediaError, match="cannot take images, audio or video"):
        media.media_inputs(pair, "Describe the picture.", image=scene)


def test_real_multimodal_id_loads_from_the_hub_cache(tiny, tmp_path, monkeypatch, scene, wave):
    """load_pair("google/gemma-4-E4B-it") as a learner with the weights cached would call it."""
    cache = tmp_path / "hub"
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E4B-it", tiny / "target-media")
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E4B-it-assistant", tiny / "drafter")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    pair = labkit.load_pair("google/gemma-4-E4B-it", local_files_only=True)
    assert pair.multimodal and pair.processor is not None and not pair.media_unavailable
    inputs = media.media_inputs(pair, "Describe the picture.", image=scene, audio=wave, sampling_rate=16000)
    assert media.soft_token_spans(inputs["input_ids"], pair.target.config)["image"]


# ---------------------------------------------------------------- video as frames (issue 44)


@pytest.fixture(scope="module")
def frames():
    return synthetic.example(synthetic.HELD_OUT, "clip").item[-2:]  # two frames (the shape moving) fit the tiny context


def test_frames_are_laid_out_as_gemma4s_video_processor_lays_them_out(pair, frames):
    """The text Gemma4Processor.replace_video_token writes, from the same soft-token counts and
    timestamps, is the text frame_inputs builds; the pixels are the image processor's per frame."""
    from transformers.video_utils import VideoMetadata

    proc = pair.processor
    inputs = media.frame_inputs(proc, [frames], ["<|video|>Which way?"])
    real = type(proc).__mro__[1].replace_video_token(proc, {
        "num_soft_tokens_per_video": [64], "video_metadata": [VideoMetadata(2, fps=1.0, frames_indices=[0, 1])]}, 0)
    assert proc.tokenizer.decode(inputs["input_ids"][0]) == proc.tokenizer.bos_token + real + "Which way?"
    assert real.startswith("00:00 <|image>") and " 00:01 <|image>" in real
    assert inputs["pixel_values_videos"].shape == (2, 630, 768) and inputs["num_frames_per_video"].tolist() == [2]
    assert (inputs["video_position_ids"] != -1).all(-1).sum(-1).tolist() == [576, 576]  # 24 x 24 patches a frame
    spans = media.soft_token_spans(inputs["input_ids"], pair.target.config)["video"]
    assert [e - s for s, e in spans] == [64, 64]  # one run of soft tokens per frame


def test_greedy_with_drafter_equals_target_with_a_video(pair, frames, tmp_path):
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=1000)
    inputs = media.media_inputs(pair, "Which way does the shape move?", video=gif)
    assert media.load_video(gif)[1].size == frames[1].size
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    plain = run(pair, ids, path="plain", max_new_tokens=12, stop_at_eos=False, **inputs)
    for path in ("transformers", "glassbox"):
        assert run(pair, ids, path=path, k=3, max_new_tokens=12, stop_at_eos=False, **inputs).new_ids == plain.new_ids
    still = media.media_inputs(pair, "Which way does the shape move?", video=[frames[0], frames[0]])
    assert not torch_equal(still["pixel_values_videos"], inputs["pixel_values_videos"])
    ids2 = still.pop("input_ids")
    still.pop("attention_mask")
    assert run(pair, ids2, path="plain", max_new_tokens=12, stop_at_eos=False, **still).new_ids != plain.new_ids


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def test_token_strip_shows_one_block_per_frame(pair, frames):
    from labkit.style import MEDIA_COLORS, media_strip_html

    inputs = media.media_inputs(pair, "Which way?", video=frames)
    ids = inputs["input_ids"][0].tolist()
    pieces = [pair.tokenizer.decode([t]) for t in ids]
    strip = media_strip_html(pieces, media.segments(inputs["input_ids"], pair.target.config),
                             [media.image_url(f) for f in frames])
    assert strip.count("64 × &lt;|video|&gt;") == 2 and strip.count("<img") == 2
    assert MEDIA_COLORS["video"] in strip and "00" in strip and "video soft tokens" in strip


@pytest.mark.parametrize("video, kw, message", [
    (b"GIF89a but not really", {}, "cannot read the video"),
    ([], {}, "no frames"),
    (["frame"] * 40, {}, "at most 32"),
    (None, {"image": "scene"}, "alone in its turn"),
    (None, {"fps": 0}, "must be positive"),
    (None, {"many": 4}, "context of 256"),
])
def test_bad_videos_are_named(pair, frames, scene, video, kw, message):
    kw = dict(kw)
    video = frames if video is None else video
    if kw.pop("many", None):
        video = frames * 2  # 4 frames of ~72 tokens: past the tiny target's 256
    if kw.get("image") == "scene":
        kw["image"] = scene
    if video == ["frame"] * 40:
        video = [frames[0]] * 40
    with pytest.raises(MediaError, match=message):
        media.media_inputs(pair, "Which way?", video=video, **kw)


def test_a_real_pair_takes_a_video_from_the_hub_cache(tiny, tmp_path, monkeypatch, frames):
    """The hub path: load_pair("google/gemma-4-E2B-it") (a tiny folder pair standing in, saved the way
    the hub holds it), then a clip; without torchvision the frames go through the image processor."""
    cache = tmp_path / "hub"
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E2B-it", tiny / "target-media")
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E2B-it-assistant", tiny / "drafter")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    pair = labkit.load_pair("google/gemma-4-E2B-it", local_files_only=True)
    inputs = media.media_inputs(pair, "What happens?", video=frames)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    assert len(media.soft_token_spans(ids, pair.target.config)["video"]) == 2
    plain = run(pair, ids, path="plain", max_new_tokens=6, stop_at_eos=False, **inputs)
    assert run(pair, ids, path="transformers", k=3, max_new_tokens=6, stop_at_eos=False, **inputs).new_ids == plain.new_ids


def test_a_failing_video_processor_falls_back_to_frames_with_a_warning(pair, frames, monkeypatch):
    """Where torchvision is installed the processor's own video part runs; the lab cannot run it here
    (no torchvision matches its CPU torch), so if it ever fails the frames path answers, and says so."""
    expected = media.media_inputs(pair, "Which way?", video=frames)

    class Broken:
        def __call__(self, *args, **kwargs):
            raise TypeError("an unexpected keyword")

    monkeypatch.setattr(pair.processor, "video_processor", Broken(), raising=False)
    with pytest.warns(UserWarning, match="frames go through the image processor"):
        got = media.media_inputs(pair, "Which way?", video=frames)
    assert torch_equal(got["input_ids"], expected["input_ids"])


def test_a_template_without_video_is_named(pair, frames, monkeypatch):
    monkeypatch.setattr(pair.processor, "chat_template", pair.processor.chat_template.replace(
        "{% elif item['type'] == 'video' %}{{ '<|video|>' }}", ""))
    with pytest.raises(MediaError, match="no video item"):
        media.media_inputs(pair, "Which way?", video=frames)


# ---------------------------------------------------------------- the shipped pocket multimodal pair


def test_pocket_multimodal_pair_answers_the_shipped_samples():
    if not (pocket.MULTIMODAL_DIR / "target" / "model.safetensors").exists():
        pytest.fail(f"no pocket multimodal pair in {pocket.MULTIMODAL_DIR}: "
                    "python scripts/train_multimodal.py --install")
    pair = labkit.load_pair("pocket-multimodal")
    assert pair.label.startswith("pocket pair (multimodal") and pair.processor is not None
    samples = json.loads((media.MEDIA_DIR / "samples.json").read_text())
    # the families its build measured (metrics.json) are held to their answers; one it did not learn
    # (an older pair: pictures and sounds only) still has to give the target's own with the drafter
    trained = set(json.loads((pocket.MULTIMODAL_DIR / "metrics.json").read_text())["samples"])
    right, asked, wrong = 0, 0, []
    for s in samples:
        for question, answer in s["answers"].items():
            inputs = media.media_inputs(pair, question, **media.sample_input(s))
            ids = inputs.pop("input_ids")
            inputs.pop("attention_mask")
            plain = run(pair, ids, path="plain", max_new_tokens=20, **inputs)
            spec = run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)
            assert spec.new_ids == plain.new_ids, (s["file"], question)
            if s["modality"] not in trained:
                continue
            got = plain.text.replace("<turn|>", "").strip()
            right, asked = right + (got == answer), asked + 1
            wrong += [] if got == answer else [(s["file"], question, answer, got)]
    # The bar of issue "Multimodal demos", right on >= 90%, holds for a shipped pair (held-out
    # figures: MODEL_CARD.md); a quick build is a placeholder that only has to run the same code.
    assert asked >= 16 and {"image", "audio"} <= trained
    if "quick build" not in pair.label:
        assert right >= 0.9 * asked, wrong


def test_shipped_pocket_multimodal_pair_was_measured_past_its_bars():
    """A full build is installed only past its bars (scripts/train_multimodal.py); this keeps a
    hand-copied or older pair from shipping under that name, and keeps it inside its 30 MB."""
    folder = pocket.MULTIMODAL_DIR
    build = json.loads((folder / "BUILD.json").read_text()) if (folder / "BUILD.json").exists() else {}
    recipe = build.get("recipe", "")
    if not recipe or recipe.endswith("quick"):
        pytest.skip("no full pocket multimodal pair in this checkout (a quick placeholder or none)")
    m = json.loads((folder / "metrics.json").read_text())
    families = ("image", "audio") + (("clip", "document") if recipe.startswith("video") else ())
    assert all(m["samples"][f] >= 100 for f in families)
    assert min(m["accuracy"][f] for f in families) >= 0.9 and m["greedy_identical_with_drafter"]
    card = (folder / "MODEL_CARD.md").read_text()
    assert f"{m['accuracy']['audio']:.1%}" in card
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 30 * 2**20, f"{size / 2**20:.1f} MB"


def test_media_samples_match_their_script():
    rows = json.loads((media.MEDIA_DIR / "samples.json").read_text())
    assert {r["modality"] for r in rows} == {"image", "audio", "clip", "document"}
    for r in rows:
        assert (media.MEDIA_DIR / r["file"]).exists()
    img = Image.open(media.MEDIA_DIR / rows[0]["file"])
    assert img.size == (synthetic.IMAGE_SIZE, synthetic.IMAGE_SIZE)


# ---------------------------------------------------------------- the widget


def test_media_panel_runs_reports_and_explains_bad_uploads(pair, monkeypatch):
    from labkit import widgets

    panel = widgets.MediaPanel(widgets.media_runner(pair), label=pair.label,
                               soft_token_ids=media.soft_token_ids(pair.target.config), max_new_tokens=6)
    panel.go()  # the first shipped picture
    assert "same text with the drafter: <b>yes</b>" in panel.result.value and "<img" in panel.preview.value
    assert "64 image soft tokens" in panel.result.value and pair.label in panel.result.value
    panel.image.value, panel.sound.value = panel.NONE, panel.RANDOM
    panel.question.value = "How many beeps?"
    panel.go()
    assert "<audio" in panel.preview.value and "truth:" in panel.result.value
    assert "audio soft tokens" in panel.result.value
    panel.image.value, panel.sound.value = panel.UPLOAD, panel.NONE
    panel.go()
    assert "BadInputError" in panel.result.value and "upload button" in panel.result.value
    monkeypatch.setattr(widgets, "_uploaded", lambda upload: ("cat.png", b"not a png"))
    panel.go()
    assert "MediaError" in panel.result.value and "cannot read" in panel.result.value
    panel.image.value, panel.clip.value = panel.NONE, "clip_0.gif"  # 4-6 frames: past the tiny context
    panel.go()
    assert "MediaError" in panel.result.value and "context of 256" in panel.result.value
    assert panel.preview.value.count("<img") >= 4 and "00:01" in panel.preview.value  # the frames, stamped
    panel.image.value = "scene_0.png"
    panel.go()
    assert "BadInputError" in panel.result.value and "a clip goes alone" in panel.result.value


def test_uploads_read_in_ipywidgets_7_and_8():
    from types import SimpleNamespace

    from labkit.widgets import _uploaded

    v7 = SimpleNamespace(value={"a.wav": {"metadata": {}, "content": b"abc"}})
    v8 = SimpleNamespace(value=({"name": "a.wav", "type": "audio/wav", "size": 3, "content": memoryview(b"abc")},))
    assert _uploaded(v7) == _uploaded(v8) == ("a.wav", b"abc")
    assert _uploaded(SimpleNamespace(value=())) is None


def test_audio_html_writes_the_clip_length_beside_the_player():
    html = media.audio_html(media.MEDIA_DIR / "beeps_3.wav", "beeps_3.wav")
    seconds = len(media.load_audio(media.MEDIA_DIR / "beeps_3.wav")) / media.SAMPLE_RATE
    assert "<audio" in html and f"{seconds:.1f} s" in html and seconds < 1  # a player alone reads 0:00


def test_answers_are_shown_without_the_end_of_turn_token(pair, scene):
    inputs = media.media_inputs(pair, "Describe the picture.", image=scene)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    trace = run(pair, ids, path="plain", max_new_tokens=4, **inputs)
    from dataclasses import replace

    ended = replace(trace, pieces=trace.pieces + ("<turn|>",))
    assert media.answer(ended) == trace.text.strip() and "<turn|>" not in media.without_end(ended).text
    assert media.without_end(ended).new_ids == ended.new_ids  # the ids, and every count, stay


def test_multimodal_checkers_measure_the_predictions(pair):
    from labkit import checks

    counts = {}
    for row in json.loads((media.MEDIA_DIR / "samples.json").read_text()):
        if row["modality"] == "audio":
            inputs = media.media_inputs(pair, "Describe the sound.", audio=media.MEDIA_DIR / row["file"])
            spans = media.soft_token_spans(inputs["input_ids"], pair.target.config)["audio"]
            counts[row["file"]] = sum(e - s for s, e in spans)
    checks.check_audio_token_prediction(counts, pair)
    with pytest.raises(AssertionError):
        checks.check_audio_token_prediction({f: n + 3 for f, n in counts.items()}, pair)
    inputs = media.media_inputs(pair, "Is the circle big?", image=synthetic.example(synthetic.HELD_OUT, "image").item)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    plain = run(pair, ids, path="plain", max_new_tokens=4, **inputs)
    spec = run(pair, ids, path="transformers", max_new_tokens=4, **inputs)
    checks.check_untrained_question({"same": True}, plain, spec)
    with pytest.raises(AssertionError):
        checks.check_untrained_question({"same": False}, plain, spec)


def test_clip_checker_counts_frames_and_soft_tokens():
    from labkit import checks

    pair = labkit.load_pair("pocket-multimodal")
    frames = len(media.load_video(media.MEDIA_DIR / "clip_2.gif"))
    checks.check_clip_token_prediction({"frames": frames, "soft tokens": 64 * frames}, pair)
    with pytest.raises(AssertionError, match="each frame is read as one picture"):
        checks.check_clip_token_prediction({"frames": frames, "soft tokens": 64}, pair)
    with pytest.raises(AssertionError, match="put your guesses"):
        checks.check_clip_token_prediction({"frames": None, "soft tokens": None}, pair)
