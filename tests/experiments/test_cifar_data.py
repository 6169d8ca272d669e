"""CIFAR data: both layouts, torchvision's integrity check, the decoded-tensor cache, sampling, batch augmentation."""

from __future__ import annotations

import errno
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.errors import DatasetMissing
from app.experiments import cifar_data
from app.experiments.cifar_data import (
    CIFAR10_CLASSES,
    batch_crop,
    batch_flip_lr,
    batches_per_epoch,
    load_cifar10,
    sample_per_class,
    select_classes,
    shuffled_batches,
)
from app.experiments.cifar_models import Normalize
from tests.fixtures.tiny_cifar import tiny_images

# ----------------------------------------------------------------------------------------------
# Layouts


def test_pickle_layout_loads_through_torchvision_with_its_md5_check(tiny_pickle):
    data = load_cifar10(tiny_pickle.root)
    assert data.classes == CIFAR10_CLASSES
    assert data.train_images.shape == (100, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (50, 3, 32, 32)
    assert data.train_labels.bincount().tolist() == [10] * 10
    # The pixels are the ones written (CHW rows in the pickle, HWC in the fixture's arrays).
    images, labels = tiny_images(5, seed=1)
    first = data.test_images[0].permute(1, 2, 0).numpy()
    matches = [i for i in range(len(images)) if np.array_equal(images[i], first)]
    assert matches and labels[matches[0]] == data.test_labels[0].item()


def test_a_corrupted_pickle_batch_fails_torchvisions_md5_check(tiny_pickle):
    batch = tiny_pickle.root / "cifar-10-batches-py" / "data_batch_3"
    raw = bytearray(batch.read_bytes())
    raw[-100] ^= 0xFF
    batch.write_bytes(bytes(raw))
    with pytest.raises(DatasetMissing) as exc:
        load_cifar10(tiny_pickle.root)
    assert "cifar-10-batches-py" in str(exc.value) and "corrupted" in str(exc.value)


def test_image_folder_layout_loads_classes_in_order(tiny_folder):
    data = load_cifar10(tiny_folder)
    assert data.classes == CIFAR10_CLASSES
    assert data.train_images.shape == (160, 3, 32, 32)
    assert data.test_labels.bincount().tolist() == [8] * 10
    # Image 0003.png of "cat" decodes to exactly the pixels PIL reads from it.
    cat = CIFAR10_CLASSES.index("cat")
    expected = np.asarray(Image.open(tiny_folder / "cifar10/train/cat/0003.png").convert("RGB"))
    index = (data.train_labels == cat).nonzero()[3].item()
    assert np.array_equal(data.train_images[index].permute(1, 2, 0).numpy(), expected)
    # Normalisation statistics of the training images, like the book's imgs.view(3, -1).mean(dim=1).
    as_float = data.train_images.double() / 255
    assert data.mean == pytest.approx(as_float.mean(dim=(0, 2, 3)).tolist(), abs=1e-9)
    assert data.std == pytest.approx(as_float.std(dim=(0, 2, 3), correction=0).tolist(), abs=1e-9)


def test_image_folder_images_of_another_size_are_resized(tiny_folder):
    Image.new("RGB", (64, 48), (255, 0, 0)).save(tiny_folder / "cifar10/train/ship/9999.jpg")
    data = load_cifar10(tiny_folder)
    assert data.train_images.shape == (161, 3, 32, 32)


def test_missing_dataset_names_the_folder_both_layouts_and_the_setting(tmp_path):
    with pytest.raises(DatasetMissing) as exc:
        load_cifar10(tmp_path / "nowhere", allow_download=False)
    message = str(exc.value)
    assert str(tmp_path / "nowhere") in message
    assert "cifar-10-batches-py/" in message and "cifar10/train/<class>/*" in message
    assert "PLAYGROUND_DATA_DIR" in message and "PLAYGROUND_ALLOW_DOWNLOAD" in message


def test_a_failed_download_is_reported_as_missing_data(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def no_network(self):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(CIFAR10, "download", no_network)
    with pytest.raises(DatasetMissing) as exc:
        load_cifar10(tmp_path, allow_download=True)
    assert "downloading it failed" in str(exc.value) and "Network is unreachable" in str(exc.value)


def test_wrong_class_folders_are_named(tiny_folder):
    (tiny_folder / "cifar10/train/cat").rename(tiny_folder / "cifar10/train/kitten")
    with pytest.raises(DatasetMissing) as exc:
        load_cifar10(tiny_folder)
    assert "kitten" in str(exc.value)


# ----------------------------------------------------------------------------------------------
# The cache


def test_decoded_images_are_cached_next_to_the_data_and_reused(tiny_folder, monkeypatch):
    first = load_cifar10(tiny_folder)
    assert (tiny_folder / "cifar10-imagefolder.uint8.pt").is_file()

    def decode_again(source):
        raise AssertionError("decoded again although the cache is current")

    monkeypatch.setattr(cifar_data, "_decode_image_folder", decode_again)
    second = load_cifar10(tiny_folder)
    assert torch.equal(first.train_images, second.train_images)
    assert torch.equal(first.test_labels, second.test_labels)
    assert second.mean == first.mean


def test_the_cache_is_rebuilt_when_a_source_file_changes(tiny_folder):
    before = load_cifar10(tiny_folder)
    image = tiny_folder / "cifar10/test/frog/0000.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(image)
    after = load_cifar10(tiny_folder)
    frog = CIFAR10_CLASSES.index("frog")
    index = (after.test_labels == frog).nonzero()[0].item()
    assert after.test_images[index, :, 0, 0].tolist() == [1, 2, 3]
    assert not torch.equal(before.test_images, after.test_images)
    # A removed file changes it too.
    (tiny_folder / "cifar10/train/dog/0000.png").unlink()
    assert load_cifar10(tiny_folder).train_images.shape[0] == before.train_images.shape[0] - 1


def test_a_read_only_data_dir_caches_in_the_cache_dir(tiny_folder, tmp_path, monkeypatch):
    real_temporary_file = tempfile.NamedTemporaryFile

    def read_only_data_dir(*args, dir=None, **kwargs):
        # What a read-only mount answers (chmod is no test here: root may write anyway).
        if Path(dir) == tiny_folder:
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_temporary_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(cifar_data.tempfile, "NamedTemporaryFile", read_only_data_dir)
    cache_dir = tmp_path / "cache"
    data = load_cifar10(tiny_folder, cache_dir=cache_dir)
    assert not (tiny_folder / "cifar10-imagefolder.uint8.pt").exists()
    assert (cache_dir / "cifar10-imagefolder.uint8.pt").is_file()
    assert not list(tiny_folder.glob(".cifar10-*"))  # no temporary file left behind

    monkeypatch.setattr(cifar_data, "_decode_image_folder", lambda source: pytest.fail("decoded again"))
    assert torch.equal(load_cifar10(tiny_folder, cache_dir=cache_dir).train_images, data.train_images)


def test_a_damaged_cache_file_is_decoded_again(tiny_folder):
    first = load_cifar10(tiny_folder)
    (tiny_folder / "cifar10-imagefolder.uint8.pt").write_bytes(b"not a torch file")
    assert torch.equal(load_cifar10(tiny_folder).train_images, first.train_images)


# ----------------------------------------------------------------------------------------------
# Classes, samples and batches


def test_cifar2_keeps_airplanes_and_birds_relabelled(tiny_folder):
    data = load_cifar10(tiny_folder)
    two = select_classes(data, ("airplane", "bird"))
    assert two.classes == ("airplane", "bird")
    assert two.train_labels.bincount().tolist() == [16, 16]
    birds = data.train_images[data.train_labels == CIFAR10_CLASSES.index("bird")]
    assert torch.equal(two.train_images[two.train_labels == 1], birds)
    assert two.mean == data.mean  # the book normalises cifar2 with CIFAR-10's statistics


def test_sample_per_class_covers_every_class_and_depends_on_the_seed():
    labels = torch.arange(10).repeat_interleave(500)  # sorted by class, like an image folder
    picked = sample_per_class(labels, 25, torch.Generator().manual_seed(0))
    assert picked.unique().numel() == 25
    counts = labels[picked].bincount(minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3  # as even as 25 over 10 classes allows
    again = sample_per_class(labels, 25, torch.Generator().manual_seed(0))
    other = sample_per_class(labels, 25, torch.Generator().manual_seed(1))
    assert torch.equal(picked, again) and not torch.equal(picked, other)
    ten = sample_per_class(labels, 10, torch.Generator().manual_seed(3))
    assert labels[ten].sort().values.tolist() == list(range(10))  # one of each class
    assert sample_per_class(labels, 99_999, torch.Generator()).numel() == 5000


def test_shuffled_batches_cover_every_image_once_without_a_batch_of_one():
    batches = list(shuffled_batches(129, 64, torch.Generator().manual_seed(0)))
    assert [b.numel() for b in batches] == [64, 64]  # the 129th image alone would break batch norm
    assert batches_per_epoch(129, 64) == 2
    batches = list(shuffled_batches(130, 64, torch.Generator().manual_seed(0)))
    assert sorted(torch.cat(batches).tolist()) == list(range(130))
    assert batches_per_epoch(130, 64) == len(batches) == 3
    assert batches_per_epoch(10, 64) == len(list(shuffled_batches(10, 64, torch.Generator()))) == 1


def test_batch_flip_lr_mirrors_about_half_the_images():
    images = torch.randint(0, 256, (400, 3, 32, 32), dtype=torch.uint8)
    flipped = batch_flip_lr(images, torch.Generator().manual_seed(0))
    same = (flipped == images).flatten(1).all(dim=1)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    assert bool((same | mirrored).all())
    assert 150 < int(mirrored.sum()) < 250


def test_batch_crop_is_a_reflect_padded_random_crop_of_each_image():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    cropped = batch_crop(images, 4, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images.float(), (4, 4, 4, 4), mode="reflect").to(torch.uint8)
    offsets = set()
    for i in range(64):
        found = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(cropped[i], padded[i, :, dy : dy + 32, dx : dx + 32])
        ]
        assert found, f"image {i} is not a 32x32 crop of its reflect-padded self"
        offsets.add(found[0])
    assert len(offsets) > 20  # the shifts vary from image to image


def test_normalize_matches_totensor_then_normalize():
    from torchvision import transforms

    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    book = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])(Image.fromarray(pixels))
    ours = Normalize(mean, std)(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0))[0]
    assert torch.allclose(ours, book, atol=1e-5)


def test_image_folder_pngs_and_jpegs_both_decode(tiny_folder):
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 255, 0)).save(out, format="JPEG", quality=95)
    (tiny_folder / "cifar10/test/deer/0100.JPG").write_bytes(out.getvalue())
    data = load_cifar10(tiny_folder)
    deer = data.test_images[data.test_labels == CIFAR10_CLASSES.index("deer")]
    assert deer.shape[0] == 9
    assert abs(int(deer[-1, 1, 16, 16]) - 255) <= 3  # JPEG is lossy, a little
