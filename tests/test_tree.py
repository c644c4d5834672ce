"""The audio-visual tree: loading, validation, lookups, display, and the shipped tree's coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from avseg.audioset import NON_VISUAL_TAGS, audioset_labels
from avseg.errors import ConfigError, UsageError
from avseg.tree import AVTree, load_tree, normalize_label, parse_tree, show_branch, validate_tree_file

# AVSBench S4 categories (OpenNLPLab/AVSBench preprocess_s4.py).
S4 = [
    "baby_laughter", "female_singing", "male_speech", "dog_barking", "cat_meowing", "lions_roaring",
    "horse_clip-clop", "coyote_howling", "mynah_bird_singing", "playing_acoustic_guitar", "playing_tabla",
    "playing_violin", "playing_piano", "playing_ukulele", "playing_glockenspiel", "helicopter", "race_car",
    "driving_buses", "ambulance_siren", "typing_on_computer_keyboard", "chainsawing_trees",
    "cap_gun_shooting", "lawn_mowing",
]  # fmt: skip

# AVSBench-semantic object labels (label2idx.json without "background").
AVSS = [
    "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat", "boy", "bus", "car", "cat",
    "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum", "duck", "elephant", "emergency-car",
    "erhu", "flute", "frying-food", "girl", "goose", "guitar", "gun", "guzheng", "hair-dryer", "handpan",
    "harmonica", "harp", "helicopter", "hen", "horse", "keyboard", "leopard", "lion", "man", "marimba",
    "missile-rocket", "motorcycle", "mower", "parrot", "piano", "pig", "pipa", "saw", "saxophone", "sheep",
    "sitar", "sorna", "squirrel", "tabla", "tank", "tiger", "tractor", "train", "trombone", "truck",
    "trumpet", "tuba", "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman",
]  # fmt: skip

COCO_SOUNDING = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "sports ball", "skateboard", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "tv", "laptop", "mouse", "keyboard", "cell phone", "microwave",
    "sink", "toilet", "clock", "scissors", "hair drier", "toothbrush",
]  # fmt: skip

COCO_SILENT = [
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "kite", "baseball bat",
    "baseball glove", "surfboard", "tennis racket", "bottle", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "remote", "oven", "toaster", "refrigerator", "book", "vase", "teddy bear",
]  # fmt: skip


@pytest.fixture(scope="module")
def tree() -> AVTree:
    return load_tree(None)


def write(tmp_path: Path, text: str, name: str = "tree.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---------------------------------------------------------------- AudioSet names


def test_audioset_labels_are_the_527_checkpoint_names() -> None:
    names = audioset_labels()
    assert len(names) == 527 == len(set(names))
    assert names[0] == "Speech" and names[-1] == "Field recording"
    assert names[74] == "Dog" and names[191] == "Violin, fiddle" and names[396] == "Siren"
    assert names[137] == "Music"
    assert audioset_labels() is not audioset_labels()  # callers may mutate their copy


def test_non_visual_tags_are_audioset_names_and_exclude_music() -> None:
    assert set(audioset_labels()) >= NON_VISUAL_TAGS
    assert {"Silence", "Noise", "White noise", "Inside, small room", "Echo"} <= NON_VISUAL_TAGS
    assert "Music" not in NON_VISUAL_TAGS  # documented choice: generic but with real sources


# ---------------------------------------------------------------- the shipped tree


def test_default_tree_validates_clean(tree: AVTree) -> None:
    assert tree.validate(audioset_labels()) == []
    assert validate_tree_file(None) == []
    assert tree.background == NON_VISUAL_TAGS


@pytest.mark.parametrize("names", [S4, AVSS, COCO_SOUNDING], ids=["s4", "avss", "coco"])
def test_default_tree_covers_dataset_categories(tree: AVTree, names: list[str]) -> None:
    missing = [n for n in names if (tree.resolve(n) or ("", ""))[1] not in ("category", "alias")]
    assert missing == []


def test_counts_and_avss_names_are_categories(tree: AVTree) -> None:
    assert len(S4) == 23 and len(AVSS) == 70
    assert len(COCO_SOUNDING) + len(COCO_SILENT) == 80
    assert not set(COCO_SOUNDING) & set(COCO_SILENT)
    assert set(AVSS) <= set(tree.categories)  # AVSS labels are categories themselves, not aliases


def test_s4_labels_alias_their_object_category(tree: AVTree) -> None:
    expect = {
        "playing_violin": "violin", "dog_barking": "dog", "ambulance_siren": "emergency-car",
        "coyote_howling": "wolf", "chainsawing_trees": "saw", "typing_on_computer_keyboard": "keyboard",
        "male_speech": "man", "horse_clip-clop": "horse", "lawn_mowing": "mower",
    }  # fmt: skip
    for label, cat in expect.items():
        assert tree.resolve(label) == (cat, "alias")


def test_lookups(tree: AVTree) -> None:
    assert tree.broad_of("dog") == "pet"
    assert "Bark" in tree.leaves_of("dog")
    assert {"person", "man", "woman"} <= set(tree.categories_of_leaf("Speech"))
    assert tree.categories_of_leaf("Music") == []
    assert tree.path("violin") == "string_instrument/violin"
    assert tree.resolve("Hair_Drier") == ("hair-dryer", "alias")
    assert tree.resolve("the Dog") == ("dog", "category")
    assert tree.resolve("Violin, fiddle") == ("violin", "leaf")
    assert tree.resolve("galaxy") is None
    assert "Siren" not in tree.leaves_of("car")
    with pytest.raises(UsageError, match="did you mean 'dog'"):
        tree.broad_of("dgo")


def test_normalize_label() -> None:
    assert normalize_label("  Emergency-Car ") == "emergency car"
    assert normalize_label("playing_acoustic_guitar") == "playing acoustic guitar"
    assert normalize_label("a dog") == "dog"


# ---------------------------------------------------------------- validation


def test_misspelled_audioset_name_is_named_with_close_match(tmp_path: Path) -> None:
    p = write(tmp_path, 'broad_sources:\n  instrument:\n    violin: ["Violin, fidle", "Pizzicato"]\n')
    problems = validate_tree_file(p)
    assert len(problems) == 1
    assert "'Violin, fidle'" in problems[0] and "'Violin, fiddle'" in problems[0]
    assert "instrument/violin" in problems[0]


def test_wrong_case_and_hopeless_names(tmp_path: Path) -> None:
    p = write(tmp_path, "broad_sources:\n  pet:\n    dog: [bark, Zzyzx qwerty]\n")
    problems = validate_tree_file(p)
    assert any("'bark'" in x and "'Bark'" in x for x in problems)
    assert any("'Zzyzx qwerty'" in x and "no close match" in x for x in problems)


def test_structural_problems_are_all_reported(tmp_path: Path) -> None:
    text = """
broad_sources:
  pet:
    dog: ["Bark", "Bark"]
    cat: []
  wild:
    dog: ["Howl"]
    lion: ["Roar", "Noise"]
  empty: {}
aliases:
  dgo: ["puppy"]
  lion: ["dog"]
background: ["Noise", "Silense"]
"""
    problems = validate_tree_file(write(tmp_path, text))
    joined = "\n".join(problems)
    assert "category 'dog' appears more than once: under pet, wild" in joined
    assert "category 'cat' under pet/cat has no AudioSet names" in joined
    assert "broad source 'empty' has no categories" in joined
    assert "'Bark' is listed 2 times under pet/dog" in joined
    assert "'Noise' under wild/lion is also a background class" in joined
    assert "'Silense'" in joined and "'Silence'" in joined
    assert "aliases: 'dgo' is not a category (did you mean 'dog'?)" in joined
    assert "alias 'dog' of 'lion' is the name of category 'dog'" in joined


def test_validate_against_custom_vocabulary() -> None:
    t = parse_tree({"broad_sources": {"pet": {"dog": ["dog barking"]}}})
    assert t.validate(["dog barking"]) == []
    assert len(t.validate()) == 1


# ---------------------------------------------------------------- format errors


@pytest.mark.parametrize(
    "text, message",
    [
        ("broad_sources: [\n", "invalid YAML at line"),
        ("- a\n- b\n", "expected a mapping with a 'broad_sources' key"),
        ("aliases: {}\n", "expected a mapping with a 'broad_sources' key"),
        ("broad_sources: {}\ncolours: {}\n", "unknown key 'colours'"),
        ("broad_sources:\n  pet:\n    dog: Bark\n", "pet/dog must be a list of names"),
        ("broad_sources:\n  pet:\n    dog: [yes]\n", "quote it"),
        ("broad_sources:\n  pet:\n    dog: [Bark]\n    dog: [Howl]\n", "duplicate key 'dog'"),
        ("broad_sources:\n  pet: [dog]\n", "must map categories"),
    ],
)
def test_format_errors_are_one_line_and_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_tree(p)
    msg = str(err.value)
    assert message in msg and str(p) in msg and "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_tree(tmp_path / "nope.yaml")


def test_empty_values_load_and_are_reported(tmp_path: Path) -> None:
    t = load_tree(write(tmp_path, "broad_sources:\n  pet:\n    dog:\n  wild:\n"))
    assert t.categories == ["dog"] and t.leaves_of("dog") == []
    assert len(t.validate()) == 2


# ---------------------------------------------------------------- show


def test_show_category_alias_broad_and_leaf(tree: AVTree) -> None:
    text = show_branch("dog")
    assert text.splitlines()[0] == "pet" and "└── dog" in text and "Bark" in text
    assert show_branch("playing_violin").startswith("'playing_violin' is an alias of 'violin'")
    broad = tree.show("pet")
    assert "dog" in broad and "cat" in broad and "Meow" in broad
    assert tree.show("bark") == "'Bark' is an AudioSet leaf under: pet/dog"
    assert "human/person" in tree.show("Speech") and "human/woman" in tree.show("Speech")
    assert "background" in tree.show("Silence")
    assert "does not use" in tree.show("Music")
    with pytest.raises(UsageError, match="did you mean 'violin'"):
        tree.show("violim")


def test_show_branch_from_file(tmp_path: Path) -> None:
    p = write(tmp_path, 'broad_sources:\n  pet:\n    dog: ["Bark"]\n')
    assert show_branch("dog", p) == "pet\n└── dog\n    └── Bark"
