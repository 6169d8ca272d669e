"""The speedruns' levers as cifar parameters: each switch does what it says, its default keeps the
recipe as it was, and every one of them resumes bit-identically from a checkpoint (CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from app.errors import CheckpointInvalid
from app.experiments import cifar
from app.experiments.base import Checkpoint, RunContext, RunStatus
from app.experiments.cifar_data import alternating_flips, batch_flip_where
from app.experiments.cifar_models import AffineFreeBatchNorm, AirbenchNet, make_net
from app.experiments.params import CifarParams
from tests.experiments.test_resume import assert_resume_is_bit_identical, pause, resume

pytestmark = pytest.mark.usefixtures("one_thread")

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def train(data_dir, seed: int = 0, **params):
    points: list[dict] = []
    outcome = cifar.run(CifarParams(**params), RunContext(seed=seed, emit=points.append, data_dir=data_dir))
    assert outcome.status == RunStatus.SUCCEEDED, outcome.error
    return outcome, points


def test_test_time_augmentation_is_the_mean_of_the_outputs_for_the_image_and_its_mirror():
    torch.manual_seed(0)
    model = make_net("resnet", 10, MEAN, STD).eval()
    x = images()
    with torch.no_grad():
        expected = (model(x) + model(x.flip(-1))) / 2
        assert torch.equal(cifar.test_time_outputs(model, x, "flip"), expected)
        assert torch.equal(cifar.test_time_outputs(model, x, "none"), model(x))
        assert not torch.allclose(expected, model(x))  # the mirror image does change the outputs
        # The evaluation predicts from the same mean.
        labels = torch.arange(6)
        evaluation = cifar.evaluate(model, x, labels, torch.nn.CrossEntropyLoss(), RunContext(seed=0), tta="flip")
    assert torch.equal(evaluation.predictions, expected.argmax(dim=1))
    assert evaluation.loss == pytest.approx(F.cross_entropy(expected, labels).item(), rel=1e-6)


def shifted(x: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """``x`` moved ``down`` and ``right`` pixels (negative: up, left), each missing row and column
    taken from the image's mirror about its edge pixel (as reflect padding does), pixel by pixel."""
    size = x.shape[-1]

    def source(i: int) -> int:
        i = abs(i)  # -1 -> 1
        return 2 * (size - 1) - i if i >= size else i  # size -> size - 2

    out = torch.empty_like(x)
    for i in range(size):
        for j in range(size):
            out[..., i, j] = x[..., source(i - down), source(j - right)]
    return out


def test_flip_translate_averages_airbenchs_six_views():
    """airbench's level-2 test-time augmentation: half the flip mean of the image, half the flip
    means of the image shifted one pixel down-right and one up-left."""
    torch.manual_seed(0)
    model = make_net("airbench", 10, MEAN, STD, width=16).eval()
    x = images()

    def flip_mean(v):
        return (model(v) + model(v.flip(-1))) / 2

    with torch.no_grad():
        six = flip_mean(x) / 2 + (flip_mean(shifted(x, 1, 1)) + flip_mean(shifted(x, -1, -1))) / 4
        outputs = cifar.test_time_outputs(model, x, "flip_translate")
        assert torch.allclose(outputs, six, atol=1e-6)
        assert not torch.allclose(outputs, flip_mean(x), atol=1e-4)  # the shifted views do count
        labels = torch.arange(6)
        loss_fn = torch.nn.CrossEntropyLoss()
        evaluation = cifar.evaluate(model, x, labels, loss_fn, RunContext(seed=0), tta="flip_translate")
    assert torch.equal(evaluation.predictions, outputs.argmax(dim=1))
    assert evaluation.loss == pytest.approx(F.cross_entropy(outputs, labels).item(), rel=1e-6)


@pytest.mark.parametrize("model, on", [("fc", False), ("conv", False), ("resnet", True), ("airbench", True)])
def test_auto_switches_keep_each_nets_old_behaviour(model, on):
    params = CifarParams(model=model)
    assert params.tta_views() == ("flip" if on else "none") and params.uses_channels_last() is on
    for views in ("none", "flip", "flip_translate"):  # asked for, the same on every net
        assert CifarParams(model=model, tta=views).tta_views() == views
    net = make_net(model, 10, MEAN, STD, channels_last=params.uses_channels_last())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) is on for c in convs if c.kernel_size != (1, 1))


def test_the_loss_is_torchs_cross_entropy_with_the_label_smoothing_asked_for(tiny_folder):
    """The epoch's test loss, recomputed from the trained weights with F.cross_entropy."""
    test = cifar.load_cifar10(tiny_folder)
    for smoothing, tta in [(0.3, "none"), (0.3, "flip"), (0.0, "flip"), (0.0, "flip_translate")]:
        outcome, _points = train(
            tiny_folder, model="conv", epochs=1, batch_size=16, label_smoothing=smoothing, tta=tta
        )
        net = make_net("conv", 10, test.mean, test.std)
        net.load_state_dict(outcome.state_dict)
        with torch.no_grad():
            outputs = cifar.test_time_outputs(net.eval(), test.test_images, tta)
        expected = F.cross_entropy(outputs, test.test_labels, label_smoothing=smoothing).item()
        plain = F.cross_entropy(outputs, test.test_labels).item()
        assert outcome.result["val_loss"] == pytest.approx(expected, rel=1e-5)
        if smoothing:
            assert abs(expected - plain) > 1e-3  # smoothing does change the loss
        accuracy = (outputs.argmax(dim=1) == test.test_labels).float().mean().item()
        assert outcome.result["val_acc"] == pytest.approx(accuracy)


def test_alternating_flips_mirror_each_image_every_other_epoch():
    first = torch.rand(1000, generator=torch.Generator().manual_seed(1)) < 0.5
    assert torch.equal(alternating_flips(first, 1), first) and torch.equal(alternating_flips(first, 3), first)
    assert torch.equal(alternating_flips(first, 2), ~first) and torch.equal(alternating_flips(first, 4), ~first)
    x = images(4)
    flipped = batch_flip_where(x, torch.tensor([True, False, False, True]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    assert torch.equal(flipped[3], x[3].flip(-1)) and torch.equal(flipped[2], x[2])


def test_alternating_flips_train_another_run_with_the_same_data_order(tiny_folder):
    _random_flips, random_points = train(tiny_folder, model="conv", epochs=2, batch_size=16)
    _alternate, alternate_points = train(tiny_folder, model="conv", epochs=2, batch_size=16, flip="alternate")
    _again, again_points = train(tiny_folder, model="conv", epochs=2, batch_size=16, flip="alternate")
    assert alternate_points == again_points  # seeded
    assert alternate_points != random_points


def test_lookahead_pulls_the_weights_to_their_running_average():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    lookahead = cifar.Lookahead(net)
    before = {k: v.clone() for k, v in lookahead.average.items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    moved = {k: v.clone() for k, v in net.state_dict().items()}
    lookahead.pull(net, 0.75)
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point():
            expected = before[name] + 0.25 * (moved[name] - before[name])
            assert torch.allclose(tensor, expected) and torch.equal(lookahead.average[name], tensor), name
        else:
            assert torch.equal(tensor, moved[name]), name  # num_batches_tracked is a count, not averaged
    assert cifar.Lookahead.decay(0, 100) == 0 and cifar.Lookahead.decay(100, 100) == pytest.approx(0.95**5)
    assert cifar.Lookahead.decay(50, 100) == pytest.approx(0.95**5 / 8)


def test_lookahead_ends_the_run_on_the_average(tiny_folder):
    plain, _ = train(tiny_folder, model="conv", epochs=2, batch_size=16)
    averaged, _ = train(tiny_folder, model="conv", epochs=2, batch_size=16, lookahead=True)
    assert any(not torch.equal(plain.state_dict[k], averaged.state_dict[k]) for k in plain.state_dict)
    # The checkpoint at the last step holds the average the weights were set to.
    cp, _, _ = pause("cifar", CifarParams(model="conv", epochs=2, batch_size=16, lookahead=True), 20, tiny_folder)
    for name, tensor in cp.state["model"].items():
        assert torch.equal(cp.state["lookahead"][name], tensor), name


def test_airbench_net_has_airbenchs_layers():
    torch.manual_seed(0)
    net = make_net("airbench", 10, MEAN, STD, width=32)
    assert isinstance(net, AirbenchNet)
    assert [g.conv1.out_channels for g in net.groups] == [32, 128, 128]
    assert net.whiten.out_channels == 24 and not net.whiten.weight.requires_grad
    norms = [m for m in net.modules() if isinstance(m, AffineFreeBatchNorm)]
    assert len(norms) == 6 and all(not n.weight.requires_grad and n.bias.requires_grad for n in norms)
    # Partial identity initialisation: the first conv's first 24 filters pass their input channel on.
    centre = net.groups[0].conv1.weight[:24, :, 1, 1]
    assert torch.equal(centre, torch.eye(24)) and net.groups[0].conv1.weight[:24].abs().sum() == 24
    assert net(images()).shape == (6, 10)
    assert make_net("airbench", 10, MEAN, STD).groups[2].conv2.out_channels == 256  # airbench94's width


def test_whiten_off_trains_the_first_layer_from_a_random_start(tiny_folder):
    whitened, _ = train(tiny_folder, model="resnet", epochs=1, batch_size=16)
    plain, _ = train(tiny_folder, model="resnet", epochs=1, batch_size=16, whiten=False)
    # Whitened and frozen: 8 filters and their negatives. Trained from a random start: no such pairs.
    w = whitened.state_dict["whiten.weight"]
    assert torch.equal(w[8:], -w[:8])
    p = plain.state_dict["whiten.weight"]
    assert not torch.allclose(p[8:], -p[:8], atol=1e-3)


def test_channels_last_gives_the_same_numbers_up_to_rounding():
    torch.manual_seed(0)
    nchw = make_net("conv", 10, MEAN, STD, channels_last=False).eval()
    nhwc = make_net("conv", 10, MEAN, STD, channels_last=True).eval()
    nhwc.load_state_dict(nchw.state_dict())
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), nchw(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # inductor compiles C++ kernels: about a minute on a busy 2-core machine
def test_a_compiled_net_gives_the_eager_nets_outputs_within_tolerance():
    torch.manual_seed(0)
    net = make_net("conv", 10, MEAN, STD)
    compiled = torch.compile(net)
    x = images(8)
    torch.testing.assert_close(compiled(x), net(x), rtol=1e-5, atol=1e-5)
    # And the gradients of a training step.
    compiled(x).square().mean().backward()
    compiled_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net(x).square().mean().backward()
    for got, expected in zip(compiled_grads, [p.grad for p in net.parameters()]):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_mixed_precision_trains_under_bfloat16_and_keeps_float32_weights(tiny_folder):
    outcome, points = train(tiny_folder, model="conv", epochs=1, batch_size=16, mixed_precision=True)
    _plain, plain_points = train(tiny_folder, model="conv", epochs=1, batch_size=16)
    assert all(t.dtype in (torch.float32, torch.int64) for t in outcome.state_dict.values())
    assert points[0]["train_loss"] != plain_points[0]["train_loss"]  # bfloat16 rounds the forward pass
    assert points[0]["train_loss"] == pytest.approx(plain_points[0]["train_loss"], rel=2e-2)


def test_bias_lr_scale_speeds_up_the_norms_biases_at_the_same_decay_per_step():
    from app.experiments.cifar import apply_live, make_optimizer
    from app.experiments.cifar_models import make_net

    params = CifarParams(model="airbench", width=8, lr=0.5, weight_decay=2e-3, momentum=0.85, bias_lr_scale=64)
    model = make_net("airbench", 10, (0.5,) * 3, (0.25,) * 3, width=8)
    optimizer, schedule = make_optimizer(params, model, total_steps=100)
    others, biases = optimizer.param_groups
    norm_biases = [m.bias for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(biases["params"]) == len(norm_biases) == 6 and all(
        any(p is b for b in norm_biases) for p in biases["params"]
    )
    assert not any(p is b for p in others["params"] for b in norm_biases)
    assert optimizer.defaults["momentum"] == 0.85 and optimizer.defaults["nesterov"]
    # The one-cycle schedule starts both groups at a tenth of their peaks; decay per step = lr x wd.
    assert others["lr"] == pytest.approx(0.05) and biases["lr"] == pytest.approx(0.05 * 64)
    assert others["lr"] * others["weight_decay"] == pytest.approx(biases["lr"] * biases["weight_decay"])
    # A live change of lr and weight decay keeps the ratio.
    apply_live(params.model_copy(update={"lr": 0.1, "weight_decay": 1e-3}), optimizer, schedule, torch.nn.CrossEntropyLoss(), 10)
    assert schedule.base_lrs == [0.1, pytest.approx(6.4)]
    assert biases["weight_decay"] == pytest.approx(1e-3 / 64)


def test_width_is_for_airbench_only():
    with pytest.raises(ValidationError, match="width=32 applies to model='airbench' only"):
        CifarParams(model="resnet", width=32)
    assert CifarParams(model="airbench", width=32).width == 32


def test_the_new_parameters_are_in_the_kinds_schema_with_descriptions_and_defaults():
    from app.experiments.registry import get_experiment

    spec = get_experiment("cifar")
    schema = spec.params_model.model_json_schema()["properties"]
    defaults = spec.defaults()
    expected = {
        "width": None, "whiten": True, "flip": "random", "lookahead": False, "tta": "auto",
        "channels_last": "auto", "compile": False, "mixed_precision": False, "momentum": 0.9, "bias_lr_scale": 1.0,
    }
    for name, default in expected.items():
        assert defaults[name] == default, name
        assert len(schema[name]["description"]) > 40, name
    assert "airbench" in schema["model"]["enum"]
    assert schema["tta"]["enum"] == ["auto", "flip", "flip_translate", "none"]  # a select in the form, not a tri-state checkbox


# ----------------------------------------------------------------------------------------------
# Checkpoints: every switch resumes bit-identically; older checkpoints still resume

SWITCHED_RUNS = {
    # 160 tiny images in batches of 16: 10 steps an epoch. Lookahead pulls at steps 5, 10, ...
    "airbench-lookahead-alternate": {
        "model": "airbench", "width": 8, "epochs": 2, "batch_size": 16, "lookahead": True, "flip": "alternate"
    },
    "resnet-unwhitened-plain": {
        "model": "resnet", "epochs": 2, "batch_size": 16, "whiten": False, "tta": "none", "channels_last": "off"
    },
    "conv-bfloat16-tta-nhwc": {"model": "conv", "epochs": 2, "batch_size": 16, "mixed_precision": True, "tta": "flip",
                                   "channels_last": "on"},
    "airbench-bias-rate-momentum": {
        "model": "airbench", "width": 8, "epochs": 2, "batch_size": 16, "momentum": 0.85, "bias_lr_scale": 64
    },
}


@pytest.mark.parametrize("run, at", [(run, at) for run in SWITCHED_RUNS for at in (7, 10, 13)])
def test_every_switch_resumes_bit_identically(tiny_folder, run, at):
    cp = assert_resume_is_bit_identical("cifar", CifarParams(**SWITCHED_RUNS[run]), at, tiny_folder)
    assert (cp.state["lookahead"] is not None) is SWITCHED_RUNS[run].get("lookahead", False)


@pytest.mark.slow
def test_a_compiled_run_resumes_bit_identically(tiny_folder):
    params = CifarParams(model="conv", epochs=1, batch_size=16, compile=True)
    assert_resume_is_bit_identical("cifar", params, 6, tiny_folder)


def test_a_checkpoint_from_before_the_switches_resumes_with_their_defaults(tiny_folder):
    params = CifarParams(model="conv", epochs=2, batch_size=16)
    _full, full_points = train(tiny_folder, seed=11, **params.model_dump())  # test_resume's seed
    cp, before, _ = pause("cifar", params, 6, tiny_folder)
    new = ("width", "whiten", "flip", "lookahead", "tta", "channels_last", "compile", "mixed_precision", "momentum",
           "bias_lr_scale")
    old_params = {k: v for k, v in cp.params.items() if k not in new}
    old_state = {k: v for k, v in cp.state.items() if k != "lookahead"}
    old = Checkpoint(cp.kind, cp.step, cp.epoch, cp.epoch_end, old_params, old_state)
    outcome, after = resume("cifar", old, data_dir=tiny_folder)
    assert outcome.status == RunStatus.SUCCEEDED and before + after == full_points
    # A switch that differs from the checkpoint's (here: its default) is still refused.
    ctx = RunContext(seed=11, data_dir=tiny_folder, resume=old)
    with pytest.raises(CheckpointInvalid, match="lookahead=True .the checkpoint has False"):
        cifar.run(params.model_copy(update={"lookahead": True}), ctx)
