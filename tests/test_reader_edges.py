"""The AVSBench readers at their boundaries, through the public readers: which metadata CSV a root
resolves to, which rows and columns become clips, which indices, limits and ids are refused (one
line naming the file or option), and the AVSS colour masks an official palette gives. Fast (a
CSV or a tiny PNG per test, no model, no torch), so that ``make mutants`` judges the readers with it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from avseg.data import AVSSDataset, build_palette, decode_color_mask, encode_label_map
from avseg.data.s4 import S4Dataset
from avseg.errors import InputError, UsageError

S4_HEADER = "name,start_time,category,split"
AVSS_HEADER = "vid,uid,s_min,s_sec,a_obj,split,label"


def s4_csv(folder: Path, names: list[str], split: str = "test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "s4_meta_data.csv"
    csv.write_text(S4_HEADER + "\n" + "".join(f"{n},0,dog_barking,{split}\n" for n in names))
    return csv


def avss_csv(folder: Path, rows: list[str], header: str = AVSS_HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "metadata.csv"
    csv.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return csv


# -- where the metadata CSV is found ---------------------------------------------------------
def test_the_root_may_be_the_metadata_csv_itself_but_no_other_file(tmp_path: Path) -> None:
    csv = s4_csv(tmp_path / "Single-source", ["a_0"])
    ds = S4Dataset(csv, "test")
    assert ds.csv_path == csv and ds.ids == ["a_0"]
    other = tmp_path / "Single-source" / "notes.csv"
    other.write_text(S4_HEADER + "\nb_0,0,dog_barking,test\n")
    with pytest.raises(InputError, match=rf"^dataset root {re.escape(str(other))} is a file; point at the "
                                         r"folder holding s4_meta_data.csv$"):
        S4Dataset(other, "test")


@pytest.mark.parametrize("depth", [1, 2])
def test_with_two_copies_the_one_in_the_subset_folder_wins(tmp_path: Path, depth: int) -> None:
    """``A-copy`` sorts before ``Single-source``: the hint, not the order, picks the subset's own CSV."""
    base = tmp_path if depth == 1 else tmp_path / "AVSBench"
    s4_csv(base / "A-copy", ["copy_0"])
    csv = s4_csv(base / "Single-source", ["mine_0"])
    ds = S4Dataset(tmp_path, "test")
    assert ds.csv_path == csv and ds.ids == ["mine_0"]


def test_two_copies_outside_the_subset_folder_are_refused_naming_both(tmp_path: Path) -> None:
    a, b = s4_csv(tmp_path / "a", ["a_0"]), s4_csv(tmp_path / "b", ["b_0"])
    msg = (rf"^several s4_meta_data.csv under {re.escape(str(tmp_path))} \({re.escape(str(a.parent))}, "
           rf"{re.escape(str(b.parent))}\); point the root at one of them$")
    with pytest.raises(InputError, match=msg):
        S4Dataset(tmp_path, "test")


def test_the_ambiguity_error_names_the_first_four_candidates(tmp_path: Path) -> None:
    folders = [tmp_path / n for n in "abcde"]
    for f in folders:
        s4_csv(f, [f"{f.name}_0"])
    with pytest.raises(InputError) as e:
        S4Dataset(tmp_path, "test")
    listed = re.search(r"\((.*)\)", str(e.value))
    assert listed is not None and listed.group(1) == ", ".join(str(f) for f in folders[:4])


def test_one_copy_anywhere_is_taken(tmp_path: Path) -> None:
    csv = s4_csv(tmp_path / "x" / "elsewhere", ["a_0"])
    assert S4Dataset(tmp_path, "test").csv_path == csv


# -- rows and values -------------------------------------------------------------------------
def test_unreadable_metadata_is_one_line_without_the_exception_type(tmp_path: Path) -> None:
    csv = tmp_path / "Single-source" / "s4_meta_data.csv"
    csv.parent.mkdir()
    csv.write_bytes(S4_HEADER.encode() + b"\n\xff\xfe,0,dog,test\n")
    with pytest.raises(InputError, match=rf"^cannot read metadata {re.escape(str(csv))}: 'utf-8' codec can't "
                                         r"decode byte 0xff") as e:
        S4Dataset(csv.parent, "test")
    assert "UnicodeDecodeError" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [".", "a\x00b"])
def test_a_dot_or_nul_clip_name_is_refused(tmp_path: Path, bad: str) -> None:
    csv = s4_csv(tmp_path / "Single-source", ["ok_0", bad])
    with pytest.raises(InputError, match=rf"^{re.escape(str(csv))}: row 3: invalid clip name {re.escape(repr(bad))}"):
        S4Dataset(csv.parent, "test")


def test_records_cannot_be_altered_through_the_reader(tmp_path: Path) -> None:
    ds = S4Dataset(s4_csv(tmp_path / "Single-source", ["a_0"]).parent, "test")
    rec = ds.record("a_0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.num_frames = 1  # type: ignore[misc]
    assert ds.clip("a_0").num_frames == 5


# -- ids, limits, frame indices --------------------------------------------------------------
def test_select_refuses_unknown_ids_and_negative_limits_and_takes_zero(tmp_path: Path) -> None:
    ds = S4Dataset(s4_csv(tmp_path / "Single-source", ["a_0", "b_0", "c_0"]).parent, "test")
    with pytest.raises(UsageError, match=r"^no clip 'b_1' in s4 test.*did you mean"):
        ds.select(clips=["a_0", "b_1"])
    with pytest.raises(UsageError, match=r"^limit must be >= 0, got -1$"):
        ds.select(limit=-1)
    empty = ds.select(limit=0)
    assert empty.ids == [] and len(empty) == 0 and ds.select(limit=1).ids == ["a_0"]


def test_close_matches_are_suggested_below_5000_clips_only(tmp_path: Path) -> None:
    """The suggestion is skipped from 5000 clips on (its cost grows with the clip count)."""
    ds = S4Dataset(s4_csv(tmp_path / "Single-source", [f"clip{i:05d}_0" for i in range(5000)]).parent, "test")
    with pytest.raises(UsageError, match=r"^no clip 'clip00000_1' in s4 test$"):
        ds.clip("clip00000_1")
    with pytest.raises(UsageError, match=r"^no clip 'clip00000_1' in s4 test.*did you mean 'clip00000_0'"):
        ds.select(limit=4999).clip("clip00000_1")


@pytest.mark.parametrize("i", [-1, 5])
def test_a_frame_index_outside_the_clip_is_refused(tmp_path: Path, i: int) -> None:
    ds = S4Dataset(s4_csv(tmp_path / "Single-source", ["a_0"]).parent, "test")
    with pytest.raises(IndexError, match=rf"^frame {i} out of range for clip 'a_0' \(5 frames\)$"):
        ds.gt_mask("a_0", i)
    with pytest.raises(IndexError, match="out of range"):
        ds.clip("a_0").frame(i)


def test_only_labelled_clips_carry_a_label_in_their_meta(tmp_path: Path) -> None:
    s4 = S4Dataset(s4_csv(tmp_path / "Single-source", ["a_0"]).parent, "test")
    assert "label" not in s4.clip("a_0").meta
    avss = AVSSDataset(avss_csv(tmp_path / "AVSBench-semantic", ["v,v_0,0,0,dog,test,v2"]).parent, "test")
    assert avss.clip("v_0").meta["label"] == "v2"


# -- AVSS metadata -----------------------------------------------------------------------------
def test_avss_keeps_only_the_rows_of_its_split_and_label_set(tmp_path: Path) -> None:
    root = avss_csv(tmp_path / "AVSBench-semantic", [
        "a,a_0,0,0,dog,train,v1s", "b,b_0,0,0,dog,test,v1s", "c,c_0,0,1,cat,test,v2", "d,d_0,0,0,dog,val,v1m",
    ]).parent
    assert AVSSDataset(root, "test").ids == ["b_0", "c_0"]
    assert AVSSDataset(root, "train").ids == ["a_0"]
    v2 = AVSSDataset(root, "test", label="v2")
    assert v2.ids == ["c_0"] and v2.name == "avss-v2" and AVSSDataset(root, "test").name == "avss"
    clip = v2.clip("c_0")
    assert clip.num_frames == 10 and clip.meta["vid"] == "c" and clip.meta["a_obj"] == "cat"


def test_avss_reads_the_official_positions_under_another_header(tmp_path: Path) -> None:
    """vid, uid, a_obj, split and label from columns 0, 1, 4, 5 and 6 whatever the header says."""
    root = avss_csv(tmp_path / "AVSBench-semantic", ["V1,U1,0,0,OBJ,test,v1m", "V2,U2,0,0,X,train,v2"],
                    header="a,b,c,d,e,f,g").parent
    ds = AVSSDataset(root, "test")
    assert ds.ids == ["U1"]
    meta = ds.clip("U1").meta
    assert (meta["vid"], meta["a_obj"], meta["label"], meta["split"]) == ("V1", "OBJ", "v1m", "test")


def test_avss_a_row_one_column_short_is_named(tmp_path: Path) -> None:
    csv = avss_csv(tmp_path / "AVSBench-semantic", ["a,a_0,0,0,dog,test,v1s", "b,b_0,0,0,dog,test"])
    with pytest.raises(InputError, match=rf"^{re.escape(str(csv))}: row 3: expected 7 columns, got 6$"):
        AVSSDataset(csv.parent, "test")


@pytest.mark.parametrize(("header", "row", "key"), [
    ("uid,s_min,s_sec,a_obj,split,label,vid", "u_0,0,0,dog,test,v1s", "vid"),
    ("vid,uid,s_min,s_sec,split,label,a_obj", "v,u_0,0,0,test,v1s", "a_obj"),
])
def test_avss_a_row_may_omit_a_trailing_optional_column(tmp_path: Path, header: str, row: str, key: str) -> None:
    ds = AVSSDataset(avss_csv(tmp_path / "AVSBench-semantic", [row], header=header).parent, "test")
    meta = ds.clip("u_0").meta
    assert ds.ids == ["u_0"] and meta.get(key, "") == ""


def test_avss_a_truncated_mask_is_one_line_without_the_exception_type(tmp_path: Path) -> None:
    root = avss_csv(tmp_path / "AVSBench-semantic", ["v,v_0,0,0,dog,test,v1m"]).parent
    lm = np.random.default_rng(0).integers(0, 71, (48, 48)).astype(np.int32)
    mask = root / "v1m" / "v_0" / "labels_rgb" / "0.png"
    mask.parent.mkdir(parents=True)
    PILImage.fromarray(encode_label_map(lm)).save(mask)
    ds = AVSSDataset(root, "test")
    lm_read = ds.gt_label_map("v_0", 0)
    assert lm_read is not None and np.array_equal(lm_read, lm)
    mask.write_bytes(mask.read_bytes()[: mask.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^cannot read mask {re.escape(str(mask))}: image file is truncated") as e:
        ds.gt_label_map("v_0", 0)
    assert "OSError" not in str(e.value)
    with pytest.raises(IndexError, match="out of range"):
        ds.pred_relpath("v_0", 5)


# -- AVSS colours ------------------------------------------------------------------------------
def test_avss_palette_is_the_official_one_beyond_the_first_eight_classes() -> None:
    """VOC's bit-shift palette: class 8 is (64, 0, 0), class 63 (192, 192, 192), class 70 (32, 128, 128)."""
    pal = build_palette()
    assert pal[8].tolist() == [64, 0, 0] and pal[63].tolist() == [192, 192, 192]
    assert pal[64].tolist() == [32, 0, 0] and pal[70].tolist() == [32, 128, 128]


def test_avss_colours_outside_the_palette_are_background() -> None:
    """White is above every palette colour; the one-bit colours share no bit with a class colour."""
    unknown = [(255, 255, 255), (1, 0, 0), (0, 1, 0), (0, 0, 1), (128, 1, 0), (1, 128, 0), (0, 1, 128)]
    rgb = np.array([unknown + [(128, 0, 0), (0, 128, 0), (0, 0, 128)]], np.uint8)
    assert decode_color_mask(rgb).tolist() == [[0] * len(unknown) + [1, 2, 4]]


def test_avss_decoding_with_a_palette_whose_darkest_colour_is_not_class_0() -> None:
    pal = np.array([[200, 0, 0], [10, 0, 0], [0, 0, 0]], np.uint8)
    rgb = np.array([[[10, 0, 0], [200, 0, 0], [0, 0, 0], [255, 255, 255]]], np.uint8)
    assert decode_color_mask(rgb, pal).tolist() == [[1, 0, 2, 0]]


@pytest.mark.parametrize("bad", [-1, 71])
def test_avss_encoding_refuses_a_class_outside_the_palette(bad: int) -> None:
    with pytest.raises(ValueError, match=r"^label map values must be in \[0, 70\]$"):
        encode_label_map(np.array([[0, bad]]))
    assert encode_label_map(np.array([[0, 70]])).tolist() == [[[0, 0, 0], [32, 128, 128]]]
