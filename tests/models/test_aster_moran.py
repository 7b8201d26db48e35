"""ASTER and MORAN in their public layouts: keys, shapes, preprocessing, rectification, decoding."""
import pytest
import torch
import torch.nn.functional as F

from tsr.config import ConfigError, load_config
from tsr.inference import recognize
from tsr.models import aster, moran
from tsr.models.build import build_model


def _judge_model(kind: str):
    """A full model of one evaluation-only recognizer part, as `tsr convert --from aster|moran` configures it."""
    torch.manual_seed(0)
    cfg = load_config(overrides=["model.parts=[recognizer]", f"model.recognizer.type={kind}",
                                 "model.recognizer.trainable=none"])
    return build_model(cfg).eval(), cfg


@pytest.fixture(scope="module")
def aster_model():
    return _judge_model("aster")


@pytest.fixture(scope="module")
def moran_model():
    return _judge_model("moran")


@pytest.fixture(scope="module")
def aster_net(aster_model):
    return aster_model[0]["recognizer"].net


@pytest.fixture(scope="module")
def moran_net(moran_model):
    return moran_model[0]["recognizer"].net


def test_aster_layout_is_aster_pytorchs(aster_net):
    state = aster_net.state_dict()
    assert len(state) == 384
    params = sum(p.numel() for p in aster_net.parameters())
    tps_buffers = sum(state[f"tps.{k}"].numel() for k in ("inverse_kernel", "padding_matrix",
                                                           "target_coordinate_repr", "target_control_points"))
    assert (params, tps_buffers) == (20_991_594, 74_175)   # 21,065,769 together, the count the layout lists
    shapes = {"encoder.layer0.0.weight": (32, 3, 3, 3), "encoder.layer5.0.downsample.0.weight": (512, 256, 1, 1),
              "encoder.rnn.weight_ih_l1_reverse": (1024, 512), "decoder.decoder.tgt_embedding.weight": (98, 512),
              "decoder.decoder.gru.weight_ih_l0": (1536, 1024), "decoder.decoder.fc.weight": (97, 512),
              "tps.target_coordinate_repr": (3200, 23), "stn_head.stn_fc2.weight": (40, 512)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes


def test_moran_layout_is_moran_v2s(moran_net):
    state = moran_net.state_dict()
    assert len(state) == 427 and "grid" not in " ".join(state)      # MORN's sampling grid is not saved
    assert sum(p.numel() for p in moran_net.parameters()) == 20_340_141
    shapes = {"MORN.cnn.1.weight": (64, 1, 3, 3), "MORN.cnn.16.running_var": (1,),
              "ASRN.cnn.block1.0.downsample.0.weight": (32, 32, 3, 3), "ASRN.cnn.block5.2.conv1.0.weight": (512, 512, 1, 1),
              "ASRN.rnn.0.rnn.weight_ih_l0": (1024, 512), "ASRN.attentionL2R.char_embeddings": (38, 256),
              "ASRN.attentionR2L.attention_cell.rnn.weight_ih": (768, 512), "ASRN.attentionR2L.generator.bias": (37,)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes


def test_aster_preprocessing_scales_to_minus_one_one_and_drops_the_mask():
    images = torch.rand(2, 4, 32, 128)
    assert torch.equal(aster.Aster.preprocess(images), images[:, :3] * 2 - 1)
    grey = torch.rand(1, 1, 20, 50)
    assert torch.equal(aster.Aster.preprocess(grey), grey.expand(-1, 3, -1, -1) * 2 - 1)


def test_aster_tps_aligns_corners():
    # source control points = target control points: the TPS is the identity map, so with aligned corners it
    # samples exactly where a bilinear resize with align_corners=True does (not so with newer torch's default)
    net = aster.Aster().eval()
    image = torch.rand(2, 3, 32, 128)
    target = net.tps.target_control_points.expand(2, -1, -1)
    rectified = net.tps(image, target)
    assert rectified.shape == (2, 3, 32, 100)
    expected = F.interpolate(image, (32, 100), mode="bilinear", align_corners=True)
    assert (rectified - expected).abs().max() < 1e-3     # float32 TPS arithmetic
    net.tps.align_corners = False
    assert (net.tps(image, target) - expected).abs().max() > 0.05


def test_aster_fast_decoder_step_equals_the_original_step(aster_net):
    unit = aster_net.decoder.decoder
    features = torch.randn(6, 25, 512)
    previous, state = torch.tensor([97, 0, 5, 94, 96, 40]), torch.randn(6, 512)
    with torch.no_grad():
        logits, new_state = unit(previous, state, features)
        fast_logits, fast_state = unit.step(previous, state, unit.memory(features))
    assert torch.allclose(logits, fast_logits, atol=1e-5) and torch.allclose(new_state, fast_state, atol=1e-5)


def test_aster_text_rules():
    ids = [aster.VOCABULARY.index(ch) for ch in "He!"] + [aster.PADDING, aster.UNKNOWN, aster.VOCABULARY.index("1")]
    assert aster.decode(ids) == "he1"
    assert aster.VOCABULARY[:3] == ["0", "1", "2"] and aster.VOCABULARY[aster.EOS] == "EOS" and aster.NUM_CLASSES == 97


def test_moran_preprocessing_resizes_then_greys():
    images = torch.rand(2, 3, 32, 128)
    resized = F.interpolate(images, (32, 100), mode="bicubic", align_corners=False)
    grey = 0.299 * resized[:, 0:1] + 0.587 * resized[:, 1:2] + 0.114 * resized[:, 2:3]
    assert torch.allclose(moran.Moran.preprocess(images), grey, atol=1e-6)
    assert moran.Moran.preprocess(torch.rand(1, 4, 32, 100)).shape == (1, 1, 32, 100)


def test_morn_with_zero_offsets_is_the_identity_with_aligned_corners():
    morn = moran.MORN().eval()
    with torch.no_grad():
        morn.cnn[16].weight.zero_()       # the last BN outputs its bias: 0 -> no offsets
        morn.cnn[16].bias.zero_()
    image = torch.rand(2, 1, 32, 100)
    with torch.no_grad():
        assert torch.allclose(morn(image), image, atol=1e-5)
        unaligned = F.grid_sample(image, morn.grid.expand(2, -1, -1, -1), align_corners=False)
    assert not torch.allclose(unaligned, image, atol=1e-2)


def test_moran_text_rules():
    assert moran.decode([10, 11, 36, 12, 13]) == "ab"        # cut at the first '$'
    assert moran.decode([1, 2, 3]) == "123"


def test_both_read_a_batch_like_one_image_at_a_time(aster_model, moran_model):
    images = torch.rand(3, 3, 32, 128, generator=torch.Generator().manual_seed(1))
    for model, cfg in (aster_model, moran_model):
        model.train()                                  # recognize reads in eval mode and gives the mode back
        batched = recognize(model, images, cfg)
        assert model.training
        assert batched == [recognize(model, images[i:i + 1], cfg)[0] for i in range(3)]
        assert all(w == w.lower() and w.isalnum() or w == "" for w in batched)
        model.eval()


def test_aster_symbol_ids_end_each_word_with_eos(aster_net, monkeypatch):
    monkeypatch.setattr(aster_net.decoder, "beam_search", lambda features: [[17, 4], [], [1, 2, 3]])
    ids = aster_net.symbol_ids(torch.rand(3, 3, 32, 128))
    eos = aster.EOS
    assert ids.tolist() == [[17, 4, eos], [eos, eos, eos], [1, 2, 3]] and ids.dtype == torch.long
    assert aster.Aster.words(ids) == ["h4", "", "123"]


def test_judges_are_evaluation_only():
    with pytest.raises(ConfigError, match="evaluation-only"):
        build_model(load_config(overrides=["model.recognizer.type=aster"]))   # parts sr, head, recognizer
    model = build_model(load_config(overrides=["model.parts=[recognizer]", "model.recognizer.type=moran"]))
    assert type(model["recognizer"].net).__name__ == "Moran"
