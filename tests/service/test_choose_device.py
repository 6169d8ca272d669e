"""Which device a job gets, decided in the web process from the executor's list (no torch here)."""

from __future__ import annotations

import pytest

from app.errors import DeviceUnavailable
from app.jobs.service import choose_device

GPU_SERVER = ["cpu", "cuda:0", "cuda:1"]


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ("auto", ["cpu"], "cpu"),
        ("auto", GPU_SERVER, "cuda:0"),
        ("cuda", GPU_SERVER, "cuda:0"),
        ("cuda:1", GPU_SERVER, "cuda:1"),
        ("cpu", GPU_SERVER, "cpu"),
    ],
)
def test_devices_resolve(requested, available, expected):
    assert choose_device(requested, available) == expected


@pytest.mark.parametrize(("requested", "available"), [("cuda", ["cpu"]), ("cuda:2", GPU_SERVER), ("mps", GPU_SERVER)])
def test_a_device_the_server_lacks_is_refused_naming_what_it_has(requested, available):
    with pytest.raises(DeviceUnavailable) as caught:
        choose_device(requested, available)
    assert repr(requested) in str(caught.value) and "cpu" in str(caught.value)
