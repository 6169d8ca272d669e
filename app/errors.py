"""Named exceptions. Each message carries the offending value and what is allowed.

    PlaygroundError
    ├── UnknownKind          an experiment kind that does not exist
    ├── DeviceUnavailable    a device this machine does not have ("cuda" without a GPU)
    └── DatasetMissing       the CIFAR-10 files are not where the settings say

The api layer turns these into HTTP errors; the CLI into exit status 2.
"""

from __future__ import annotations

from pathlib import Path


class PlaygroundError(Exception):
    pass


class UnknownKind(PlaygroundError):
    def __init__(self, kind: str, allowed: list[str]) -> None:
        self.kind = kind
        self.allowed = allowed
        super().__init__(f"Unknown experiment kind {kind!r}; allowed: {', '.join(allowed)}.")


class DeviceUnavailable(PlaygroundError):
    def __init__(self, device: str, available: list[str]) -> None:
        self.device = device
        self.available = available
        super().__init__(
            f"Device {device!r} is not available on this machine; available: {', '.join(available)} "
            "(or 'auto', which picks CUDA when there is a GPU)."
        )


class DatasetMissing(PlaygroundError):
    def __init__(self, data_dir: Path, detail: str = "") -> None:
        self.data_dir = data_dir
        super().__init__(
            f"CIFAR-10 was not found in {str(data_dir)!r}{': ' + detail if detail else ''}. Put either "
            f"torchvision's 'cifar-10-batches-py/' or an image-folder layout 'cifar10/train/<class>/*' "
            f"and 'cifar10/test/<class>/*' (PNG or JPEG) there, or set PLAYGROUND_DATA_DIR to the folder "
            f"that has them; with PLAYGROUND_ALLOW_DOWNLOAD=true torchvision downloads it."
        )
