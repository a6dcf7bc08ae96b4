"""Running a vendor SMI tool, and the collector base the four domestic collectors share.

The tools are the only interface every domestic vendor ships, and they are slow and can hang
(a wedged driver leaves `npu-smi` in the kernel), so every run has a timeout and every
failure becomes one CollectorError line naming the tool. Parsing lives in `agents/parsers/`
(pure); this module turns readings into wire types and drops any value the wire would reject.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from agents import catalog
from agents.collectors.base import Collector, CollectorError, CollectorOptions, SystemInfo
from agents.parsers.errors import ParseError, neutralise
from agents.parsers.readings import DeviceReading, ToolReading, clean_text
from agents.wire import MAX_DEVICES, MAX_PROCESSES, DeviceInfo, DeviceSample, Process

# Seconds to wait for a killed tool to be reaped; one stuck in the kernel is left behind.
_REAP_S = 1.0
# How much of a failed tool's output is kept for a collector to read (ppu-smi's refusals).
_KEEP_OUTPUT = 64 * 1024
# Reported memory further than this from the catalog's is worth a warning: usable memory is a
# little under the nominal size (a 24 GiB 310P reports 21534 MiB), a different part is not.
_MEM_TOLERANCE = 0.2

log = logging.getLogger("fleetops.agent.smi")


class ToolExitError(CollectorError):
    """The tool ran and failed; `output` is what it said (stderr, then stdout), for callers
    that can act on it, e.g. a query refused for one field."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def run_tool(tool: str, path: str, args: Sequence[str], timeout_s: float) -> str:
    """stdout of `path args...`, decoded; CollectorError (one line, naming `tool`) otherwise."""
    try:
        proc = subprocess.Popen(
            [path, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Own process group, so a timeout kills the tool's children too (a wrapper
            # script's `sleep` would otherwise keep running, holding the pipes).
            start_new_session=True,
            # The parsers read the English layout.
            env={**os.environ, "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise CollectorError(f"{tool}: not found: {neutralise(path)}") from None
    except (OSError, ValueError) as exc:  # not executable, a directory, a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CollectorError(f"{tool}: cannot run {neutralise(path)}: {reason}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise CollectorError(f"{tool}: timed out after {timeout_s:g}s") from None
    if proc.returncode != 0:
        status = (
            f"killed by signal {-proc.returncode}" if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        detail = _first_line(err) or _first_line(out)
        said = (err[:_KEEP_OUTPUT] + b"\n" + out[:_KEEP_OUTPUT]).decode("utf-8", errors="replace")
        raise ToolExitError(f"{tool}: {status}" + (f": {detail}" if detail else ""), said)
    return out.decode("utf-8", errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # already gone, or a setuid tool we may not signal as a group
        proc.kill()
    try:
        proc.communicate(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        # Uninterruptible (D state): nothing more to do from user space.
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return neutralise(text.splitlines()[0], 160) if text else ""


def _bounded(value: float | None, lo: float, hi: float) -> float | None:
    # The wire rejects the whole frame for one bad number; a garbage reading becomes
    # "cannot report" instead (NaN fails the comparison too).
    return value if value is not None and lo <= value <= hi else None


_MEM_WARNED: set[str] = set()  # catalog entries a memory mismatch was logged for


class SmiCollector(Collector):
    """A collector that reads a vendor SMI tool: run it, parse it, convert the readings.

    Subclasses name the tool (`tool_default`, `tool_env`), its arguments, the vendor, and
    the parser. `open()` runs the tool once for the static facts; `sample()` runs it again.
    """

    vendor: ClassVar[str] = ""
    tool_args: ClassVar[tuple[str, ...]] = ()

    @staticmethod
    @abstractmethod
    def parse(text: str) -> ToolReading: ...

    @classmethod
    def probe(cls, options: CollectorOptions) -> bool:
        """The tool is there: on PATH by name, or an executable file at the given path."""
        try:
            path = cls.tool_path(options)
            if not path:
                return False
            if os.sep in path:
                return os.path.isfile(path) and os.access(path, os.X_OK)
            return shutil.which(path) is not None
        except (OSError, ValueError):
            return False

    @property
    def tool(self) -> str:
        return self.tool_default or self.name

    def run(self, path: str) -> str:
        """The tool's output for one reading (a collector may retry with other arguments)."""
        return run_tool(self.tool, path, self.tool_args, self.options.smi_timeout_s)

    def read(self) -> ToolReading:
        """One run of the tool, parsed; CollectorError for any failure."""
        path = self.tool_path(self.options)
        if not path:
            raise CollectorError(f"{self.tool}: no tool path configured")
        text = self.run(path)
        try:
            reading = self.parse(text)
        except ParseError as exc:
            raise CollectorError(str(exc)) from None
        seen: set[str] = set()
        for device in reading.devices:
            device.uuid = clean_text(device.uuid) or f"{self.name}-{device.index}"
            if device.uuid in seen:
                raise CollectorError(f"{self.tool}: device {neutralise(device.uuid)} listed twice")
            seen.add(device.uuid)
        # The wire caps a report at MAX_DEVICES; more than that is not a real node.
        reading.devices = reading.devices[:MAX_DEVICES]
        return reading

    def open(self) -> SystemInfo:
        reading = self.read()
        return SystemInfo(
            driver_version=clean_text(reading.driver_version or "") or None,
            runtime_version=None,
            devices=tuple(self.device_info(d) for d in reading.devices),
        )

    def sample(self, now: float) -> list[DeviceSample]:
        return [self.device_sample(d) for d in self.read().devices]

    def model_of(self, name: str) -> tuple[str, catalog.ModelSpec | None]:
        """Catalog key for a tool's model name, when it is this vendor's; else the name."""
        spec = catalog.find_printed(name)
        if spec is not None and spec.vendor == self.vendor:
            return spec.model, spec
        return clean_text(name) or "unknown", None

    def device_info(self, d: DeviceReading) -> DeviceInfo:
        model, spec = self.model_of(d.name)
        if spec is not None:
            self.check_memory(d, spec)
        return DeviceInfo(
            uuid=d.uuid,
            index=d.index,
            vendor=self.vendor,
            model=model,
            name=clean_text(d.name) or model,
            pool="domestic",
            mem_total_mib=_bounded(d.mem_total_mib, 0, 2**40),
            pci_bus_id=clean_text(d.pci_bus_id or "") or None,
            power_limit_max_w=_bounded(d.power_limit_w, 0, 100_000)
            or (spec.power_limit_w if spec else None),
            # The tools print no thermal limits; the catalog's datasheet values stand in.
            slowdown_temp_c=spec.slowdown_temp_c if spec else None,
            shutdown_temp_c=spec.shutdown_temp_c if spec else None,
        )

    def check_memory(self, d: DeviceReading, spec: catalog.ModelSpec) -> None:
        """Warn (once per catalog entry) when a device reports memory its catalog entry does
        not have. The reported size is what goes on the wire; the catalog is only a default."""
        reported = d.mem_total_mib
        if not reported or abs(reported - spec.mem_mib) <= _MEM_TOLERANCE * spec.mem_mib:
            return
        if spec.model in _MEM_WARNED:
            return
        _MEM_WARNED.add(spec.model)
        log.warning("%s: %s reports %d MiB but the catalog's %s has %d MiB; using the reported "
                    "size (agents/data/devices.toml may need an entry for this part)", self.tool,
                    neutralise(d.name, 40), round(reported), spec.model, spec.mem_mib)

    def device_sample(self, d: DeviceReading) -> DeviceSample:
        processes = [
            Process(pid=p.pid, name=clean_text(p.name), used_mib=_bounded(p.used_mib, 0, 2**40))
            for p in d.processes or ()
            if 0 <= p.pid <= 2**31
        ]
        return DeviceSample(
            uuid=d.uuid,
            index=d.index,
            vendor=self.vendor,
            model=self.model_of(d.name)[0],
            pool="domestic",
            util_pct=_bounded(d.util_pct, 0, 100),
            mem_util_pct=_bounded(d.mem_util_pct, 0, 100),
            mem_used_mib=_bounded(d.mem_used_mib, 0, 2**40),
            mem_total_mib=_bounded(d.mem_total_mib, 0, 2**40),
            temp_c=_bounded(d.temp_c, -100, 300),
            power_w=_bounded(d.power_w, 0, 100_000),
            power_limit_w=_bounded(d.power_limit_w, 0, 100_000),
            fan_pct=_bounded(d.fan_pct, 0, 100),
            vendor_health=clean_text(d.health or "") or None,
            processes=tuple(processes[:MAX_PROCESSES]),
        )
