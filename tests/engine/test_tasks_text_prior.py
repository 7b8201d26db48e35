"""StageTasks options for joint training: distill / content tasks, train.task_start, train.rec_inputs and
train.feature_grad_start."""
import pytest
import torch
import torch.nn.functional as F

from tsr.config import ConfigError
from tsr.data.blur import blurred
from tsr.data.synth import synthesize
from tsr.engine.tasks import StageTasks
from trainer_helpers import tiny_stage


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinydata")
    synthesize(root, n_train=8, n_test=2, seed=5, workers=1)
    return root


def batch_of(b=2):
    torch.manual_seed(0)
    return {"lr": torch.rand(b, 4, 16, 64), "hr": torch.rand(b, 4, 32, 128), "label": ["ab", "cd"][:b]}


def test_recognizer_stage_reads_hr_and_bicubic_concatenated_with_labels_repeated(data_root, tmp_path):
    cfg, model = tiny_stage("recognizer", data_root, tmp_path, **{"train.rec_inputs": "[hr,bicubic]"})
    tasks, batch = StageTasks(cfg, model), batch_of()
    images = tasks.inputs(batch)
    assert images.shape == (4, 4, 32, 128)
    assert torch.equal(images[:2], batch["hr"])
    bicubic = F.interpolate(batch["lr"], size=(32, 128), mode="bicubic", align_corners=False)
    assert bicubic.min() < 0 or bicubic.max() > 1                         # overshoot, which the reader does not see
    assert torch.allclose(images[2:], bicubic.clamp(0, 1))                # the standard protocol's bicubic
    assert tasks.words(batch) == ["ab", "cd", "ab", "cd"]
    total, losses = tasks.forward_losses(model, batch, torch.device("cpu"), None, False)
    assert set(losses) == {"rec"} and torch.isfinite(total)
    cfg, model = tiny_stage("recognizer", data_root, tmp_path, **{"train.rec_inputs": "[hr,blurred]"})
    torch.manual_seed(3)
    images = StageTasks(cfg, model).inputs(batch)
    torch.manual_seed(3)
    assert torch.equal(images[2:], blurred(batch["hr"])) and not torch.equal(images[2:], images[:2])
    cfg, model = tiny_stage("recognizer", data_root, tmp_path)                 # the default: HR only, as before
    assert StageTasks(cfg, model).inputs(batch_of()).shape == (2, 4, 32, 128)


def test_rec_inputs_are_checked(data_root, tmp_path):
    cfg, model = tiny_stage("sr", data_root, tmp_path, **{"train.rec_inputs": "[bicubic]"})
    with pytest.raises(ConfigError, match="only the recognizer stage .* reads HR or bicubic"):
        StageTasks(cfg, model)
    cfg, model = tiny_stage("recognizer", data_root, tmp_path, **{"train.rec_inputs": "[hr,lr]"})
    with pytest.raises(ConfigError, match=r"'train.rec_inputs' is \['hr', 'lr'\]; expected a non-empty list"):
        StageTasks(cfg, model)


@pytest.mark.parametrize("stage", ["joint_image", "joint_feature"])
def test_distill_and_content_read_the_sr_image_and_train_the_sr_network(stage, data_root, tmp_path):
    tasks_key = "[sr,rec,distill,content]" if stage == "joint_image" else "[sr,rec,align,distill,content]"
    # content of the final CNN sequence alone (the demo configs add activations: the next test)
    cfg, model = tiny_stage(stage, data_root, tmp_path, **{"train.tasks": tasks_key, "train.content_layers": "[]"})
    with torch.no_grad():   # an untrained tiny CRNN reads every image alike: sharpen its logits so the KL is sizeable
        for name, param in model["recognizer"].net.named_parameters():
            if name.startswith("cnn.conv") and name.endswith("weight"):
                param.mul_(4.0)
        model["recognizer"].net.rnn[1].embedding.weight.mul_(300.0)
    tasks, batch = StageTasks(cfg, model), batch_of()
    batch["hr"] = torch.zeros_like(batch["hr"])          # a black HR image: far from any SR image of the LR noise
    total, losses = tasks.forward_losses(model, batch, torch.device("cpu"), None, False)
    assert {"distill", "content"} <= set(losses) and losses["distill"].item() > 1e-3
    # by hand from the model's recognizer: KL(HR reading || SR reading) and the relative CNN-feature error
    with torch.no_grad():       # in train mode as the loss was (BN of batch statistics, same batch)
        out = model(batch["lr"])
        rec = model["recognizer"].net
        hr_seq, sr_seq = rec.encode(batch["hr"]), rec.encode(out["sr"])
        p_hr = rec.decode_sequence(hr_seq).log_softmax(-1)
        p_sr = rec.decode_sequence(sr_seq).log_softmax(-1)
    kl = (p_hr.exp() * (p_hr - p_sr)).sum(-1).mean()
    content = ((sr_seq - hr_seq) ** 2).sum() / (hr_seq ** 2).sum()
    assert losses["distill"].item() == pytest.approx(kl.item(), rel=1e-4)
    assert losses["content"].item() == pytest.approx(content.item(), rel=1e-4)
    model.zero_grad()
    (losses["distill"] + losses["content"]).backward()
    # the gradient reaches the SR side (the head's last conv: the layers before it start at zero output)
    assert model["head"].net.conv_out.weight.grad.abs().sum() > 0


def test_content_layers_add_each_activation_term_with_the_sequence_weighing_alike(data_root, tmp_path):
    cfg, model = tiny_stage("joint_image", data_root, tmp_path,
                            **{"train.tasks": "[sr,content]", "train.content_layers": "[cnn.relu1,cnn.relu3]"})
    tasks, batch = StageTasks(cfg, model), batch_of()
    _, losses = tasks.forward_losses(model, batch, torch.device("cpu"), None, False)
    # by hand: run the CRNN's CNN module by module, keeping the two activations and the final sequence
    rec = model["recognizer"].net
    with torch.no_grad():
        def activations(images):
            kept, x = {}, rec.preprocess(images)
            for name, module in rec.cnn.named_children():
                x = module(x)
                if name in ("relu1", "relu3"):
                    kept[name] = x.clone()
            return kept, x.squeeze(2).permute(2, 0, 1)
        hr_kept, hr_seq = activations(batch["hr"])
        sr_kept, sr_seq = activations(model(batch["lr"])["sr"])
    relative = lambda a, b: ((a - b) ** 2).sum() / (b ** 2).sum()
    expected = (relative(sr_seq, hr_seq) + relative(sr_kept["relu1"], hr_kept["relu1"])
                + relative(sr_kept["relu3"], hr_kept["relu3"])) / 3
    assert losses["content"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert relative(sr_kept["relu1"], hr_kept["relu1"]) != pytest.approx(relative(sr_seq, hr_seq).item(), rel=1e-2)
    losses["content"].backward()
    assert model["head"].net.conv_out.weight.grad.abs().sum() > 0
    assert not rec.cnn.relu1._forward_hooks                # the taps are gone after the loss


def test_content_layers_must_name_modules_of_the_recognizer(data_root, tmp_path):
    cfg, model = tiny_stage("joint_image", data_root, tmp_path,
                            **{"train.tasks": "[sr,content]", "train.content_layers": "[cnn.relu1,cnn.relu99]"})
    with pytest.raises(ConfigError, match=r"'train.content_layers' names \['cnn.relu99'\], not modules of the "
                                          r"recognizer CRNN; its activations: \['cnn.relu0', 'cnn.relu1'"):
        StageTasks(cfg, model)


def test_text_prior_tasks_need_an_sr_image_and_a_recognizer(data_root, tmp_path):
    cfg, model = tiny_stage("sr", data_root, tmp_path, **{"train.tasks": "[sr,content]"})
    with pytest.raises(ConfigError, match=r"train.tasks has 'content' but model.parts \['sr', 'head'\] lacks"):
        StageTasks(cfg, model)


def test_task_start_delays_a_task(data_root, tmp_path):
    cfg, model = tiny_stage("joint_feature", data_root, tmp_path,
                            **{"train.task_start": "{rec: 2}", "train.task_weights": "{}", "train.weighting": "avg",
                               "train.tasks": "[sr,rec,align]"})
    tasks = StageTasks(cfg, model)
    losses = {"sr": torch.tensor(1.0), "rec": torch.tensor(7.0), "align": torch.tensor(4.0)}
    assert tasks.combine(losses, step=0).item() == pytest.approx((1 + 4) / 2)     # rec waits
    assert tasks.combine(losses, step=1).item() == pytest.approx((1 + 4) / 2)
    assert tasks.combine(losses, step=2).item() == pytest.approx((1 + 7 + 4) / 3)
    assert tasks.combine(losses).item() == pytest.approx(4.0)                        # no step: all count
    for bad, message in (("{ctc: 2}", "has ctc: 2"), ("{rec: -1}", "has rec: -1"),
                         ("{sr: 1, rec: 1, align: 1}", "delays every task")):
        cfg, model = tiny_stage("joint_feature", data_root, tmp_path,
                                **{"train.task_start": bad, "train.task_weights": "{}", "train.tasks": "[sr,rec,align]"})
        with pytest.raises(ConfigError, match=message):
            StageTasks(cfg, model)


def test_feature_grad_start_keeps_adapter_losses_off_the_sr_network_until_its_step(data_root, tmp_path):
    cfg, model = tiny_stage("joint_feature", data_root, tmp_path,
                            **{"train.feature_grad_start": 2, "train.task_weights": "{}", "train.tasks": "[sr,rec,align]"})
    tasks, batch = StageTasks(cfg, model), batch_of()
    sr_grads = []
    for step in (1, 2):
        model.zero_grad(set_to_none=True)
        _, losses = tasks.forward_losses(model, batch, torch.device("cpu"), None, False, step=step)
        (losses["rec"] + losses["align"]).backward()
        sr_grads.append(sum(float(p.grad.abs().sum()) for p in model["sr"].net.parameters() if p.grad is not None))
        assert model["adapter"].net.sequence_net[0].rnn.weight_ih_l0.grad.abs().sum() > 0     # the adapter learns
    assert sr_grads[0] == 0.0 and sr_grads[1] > 0
    cfg, model = tiny_stage("joint_feature", data_root, tmp_path, **{"train.feature_grad_start": -1})
    with pytest.raises(ConfigError, match="'train.feature_grad_start' is -1"):
        StageTasks(cfg, model)


def test_align_of_the_cnn_adapter_compares_its_map_with_the_recognizers_first_pooled_map_of_hr(data_root, tmp_path):
    cfg, model = tiny_stage("joint_feature", data_root, tmp_path,
                            **{"model.adapter.type": "cnn", "train.task_weights": "{}", "train.tasks": "[sr,rec,align]"})
    model.eval()
    tasks, batch = StageTasks(cfg, model), batch_of()
    assert tasks.align_map == "cnn.pooling0"
    _, losses = tasks.forward_losses(model, batch, torch.device("cpu"), None, False, step=0)
    crnn, adapter = model["recognizer"].net, model["adapter"].net
    with torch.no_grad():
        made = adapter.maps(model["sr"](batch["lr"]))
        target = crnn.cnn.pooling0(crnn.cnn.relu0(crnn.cnn.conv0(crnn.preprocess(batch["hr"]))))
    assert made.shape == target.shape
    # squared error relative to the target's energy (tsr.losses.content), by hand
    expected = ((made - target) ** 2).sum() / (target ** 2).sum()
    assert losses["align"].item() == pytest.approx(expected.item(), rel=1e-5)
    losses["align"].backward()                                    # align trains the adapter's convs
    assert model["adapter"].net.maps[0].weight.grad.abs().sum() > 0
