"""The collector interface, nvtop's vendor ops table in Python.

A collector opens once (static facts), then samples on every tick. Lifecycle:
`probe()` (cheap: are there such devices here?) -> `open()` -> `sample(now)`* -> `close()`.
Collectors fill the metrics of each DeviceSample and leave `health`/`reasons` to the health
rules; raw happenings (an Xid, a device lost) come back from `poll_events()`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from agents.wire import DeviceInfo, DeviceSample


class CollectorError(Exception):
    """A collector cannot work; the message is one line for the operator."""


@dataclass(frozen=True)
class SystemInfo:
    driver_version: str | None
    runtime_version: str | None
    devices: tuple[DeviceInfo, ...]


@dataclass(frozen=True)
class CollectorEvent:
    """Something a collector saw between samples. `event` is a wire EventType."""

    ts: float
    event: str
    index: int
    message: str
    code: int | None = None


@dataclass
class CollectorOptions:
    """Everything any collector may need; each reads only its own fields."""

    smi_path: str | None = None
    smi_timeout_s: float = 5.0
    sim_devices: int = 8
    sim_model: str = "H100"
    sim_seed: int = 0
    sim_faults: list[str] = field(default_factory=list)


class Collector(ABC):
    name: str = ""
    # Environment variable that overrides the path of the vendor tool (SMI collectors).
    tool_env: str | None = None
    tool_default: str | None = None

    def __init__(self, options: CollectorOptions | None = None) -> None:
        self.options = options or CollectorOptions()

    @classmethod
    def probe(cls, options: CollectorOptions) -> bool:
        """True when this node seems to have this collector's devices. Must be cheap."""
        return False

    @abstractmethod
    def open(self) -> SystemInfo: ...

    @abstractmethod
    def sample(self, now: float) -> list[DeviceSample]: ...

    def poll_events(self) -> list[CollectorEvent]:
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @classmethod
    def tool_path(cls, options: CollectorOptions) -> str | None:
        """Where the vendor tool is: --smi-path, then the env var, then the default name."""
        if options.smi_path:
            return options.smi_path
        if cls.tool_env and os.environ.get(cls.tool_env):
            return os.environ[cls.tool_env]
        return cls.tool_default
