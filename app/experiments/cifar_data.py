"""CIFAR-10 as whole uint8 tensors: find the files, decode them once, cache them, draw batches.

The book reads CIFAR-10 through ``datasets.CIFAR10(..., transform=transforms.ToTensor())``: every
image of every epoch goes through PIL and ``ToTensor`` one at a time. Here (the cifar10-airbench
way) the whole dataset is decoded once into a ``uint8`` tensor, cached on disk next to the data,
and kept on the run's device; batches are index tensors from ``torch.randperm``, and flips and crops
are pure functions of whole batches. Normalisation happens in the model (``cifar_models.Normalize``).

Two layouts of the data dir are read (server configuration, never a client's path):

    <data_dir>/cifar-10-batches-py/            torchvision's pickle batches (what it downloads)
    <data_dir>/cifar10/{train,test}/<class>/*  an image folder of PNG or JPEG files
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from app.errors import DatasetMissing

# The usual CIFAR-10 label order (= the sorted folder names of an image-folder layout).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# The book's cifar2 (chapter 7): label_map = {0: 0, 2: 1}, class_names = ['airplane', 'bird'].
CIFAR2_CLASSES: tuple[str, ...] = ("airplane", "bird")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PICKLE_FOLDER = "cifar-10-batches-py"
IMAGE_FOLDER = "cifar10"
CACHE_FORMAT = 1  # bump when the cache's contents change meaning
IMAGE_SIZE = 32


@dataclass(frozen=True)
class CifarData:
    """Images as ``uint8`` tensors (N, 3, 32, 32); labels as ``int64`` (N,) indices into classes."""

    classes: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    # Per-channel mean and std (0..1 scale) of the CIFAR-10 training images, as
    # transforms.Normalize takes them; cifar2 keeps CIFAR-10's, as the book does.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# ----------------------------------------------------------------------------------------------
# Finding the files


@dataclass(frozen=True)
class _Source:
    layout: str  # "pickle" or "imagefolder"
    root: Path  # the folder that holds the layout's files

    @property
    def cache_name(self) -> str:
        return f"cifar10-{self.layout}.uint8.pt"

    def fingerprint(self) -> str:
        """Changes when any source file is added, removed, resized or rewritten (mtime).

        One stat per file (60,000 for the image folder: about a second), far cheaper than decoding.
        """
        digest = hashlib.sha256(f"{CACHE_FORMAT}\n".encode())
        prefix = f"{self.root}{os.sep}"  # relative names: the same data mounted elsewhere is still cached
        for entry in _walk_files(self.root):
            stat = entry.stat()
            name = entry.path.removeprefix(prefix)
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def _walk_files(folder: Path | str) -> Iterator[os.DirEntry]:
    """Every file below ``folder`` in sorted order (os.scandir: no Path objects for 60,000 files)."""
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_files(entry.path)
        elif entry.is_file():
            yield entry


def locate(data_dir: Path, allow_download: bool) -> _Source:
    """The layout found in ``data_dir``; downloads the pickle release when allowed and none is there."""
    pickle_root = data_dir / PICKLE_FOLDER
    if pickle_root.is_dir():
        return _Source("pickle", pickle_root)
    image_root = data_dir / IMAGE_FOLDER
    if (image_root / "train").is_dir() and (image_root / "test").is_dir():
        return _Source("imagefolder", image_root)
    if not allow_download:
        detail = "the folder does not exist" if not data_dir.exists() else "neither layout is there"
        raise DatasetMissing(data_dir, detail + " and PLAYGROUND_ALLOW_DOWNLOAD is off")

    from torchvision.datasets import CIFAR10

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        CIFAR10(root=data_dir, train=True, download=True)  # checks the archive's md5 and unpacks it
    except Exception as exc:  # noqa: BLE001 - no network, read-only folder, bad archive: all "missing"
        raise DatasetMissing(data_dir, f"downloading it failed ({type(exc).__name__}: {exc})") from exc
    return _Source("pickle", pickle_root)


# ----------------------------------------------------------------------------------------------
# Decoding (once; then the cache)


def _decode_pickle(source: _Source) -> dict[str, torch.Tensor | tuple[str, ...]]:
    from torchvision.datasets import CIFAR10

    splits = {}
    for split, train in (("train", True), ("test", False)):
        try:
            # torchvision checks every batch file's md5 before it unpickles anything.
            dataset = CIFAR10(root=source.root.parent, train=train, download=False)
        except RuntimeError as exc:
            raise DatasetMissing(
                source.root.parent, f"'{PICKLE_FOLDER}/' is incomplete or corrupted ({exc})"
            ) from exc
        if tuple(dataset.classes) != CIFAR10_CLASSES:
            raise DatasetMissing(source.root.parent, f"batches.meta names the classes {dataset.classes}")
        # (N, 32, 32, 3) HWC numpy → (N, 3, 32, 32), the layout convolutions take.
        splits[f"{split}_images"] = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        splits[f"{split}_labels"] = torch.tensor(dataset.targets, dtype=torch.int64)
    return splits


def _decode_image_folder(source: _Source) -> dict[str, torch.Tensor | tuple[str, ...]]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    data_dir = source.root.parent
    splits = {}
    for split in ("train", "test"):
        split_root = source.root / split
        classes = tuple(sorted(p.name for p in split_root.iterdir() if p.is_dir()))
        if classes != CIFAR10_CLASSES:
            raise DatasetMissing(
                data_dir,
                f"'{split_root}' has the class folders {list(classes)}; expected {list(CIFAR10_CLASSES)}",
            )
        files, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(p for p in (split_root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            files += found
            labels += [label] * len(found)
        if not files:
            raise DatasetMissing(data_dir, f"'{split_root}' has no .png or .jpg files")
        # HWC, the layout PIL gives; turned into CHW once at the end.
        images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for i, path in enumerate(files):
            try:
                with Image.open(path) as image:
                    image = image.convert("RGB")
                    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
                    images[i] = np.asarray(image)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                raise DatasetMissing(data_dir, f"'{path}' is not a readable PNG or JPEG ({exc})") from exc
        splits[f"{split}_images"] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        splits[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)
    return splits


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0..1 scale, in chunks (the float copy of all 50,000 would be 600 MB)."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64) / 255
        total += block.sum(dim=(0, 2, 3))
        squares += block.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


# ----------------------------------------------------------------------------------------------
# The cache: one torch.save file per layout, keyed by the source files' fingerprint


def _read_cache(path: Path, fingerprint: str) -> CifarData | None:
    try:
        # mmap: the 180 MB file is paged in as the tensors are touched, not copied up front.
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None  # absent, or a half-written or foreign file: decode again
    if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        return None
    return CifarData(
        classes=tuple(saved["classes"]),
        train_images=saved["train_images"],
        train_labels=saved["train_labels"],
        test_images=saved["test_images"],
        test_labels=saved["test_labels"],
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
    )


def _write_cache(folder: Path, name: str, fingerprint: str, data: CifarData) -> Path | None:
    """Writes atomically (a temporary file, then rename), so a concurrent run never reads half a file."""
    tmp_path: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{name}.", delete=False) as tmp:
            tmp_path = Path(tmp.name)
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "classes": list(data.classes),
                    "train_images": data.train_images,
                    "train_labels": data.train_labels,
                    "test_images": data.test_images,
                    "test_labels": data.test_labels,
                    "mean": list(data.mean),
                    "std": list(data.std),
                },
                tmp,
            )
        tmp_path.chmod(0o644)  # NamedTemporaryFile makes it 0600; other users of the data may read it
        os.replace(tmp_path, folder / name)
    except OSError:
        # A read-only mount (EROFS, EACCES) or a full disk: the caller tries the next folder.
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        return None
    return folder / name


def load_cifar10(data_dir: Path, *, cache_dir: Path | None = None, allow_download: bool = False) -> CifarData:
    """All of CIFAR-10 as uint8 tensors on the CPU: from the cache when it is current, else decoded.

    The cache lives next to the data (``data_dir``); when that is read-only, in ``cache_dir``.
    Raises :class:`DatasetMissing` naming ``data_dir`` when neither layout is there.
    """
    data_dir = Path(data_dir)
    source = locate(data_dir, allow_download)
    fingerprint = source.fingerprint()
    folders = [data_dir] + ([Path(cache_dir)] if cache_dir is not None else [])
    for folder in folders:
        cached = _read_cache(folder / source.cache_name, fingerprint)
        if cached is not None:
            return cached

    decoded = _decode_pickle(source) if source.layout == "pickle" else _decode_image_folder(source)
    mean, std = channel_stats(decoded["train_images"])
    data = CifarData(classes=CIFAR10_CLASSES, mean=mean, std=std, **decoded)
    for folder in folders:
        if _write_cache(folder, source.cache_name, fingerprint, data) is not None:
            break
    return data


def select_classes(data: CifarData, classes: tuple[str, ...]) -> CifarData:
    """Only the images of ``classes``, relabelled 0..len(classes)-1 (the book's cifar2)."""
    if classes == data.classes:
        return data
    old_labels = torch.tensor([data.classes.index(name) for name in classes])
    remap = torch.full((len(data.classes),), -1, dtype=torch.int64)
    remap[old_labels] = torch.arange(len(classes))

    def subset(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = torch.isin(labels, old_labels)
        return images[keep], remap[labels[keep]]

    train_images, train_labels = subset(data.train_images, data.train_labels)
    test_images, test_labels = subset(data.test_images, data.test_labels)
    return replace(
        data,
        classes=classes,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
    )


# ----------------------------------------------------------------------------------------------
# Drawing and augmenting batches (pure functions of whole batches, seeded by a generator)


def sample_per_class(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` images drawn at random, as evenly over the classes as they allow.

    Image folders are sorted by class, so "the first n" would be one class. Each class is shuffled;
    then the first image of every class is taken, then the second, ..., the classes of the last,
    partial round in random order. Every class is represented once ``n`` >= the number of classes.
    """
    if n >= labels.numel():
        return torch.arange(labels.numel())
    order = torch.randperm(labels.numel(), generator=generator)
    shuffled = labels[order]
    # Rank of each image within its class in the shuffled order (0 for the first airplane, ...).
    rank = torch.empty_like(order)
    for label in shuffled.unique():
        members = (shuffled == label).nonzero().squeeze(1)
        rank[members] = torch.arange(members.numel())
    # Sort by rank; ties (same rank) keep their random shuffled order.
    picked = order[torch.sort(rank, stable=True).indices[:n]]
    return picked.sort().values


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of one epoch in random order, like ``DataLoader(shuffle=True)``.

    The last, smaller batch is kept (as the book's DataLoader keeps it) unless it holds a single
    image: batch norm cannot normalise a batch of one.
    """
    yield from order_batches(torch.randperm(n, generator=generator), batch_size)


def order_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """The batches of one epoch whose image order is ``order`` (a permutation, as drawn by
    :func:`shuffled_batches`): a run that resumes mid-epoch keeps the order and the next batch's index."""
    n = order.numel()
    return [batch for batch in order.split(batch_size) if batch.numel() > 1 or n == 1]


def batches_per_epoch(n: int, batch_size: int) -> int:
    """How many batches :func:`shuffled_batches` yields for ``n`` images."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 or n == 1 else 0)


def batch_flip_lr(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left-right (``RandomHorizontalFlip`` for a whole batch)."""
    return batch_flip_where(images, torch.rand(images.shape[0], generator=generator) < 0.5)


def batch_flip_where(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose entry of the bool tensor ``flip`` is True."""
    n = images.shape[0]
    flip = flip.to(images.device)
    # Both versions side by side, then one index_select: several times faster on a CPU than
    # torch.where with a broadcast mask.
    both = torch.cat([images, images.flip(-1)])
    return both.index_select(0, torch.arange(n, device=images.device) + n * flip)


def alternating_flips(first_epoch: torch.Tensor, epoch: int) -> torch.Tensor:
    """cifar10-airbench's alternating flip: which images to mirror in ``epoch`` (1-based), given the
    random half ``first_epoch`` mirrored in the first. Every image alternates from epoch to epoch, so
    any two epochs in a row show both sides of it (random flips show one side twice half the time)."""
    return first_epoch if epoch % 2 == 1 else ~first_epoch


def batch_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``padding`` pixels each way, reflecting at the borders.

    The same as ``RandomCrop(32, padding, padding_mode="reflect")`` per image, for a whole batch:
    pad once, view every row of the padded batch as its ``2 * padding + 1`` possible windows
    (``as_strided``, no copy), and gather one window per image and row.
    """
    n, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding), mode="reflect")
    shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(images.device)
    stride_n, stride_c, stride_y, _ = padded.stride()
    windows = padded.as_strided(
        (n, channels, height + 2 * padding, 2 * padding + 1, width), (stride_n, stride_c, stride_y, 1, 1)
    )
    index_n = torch.arange(n, device=images.device)[:, None, None]
    index_c = torch.arange(channels, device=images.device)[None, :, None]
    rows = torch.arange(height, device=images.device)[None, None, :] + shifts[0][:, None, None]
    return windows[index_n, index_c, rows, shifts[1][:, None, None]]
