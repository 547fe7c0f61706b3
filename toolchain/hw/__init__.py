"""Hardware profiles (``profile.py``) and the devices of this machine (``device.py``)."""

from toolchain.hw.device import (
    cpu_model,
    detect_cpu,
    detect_gpus,
    environment_fingerprint,
    target_device,
)
from toolchain.hw.profile import (
    DeviceFacts,
    HardwareProfile,
    TimingSettings,
    list_profiles,
    load_profile,
    profile_dirs,
    resolve_profile_path,
)

__all__ = [
    "DeviceFacts",
    "HardwareProfile",
    "TimingSettings",
    "cpu_model",
    "detect_cpu",
    "detect_gpus",
    "environment_fingerprint",
    "list_profiles",
    "load_profile",
    "profile_dirs",
    "resolve_profile_path",
    "target_device",
]
