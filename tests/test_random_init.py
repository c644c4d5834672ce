"""``runtime.random_init``: every model plugin builds its REAL architecture with seeded random weights.

Only builds (and configs) are checked here; real-size forwards take seconds to minutes on a CPU.
Models whose build is slow (GroundingDINO, ImageBind-huge) are checked through the config or the
builder the plugin uses, with the build itself replaced by the tiny one.
"""

from __future__ import annotations

import pytest

from tests.deps import requires

torch = requires("torch")
requires("transformers")

from avseg.runtime import Runtime  # noqa: E402


def _random(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", random_init=True, seed=seed)


def _flip_to_random(rt: Runtime) -> Runtime:
    """The same runtime (same share table) switched from tiny to random_init."""
    rt.tiny = False
    rt.random_init = True
    return rt


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- SAM


def test_sam_vit_b_real_sizes_seeded_and_keyed_apart_from_tiny() -> None:
    requires("segment_anything")
    from avseg_sam.model import SPECS
    from avseg_sam.segmenter import SamConfig, SamSegmenter

    rt = Runtime(device="cpu", tiny=True, seed=0)
    tiny = SamSegmenter(SamConfig(variant="vit_b"), rt)
    seg = SamSegmenter(SamConfig(variant="vit_b"), _flip_to_random(rt))
    assert seg.model is not tiny.model  # the share key holds the mode
    enc = seg.model.image_encoder
    assert enc.img_size == 1024
    assert enc.patch_embed.proj.out_channels == 768
    assert len(enc.blocks) == 12
    assert 90e6 < sum(p.numel() for p in seg.model.parameters()) < 95e6
    assert seg.loaded.spec == SPECS["vit_b"]
    assert seg.weights_used() == "random" and tiny.weights_used() == "tiny"
    assert "/random/" in seg.namespace and seg.namespace != tiny.namespace

    again = SamSegmenter(SamConfig(variant="vit_b"), _random(seed=0))
    assert again.model is not seg.model and _same_weights(again.model, seg.model)


# ----------------------------------------------------------------------------- AST


def test_ast_real_config_and_labels() -> None:
    from avseg_ast.tagger import ASTTagger, random_init_config

    cfg = random_init_config()
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (768, 12, 12)
    assert (cfg.num_mel_bins, cfg.max_length, cfg.frequency_stride, cfg.time_stride) == (128, 1024, 10, 10)
    assert cfg.num_labels == 527

    rt = Runtime(device="cpu", tiny=True, seed=0)
    tiny = ASTTagger(ASTTagger.Config(), rt)
    tagger = ASTTagger(ASTTagger.Config(), _flip_to_random(rt))
    assert tagger.model is not tiny.model
    assert tagger.model.config.hidden_size == 768 and len(tagger.vocabulary) == 527
    assert tagger.weights_used() == "random"


# ----------------------------------------------------------------------------- PANNs


def test_panns_real_head() -> None:
    requires("panns_inference", "torchlibrosa", import_it=False)
    from avseg_panns.tagger import PannsTagger

    rt = _random()
    tagger = PannsTagger(PannsTagger.Config(), rt)
    assert [k for k in rt._shared if k.startswith("panns/")] == [
        f"panns/cnn14/random/seed=0/cpu/{torch.float32}"
    ]
    assert tagger.model.fc_audioset.out_features == 527 == len(tagger.vocabulary)
    assert tagger.weights_used() == "random"


# ----------------------------------------------------------------------------- CLAP


def test_clap_real_config() -> None:
    from avseg_clap.tagger import ClapTagger, random_init_config, tiny_tokenizer

    cfg = random_init_config()
    a, t = cfg.audio_config, cfg.text_config
    assert (a.hidden_size, a.patch_embeds_hidden_size, list(a.depths)) == (768, 96, [2, 2, 6, 2])
    assert (a.num_mel_bins, a.spec_size, a.enable_fusion) == (64, 256, False)
    assert (t.hidden_size, t.num_hidden_layers, t.vocab_size) == (768, 12, 50265)
    assert cfg.projection_dim == 512
    assert len(tiny_tokenizer()) <= t.vocab_size  # the offline tokenizer's ids are valid

    rt = Runtime(device="cpu", tiny=True, seed=0)
    tiny = ClapTagger(ClapTagger.Config(vocabulary=["dog", "piano"]), rt)
    tagger = ClapTagger(ClapTagger.Config(vocabulary=["dog", "piano"]), _flip_to_random(rt))
    assert tagger.model is not tiny.model and tagger._model_tag != tiny._model_tag
    assert tagger.weights_used() == "random"
    assert tagger.model.config.audio_config.hidden_size == 768


# ----------------------------------------------------------------------------- OWLv2


def test_owod_real_config_and_build() -> None:
    from avseg_owod.proposer import OwlV2ObjectnessProposer, OwodConfig, real_config

    large = real_config("large").vision_config
    assert (large.image_size, large.patch_size, large.hidden_size, large.num_hidden_layers) == (
        1008,
        14,
        1024,
        24,
    )

    rt = Runtime(device="cpu", tiny=True, seed=0)
    tiny = OwlV2ObjectnessProposer(OwodConfig(), rt)
    prop = OwlV2ObjectnessProposer(OwodConfig(variant="base"), _flip_to_random(rt))
    assert prop.model is not tiny.model
    v = prop.model.config.vision_config
    assert (v.image_size, v.patch_size, v.hidden_size, v.num_hidden_layers) == (960, 16, 768, 12)
    assert prop.model.config.text_config.hidden_size == 512
    assert (prop.image_processor.size["height"], prop.image_processor.size["width"]) == (960, 960)
    assert prop.weights_used() == "random"


# ----------------------------------------------------------------------------- GroundingDINO


def test_gdino_real_configs() -> None:
    from avseg_gdino.tiny import real_config, tiny_vocab

    t, b = real_config("swin-t"), real_config("swin-b")
    for cfg in (t, b):
        assert (cfg.d_model, cfg.num_queries, cfg.encoder_layers, cfg.decoder_layers) == (256, 900, 6, 6)
        assert (cfg.encoder_ffn_dim, cfg.num_feature_levels, cfg.max_text_len, cfg.two_stage) == (
            2048,
            4,
            256,
            True,
        )
        tc = cfg.text_config
        assert (tc.hidden_size, tc.num_hidden_layers, tc.vocab_size) == (768, 12, 30522)
        assert list(cfg.backbone_config.out_indices) == [2, 3, 4]
    assert len(tiny_vocab()) <= 30522  # the offline tokenizer's ids are valid in bert-base's embedding
    sw = t.backbone_config
    assert (sw.embed_dim, list(sw.depths), list(sw.num_heads), sw.window_size) == (
        96,
        [2, 2, 6, 2],
        [3, 6, 12, 24],
        7,
    )
    sw = b.backbone_config
    assert (sw.embed_dim, list(sw.depths), list(sw.num_heads), sw.window_size) == (
        128,
        [2, 2, 18, 2],
        [4, 8, 16, 32],
        12,
    )


def test_gdino_random_mode_builds_the_real_architecture_seeded() -> None:
    """Random mode builds grounding-dino-tiny at its real sizes (Swin-T + BERT-base, about 172M
    parameters, 900 queries, the 800/1333 image processor), from the runtime's seed, shared
    apart from the tiny model, and says so in weights_used."""
    from avseg_gdino.proposer import GroundingDinoProposer

    rt = Runtime(device="cpu", tiny=True, seed=3)
    tiny = GroundingDinoProposer(GroundingDinoProposer.Config(), rt)
    prop = GroundingDinoProposer(GroundingDinoProposer.Config(variant="swin-t"), _flip_to_random(rt))
    assert prop.model is not tiny.model
    assert prop.weights_used() == "random" and tiny.weights_used() == "tiny"
    cfg = prop.model.config
    assert (cfg.d_model, cfg.num_queries, cfg.text_config.hidden_size, cfg.backbone_config.embed_dim) == (256, 900, 768, 96)
    n_params = sum(p.numel() for p in prop.model.parameters())
    assert 150e6 < n_params < 200e6 and n_params > 100 * sum(p.numel() for p in tiny.model.parameters())
    size = prop.processor.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == (800, 1333)
    # seeded: the same seed gives the same weights (a cheap layer is enough to tell)
    from avseg_gdino.tiny import build_random

    torch.manual_seed(12345)  # the build seeds itself: the global RNG must not matter
    again, _ = build_random("swin-t", 3)
    name, w = next((k, v) for k, v in prop.model.state_dict().items() if v.dtype.is_floating_point and v.std() > 0)
    assert torch.equal(again.state_dict()[name], w)
    other, _ = build_random("swin-t", 4)
    assert not torch.equal(other.state_dict()[name], w)


# ----------------------------------------------------------------------------- ImageBind


def test_imagebind_random_mode_builds_huge_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    requires("torchaudio", "imagebind", "pytorchvideo", import_it=False)
    from avseg_imagebind.compat import load_imagebind
    from avseg_imagebind.embedder import ImageBindEmbedder
    from avseg_imagebind.tiny import TINY_KWARGS, build_huge

    ib_model, _ = load_imagebind()
    calls: list[bool] = []

    def fake_huge(pretrained: bool = False):  # imagebind_huge at tiny sizes: the real one takes long
        calls.append(pretrained)
        return ib_model.ImageBindModel(**TINY_KWARGS)

    monkeypatch.setattr(ib_model, "imagebind_huge", fake_huge)
    state = torch.random.get_rng_state()
    a, b = build_huge(ib_model, seed=5), build_huge(ib_model, seed=5)
    assert calls == [False, False] and _same_weights(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched

    rt = Runtime(device="cpu", tiny=True, seed=0)
    tiny = ImageBindEmbedder(ImageBindEmbedder.Config(), rt)
    emb = ImageBindEmbedder(ImageBindEmbedder.Config(), _flip_to_random(rt))
    assert calls == [False, False, False]
    assert emb.model is not tiny.model
    assert emb.weights_used() == "random"
