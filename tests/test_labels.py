"""One label normaliser: AVSS classes survive prompt -> GroundingDINO label -> eval label map."""

from __future__ import annotations

import numpy as np

from avseg.data import avss_label_names
from avseg.labels import normalise_label, normalise_labels
from tests.deps import requires


def test_normalise_label_forms() -> None:
    for raw in ("Emergency-Car", "emergency_car", "emergency - car", " the  emergency car ", "emergency.car"):
        assert normalise_label(raw) == "emergency car"
    assert normalise_label("A capella") == "capella"
    assert normalise_label("a") == "a"  # an article alone is a name, not an article
    assert normalise_labels(["Dog", "dog", " ", "DOG_", "cat"]) == ["dog", "cat"]


def test_tree_and_gdino_use_the_one_normaliser() -> None:
    requires("transformers")  # gdino's proposer module imports it
    from avseg_gdino.proposer import normalise_prompts

    from avseg.tree import normalize_label

    names = ["Hair-Dryer", "playing_violin", "the vacuum cleaner", "Mr. Bean"]
    assert [normalize_label(n) for n in names] == [normalise_label(n) for n in names]
    assert normalise_prompts(names) == normalise_labels(names)


def test_all_71_avss_classes_round_trip_from_prompt_to_label_map() -> None:
    """Each AVSS class, prompted through gdino's vocabulary path and decoded the way transformers'
    post-processing decodes a detected phrase, lands on its own class index in eval's label map."""
    requires("torch", "transformers")
    import torch
    from avseg_gdino.proposer import avss_vocabulary, prompt_text
    from avseg_gdino.tiny import FIXED_IDS, build_tiny_tokenizer
    from transformers import GroundingDinoImageProcessor, GroundingDinoProcessor
    from transformers.models.grounding_dino.processing_grounding_dino import get_phrases_from_posmap

    from avseg.eval.runner import LabelIndexer, _label_map_to_classes

    names = avss_label_names()
    assert len(names) == 71
    prompts = avss_vocabulary()
    assert len(prompts) == 70
    processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=build_tiny_tokenizer())
    ids = processor.tokenizer(prompt_text(prompts))["input_ids"]
    assert FIXED_IDS["[UNK]"] not in ids, "every AVSS word must be in the tokenizer"
    # one posmap row per phrase: the tokens between two '.' (what a detection of that phrase lights up)
    posmap = torch.zeros((len(prompts), len(ids)), dtype=torch.bool)
    phrase, start = 0, 1
    for i, t in enumerate(ids[1:], start=1):
        if t in (FIXED_IDS["."], FIXED_IDS["[SEP]"]) and i > start:
            posmap[phrase, start:i] = True
            phrase, start = phrase + 1, i + 1
    assert phrase == len(prompts)
    decoded = processor.batch_decode(get_phrases_from_posmap(posmap, torch.tensor(ids)))

    indexer = LabelIndexer()
    label_map = np.arange(1, len(decoded) + 1, dtype=np.int32).reshape(1, -1)  # one pixel per detection
    classes = _label_map_to_classes(decoded, label_map, 1, len(decoded), indexer)
    assert classes.tolist() == [list(range(1, 71))], f"unmapped: {indexer.unmapped}"
    assert indexer.unmapped == {}
    # the raw dataset spellings map too, background included
    assert [indexer(n) for n in names] == list(range(71))
