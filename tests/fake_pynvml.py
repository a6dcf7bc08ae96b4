"""A stand-in for the `pynvml` module: devices that answer from call tables.

Each device (and each MIG instance, "gpu0/mig1") has a table `"fn(args after the handle)" ->
answer`, the format agents/collectors/nvml_capture.py writes, so a capture from a real node
replays through `FakeNvml.from_capture`. An answer is a value, an exception class or instance
(raised), or a callable (called with the arguments). nvmlDeviceGetFieldValues is filed per
field: `field_key(fid)` -> an entry, a plain number, or an exception class (that entry's own
nvmlReturn); `field_key("*")` -> an error for the whole call.

Exceptions and constants are the installed binding's own, so `except pynvml.NVMLError_...`
behaves as on a real node. Faults: `lose()` (GpuIsLost after K samples), `missing` (function
absent from the library: the v3 process calls then raise NVMLLibraryMismatchError, as the
binding's decorator does), `absent` (binding without the name), `init_error`, `push_event()`.

    PYTHONPATH=. .venv/bin/python tests/fake_pynvml.py tests/data/nvml/synthetic-h100.json
regenerates the synthetic capture.
"""

from __future__ import annotations

import ctypes
import functools
import json
import queue
import sys
import threading
import types
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml as real

from agents.collectors.nvml_capture import call_key, capture, field_key

ns = SimpleNamespace
Table = dict[str, Any]

NO_INSTANCE = 0xFFFFFFFF
# Unversioned wrappers that the binding decorates with @throwOnVersionMismatch.
_MISMATCH_WRAPPED = {
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
    "nvmlDeviceGetMPSComputeRunningProcesses",
}
_ALIASES = {
    "nvmlDeviceGetCurrentClocksThrottleReasons": "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksEventReasons": "nvmlDeviceGetCurrentClocksThrottleReasons",
}


@dataclass(frozen=True)
class FakeHandle:
    id: str


@dataclass
class FakeEventSet:
    masks: dict[str, int] = field(default_factory=dict)
    events: queue.Queue[Any] = field(default_factory=queue.Queue)
    freed: bool = False


def field_entry(fid: int, value: float | int, value_type: int | None = None,
                ret: int = 0) -> SimpleNamespace:
    """A c_nvmlFieldValue_t look-alike; the union carries `value` in every member."""
    if value_type is None:
        value_type = real.NVML_VALUE_TYPE_DOUBLE if isinstance(value, float) else \
            real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
    n = int(value)
    union = ns(dVal=float(value), uiVal=n & 0xFFFFFFFF, ulVal=n & (2**64 - 1),
               ullVal=n & (2**64 - 1), sllVal=n, siVal=n, usVal=n & 0xFFFF)
    return ns(fieldId=fid, scopeId=0, timestamp=0, latencyUsec=0, valueType=value_type,
              nvmlReturn=ret, value=union)


def _raises(answer: Any) -> bool:
    return isinstance(answer, BaseException) or (
        isinstance(answer, type) and issubclass(answer, BaseException))


class FakeNvml(types.ModuleType):
    """Install with `monkeypatch.setitem(sys.modules, "pynvml", fake)` or pass it as `nvml=`."""

    def __init__(self, devices: dict[str, Table], system: Table | None = None) -> None:
        super().__init__("pynvml")
        for name, value in vars(real).items():
            if name.startswith("__"):
                continue
            if (isinstance(value, type) and issubclass(value, Exception)) or not callable(value):
                setattr(self, name, value)
        self.tables: dict[str, Table] = {"system": dict(system or {}), **devices}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.misses: list[tuple[str, str]] = []  # answers the table did not have
        self.field_requests: list[tuple[str, list[int]]] = []  # (owner, field ids) per batch
        self.missing: set[str] = set()
        self.absent: set[str] = set()
        self.init_error: Any = None
        self.init_count = 0
        self.tick_fn = "nvmlDeviceGetUtilizationRates"  # one call per sample marks a tick
        self.ticks: Counter[str] = Counter()
        self.lose_at: dict[str, int] = {}
        self.event_sets: list[FakeEventSet] = []
        self.wait_cap_ms = 20  # nvmlEventSetWait blocks at most this long: fast tests
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------

    @classmethod
    def from_capture(cls, doc: dict[str, Any]) -> FakeNvml:
        calls = doc["calls"]
        tables = {owner: {key: _decode_entry(e) for key, e in table.items()}
                  for owner, table in calls.items()}
        system = tables.pop("system", {})
        return cls(tables, system)

    def set(self, index: int | str, key: str, answer: Any) -> None:
        owner = index if isinstance(index, str) else f"gpu{index}"
        self.tables.setdefault(owner, {})[key] = answer

    def lose(self, index: int, after_samples: int = 0) -> None:
        """GpuIsLost on every call for this device once it has been sampled K more times."""
        owner = f"gpu{index}"
        self.lose_at[owner] = self.ticks[owner] + after_samples

    def push_event(self, index: int, event_type: int, data: int) -> bool:
        """Deliver an event to every set the device registered this type with."""
        delivered = False
        for es in self.event_sets:
            if not es.freed and es.masks.get(f"gpu{index}", 0) & event_type:
                es.events.put(ns(device=FakeHandle(f"gpu{index}"), eventType=event_type,
                                 eventData=data, gpuInstanceId=NO_INSTANCE,
                                 computeInstanceId=NO_INSTANCE))
                delivered = True
        return delivered

    def calls_of(self, index: int | str, fn: str) -> int:
        owner = index if isinstance(index, str) else f"gpu{index}"
        return self.counts[(owner, fn)]

    # -- the module surface --------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("nvml") and name not in self.absent:
            return functools.partial(self._dispatch, name)
        raise AttributeError(name)

    def _dispatch(self, name: str, *args: Any) -> Any:
        special = getattr(type(self), "_fake_" + name, None)
        if special is not None:
            return special(self, *args)
        self._check_init()
        if args and isinstance(args[0], FakeHandle):
            owner, rest = args[0].id, args[1:]
        else:
            owner, rest = "system", args
        with self._lock:
            self.counts[(owner, name)] += 1
            root = owner.split("/")[0]
            if name == self.tick_fn and owner == root:
                self.ticks[root] += 1
            if root in self.lose_at and self.ticks[root] > self.lose_at[root]:
                raise real.NVMLError_GpuIsLost()
        if name in self.missing:
            if name in _MISMATCH_WRAPPED:
                raise real.NVMLLibraryMismatchError(f"{name}: no _v3 in this library")
            raise real.NVMLError_FunctionNotFound()
        if name == "nvmlDeviceGetFieldValues":
            return self._field_values(owner, list(rest[0]))
        return self._answer(owner, name, rest)

    def _check_init(self) -> None:
        if self.init_count <= 0:
            raise real.NVMLError_Uninitialized()

    def _lookup(self, owner: str, name: str, rest: tuple[Any, ...]) -> tuple[bool, Any]:
        table = self.tables.get(owner, {})
        base = name.rsplit("_v", 1)[0] if name[-3:-1] == "_v" else name
        for candidate in (name, base, _ALIASES.get(name)):
            if candidate is not None and (key := call_key(candidate, rest)) in table:
                return True, table[key]
        return False, None

    def _answer(self, owner: str, name: str, rest: tuple[Any, ...]) -> Any:
        found, answer = self._lookup(owner, name, rest)
        if not found:
            self.misses.append((owner, call_key(name, rest)))
            raise real.NVMLError_NotSupported()
        return _give(answer, rest)

    def _field_values(self, owner: str, ids: list[Any]) -> list[Any]:
        table = self.tables.get(owner, {})
        self.field_requests.append((owner, ids))
        if field_key("*") in table:
            _give(table[field_key("*")], ())
        out = []
        for fid in ids:
            fid = fid[0] if isinstance(fid, tuple) else fid
            answer = table.get(field_key(fid), real.NVMLError_NotSupported)
            if _raises(answer):
                code = (answer if isinstance(answer, BaseException) else answer()).value
                out.append(field_entry(fid, 0, ret=code))
            elif isinstance(answer, SimpleNamespace | ctypes.Structure):
                out.append(answer)
            else:
                out.append(field_entry(fid, answer))
        return out

    # -- lifecycle and events ------------------------------------------------------------

    def _fake_nvmlInit(self) -> None:
        if self.init_error is not None:
            _give(self.init_error, ())
        self.init_count += 1

    def _fake_nvmlInitWithFlags(self, flags: int = 0) -> None:
        self._fake_nvmlInit()

    def _fake_nvmlShutdown(self) -> None:
        self._check_init()
        self.init_count -= 1

    def _fake_nvmlDeviceGetCount(self) -> int:
        self._check_init()
        if call_key("nvmlDeviceGetCount", ()) in self.tables["system"]:
            return self._answer("system", "nvmlDeviceGetCount", ())
        return sum(1 for owner in self.tables if owner.startswith("gpu") and "/" not in owner)

    def _fake_nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check_init()
        found, answer = self._lookup("system", "nvmlDeviceGetHandleByIndex", (index,))
        if found:
            return _give(answer, (index,))
        if f"gpu{index}" not in self.tables:
            raise real.NVMLError_InvalidArgument()
        return FakeHandle(f"gpu{index}")

    def _fake_nvmlEventSetCreate(self) -> FakeEventSet:
        self._check_init()
        es = FakeEventSet()
        self.event_sets.append(es)
        return es

    def _fake_nvmlDeviceRegisterEvents(self, h: FakeHandle, mask: int, es: FakeEventSet) -> None:
        self._check_init()
        found, answer = self._lookup(h.id, "nvmlDeviceRegisterEvents", ())
        if found:
            _give(answer, ())
        es.masks[h.id] = es.masks.get(h.id, 0) | mask

    def _fake_nvmlEventSetWait(self, es: FakeEventSet, timeout_ms: int) -> Any:
        if es.freed:
            raise real.NVMLError_Uninitialized()
        try:
            return es.events.get(timeout=min(timeout_ms, self.wait_cap_ms) / 1000)
        except queue.Empty:
            raise real.NVMLError_Timeout() from None

    _fake_nvmlEventSetWait_v2 = _fake_nvmlEventSetWait

    def _fake_nvmlEventSetFree(self, es: FakeEventSet) -> None:
        es.freed = True


def _give(answer: Any, args: tuple[Any, ...]) -> Any:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, type) and issubclass(answer, BaseException):
        raise answer()
    if callable(answer) and not isinstance(answer, FakeHandle | SimpleNamespace | ctypes._CData):
        return answer(*args)
    return answer


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "obj" in value:
            return ns(**{k: _decode(v) for k, v in value["obj"].items()})
        if "handle" in value:
            return FakeHandle(value["handle"])
        if "repr" in value:
            return value["repr"]
    return value


def _decode_entry(entry: dict[str, Any]) -> Any:
    if "error" in entry:
        return getattr(real, entry["error"], real.NVMLError_Unknown)
    return _decode(entry["value"])


# -- ready-made devices ------------------------------------------------------------------

MIB = 1 << 20
GIB = 1 << 30
H100_EVENTS = (real.nvmlEventTypeSingleBitEccError | real.nvmlEventTypeDoubleBitEccError
               | real.nvmlEventTypePState | real.nvmlEventTypeXidCriticalError
               | real.nvmlEventTypeClock)


def h100(i: int, **overrides: Any) -> Table:
    """An H100 SXM as NVML shows it: no fan, field 230 present, one process."""
    total = 81559 * MIB
    t: Table = {
        "nvmlDeviceGetName()": "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUUID()": f"GPU-5a1f{i:04x}-8c2d-4e6f-9a0b-1c2d3e4f{i:04x}",
        "nvmlDeviceGetSerial()": f"165322306{i:04d}",
        "nvmlDeviceGetPciInfo()": ns(busId=f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                                     domain=0, bus=0x18 + 0x10 * i, device=0,
                                     pciDeviceId=0x233010DE, pciSubSystemId=0x16C110DE),
        "nvmlDeviceGetVbiosVersion()": "96.00.99.00.01",
        "nvmlDeviceGetCudaComputeCapability()": (9, 0),
        "nvmlDeviceGetMemoryInfo()": ns(total=total, used=40 * GIB, free=total - 40 * GIB),
        "nvmlDeviceGetPowerManagementLimitConstraints()": [200_000, 700_000],
        "nvmlDeviceGetTemperatureThreshold(1)": 87,  # SLOWDOWN
        "nvmlDeviceGetTemperatureThreshold(0)": 92,  # SHUTDOWN
        "nvmlDeviceGetMaxPcieLinkGeneration()": 5,
        "nvmlDeviceGetMaxPcieLinkWidth()": 16,
        "nvmlDeviceGetUtilizationRates()": ns(gpu=87, memory=41),
        "nvmlDeviceGetTemperature(0)": 54,
        "nvmlDeviceGetPowerUsage()": 512_345,
        "nvmlDeviceGetEnforcedPowerLimit()": 700_000,
        "nvmlDeviceGetClockInfo(1)": 1980,
        "nvmlDeviceGetClockInfo(2)": 2619,
        "nvmlDeviceGetPerformanceState()": 0,
        "nvmlDeviceGetFanSpeed()": real.NVMLError_NotSupported,
        "nvmlDeviceGetCurrentClocksEventReasons()": 0x4 | 0x40,  # sw-power-cap, hw-thermal
        "nvmlDeviceGetCurrPcieLinkGeneration()": 5,
        "nvmlDeviceGetCurrPcieLinkWidth()": 16,
        "nvmlDeviceGetMigMode()": [0, 0],
        "nvmlDeviceGetComputeRunningProcesses()": [
            ns(pid=4242 + i, usedGpuMemory=38 * GIB, gpuInstanceId=NO_INSTANCE,
               computeInstanceId=NO_INSTANCE)],
        "nvmlDeviceGetGraphicsRunningProcesses()": [],
        "nvmlDeviceGetSupportedEventTypes()": H100_EVENTS,
        "nvmlDeviceGetTotalEccErrors(0, 0)": 3,
        "nvmlDeviceGetTotalEccErrors(1, 0)": 0,
        "nvmlDeviceGetTotalEccErrors(0, 1)": 17,
        "nvmlDeviceGetTotalEccErrors(1, 1)": 0,
        "nvmlDeviceGetRemappedRows()": (2, 0, 0, 0),
        "nvmlDeviceGetPcieReplayCounter()": 1,
        "nvmlDeviceGetTotalEnergyConsumption()": 987_654_321,
        field_key(3): 3,
        field_key(4): 0,
        field_key(5): 17,
        field_key(6): 0,
        field_key(82): field_entry(82, 61, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(83): 987_654_321,
        field_key(94): field_entry(94, 1, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(142): field_entry(142, 2, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(143): field_entry(143, 0, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(144): field_entry(144, 0, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(145): field_entry(145, 0, real.NVML_VALUE_TYPE_UNSIGNED_INT),
        field_key(230): field_entry(230, 0, real.NVML_VALUE_TYPE_UNSIGNED_INT),
    }
    t.update(overrides)
    return t


def system(**overrides: Any) -> Table:
    t: Table = {
        "nvmlSystemGetDriverVersion()": "550.54.15",
        "nvmlSystemGetCudaDriverVersion()": 12040,
    }
    t.update(overrides)
    return t


def fleet(n: int = 2) -> FakeNvml:
    """n H100s; process names answer for their pids."""
    sys_table = system(**{call_key("nvmlSystemGetProcessName", (4242 + i,)): "python3"
                          for i in range(n)})
    return FakeNvml({f"gpu{i}": h100(i) for i in range(n)}, sys_table)


def synthetic_h100() -> FakeNvml:
    """What tests/data/nvml/synthetic-h100.json was captured from: gpu0 busy, gpu1 in MIG."""
    fake = fleet(2)
    fake.set(0, "nvmlDeviceGetGraphicsRunningProcesses()", [
        ns(pid=4242, usedGpuMemory=None, gpuInstanceId=NO_INSTANCE,
           computeInstanceId=NO_INSTANCE)])
    mig = {
        "nvmlDeviceGetMigMode()": [1, 1],
        "nvmlDeviceGetMaxMigDeviceCount()": 7,
        "nvmlDeviceGetMigDeviceHandleByIndex(0)": FakeHandle("gpu1/mig0"),
        "nvmlDeviceGetMigDeviceHandleByIndex(1)": FakeHandle("gpu1/mig1"),
        "nvmlDeviceGetUtilizationRates()": real.NVMLError_NotSupported,
        "nvmlDeviceGetComputeRunningProcesses()": [
            ns(pid=5151, usedGpuMemory=None, gpuInstanceId=1, computeInstanceId=0)],
        # Row remapping is not reported while MIG instances exist.
        field_key(142): real.NVMLError_NotSupported,
        field_key(143): real.NVMLError_NotSupported,
        field_key(144): real.NVMLError_NotSupported,
        field_key(145): real.NVMLError_NotSupported,
    }
    for key, answer in mig.items():
        fake.set(1, key, answer)
    for j, (gi, used) in enumerate(((1, 9 * GIB), (2, 0))):
        fake.tables[f"gpu1/mig{j}"] = {
            "nvmlDeviceGetUUID()": f"MIG-7d3c{j:04x}-1b2a-5c4d-8e9f-0a1b2c3d{j:04x}",
            "nvmlDeviceGetGpuInstanceId()": gi,
            "nvmlDeviceGetComputeInstanceId()": 0,
            "nvmlDeviceGetMemoryInfo()": ns(total=40192 * MIB, used=used, free=40192 * MIB - used),
        }
    fake.set("system", call_key("nvmlSystemGetProcessName", (5151,)), "/usr/bin/trainer")
    return fake


def load_capture(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _main(argv: list[str]) -> int:
    doc = capture(synthetic_h100())
    doc["captured_at"] = "synthetic"
    doc["binding"] = "tests/fake_pynvml.py"
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))

