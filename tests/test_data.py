"""Readers for the official AVSBench layouts, video and frame-folder inputs, audio windows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avseg import testing as T
from avseg.audio import frame_windows, load_audio, resample
from avseg.data import (
    AVSSDataset,
    avss_label_index,
    avss_label_names,
    build_palette,
    decode_color_mask,
    encode_label_map,
    open_dataset,
    open_input,
    read_frames_folder,
    read_video,
    s4_categories,
    write_overlay_video,
)
from avseg.errors import InputError, UsageError


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("avsbench")
    T.make_s4_tree(root, n_per_split={"train": 2, "val": 1, "test": 3})
    T.make_ms3_tree(root)
    T.make_avss_tree(root)
    return root


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------- S4


@pytest.mark.parametrize("which", ["subset", "parent"])
def test_s4_root_is_subset_or_parent(trees: Path, which: str) -> None:
    root = trees / "Single-source" if which == "subset" else trees
    ds = open_dataset(root, "s4", "test")
    assert len(ds) == 3
    rows = (trees / "Single-source" / "s4_meta_data.csv").read_text().splitlines()[1:]
    assert ds.ids == [r.split(",")[0] for r in rows if r.endswith(",test")]  # CSV order


def test_s4_clip_contents(trees: Path) -> None:
    ds = open_dataset(trees, "s4", "val")
    clip = next(iter(ds))
    assert clip.category in s4_categories()
    assert clip.num_frames == 5 and clip.timestamps[0] == pytest.approx(15 / 16)
    frame = clip.frame(2)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    wave, sr = clip.audio
    assert sr == 16000 and wave.dtype == np.float32 and wave.shape == (1, 5 * 16000)  # (channels, samples)
    assert ds.annotated_frames(clip) == [0, 1, 2, 3, 4]
    mask = ds.gt_mask(clip, 2)
    assert mask is not None and mask.dtype == bool and mask.shape == (64, 64) and mask.any()
    # The GT matches the drawn object exactly: one uniform colour under the mask, none outside.
    colours = np.unique(frame[mask].reshape(-1, 3), axis=0)
    assert len(colours) == 1
    assert not (frame[~mask] == colours[0]).all(axis=-1).any()
    name = clip.clip_id
    assert ds.pred_relpath(clip, 0) == f"val/{clip.category}/{name}/{name}_1.png"
    assert ds.pred_relpath(name, 4) == f"val/{clip.category}/{name}/{name}_5.png"


def test_s4_train_has_only_first_frame_annotated(trees: Path) -> None:
    ds = open_dataset(trees, "s4", "train")
    clip = ds.clip(ds.ids[0])
    assert ds.annotated_frames(clip) == [0]
    assert ds.gt_mask(clip, 0) is not None
    assert all(ds.gt_mask(clip, i) is None for i in range(1, 5))


def test_select_and_unknown_clip(trees: Path) -> None:
    ds = open_dataset(trees, "s4", "test")
    assert ds.select(limit=2).ids == ds.ids[:2]
    assert ds.select(clips=[ds.ids[2], ds.ids[0]]).ids == [ds.ids[0], ds.ids[2]]  # CSV order kept
    assert len(ds) == 3  # the view does not change the dataset
    with pytest.raises(UsageError, match="did you mean"):
        ds.clip(ds.ids[0][:-1])


def test_unknown_subset_and_split(trees: Path) -> None:
    with pytest.raises(UsageError, match="did you mean .*'ms3'"):
        open_dataset(trees, "ms4", "test")
    with pytest.raises(UsageError, match="'test'"):
        open_dataset(trees, "s4", "tset")
    with pytest.raises(InputError, match="s4_meta_data.csv"):
        open_dataset(trees / "Multi-sources", "s4", "test")


@pytest.mark.parametrize("bad", ["../escape", "a/b", "a\\b", ".."])
def test_bad_clip_id_rejected(tmp_path: Path, bad: str) -> None:
    base = tmp_path / "Single-source"
    base.mkdir()
    csv = base / "s4_meta_data.csv"
    csv.write_text(
        f"name,start_time,category,split\nok_0_5000,0,dog_barking,test\n{bad},0,dog_barking,test\n"
    )
    with pytest.raises(InputError) as e:
        open_dataset(tmp_path, "s4", "test")
    msg = str(e.value)
    assert "s4_meta_data.csv" in msg and "row 3" in msg and "\n" not in msg


def test_readers_are_lazy_and_name_missing_or_corrupt_files(trees: Path, tmp_path: Path) -> None:
    root = _copy(trees / "Single-source", tmp_path / "Single-source")
    ds = open_dataset(root, "s4", "test")
    a, b = ds.ids[0], ds.ids[1]
    rec_a = ds.record(a)
    frame = ds.frame_path(rec_a, 1)
    frame.unlink()
    T.corrupt_file(ds.mask_path(rec_a, 0))
    T.corrupt_file(ds.audio_path(rec_a))
    # Listing and opening still work: nothing was decoded yet.
    ds = open_dataset(root, "s4", "test")
    clip = ds.clip(a)
    clip.frame(0)
    with pytest.raises(InputError, match=str(frame.name)) as e:
        clip.frame(1)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match=f"{a}_1.png"):
        ds.gt_mask(clip, 0)
    with pytest.raises(InputError, match=f"cannot read audio .*{a}.wav"):
        _ = clip.audio
    # The other clip reads fine.
    other = ds.clip(b)
    assert other.frame(1).shape == (64, 64, 3) and other.audio[1] == 16000
    # A missing audio file names it too.
    ds.audio_path(ds.record(b)).unlink()
    with pytest.raises(InputError, match="file not found"):
        _ = ds.clip(b).audio


def test_binary_mask_modes(tmp_path: Path) -> None:
    from PIL import Image

    from avseg.data.base import read_binary_mask

    m = np.zeros((4, 4), np.uint8)
    m[1:3, 1:3] = 1
    p = Image.fromarray(m, mode="P")
    p.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # VOC-style: index 1 is dark red
    p.save(tmp_path / "p.png")
    Image.fromarray(m * 255).save(tmp_path / "l.png")
    Image.fromarray(m * 127).save(tmp_path / "grey.png")  # below the official 128 threshold
    assert np.array_equal(read_binary_mask(tmp_path / "p.png"), m > 0)
    assert np.array_equal(read_binary_mask(tmp_path / "l.png"), m > 0)
    assert not read_binary_mask(tmp_path / "grey.png").any()


# ---------------------------------------------------------------- MS3


def test_ms3(trees: Path) -> None:
    for root in (trees, trees / "Multi-sources"):
        ds = open_dataset(root, "ms3", "test")
        assert len(ds) == 2
    clip = ds.clip(ds.ids[0])
    assert clip.category is None
    assert ds.annotated_frames(clip) == [0, 1, 2, 3, 4]
    masks = [ds.gt_mask(clip, i) for i in range(5)]
    assert all(m is not None for m in masks)
    assert masks[0] is not None and masks[0].any()
    assert masks[4] is not None and not masks[4].any()  # the synthetic empty-GT frame
    assert clip.frame(4).shape == (64, 64, 3)
    vid = clip.clip_id
    assert ds.pred_relpath(clip, 2) == f"test/{vid}/{vid}_3.png"
    assert ds.frame_path(ds.record(vid), 0).name == f"{vid}.mp4_1.png"


# ---------------------------------------------------------------- AVSS


def test_avss_labels_and_palette() -> None:
    names = avss_label_names()
    assert len(names) == 71 and names[0] == "background" and avss_label_index("dog") == names.index("dog")
    pal = build_palette()
    assert pal.shape == (71, 3)
    assert pal[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert len({tuple(c) for c in pal.tolist()}) == 71
    with pytest.raises(UsageError, match="did you mean"):
        avss_label_index("dgo")


def test_avss_color_round_trip() -> None:
    rng = np.random.default_rng(0)
    lm = rng.integers(0, 71, (16, 20)).astype(np.int32)
    rgb = encode_label_map(lm)
    assert rgb.shape == (16, 20, 3) and rgb.dtype == np.uint8
    assert np.array_equal(decode_color_mask(rgb), lm)
    # A colour outside the palette decodes to background, like the official argmax.
    rgb[0, 0] = (1, 2, 3)
    assert decode_color_mask(rgb)[0, 0] == 0


@pytest.mark.parametrize("which", ["subset", "parent"])
def test_avss_reader(trees: Path, which: str) -> None:
    root = trees / "AVSBench-semantic" if which == "subset" else trees
    ds = open_dataset(root, "avss", "test")
    assert isinstance(ds, AVSSDataset) and len(ds) == 6
    assert [ds.record(c).label for c in ds.ids] == ["v1s", "v1s", "v1m", "v1m", "v2", "v2"]
    v2 = open_dataset(root, "avss-v2", "test")
    assert len(v2) == 2
    clip = next(iter(v2))
    assert clip.num_frames == 10 and clip.audio[0].shape[-1] == 10 * 16000
    assert clip.frame(9).shape == (64, 64, 3)
    lm = v2.gt_label_map(clip, 3)
    assert lm is not None and lm.dtype == np.int32
    expected = {0} | {avss_label_index(n) for n in clip.meta["a_obj"].split("_")}
    assert set(np.unique(lm).tolist()) == expected
    mask = v2.gt_mask(clip, 3)
    assert mask is not None and np.array_equal(mask, lm != 0)
    assert v2.pred_relpath(clip, 0) == f"v2/{clip.clip_id}/0.png"
    assert v2.pred_relpath(clip, 9) == f"v2/{clip.clip_id}/9.png"


def test_avss_v1s_train_only_first_frame(trees: Path) -> None:
    ds = open_dataset(trees, "avss-v1s", "train")
    clip = ds.clip(ds.ids[0])
    assert ds.annotated_frames(clip) == [0]
    assert ds.gt_label_map(clip, 0) is not None and ds.gt_label_map(clip, 1) is None
    v1m = open_dataset(trees, "avss-v1m", "train")
    assert v1m.annotated_frames(v1m.ids[0]) == [0, 1, 2, 3, 4]


def test_avss_corrupt_mask_named(trees: Path, tmp_path: Path) -> None:
    root = _copy(trees / "AVSBench-semantic", tmp_path / "AVSBench-semantic")
    ds = open_dataset(root, "avss-v1m", "val")
    rec = ds.record(ds.ids[0])
    T.corrupt_file(ds.mask_path(rec, 2))
    with pytest.raises(InputError, match="labels_rgb/2.png"):
        ds.gt_label_map(rec.clip_id, 2)


# ---------------------------------------------------------------- video, folders, audio


def test_video_read_and_overlay_round_trip(tmp_path: Path) -> None:
    path = T.make_video(tmp_path / "v.mp4", seconds=3, fps=10, sr=22050, channels=2)
    clip = read_video(path)
    assert clip.num_frames == 3
    assert clip.timestamps == pytest.approx([15 / 16, 1 + 15 / 16, 2 + 15 / 16])
    frames = clip.frames()
    # Frame i is the last video frame at or before i + 15/16 s: video frames 9, 19, 29.
    for i, k in enumerate((9, 19, 29)):
        assert abs(float(frames[i][:32].mean()) - T.video_grey(k)) < 4
    wave, sr = clip.audio
    assert sr == 22050 and wave.ndim == 2 and wave.dtype == np.float32
    assert abs(wave.shape[1] / sr - 3.0) < 0.1
    assert clip.meta["warnings"] == []

    out = write_overlay_video(frames, 1.0, wave, sr, tmp_path / "out" / "o.mp4")
    import av

    with av.open(str(out)) as c:
        kinds = sorted(s.type for s in c.streams)
    assert kinds == ["audio", "video"]
    back = read_video(out)
    assert back.num_frames == 3 and back.frame(0).shape == (64, 64, 3)
    w2, sr2 = back.audio
    assert sr2 == 22050 and abs(w2.shape[1] / sr2 - 3.0) < 0.1


def test_video_without_audio_and_corrupt(tmp_path: Path) -> None:
    clip = read_video(T.make_video(tmp_path / "mute.mp4", seconds=2, audio=False))
    assert clip.meta["warnings"] and "no audio" in clip.meta["warnings"][0]
    wave, sr = clip.audio
    assert sr == 16000 and not wave.any() and wave.shape[0] == 1 and wave.shape[1] >= 2 * 16000
    bad = T.corrupt_file(tmp_path / "bad.mp4")
    with pytest.raises(InputError, match="bad.mp4"):
        read_video(bad)
    with pytest.raises(InputError, match="not found"):
        read_video(tmp_path / "missing.mp4")


def test_frames_folder(tmp_path: Path) -> None:
    folder = T.make_frames_folder(tmp_path / "clip", n=12)
    clip = read_frames_folder(folder)
    assert clip.num_frames == 12
    assert clip.meta["frame_files"][9:] == ["frame_9.png", "frame_10.png", "frame_11.png"]  # natural order
    assert clip.frame(11).shape == (64, 64, 3) and clip.audio[1] == 16000
    assert open_input(folder).num_frames == 12

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no frames"):
        read_frames_folder(empty)
    (tmp_path / "noaudio").mkdir()
    shutil.copy(folder / "frame_0.png", tmp_path / "noaudio" / "frame_0.png")
    with pytest.raises(InputError, match="no audio"):
        read_frames_folder(tmp_path / "noaudio")
    shutil.copy(folder / "audio.wav", folder / "second.wav")
    with pytest.raises(InputError, match="several audio files"):
        read_frames_folder(folder)


def test_open_input_dispatch(trees: Path, tmp_path: Path) -> None:
    clip = open_input(T.make_video(tmp_path / "v.mp4", seconds=2))
    assert clip.num_frames == 2
    ds = open_dataset(trees, "avss-v1m", "test")
    clip_dir = ds.root / "v1m" / ds.ids[0]
    c = open_input(clip_dir)
    assert c.clip_id == ds.ids[0] and c.num_frames == 5
    with pytest.raises(InputError, match="does not exist"):
        open_input(tmp_path / "nope")


def test_audio_windows_pad_with_last_full_window() -> None:
    sr = 100
    wave = np.arange(350, dtype=np.float32)  # 3.5 s
    wins = frame_windows(wave, sr, [i + 15 / 16 for i in range(5)])
    assert [w.start for w in wins] == [0, 1, 2, 3, 4]
    assert np.array_equal(wins[1].waveform, wave[100:200])
    # Seconds 3 and 4 are incomplete: both repeat the last full window (second 2).
    assert np.array_equal(wins[3].waveform, wave[200:300]) and np.array_equal(wins[4].waveform, wave[200:300])
    # Shorter than one window: zero-padded.
    short = frame_windows(np.ones(30, np.float32), sr, [0.5, 1.5])
    assert len(short[0].waveform) == 100 and short[0].waveform[:30].all() and not short[0].waveform[30:].any()
    assert all(w.sample_rate == sr for w in wins)


def test_load_audio_and_resample(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read audio .*missing.wav"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="bad.wav"):
        load_audio(T.corrupt_file(tmp_path / "bad.wav"))
    sr = 16000
    x = T.tone([1000.0], 1.0, sr=sr)
    y = resample(x, sr, 8000)
    assert len(y) == 8000 and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 8000 / len(y) - 1000.0) < 2


def test_no_torch_import() -> None:
    code = (
        "import sys, avseg.data, avseg.audio, avseg.testing, avseg.eval.metrics; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    root = Path(__file__).resolve().parents[1]
    env_path = str(root)
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env={"PYTHONPATH": env_path, "PATH": ""})
    assert r.returncode == 0
