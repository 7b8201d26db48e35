"""Feature-level adapters: SR features [B, 64, 16, 64] -> CRNN sequence [26, B, 512] for every kind, gradients,
the resampling of 64 columns to 26 steps, the cnn adapter feeding the CRNN's own CNN, and errors."""
import pytest
import torch

from tsr.config import ConfigError, load_config
from tsr.models.adapters import ADAPTER_KINDS, CNN_ADAPTER_LAYER, SEQUENCE_NETS, CNNAdapter, build_adapter
from tsr.models.build import build_model
from tsr.models.crnn import CRNN

# By hand, in=64*16=1024, hidden=256, out=512. LSTM per direction: 4*256*(1024+256) + 2*4*256 = 1,312,768.
PARAMETERS = {
    "dense": 1024 * 512 + 512,                                           # 524,800
    "mlp": (1024 * 256 + 256) + (256 * 512 + 512),                       # 393,984
    "sidernn": 2 * 1_312_768 + (512 * 512 + 512),                        # 2,888,192
    "sidernn+mlp": 2 * 1_312_768 + (512 * 256 + 256) + (256 * 512 + 512),  # 2,888,448
}


@pytest.fixture(scope="module")
def recognizer():
    torch.manual_seed(0)
    return CRNN(37, hidden=32).eval()


def test_kinds_are_the_config_choices():
    assert ADAPTER_KINDS == ("dense", "mlp", "sidernn", "sidernn+mlp", "cnn")


@pytest.mark.parametrize("kind", SEQUENCE_NETS)
def test_adapter_shape_gradients_and_decode(kind, recognizer):
    torch.manual_seed(1)
    adapter = build_adapter(kind)
    assert sum(p.numel() for p in adapter.parameters()) == PARAMETERS[kind]
    features = torch.randn(2, 64, 16, 64, requires_grad=True)
    sequence = adapter(features)
    assert sequence.shape == (26, 2, 512)
    logits = recognizer.decode_sequence(sequence)
    assert logits.shape == (26, 2, 37)
    logits.log_softmax(2)[:, :, 3].sum().backward()
    for name, param in adapter.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{kind}: no gradient reaches {name}"
    assert (features.grad.abs().sum(dim=(0, 1, 2)) > 0).all()     # every feature column is read


def test_resampling_averages_neighbouring_columns():
    adapter = build_adapter("dense", in_channels=1, feature_height=1, out_dim=1)
    with torch.no_grad():
        adapter.sequence_net.weight.fill_(1.0)
        adapter.sequence_net.bias.zero_()
    columns = torch.arange(64.0).view(1, 1, 1, 64)                  # column w holds the value w
    steps = adapter(columns)[:, 0, 0]
    assert steps.shape == (26,)
    # step t averages columns floor(64t/26) .. ceil(64(t+1)/26)-1: step 0 = mean(0,1,2), step 25 = mean(61,62,63)
    assert steps[0].item() == pytest.approx(1.0) and steps[-1].item() == pytest.approx(62.0)
    assert steps[1].item() == pytest.approx(3.0)                    # mean(2,3,4)
    assert (steps.diff() > 0).all()


def test_other_sizes_and_wrong_features():
    adapter = build_adapter("sidernn+mlp", in_channels=8, feature_height=4, seq_len=10, out_dim=32, hidden=16)
    assert adapter(torch.randn(2, 8, 4, 40)).shape == (10, 2, 32)
    with pytest.raises(ValueError, match=r"sidernn\+mlp adapter expects features \[B, 8, 4, W\], got \(2, 64, 16, 64\)"):
        adapter(torch.randn(2, 64, 16, 64))


def test_unknown_kind_names_the_valid_kinds():
    with pytest.raises(ValueError, match=r"one of \['dense', 'mlp', 'sidernn', 'sidernn\+mlp'\], got 'lstm'"):
        build_adapter("lstm")


def test_crnn_encode_after_a_layer_continues_encode(recognizer):
    """encode_after(layer, the activation of layer) is encode: the cnn adapter's output is read as an image's."""
    images = torch.rand(2, 3, 32, 128)
    assert recognizer.map_shape(CNN_ADAPTER_LAYER) == (64, 16, 50)     # conv0's 64 channels, 32x100 halved
    grey = recognizer.preprocess(images)
    first = recognizer.cnn.pooling0(recognizer.cnn.relu0(recognizer.cnn.conv0(grey)))
    torch.testing.assert_close(recognizer.encode_after("pooling0", first), recognizer.encode(images))
    with pytest.raises(ValueError, match=r"CRNN has no CNN module 'pool0'; its modules: \['conv0', 'relu0', 'pooling0'"):
        recognizer.map_shape("pool0")
    with pytest.raises(ValueError, match=r"CRNN has no CNN module 'pool0'"):
        recognizer.encode_after("pool0", first)
    # the name a forward hook finds it by (align's target)
    assert recognizer.module_name("pooling0") == "cnn.pooling0"
    assert dict(recognizer.named_modules())["cnn.pooling0"] is recognizer.cnn.pooling0
    with pytest.raises(ValueError, match=r"CRNN has no CNN module 'pool0'"):
        recognizer.module_name("pool0")


def test_cnn_adapter_makes_the_first_pooled_map_and_the_crnn_reads_on(recognizer):
    torch.manual_seed(1)
    adapter = CNNAdapter(in_channels=8, hidden=4, map_shape=recognizer.map_shape(CNN_ADAPTER_LAYER), layer="pooling0")
    # two 3x3 convs by hand: 8*4*9 + 4, 4*64*9 + 64
    assert sum(p.numel() for p in adapter.parameters()) == (8 * 4 * 9 + 4) + (4 * 64 * 9 + 64)
    features = torch.randn(2, 8, 16, 64, requires_grad=True)
    assert adapter.maps(features).shape == (2, 64, 16, 50)          # resized 64 -> 50 columns
    sequence = adapter(features, recognizer)
    assert sequence.shape == (26, 2, 512)
    torch.testing.assert_close(sequence, recognizer.encode_after("pooling0", adapter.maps(features)))
    recognizer.decode_sequence(sequence).log_softmax(2)[:, :, 3].sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in adapter.parameters())
    assert (features.grad.abs().sum(dim=(0, 1, 2)) > 0).all()


def test_cnn_adapter_needs_a_recognizer_with_a_cnn_to_feed():
    base = ["model.parts=[sr,head,recognizer,adapter]", "model.adapter.type=cnn", "model.sr.channels=8",
            "model.sr.blocks=1", "model.recognizer.hidden=8", "model.recognizer.cnn_channels=[4,4,4,4,4,4,8]"]
    model = build_model(load_config(None, base))
    assert model["adapter"].net.map_shape == (4, 16, 50)
    assert model.eval()(torch.rand(1, 4, 16, 64))["logits"].shape == (26, 1, 37)
    with pytest.raises(ConfigError, match="'model.adapter.type' is 'cnn', which feeds the recognizer's own CNN, but "
                                          "model.recognizer.type 'convctc' has none to feed; use crnn"):
        build_model(load_config(None, [*base, "model.recognizer.type=convctc", "model.recognizer.cnn_channels=[4,4,4,8]"]))
