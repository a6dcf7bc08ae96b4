"""NVIDIA collector over NVML (`nvidia-ml-py`, imported as `pynvml`).

One NVML session lives from open() to close(): nvmlInit can be slow without persistence mode,
so it is never repeated per tick. Every call goes through `_call`, which turns "this device
cannot do that" into None and remembers it per device, and turns GpuIsLost into a lost device
that keeps reporting (all metrics null) while the others go on. Xids arrive on a daemon thread
blocked in nvmlEventSetWait (ctypes releases the GIL while it waits).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import math
import queue
import re
import threading
import time
from functools import cache
from typing import Any

import msgspec

from agents import catalog, xid
from agents.collectors.base import (
    Collector,
    CollectorError,
    CollectorEvent,
    CollectorOptions,
    SystemInfo,
)
from agents.wire import DeviceInfo, DeviceSample, MigDevice, Process

log = logging.getLogger("fleetops.agent.nvml")

_MIB = 1 << 20
_PSTATE_UNKNOWN = 32
_NOT_AVAILABLE = {2**64 - 1, 2**32 - 1}  # NVML_VALUE_NOT_AVAILABLE_{ulonglong,uint}
_EVENT_WAIT_MS = 500  # bounds how long close() waits for the event thread

# NVML return codes, as numbers: field-value entries carry them without raising.
_SUCCESS, _INVALID_ARGUMENT, _NOT_SUPPORTED, _NOT_FOUND = 0, 2, 3, 6
_FUNCTION_NOT_FOUND, _GPU_IS_LOST = 13, 15
# An entry with one of these will never answer: an old driver rejects an unknown field id
# with InvalidArgument.
_ENTRY_UNSUPPORTED = {_INVALID_ARGUMENT, _NOT_SUPPORTED, _NOT_FOUND, _FUNCTION_NOT_FOUND}

# Counters batched through nvmlDeviceGetFieldValues: field id -> DeviceSample field.
FIELDS: dict[int, str] = {
    3: "ecc_sbe_volatile",  # NVML_FI_DEV_ECC_SBE_VOL_TOTAL
    4: "ecc_dbe_volatile",
    5: "ecc_sbe_aggregate",
    6: "ecc_dbe_aggregate",
    82: "mem_temp_c",  # NVML_FI_DEV_MEMORY_TEMP, HBM: no other call reads it
    83: "energy_mj",  # NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION
    94: "pcie_replays",  # NVML_FI_DEV_PCIE_REPLAY_COUNTER
    142: "remapped_rows_correctable",  # NVML_FI_DEV_REMAPPED_COR
    143: "remapped_rows_uncorrectable",
    144: "remap_pending",
    145: "remap_failure",
    230: "recovery_action",  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, new drivers only
}
# c_nvmlValue_t member for each NVML_VALUE_TYPE_*.
_VALUE_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal",
                 6: "usVal"}

# NVML_GPU_RECOVERY_ACTION_* -> the names agents.health.RECOVERY_SEVERITY knows.
RECOVERY_ACTIONS = ("none", "gpu-reset", "node-reboot", "drain-p2p", "drain-and-reset",
                    "recover-imex-domain", "bus-reset", "system-reboot")

# nvmlClocksEventReason* bits (same values as the older ...ThrottleReason* names).
CLOCK_EVENT_REASONS = (
    (0x1, "gpu-idle"), (0x2, "app-clocks"), (0x4, "sw-power-cap"), (0x8, "hw-slowdown"),
    (0x10, "sync-boost"), (0x20, "sw-thermal"), (0x40, "hw-thermal"),
    (0x80, "hw-power-brake"), (0x100, "display-clocks"),
)

# Newest name -> older name to use when the library or binding lacks the newest symbol.
# The unversioned process calls point at _v3 and raise NVMLLibraryMismatchError on drivers
# without it; nvitop falls back to _v2 the same way.
_FALLBACK = {
    "nvmlDeviceGetCurrentClocksEventReasons": "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetComputeRunningProcesses": "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetGraphicsRunningProcesses": "nvmlDeviceGetGraphicsRunningProcesses_v2",
}

_OPEN_ERRORS = {
    "NVMLError_LibraryNotFound":
        "libnvidia-ml.so.1 not found: is the NVIDIA driver installed?",
    "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded (modprobe nvidia)",
    "NVMLError_LibRmVersionMismatch":
        "driver/library version mismatch: reload the nvidia kernel module",
    "NVMLError_NoPermission": "no permission to open the GPUs: run the agent as root",
}


class _DeviceLost(Exception):
    """NVMLError_GpuIsLost from a call on one device."""


class _NoLibraryMismatch(Exception):
    """Stands in for pynvml.NVMLLibraryMismatchError on bindings that predate it."""


def _text(value: object) -> str | None:
    """NVML strings: str on current bindings, bytes on very old ones."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip("\x00").strip()
    return text or None


def _scaled(value: float | None, divisor: float) -> float | None:
    return None if value is None else value / divisor


def handle_key(handle: object) -> object:
    """A hashable identity for a device handle (ctypes pointers compare by object, not address)."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value
    except (TypeError, ctypes.ArgumentError):
        return handle


def model_of(name: str) -> str:
    """Catalog key for an NVML device name, else the name itself.

    Whole tokens only, so "NVIDIA H200" is not taken for an H20.
    """
    spec = catalog.find(name)
    if spec is None or spec.vendor != "nvidia":
        return name
    if not re.search(rf"(?<![A-Za-z0-9]){re.escape(spec.model)}(?![A-Za-z0-9])", name, re.I):
        return name
    return spec.model


# -- wire constraints --------------------------------------------------------------------

@cache
def _limits(cls: type) -> dict[str, tuple[float | None, float | None, int | None]]:
    """Per field of a wire Struct: (min, max, max string length) from its declared Meta."""
    out: dict[str, tuple[float | None, float | None, int | None]] = {}
    for f in msgspec.inspect.type_info(cls).fields:
        types = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        for t in types:
            if isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType):
                lo = t.ge if t.ge is not None else t.gt
                hi = t.le if t.le is not None else t.lt
                out[f.name] = (lo, hi, None)
            elif isinstance(t, msgspec.inspect.StrType):
                out[f.name] = (None, None, t.max_length)
    return out


def fit(cls: type, **values: Any) -> Any:
    """Build a wire Struct, nulling numbers outside its constraints (NVML's 2^64-1 "not
    available" among them) and cutting over-long text, so every frame decodes."""
    limits = _limits(cls)
    for name, v in values.items():
        if name not in limits or v is None or isinstance(v, bool):
            continue
        lo, hi, max_len = limits[name]
        if isinstance(v, str):
            if max_len is not None and len(v) > max_len:
                values[name] = v[:max_len]
        elif isinstance(v, int | float) and (
                (isinstance(v, float) and not math.isfinite(v))
                or (lo is not None and v < lo) or (hi is not None and v > hi)):
            values[name] = None
    return cls(**values)


# -- the collector -----------------------------------------------------------------------

class NvmlCollector(Collector):
    name = "nvml"

    def __init__(self, options: CollectorOptions | None = None, *,
                 nvml: Any | None = None) -> None:
        super().__init__(options)
        self._nvml_override = nvml  # tests and the fixture recorder pass a stand-in module
        self._nv: Any = None
        self._initialised = False
        self._thread: threading.Thread | None = None
        self._event_set: Any = None
        self._reset()

    def _reset(self) -> None:
        """Per-session state: a reopened collector starts from scratch."""
        self._handles: list[Any] = []
        self._info: list[DeviceInfo] = []
        self._unsupported: list[set[str]] = []
        self._mig_mode: list[bool | None] = []
        self._lost: set[int] = set()
        self._renamed: dict[str, str] = {}
        self._proc_names: dict[int, str] = {}
        self._events: queue.SimpleQueue[CollectorEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._by_handle: dict[object, int] = {}

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def probe(cls, options: CollectorOptions) -> bool:
        try:
            nv = importlib.import_module("pynvml")
            nv.nvmlInit()
            try:
                return nv.nvmlDeviceGetCount() > 0
            finally:
                nv.nvmlShutdown()
        except Exception:  # probe must never raise: no library, no driver, no GPU -> False
            return False

    def open(self) -> SystemInfo:
        self.close()
        self._reset()
        nv = self._nv = self._load()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise CollectorError(self._open_message(exc)) from None
        self._initialised = True
        try:
            return self._open_devices()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=4 * _EVENT_WAIT_MS / 1000)
            if self._thread.is_alive():
                # Freeing the set under a waiting thread is a use-after-free in the driver.
                log.warning("nvml: event thread did not stop; leaving its event set")
                self._event_set = None
            self._thread = None
        nv = self._nv
        if self._event_set is not None:
            with contextlib.suppress(Exception):
                nv.nvmlEventSetFree(self._event_set)
            self._event_set = None
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(Exception):
                nv.nvmlShutdown()

    def poll_events(self) -> list[CollectorEvent]:
        out: list[CollectorEvent] = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._events.get_nowait())
        return out

    @property
    def lost(self) -> frozenset[int]:
        """Indexes of devices that fell off the bus during this session."""
        return frozenset(self._lost)

    # -- open ----------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._nvml_override is not None:
            return self._nvml_override
        try:
            return importlib.import_module("pynvml")
        except ImportError as exc:
            raise CollectorError(
                f"nvml: nvidia-ml-py is not installed (pip install nvidia-ml-py): {exc}"
            ) from None

    @staticmethod
    def _open_message(exc: Exception) -> str:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        hint = _OPEN_ERRORS.get(type(exc).__name__, "NVML initialisation failed")
        return f"nvml: {hint} (NVML: {detail})"

    def _open_devices(self) -> SystemInfo:
        nv = self._nv
        try:
            count = nv.nvmlDeviceGetCount()
        except nv.NVMLError as exc:
            raise CollectorError(self._open_message(exc)) from None
        if count <= 0:
            raise CollectorError("nvml: NVML found no NVIDIA GPUs on this node")
        for i in range(count):
            self._unsupported.append(set())
            self._mig_mode.append(None)
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(i)
            except nv.NVMLError as exc:
                if isinstance(exc, nv.NVMLError_GpuIsLost):
                    self._mark_lost(i, time.time(), exc)
                else:
                    # A GPU we may not open (cgroup, permissions) stays listed but silent.
                    log.warning("nvml: GPU %d: cannot get a handle (%s)", i, exc)
                    self._unsupported[i].add("*")
                handle = None
            self._handles.append(handle)
            self._info.append(self._static(i, handle))
            if handle is not None:
                self._by_handle[handle_key(handle)] = i
        driver = _text(self._system_call("nvmlSystemGetDriverVersion"))
        cuda = self._system_call("nvmlSystemGetCudaDriverVersion")
        # 12040 -> "12.4"
        runtime = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) and cuda else None
        self._start_events()
        return SystemInfo(driver_version=driver, runtime_version=runtime, devices=tuple(self._info))

    def _system_call(self, fname: str) -> Any:
        try:
            return getattr(self._nv, fname)()
        except (self._nv.NVMLError, AttributeError) as exc:
            log.warning("nvml: %s failed (%s)", fname, exc)
            return None

    def _static(self, i: int, h: Any) -> DeviceInfo:
        """Facts read once per device; any of them may be unknown."""
        nv = self._nv
        placeholder = f"GPU-unknown-{i}"
        if h is None or i in self._lost:
            return fit(DeviceInfo, uuid=placeholder, index=i, vendor="nvidia", model="unknown",
                       name="unknown", pool="nvidia")
        try:
            name = _text(self._call(i, "name", "nvmlDeviceGetName", h)) or "NVIDIA GPU"
            uuid = _text(self._call(i, "uuid", "nvmlDeviceGetUUID", h)) or placeholder
            pci = self._call(i, "pci", "nvmlDeviceGetPciInfo", h)
            cc = self._call(i, "compute_capability", "nvmlDeviceGetCudaComputeCapability", h)
            mem = self._call(i, "memory", "nvmlDeviceGetMemoryInfo", h)
            limits = self._call(i, "power_limits", "nvmlDeviceGetPowerManagementLimitConstraints",
                                h)
            return fit(
                DeviceInfo, uuid=uuid, index=i, vendor="nvidia", model=model_of(name), name=name,
                pool="nvidia",
                mem_total_mib=None if mem is None else mem.total / _MIB,
                pci_bus_id=None if pci is None else _text(pci.busId),
                serial=_text(self._call(i, "serial", "nvmlDeviceGetSerial", h)),
                vbios=_text(self._call(i, "vbios", "nvmlDeviceGetVbiosVersion", h)),
                compute_capability=None if cc is None else f"{cc[0]}.{cc[1]}",
                power_limit_max_w=None if limits is None else limits[1] / 1000,
                slowdown_temp_c=self._call(i, "slowdown_temp", "nvmlDeviceGetTemperatureThreshold",
                                           h, nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
                shutdown_temp_c=self._call(i, "shutdown_temp", "nvmlDeviceGetTemperatureThreshold",
                                           h, nv.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN),
                pcie_gen_max=self._call(i, "pcie_gen_max", "nvmlDeviceGetMaxPcieLinkGeneration", h),
                pcie_width_max=self._call(i, "pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth", h),
            )
        except _DeviceLost as exc:
            self._mark_lost(i, time.time(), exc.__cause__ or exc)
            return fit(DeviceInfo, uuid=placeholder, index=i, vendor="nvidia", model="unknown",
                       name="unknown", pool="nvidia")

    # -- calls ---------------------------------------------------------------------------

    def _call(self, i: int, metric: str, fname: str, *args: Any) -> Any:
        """One NVML call for device `i`: its value, or None when it failed.

        NotSupported / FunctionNotFound / NotFound are remembered under `metric` and never
        asked again; other errors give None for this tick only. GpuIsLost raises _DeviceLost.
        """
        unsupported = self._unsupported[i]
        if metric in unsupported or "*" in unsupported:
            return None
        nv = self._nv
        name = self._renamed.get(fname, fname)
        fn = getattr(nv, name, None)
        mismatch = getattr(nv, "NVMLLibraryMismatchError", _NoLibraryMismatch)
        try:
            if fn is None:  # a binding too old to have the function at all
                raise nv.NVMLError_FunctionNotFound()
            return fn(*args)
        except nv.NVMLError_GpuIsLost as exc:
            raise _DeviceLost(str(exc)) from exc
        except (nv.NVMLError_FunctionNotFound, mismatch):
            older = _FALLBACK.get(name)
            if older is not None:  # the library predates this symbol: use the older one
                self._renamed[fname] = older
                return self._call(i, metric, fname, *args)
            unsupported.add(metric)
            return None
        except (nv.NVMLError_NotSupported, nv.NVMLError_NotFound):
            unsupported.add(metric)
            return None
        except nv.NVMLError as exc:
            log.debug("nvml: GPU %d: %s: %s", i, fname, exc)
            return None

    def _mark_lost(self, i: int, now: float, exc: BaseException) -> None:
        if i in self._lost:
            return
        self._lost.add(i)
        who = self._info[i].uuid if i < len(self._info) else f"index {i}"
        self._events.put(CollectorEvent(
            ts=now, event="device-lost", index=i,
            message=f"GPU {i} ({who}) is lost: it fell off the bus (NVML: {exc})",
        ))

    # -- sample --------------------------------------------------------------------------

    def sample(self, now: float) -> list[DeviceSample]:
        out = []
        for i, info in enumerate(self._info):
            if i not in self._lost and self._handles[i] is not None:
                try:
                    out.append(self._sample_device(i, self._handles[i]))
                    continue
                except _DeviceLost as exc:
                    self._mark_lost(i, now, exc.__cause__ or exc)
            out.append(fit(DeviceSample, uuid=info.uuid, index=i, vendor=info.vendor,
                           model=info.model, pool=info.pool))
        live = {p.pid for s in out for p in s.processes}
        self._proc_names = {pid: n for pid, n in self._proc_names.items() if pid in live}
        return out

    def _sample_device(self, i: int, h: Any) -> DeviceSample:
        nv, call = self._nv, self._call
        info = self._info[i]
        m: dict[str, Any] = {}
        util = call(i, "util", "nvmlDeviceGetUtilizationRates", h)
        if util is not None:
            m["util_pct"], m["mem_util_pct"] = util.gpu, util.memory
        mem = call(i, "memory", "nvmlDeviceGetMemoryInfo", h)
        if mem is not None:
            m["mem_used_mib"], m["mem_total_mib"] = mem.used / _MIB, mem.total / _MIB
        m["temp_c"] = call(i, "temp_c", "nvmlDeviceGetTemperature", h, nv.NVML_TEMPERATURE_GPU)
        m["power_w"] = _scaled(call(i, "power_w", "nvmlDeviceGetPowerUsage", h), 1000)
        m["power_limit_w"] = _scaled(
            call(i, "power_limit_w", "nvmlDeviceGetEnforcedPowerLimit", h), 1000)
        m["sm_clock_mhz"] = call(i, "sm_clock_mhz", "nvmlDeviceGetClockInfo", h, nv.NVML_CLOCK_SM)
        m["mem_clock_mhz"] = call(i, "mem_clock_mhz", "nvmlDeviceGetClockInfo", h,
                                  nv.NVML_CLOCK_MEM)
        pstate = call(i, "pstate", "nvmlDeviceGetPerformanceState", h)
        m["pstate"] = None if pstate == _PSTATE_UNKNOWN else pstate
        # Passively cooled SXM parts raise NotSupported: cached after the first tick.
        m["fan_pct"] = call(i, "fan_pct", "nvmlDeviceGetFanSpeed", h)
        reasons = call(i, "throttle_reasons", "nvmlDeviceGetCurrentClocksEventReasons", h)
        if reasons is not None:
            m["throttle_reasons"] = tuple(n for bit, n in CLOCK_EVENT_REASONS if reasons & bit)
        m["pcie_gen"] = call(i, "pcie_gen", "nvmlDeviceGetCurrPcieLinkGeneration", h)
        m["pcie_width"] = call(i, "pcie_width", "nvmlDeviceGetCurrPcieLinkWidth", h)
        m.update(self._counters(i, h))
        mig = call(i, "mig_mode", "nvmlDeviceGetMigMode", h)
        if mig is not None:
            m["mig_mode"] = mig[0] == nv.NVML_DEVICE_MIG_ENABLE
            if m["mig_mode"]:
                migs = self._mig_devices(i, h)
                m["mig_devices"] = None if migs is None else tuple(migs)
            if self._mig_mode[i] is not None and self._mig_mode[i] != m["mig_mode"]:
                # What MIG hides (utilisation, row remap) comes back when it is turned off.
                self._unsupported[i].clear()
            self._mig_mode[i] = m["mig_mode"]
        m["processes"] = tuple(self._processes(i, h))
        return fit(DeviceSample, uuid=info.uuid, index=i, vendor=info.vendor, model=info.model,
                   pool=info.pool, **m)

    def _counters(self, i: int, h: Any) -> dict[str, Any]:
        """The FIELDS counters: one nvmlDeviceGetFieldValues call, else individual calls."""
        nv = self._nv
        unsupported = self._unsupported[i]
        wanted = [fid for fid, metric in FIELDS.items() if metric not in unsupported]
        if not wanted:
            return {}
        if "field_values" in unsupported:
            return self._counters_one_by_one(i, h)
        try:
            entries = nv.nvmlDeviceGetFieldValues(h, wanted)
        except nv.NVMLError_GpuIsLost as exc:
            raise _DeviceLost(str(exc)) from exc
        except (nv.NVMLError_NotSupported, nv.NVMLError_FunctionNotFound, AttributeError):
            unsupported.add("field_values")
            return self._counters_one_by_one(i, h)
        except nv.NVMLError as exc:
            log.debug("nvml: GPU %d: nvmlDeviceGetFieldValues: %s", i, exc)
            return {}
        out: dict[str, Any] = {}
        for entry in entries:
            metric = FIELDS.get(entry.fieldId)
            if metric is None:
                continue
            ret = entry.nvmlReturn
            if ret == _GPU_IS_LOST:
                raise _DeviceLost("GPU is lost")
            if ret in _ENTRY_UNSUPPORTED:
                unsupported.add(metric)
            if ret != _SUCCESS:
                continue
            out[metric] = _field_metric(metric, _field_value(entry))
        return out

    def _counters_one_by_one(self, i: int, h: Any) -> dict[str, Any]:
        nv, call = self._nv, self._call
        corrected, uncorrected = (nv.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                                  nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED)
        out: dict[str, Any] = {}
        for metric, etype, counter in (
            ("ecc_sbe_volatile", corrected, nv.NVML_VOLATILE_ECC),
            ("ecc_dbe_volatile", uncorrected, nv.NVML_VOLATILE_ECC),
            ("ecc_sbe_aggregate", corrected, nv.NVML_AGGREGATE_ECC),
            ("ecc_dbe_aggregate", uncorrected, nv.NVML_AGGREGATE_ECC),
        ):
            out[metric] = call(i, metric, "nvmlDeviceGetTotalEccErrors", h, etype, counter)
        rows = call(i, "remapped_rows", "nvmlDeviceGetRemappedRows", h)
        if rows is not None:
            corr, unc, pending, failure = rows
            out.update(remapped_rows_correctable=corr, remapped_rows_uncorrectable=unc,
                       remap_pending=bool(pending), remap_failure=bool(failure))
        out["pcie_replays"] = call(i, "pcie_replays", "nvmlDeviceGetPcieReplayCounter", h)
        out["energy_mj"] = call(i, "energy_mj", "nvmlDeviceGetTotalEnergyConsumption", h)
        # Memory temperature and the recovery action exist only as fields.
        return {k: (None if v in _NOT_AVAILABLE else v) for k, v in out.items()}

    def _mig_devices(self, i: int, h: Any) -> list[MigDevice] | None:
        nv, call = self._nv, self._call
        count = call(i, "mig_devices", "nvmlDeviceGetMaxMigDeviceCount", h)
        if count is None:
            return None
        out = []
        for j in range(count):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
            except nv.NVMLError_GpuIsLost as exc:
                raise _DeviceLost(str(exc)) from exc
            except nv.NVMLError:
                continue  # an empty slot
            uuid = _text(call(i, "mig_uuid", "nvmlDeviceGetUUID", mh))
            if uuid is None:
                continue
            mem = call(i, "mig_memory", "nvmlDeviceGetMemoryInfo", mh)
            out.append(fit(
                MigDevice, uuid=uuid,
                gpu_instance_id=call(i, "mig_gi", "nvmlDeviceGetGpuInstanceId", mh),
                compute_instance_id=call(i, "mig_ci", "nvmlDeviceGetComputeInstanceId", mh),
                mem_used_mib=None if mem is None else mem.used / _MIB,
                mem_total_mib=None if mem is None else mem.total / _MIB,
            ))
        return out[:64]

    def _processes(self, i: int, h: Any) -> list[Process]:
        procs: dict[int, int | None] = {}
        for metric, fname in (("procs_compute", "nvmlDeviceGetComputeRunningProcesses"),
                              ("procs_graphics", "nvmlDeviceGetGraphicsRunningProcesses")):
            for p in self._call(i, metric, fname, h) or ():
                used = p.usedGpuMemory  # None when NVML cannot say (MIG, WDDM)
                if used in _NOT_AVAILABLE:
                    used = None
                # A process in both lists is one process; keep the larger figure.
                if p.pid not in procs or (used is not None and used > (procs[p.pid] or -1)):
                    procs[p.pid] = used
        return [
            fit(Process, pid=pid, name=self._proc_name(pid),
                used_mib=None if used is None else used / _MIB)
            for pid, used in sorted(procs.items())
        ][:1024]

    def _proc_name(self, pid: int) -> str:
        name = self._proc_names.get(pid)
        if name is None:
            try:
                name = _text(self._nv.nvmlSystemGetProcessName(pid))
            except self._nv.NVMLError:
                name = None
            if name is None:  # NVML could not say; the host /proc can, without hostPID not
                try:
                    with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                        name = f.read().strip() or None
                except OSError:
                    name = None
            name = self._proc_names[pid] = name or "?"
        return name

    # -- events --------------------------------------------------------------------------

    def _start_events(self) -> None:
        nv = self._nv
        want = (nv.nvmlEventTypeXidCriticalError | nv.nvmlEventTypeDoubleBitEccError
                | getattr(nv, "nvmlEventTypeGpuRecoveryAction", 0))
        try:
            event_set = nv.nvmlEventSetCreate()
        except (nv.NVMLError, AttributeError) as exc:
            log.warning("nvml: no event set, Xids will not be reported (%s)", exc)
            return
        registered = 0
        for i, h in enumerate(self._handles):
            if h is None or i in self._lost:
                continue
            try:
                mask = nv.nvmlDeviceGetSupportedEventTypes(h) & want
                if mask:
                    nv.nvmlDeviceRegisterEvents(h, mask, event_set)
                    registered += 1
            except nv.NVMLError as exc:
                log.warning("nvml: GPU %d: Xid events unavailable (%s)", i, exc)
        if not registered:
            with contextlib.suppress(Exception):
                nv.nvmlEventSetFree(event_set)
            return
        self._event_set = event_set
        self._stop.clear()
        self._thread = threading.Thread(target=self._event_loop, name="nvml-events", daemon=True)
        self._thread.start()

    def _event_loop(self) -> None:
        nv = self._nv
        while not self._stop.is_set():
            try:
                ev = nv.nvmlEventSetWait(self._event_set, _EVENT_WAIT_MS)
            except nv.NVMLError_Timeout:
                continue
            except nv.NVMLError as exc:
                # GpuIsLost here names no device: the next sample finds which one. Back off so
                # a wait that keeps failing at once does not spin.
                log.debug("nvml: nvmlEventSetWait: %s", exc)
                self._stop.wait(1.0)
                continue
            try:
                self._on_event(ev)
            except Exception:  # a malformed event must not end the thread
                log.exception("nvml: could not handle an NVML event")

    def _on_event(self, ev: Any) -> None:
        nv = self._nv
        index = self._event_index(ev.device)
        if index is None:
            log.warning("nvml: event 0x%x for an unknown device dropped", ev.eventType)
            return
        now = time.time()
        data = int(ev.eventData)
        if ev.eventType & nv.nvmlEventTypeXidCriticalError:
            self._events.put(CollectorEvent(
                ts=now, event="xid", index=index, code=data,
                message=f"Xid {data} ({xid.lookup(data).mnemonic})"))
        elif ev.eventType & nv.nvmlEventTypeDoubleBitEccError:
            self._events.put(CollectorEvent(
                ts=now, event="ecc-dbe", index=index,
                message="uncorrectable (double-bit) ECC error"))
        elif ev.eventType & getattr(nv, "nvmlEventTypeGpuRecoveryAction", 0):
            # The driver logs the same change as Xid 154; report it as that Xid.
            action = RECOVERY_ACTIONS[data] if 0 <= data < len(RECOVERY_ACTIONS) else str(data)
            self._events.put(CollectorEvent(
                ts=now, event="xid", index=index, code=154,
                message=f"Xid 154 ({xid.lookup(154).mnemonic}): recovery action {action}"))

    def _event_index(self, handle: Any) -> int | None:
        index = self._by_handle.get(handle_key(handle))
        if index is not None:
            return index
        # Not one of our handles (a MIG instance, or a new handle object): match by UUID.
        nv = self._nv
        with contextlib.suppress(Exception):
            if nv.nvmlDeviceIsMigDeviceHandle(handle):
                handle = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
        with contextlib.suppress(Exception):
            uuid = _text(nv.nvmlDeviceGetUUID(handle))
            for info in self._info:
                if info.uuid == uuid:
                    return info.index
        return None


def _field_value(entry: Any) -> Any:
    member = _VALUE_MEMBER.get(entry.valueType)
    if member is None:
        return None
    value = getattr(entry.value, member)
    return None if value in _NOT_AVAILABLE else value


def _field_metric(metric: str, value: Any) -> Any:
    if value is None:
        return None
    if metric in ("remap_pending", "remap_failure"):
        return bool(value)
    if metric == "recovery_action":
        v = int(value)
        return RECOVERY_ACTIONS[v] if 0 <= v < len(RECOVERY_ACTIONS) else f"action-{v}"
    if metric == "mem_temp_c":
        return float(value)
    return int(value)
