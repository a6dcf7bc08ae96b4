"""Record what NVML answers on a real node, as a JSON fixture the tests replay.

    python -m agents.collectors.nvml_capture OUT.json

Runs the NVML collector through a recording stand-in for `pynvml`, plus the fallback calls
the collector skips on this driver (older symbol names, the one-by-one counters), and writes
every answer per device: `"fn(args)" -> {"value": ...}` or `{"error": "NVMLError_..."}`. The
DeviceInfo/DeviceSample the collector produced go alongside, so tests/fake_pynvml.py can check
that a replay produces the same thing. Needs only nvidia-ml-py and msgspec.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import msgspec

from agents.collectors.nvml import FIELDS, NvmlCollector, handle_key

FORMAT = "fleetops-nvml-capture/1"

# Lifecycle and event plumbing: not answers about a device.
_UNRECORDED = frozenset({
    "nvmlInit", "nvmlInitWithFlags", "nvmlShutdown", "nvmlEventSetCreate", "nvmlEventSetWait",
    "nvmlEventSetWait_v2", "nvmlEventSetFree", "nvmlDeviceRegisterEvents",
})

# Calls the collector makes only on some drivers (fallbacks), asked here so one capture also
# exercises the other paths. (name, args after the handle)
_SWEEP: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("nvmlDeviceGetCurrentClocksEventReasons", ()),
    ("nvmlDeviceGetCurrentClocksThrottleReasons", ()),
    ("nvmlDeviceGetComputeRunningProcesses", ()),
    ("nvmlDeviceGetComputeRunningProcesses_v2", ()),
    ("nvmlDeviceGetGraphicsRunningProcesses", ()),
    ("nvmlDeviceGetGraphicsRunningProcesses_v2", ()),
    ("nvmlDeviceGetTotalEccErrors", (0, 0)),  # corrected, volatile
    ("nvmlDeviceGetTotalEccErrors", (1, 0)),
    ("nvmlDeviceGetTotalEccErrors", (0, 1)),  # corrected, aggregate
    ("nvmlDeviceGetTotalEccErrors", (1, 1)),
    ("nvmlDeviceGetRemappedRows", ()),
    ("nvmlDeviceGetPcieReplayCounter", ()),
    ("nvmlDeviceGetTotalEnergyConsumption", ()),
    ("nvmlDeviceGetFanSpeed", ()),
    ("nvmlDeviceGetSupportedEventTypes", ()),
    ("nvmlDeviceGetMigMode", ()),
)


def call_key(fn: str, args: tuple[Any, ...] | list[Any]) -> str:
    """How a call is filed: name plus its arguments after the handle, as JSON."""
    return f"{fn}({', '.join(json.dumps(a) for a in args)})"


def field_key(field_id: int | str) -> str:
    """nvmlDeviceGetFieldValues is filed per field, so a replay can serve any subset."""
    return f"nvmlDeviceGetFieldValues({field_id})"


def encode(value: Any, handle_id: Callable[[Any], str | None] = lambda h: None) -> Any:
    """NVML results as JSON: structs become {"obj": {...}}, device handles {"handle": id}."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [encode(v, handle_id) for v in value]
    hid = handle_id(value)
    if hid is not None:
        return {"handle": hid}
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return {"obj": {f[0]: encode(getattr(value, f[0]), handle_id) for f in value._fields_}}
    if isinstance(value, ctypes.Array):
        return [encode(v, handle_id) for v in value]
    if isinstance(value, ctypes._SimpleCData):
        return encode(value.value, handle_id)
    if isinstance(value, SimpleNamespace) or hasattr(value, "__dict__"):
        return {"obj": {k: encode(v, handle_id) for k, v in vars(value).items()
                        if not k.startswith("_")}}
    return {"repr": repr(value)}


class Recorder:
    """Stands in for the pynvml module: forwards every call and files its answer."""

    def __init__(self, nv: Any) -> None:
        self._nv = nv
        self.calls: dict[str, dict[str, Any]] = {"system": {}}
        self._ids: dict[object, str] = {}
        self._lock = threading.Lock()

    def handle_id(self, value: Any) -> str | None:
        try:
            return self._ids.get(handle_key(value))
        except TypeError:  # unhashable: not a handle
            return None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._nv, name)
        if (not name.startswith("nvml") or isinstance(value, type) or not callable(value)
                or name in _UNRECORDED):
            return value

        def call(*args: Any) -> Any:
            return self._record(name, value, args)

        return call

    def _record(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        owner = self.handle_id(args[0]) if args else None
        rest = args[1:] if owner is not None else args
        table = self.calls.setdefault(owner or "system", {})
        batch = name == "nvmlDeviceGetFieldValues"
        try:
            result = fn(*args)
        except Exception as exc:
            with self._lock:
                key = field_key("*") if batch else call_key(name, rest)
                table[key] = {"error": type(exc).__name__}
            raise
        with self._lock:
            if name == "nvmlDeviceGetHandleByIndex":
                self._ids[handle_key(result)] = f"gpu{args[0]}"
            elif name == "nvmlDeviceGetMigDeviceHandleByIndex" and owner is not None:
                self._ids[handle_key(result)] = f"{owner}/mig{args[1]}"
            if batch:
                table.pop(field_key("*"), None)
                for entry in result:
                    table[field_key(entry.fieldId)] = {"value": encode(entry, self.handle_id)}
            else:
                table[call_key(name, rest)] = {"value": encode(result, self.handle_id)}
        return result


def _sweep(rec: Recorder, count: int) -> None:
    for i in range(count):
        try:
            h = rec.nvmlDeviceGetHandleByIndex(i)
        except Exception:
            continue
        for name, args in _SWEEP:
            # Errors are recorded: NotSupported and friends are answers too.
            with contextlib.suppress(Exception):
                getattr(rec, name)(h, *args)
        for fid in FIELDS:  # one by one too: a batch hides which entry broke it
            with contextlib.suppress(Exception):
                rec.nvmlDeviceGetFieldValues(h, [fid])


def capture(nv: Any | None = None) -> dict[str, Any]:
    """Run the collector once against `nv` (default: the real pynvml) and return the document."""
    if nv is None:
        import pynvml as nv  # the real library only when asked for
    rec = Recorder(nv)
    collector = NvmlCollector(nvml=rec)
    system = collector.open()
    try:
        _sweep(rec, len(system.devices))
        # Sampled last, so the filed answers are the ones this sample was built from.
        samples = collector.sample(time.time())
        events = collector.poll_events()
    finally:
        collector.close()
    return {
        "format": FORMAT,
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "binding": _binding_version(nv),
        "calls": rec.calls,
        "collector": {
            "driver_version": system.driver_version,
            "runtime_version": system.runtime_version,
            "devices": msgspec.to_builtins(system.devices),
            "samples": msgspec.to_builtins(samples),
            "events": [e.event for e in events],
        },
    }


def _binding_version(nv: Any) -> str | None:
    version = getattr(nv, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("nvidia-ml-py")
        except Exception:
            version = None
    return None if version is None else str(version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agents.collectors.nvml_capture",
        description="Record raw NVML answers on this node as a JSON test fixture.")
    parser.add_argument("out", help="where to write the JSON (tests/data/nvml/NAME.json)")
    args = parser.parse_args(argv)
    try:
        doc = capture()
    except Exception as exc:
        print(f"nvml_capture: {exc}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    n = len(doc["collector"]["devices"])
    print(f"wrote {args.out}: {n} device(s), driver {doc['collector']['driver_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
