"""Fixtures of the CIFAR tests: the tiny data sets in both layouts, and one thread for torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny_cifar import (
    TinyPickle,
    use_tiny_cifar_md5s,
    write_tiny_cifar_image_folder,
    write_tiny_cifar_pickle,
)


@pytest.fixture
def one_thread():
    """Tiny batches gain nothing from a second thread, and on a shared 2-core machine two OpenMP
    threads that wait for each other run many times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyPickle:
    """torchvision's layout, with CIFAR10's md5 table pointed at the tiny files (its check still runs)."""
    tiny = write_tiny_cifar_pickle(tmp_path / "data")
    use_tiny_cifar_md5s(monkeypatch, tiny)
    return tiny


@pytest.fixture(scope="session")
def tiny_folder_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_cifar_image_folder(tmp_path_factory.mktemp("tiny-folder"))


@pytest.fixture
def tiny_folder(tiny_folder_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny image folder (tests write caches next to it and change files)."""
    import shutil

    # Without a decoded cache some other test left in the template.
    return Path(shutil.copytree(tiny_folder_template, tmp_path / "data", ignore=shutil.ignore_patterns("*.pt")))
