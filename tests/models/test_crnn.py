"""CRNN: crnn.pytorch's exact key/shape layout (strict load of its state dict), differentiable preprocessing,
output shapes for TextZoom-sized inputs, head_only scope, the CTC codec."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tsr.charset import ALPHABETS, CTCCodec
from tsr.models.crnn import CRNN
from tsr.models.wrapper import Part

LAYOUTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "checkpoint-layouts.md"
CODEC = CTCCodec(ALPHABETS["lower"])


@pytest.fixture(scope="module")
def crnn():
    torch.manual_seed(0)
    return CRNN(num_classes=37, hidden=256)


def crnn_pytorch_layout(nclass=37, nh=256):
    """Key -> shape of crnn.pytorch's CRNN(32, 1, nclass, nh), derived from its constructor's arguments
    (ks, nm, batch norm after conv 2, 4, 6; BidirectionalLSTM(512, nh, nh), (nh, nh, nclass))."""
    ks, nm = [3, 3, 3, 3, 3, 3, 2], [64, 128, 256, 256, 512, 512, 512]
    layout, channels = {}, 1
    for i in range(7):
        layout[f"cnn.conv{i}.weight"] = (nm[i], channels, ks[i], ks[i])
        layout[f"cnn.conv{i}.bias"] = (nm[i],)
        if i in (2, 4, 6):
            for name in ("weight", "bias", "running_mean", "running_var"):
                layout[f"cnn.batchnorm{i}.{name}"] = (nm[i],)
            layout[f"cnn.batchnorm{i}.num_batches_tracked"] = ()
        channels = nm[i]
    for j, (n_in, n_out) in enumerate([(512, nh), (nh, nclass)]):
        for suffix in ("", "_reverse"):
            layout[f"rnn.{j}.rnn.weight_ih_l0{suffix}"] = (4 * nh, n_in)
            layout[f"rnn.{j}.rnn.weight_hh_l0{suffix}"] = (4 * nh, nh)
            layout[f"rnn.{j}.rnn.bias_ih_l0{suffix}"] = (4 * nh,)
            layout[f"rnn.{j}.rnn.bias_hh_l0{suffix}"] = (4 * nh,)
        layout[f"rnn.{j}.embedding.weight"] = (n_out, 2 * nh)
        layout[f"rnn.{j}.embedding.bias"] = (n_out,)
    return layout


def reference_table(section: str):
    """(parameter count, [(key, shape)]) of one `## <section>:` table in checkpoint-layouts.md."""
    text = LAYOUTS.read_text()
    match = re.search(rf"^## {re.escape(section)}: ([\d,]+) parameters.*?\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {section}:' section in {LAYOUTS}"
    rows = re.findall(r"^\| (\S+) \| \(([\d, ]*)\) \| \w+ \|$", match.group(2), re.M)
    return int(match.group(1).replace(",", "")), [(k, tuple(int(d) for d in s.split(",") if d.strip())) for k, s in rows]


def test_parameter_count_and_layout_match_crnn_pytorch(crnn):
    state = crnn.state_dict()
    assert sum(p.numel() for p in crnn.parameters()) == 8_331_301
    assert {k: tuple(v.shape) for k, v in state.items()} == crnn_pytorch_layout()
    assert state["cnn.batchnorm6.num_batches_tracked"].dtype == torch.int64


@pytest.mark.skipif(not LAYOUTS.is_file(), reason=f"reference layouts not found at {LAYOUTS}")
def test_layout_equals_reference_table(crnn):
    count, rows = reference_table("crnn")
    assert count == 8_331_301 and len(rows) == 49
    assert [(k, tuple(v.shape)) for k, v in crnn.state_dict().items()] == rows


def test_crnn_pytorch_state_dict_loads_strictly(tmp_path):
    torch.manual_seed(1)
    public = {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(shape))
              for k, shape in crnn_pytorch_layout().items()}
    torch.save(public, tmp_path / "crnn.pth")
    loaded = torch.load(tmp_path / "crnn.pth", weights_only=True)
    model = CRNN(37, 256)
    result = model.load_state_dict(loaded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.rnn[1].embedding.weight, public["rnn.1.embedding.weight"])
    assert torch.equal(model.cnn.batchnorm4.running_var, public["cnn.batchnorm4.running_var"])


@pytest.mark.parametrize("shape", [(2, 1, 32, 100), (2, 3, 32, 128), (2, 4, 32, 128), (2, 3, 16, 64)])
def test_output_shape(crnn, shape):
    logits = crnn.eval()(torch.rand(shape))
    assert logits.shape == (26, 2, 37)
    assert crnn.sequence_length == 26


def test_encode_and_decode_sequence_shapes(crnn):
    sequence = crnn.encode(torch.rand(2, 3, 32, 128))
    assert sequence.shape == (26, 2, 512)
    assert crnn.decode_sequence(sequence).shape == (26, 2, 37)
    with pytest.raises(ValueError, match=r"expects \[T, B, 512\], got \(26, 2, 256\)"):
        crnn.decode_sequence(torch.zeros(26, 2, 256))


def test_preprocess_grey_weights_and_resize(crnn):
    rgb = torch.empty(1, 3, 32, 100)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 0.2, 0.5, 0.9
    grey = crnn.preprocess(rgb)
    assert grey.shape == (1, 1, 32, 100)
    assert torch.allclose(grey, torch.full_like(grey, 0.299 * 0.2 + 0.587 * 0.5 + 0.114 * 0.9))  # 0.4559

    torch.manual_seed(2)
    image = torch.rand(2, 4, 32, 128)
    other_mask = torch.cat([image[:, :3], 1 - image[:, 3:]], dim=1)
    out = crnn.preprocess(image)
    assert out.shape == (2, 1, 32, 100)
    assert torch.equal(out, crnn.preprocess(other_mask))          # the mask channel is ignored
    # TextZoom resizes first, then converts to grey: the same numbers (both steps are linear)
    textzoom = F.interpolate(image[:, :3], size=(32, 100), mode="bicubic", align_corners=False)
    textzoom = 0.299 * textzoom[:, 0:1] + 0.587 * textzoom[:, 1:2] + 0.114 * textzoom[:, 2:3]
    assert torch.allclose(out, textzoom, atol=1e-6)
    with pytest.raises(ValueError, match=r"C in \(1, 3, 4\), got \(2, 2, 32, 100\)"):
        crnn.preprocess(torch.zeros(2, 2, 32, 100))


def test_gradients_flow_from_logits_to_image():
    torch.manual_seed(3)
    model = CRNN(37, hidden=32).train()
    image = torch.rand(2, 4, 32, 128, requires_grad=True)
    model(image).log_softmax(2)[:, :, 5].sum().backward()
    grad = image.grad
    assert grad[:, :3].abs().sum() > 0 and torch.isfinite(grad).all()
    assert (grad[:, :3].abs().sum(dim=(0, 1, 2)) > 0).all()       # every column of the image reaches the logits
    assert torch.equal(grad[:, 3], torch.zeros_like(grad[:, 3]))  # the mask is not read
    # grey weights: the gradient of each colour is its weight times the grey gradient
    assert torch.allclose(grad[:, 0] / 0.299, grad[:, 1] / 0.587, atol=1e-6)


def test_decode_hand_made_logits_hello():
    path = "hh-e-ll-l-oo---"                        # repeats merge, a blank separates the two l's
    classes = [0 if ch == "-" else CODEC.index[ch] for ch in path]
    logits = torch.full((len(path), 1, CODEC.num_classes), -5.0)
    logits[torch.arange(len(path)), 0, classes] = 5.0
    assert CODEC.num_classes == 37
    assert CODEC.decode_greedy(logits) == ["hello"]


def _string_label_converter_rule(path: list[int], alphabet: str) -> str:
    """crnn.pytorch's strLabelConverter.decode(raw=False), the one TextZoom reads CRNN with, as its rule says:
    position i gives alphabet[t[i] - 1] when t[i] != 0 and not (i > 0 and t[i - 1] == t[i])."""
    return "".join(alphabet[t - 1] for i, t in enumerate(path) if t != 0 and not (i > 0 and path[i - 1] == t))


def test_greedy_decoding_collapses_like_crnn_pytorch():
    hand_made = {"-aa-a-bb--c": "aabc", "aa": "a", "a-a": "aa", "----": "", "z": "z", "-0-9-9": "099"}
    paths = [[0 if ch == "-" else CODEC.index[ch] for ch in p] for p in hand_made]
    g = torch.Generator().manual_seed(0)
    paths += torch.randint(0, 5, (200, 26), generator=g).tolist()   # few classes: many repeats and blanks
    width = max(len(p) for p in paths)
    logits = torch.zeros(width, len(paths), CODEC.num_classes)
    for b, path in enumerate(paths):
        padded = path + [0] * (width - len(path))                    # trailing blanks add nothing
        logits[torch.arange(width), b, padded] = 1.0
    words = CODEC.decode_greedy(logits)
    assert words[:len(hand_made)] == list(hand_made.values())
    assert words == [_string_label_converter_rule(p, CODEC.alphabet) for p in paths]


def test_head_only_scope_trains_only_the_classifier():
    model = CRNN(37, 256)
    for path in CRNN.TRAINABLE_SCOPES["head_only"]:
        assert sum(p.numel() for p in model.get_submodule(path).parameters()) == 37 * 512 + 37
    part = Part("recognizer", model, trainable="head_only")
    assert part.num_parameters(trainable_only=True) == 18_981
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"rnn.1.embedding.weight",
                                                                           "rnn.1.embedding.bias"}


def test_narrow_cnn_and_bad_arguments():
    narrow = CRNN(37, hidden=16, cnn_channels=(8, 16, 32, 32, 64, 64, 64))
    assert narrow.sequence_dim == 64
    assert narrow.encode(torch.rand(2, 1, 32, 100)).shape == (26, 2, 64)
    with pytest.raises(ValueError, match=r"input_size must be \(32, width >= 8\), got \(64, 100\)"):
        CRNN(input_size=(64, 100))
    with pytest.raises(ValueError, match="cnn_channels needs 7 values"):
        CRNN(cnn_channels=(64, 128))
    with pytest.raises(ValueError, match="in_channels must be 1 .* or 3"):
        CRNN(in_channels=4)
