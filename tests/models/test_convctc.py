"""The ConvCTC reader: another recognizer family than CRNN, a judge independent of the training
recognizer; registered as model.recognizer.type convctc."""
import pytest
import torch

from tsr.charset import ALPHABETS, CTCCodec
from tsr.config import ConfigError
from tsr.data.synth import synthesize
from tsr.models.convctc import ConvCTC
from tsr.models.wrapper import Part
from trainer_helpers import tiny_stage


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinydata")
    synthesize(root, n_train=8, n_test=2, seed=5, workers=1)
    return root


def test_convctc_shapes_reading_and_scopes():
    torch.manual_seed(0)
    net = ConvCTC(num_classes=37, hidden=16, cnn_channels=[8, 8, 16, 16, 16])
    images = torch.rand(3, 4, 32, 128, requires_grad=True)
    assert net.encode(images).shape == (32, 3, 16)                  # T = 128 / 4, the last block's channels
    logits = net(images)
    assert logits.shape == (32, 3, 37)
    logits.sum().backward()
    assert images.grad.abs().sum() > 0                              # differentiable preprocessing
    assert net(torch.rand(2, 1, 16, 64)).shape == (32, 2, 37)       # any size is resized to 32 x 128
    net.eval()
    words = CTCCodec(ALPHABETS["lower"]).decode_greedy(net(torch.rand(2, 3, 32, 128)))
    net.train()
    assert len(words) == 2 and all(isinstance(w, str) for w in words) and net.training
    part = Part("recognizer", net, trainable="head_only")
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
    with pytest.raises(ValueError, match="at least 2 blocks"):
        ConvCTC(cnn_channels=[8])
    assert part.trainable == "head_only"


def test_convctc_is_a_recognizer_type_of_the_config(data_root, tmp_path):
    cfg, model = tiny_stage("recognizer", data_root, tmp_path, **{"model.recognizer.type": "convctc",
                                                             "model.recognizer.cnn_channels": "[4,8,8,8,8]"})
    assert isinstance(model["recognizer"].net, ConvCTC)
    with pytest.raises(ConfigError, match=r"must be one of \[.*'convctc'"):
        tiny_stage("recognizer", data_root, tmp_path, **{"model.recognizer.type": "resnet"})
