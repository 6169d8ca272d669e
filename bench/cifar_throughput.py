"""Training images per second of three CIFAR-10 input pipelines, same net, same batch size.

    (a) playground  app.experiments.cifar.run: uint8 images in one tensor, randperm batches, the
                    model normalises whole batches; plus what a run does per step (metric point,
                    cancellation check, loss.item())
    (b) plain       a bare PyTorch loop over pre-normalised float tensors: the floor of overhead
    (c) book        the book's chapter-7 pipeline: torchvision's CIFAR10 dataset with per-image
                    transforms.ToTensor() + transforms.Normalize() through a DataLoader(shuffle=True)

Targets: a/b >= 0.95 (the pipeline costs under 5%) and a/c >= 2.0, for conv and resnet. All three
train one epoch of the same N images from a fresh net (SGD, Nesterov momentum), without
augmentation, so they do the same arithmetic; (a) is also shown with flips and crops on. The rounds
are interleaved (a, b, c, a, b, c, ...), so a load that comes and goes on a shared machine hits all
three alike, and the fastest round of each counts (as timeit takes the best time: slower rounds
measure the machine's other work, not the pipeline); the medians are printed too.

    .venv/bin/python bench/cifar_throughput.py [--images 6400] [--rounds 5] [--threads 2]

Reads the real images from ../shared/data/cifar10-jpeg (extracted once to var/test-data, as the
tests do) or from --data-dir.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import statistics
import sys
import tarfile
import time
from pathlib import Path

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from app.experiments import cifar  # noqa: E402
from app.experiments.base import RunContext  # noqa: E402
from app.experiments.cifar_data import (  # noqa: E402
    batch_crop,
    batch_flip_lr,
    batches_per_epoch,
    load_cifar10,
    sample_per_class,
    shuffled_batches,
)
from app.experiments.cifar_models import make_net  # noqa: E402
from app.experiments.params import CifarParams  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
BATCH_SIZE = 64  # the book's, and the playground's default
LR = 0.01  # any small rate: the arithmetic per step does not depend on it


def real_data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    target = REPO_ROOT / "var" / "test-data"
    if not (target / "cifar10" / "test").is_dir():
        print(f"extracting {SHARED_DATA}/*.tar into {target}/cifar10 (once)", file=sys.stderr)
        for name in ("train.tar", "test.tar"):
            with tarfile.open(SHARED_DATA / name) as archive:
                archive.extractall(target / "cifar10", filter="data")
    return target


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)


# ----------------------------------------------------------------------------------------------
# (a) the playground


def playground(model_name: str, n_images: int, data_dir: Path, augment: bool, seed: int) -> float:
    params = CifarParams(
        model=model_name,
        epochs=1,
        batch_size=BATCH_SIZE,
        lr=LR,
        optimizer="nesterov_onecycle",
        augment=augment,
        limit_train=n_images,
    )
    # A stand-in for the job service's callbacks: keep the points; "cancel" at the first
    # should_stop() after the last training batch, i.e. skip the evaluation over the test split,
    # which this benchmark does not measure (train_seconds covers the training loop only).
    points: list[dict] = []
    asked = []
    steps = batches_per_epoch(n_images, BATCH_SIZE)

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > steps

    ctx = RunContext(seed=seed, emit=points.append, should_stop=should_stop, data_dir=data_dir)
    outcome = cifar.run(params, ctx)
    assert outcome.result["steps_run"] == steps, outcome.result
    return outcome.result["images_per_second"]


# ----------------------------------------------------------------------------------------------
# (b) a plain loop over pre-normalised tensors


def plain(model_name: str, images: torch.Tensor, labels: torch.Tensor, seed: int) -> float:
    torch.manual_seed(seed)
    model = make_net(model_name, 10, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    model.normalize = nn.Identity()  # the inputs are normalised already
    optimizer, loss_fn = sgd(model), nn.CrossEntropyLoss()
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    model.train()
    started = time.perf_counter()
    for batch in order.split(BATCH_SIZE):
        loss = loss_fn(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return images.shape[0] / (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------
# (c) the book: torchvision's CIFAR10, ToTensor + Normalize per image, DataLoader


def write_pickle_release(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> list[list[str]]:
    """The training images as torchvision's ``data_batch_1`` (same format as the real release)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data_batch_1"
    entry = {"data": images.flatten(1).numpy(), "labels": labels.tolist(), "batch_label": "bench"}
    path.write_bytes(pickle.dumps(entry))
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": classes}))
    return [["data_batch_1", hashlib.md5(path.read_bytes()).hexdigest()]]


def book_loader(root: Path, n_images: int, mean, std) -> torch.utils.data.DataLoader:
    from torchvision import datasets, transforms

    folder = root / "cifar-10-batches-py"

    class BenchCIFAR10(datasets.CIFAR10):
        # The files written above; torchvision's md5 check runs on them as on the real ones.
        train_list = json.loads((root / "train_list.json").read_text())
        test_list: list = []
        meta = {
            "filename": "batches.meta",
            "key": "label_names",
            "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest(),
        }

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    dataset = BenchCIFAR10(root, train=True, download=False, transform=transform)
    assert len(dataset) == n_images
    # The book's: cifar2 = ...; train_loader = DataLoader(cifar2, batch_size=64, shuffle=True)
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)


def book(model_name: str, root: Path, n_images: int, mean, std, seed: int) -> float:
    torch.manual_seed(seed)
    loader = book_loader(root, n_images, mean, std)
    model = make_net(model_name, 10, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    model.normalize = nn.Identity()
    optimizer, loss_fn = sgd(model), nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for imgs, batch_labels in loader:
        loss = loss_fn(model(imgs), batch_labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return n_images / (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------
# The input pipelines alone (no net): why a/c is bounded by the net's own cost


def pipeline_alone(kind: str, images_u8, labels, normalised, pickle_root: Path, mean, std) -> float:
    """Images per second that a pipeline delivers as normalised float batches, with no training."""
    from app.experiments.cifar_models import Normalize

    n = images_u8.shape[0]
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    if kind == "a":
        normalize = Normalize(mean, std)
        for batch in shuffled_batches(n, BATCH_SIZE, generator):
            normalize(images_u8[batch])
    elif kind == "a+aug":
        normalize = Normalize(mean, std)
        for batch in shuffled_batches(n, BATCH_SIZE, generator):
            normalize(batch_crop(batch_flip_lr(images_u8[batch], generator), cifar.CROP_PADDING, generator))
    elif kind == "b":
        for batch in torch.randperm(n, generator=generator).split(BATCH_SIZE):
            normalised[batch]
    else:
        for _ in book_loader(pickle_root, n, mean, std):
            pass
    return n / (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6400, help="training images per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--models", nargs="+", default=["conv", "resnet"])
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data_dir = real_data_dir(args.data_dir)
    data = load_cifar10(data_dir)
    # As many images for all three (this is the draw (a) makes for limit_train with seed 0).
    index = sample_per_class(data.train_labels, args.images, torch.Generator().manual_seed(0))
    images_u8, labels = data.train_images[index], data.train_labels[index]
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    normalised = (images_u8.float() / 255 - mean) / std
    pickle_root = REPO_ROOT / "var" / "bench" / "cifar-pickle"
    train_list = write_pickle_release(images_u8, labels, pickle_root / "cifar-10-batches-py")
    (pickle_root / "train_list.json").write_text(json.dumps(train_list))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images, batch {BATCH_SIZE}")
    rows = []
    for model_name in args.models:
        runs: dict[str, list[float]] = {"a": [], "a+aug": [], "b": [], "c": []}
        # Warm-up, not counted: the first convolutions of a process build oneDNN's kernels.
        plain(model_name, normalised[: 4 * BATCH_SIZE], labels[: 4 * BATCH_SIZE], seed=0)
        for r in range(args.rounds):
            runs["a"].append(playground(model_name, args.images, data_dir, augment=False, seed=r))
            runs["b"].append(plain(model_name, normalised, labels, seed=r))
            runs["c"].append(book(model_name, pickle_root, args.images, data.mean, data.std, seed=r))
            runs["a+aug"].append(playground(model_name, args.images, data_dir, augment=True, seed=r))
            latest = ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in runs.items())
            print(f"  {model_name} round {r + 1}: {latest}", flush=True)
        best = {k: max(v) for k, v in runs.items()}
        rows.append((model_name, best, {k: statistics.median(v) for k, v in runs.items()}))

    alone = {
        kind: max(
            pipeline_alone(kind, images_u8, labels, normalised, pickle_root, data.mean, data.std)
            for _ in range(args.rounds)
        )
        for kind in ("a", "a+aug", "b", "c")
    }

    print()
    print("| model | (a) playground | (a) with flips+crops | (b) plain loop | (c) book's DataLoader | a/b | a/c |")
    print("|---|---|---|---|---|---|---|")
    for model_name, best, med in rows:
        for which, figures in (("fastest", best), ("median", med)):
            print(
                f"| {model_name} ({which} round) | {figures['a']:.0f} img/s | {figures['a+aug']:.0f} img/s | "
                f"{figures['b']:.0f} img/s | {figures['c']:.0f} img/s | {figures['a'] / figures['b']:.2f} | "
                f"{figures['a'] / figures['c']:.2f} |"
            )
    print()
    print("Input pipelines alone, no net (normalised batches of 64 per second):")
    print("| (a) playground | (a) with flips+crops | (b) plain loop | (c) book's DataLoader |")
    print("|---|---|---|---|")
    print(f"| {alone['a']:.0f} img/s | {alone['a+aug']:.0f} img/s | {alone['b']:.0f} img/s | {alone['c']:.0f} img/s |")
    # Training time per image = net + pipeline, so even a free pipeline gives at most
    # a/c = (net + book pipeline) / net.
    for model_name, med, _ in rows:
        net_s = 1 / med["b"]
        bound = (net_s + 1 / alone["c"]) / net_s
        print(f"{model_name}: the net alone takes {net_s * 1e3:.2f} ms per image, the book's pipeline "
              f"{1e3 / alone['c']:.2f} ms: a/c can be at most about {bound:.2f}")


if __name__ == "__main__":
    main()
