"""Simulated devices for demos and tests, with fault injection.

Deterministic: the same seed and the same number of samples give the same numbers, whatever
the wall clock did (dynamics advance one step per sample; only fault timing reads `now`).
Dynamics: utilisation is a random walk pulled toward the load of the work placed on the
device, power follows utilisation, temperature follows power with a lag.

Faults (`--sim-fault KIND:DEVICE:AFTER_SECONDS`, repeatable) produce what a real device would:
- `xid<N>`: an Xid event; Xid 48 also bumps the DBE counters, Xid 79 also loses the device;
- `ecc-dbe`: an uncorrectable ECC error (counters, plus Xid 48 on Nvidia parts);
- `thermal`: temperature climbs past the slowdown threshold and the clocks throttle;
- `lost`: the device falls off the bus; every metric becomes null.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

from agents import catalog, xid
from agents.collectors.base import (
    Collector,
    CollectorError,
    CollectorEvent,
    CollectorOptions,
    SystemInfo,
)
from agents.wire import DeviceInfo, DeviceSample, Process

# Per-model details the catalog does not carry: (sm max MHz, mem MHz, PCIe gen, PCIe width).
_CLOCKS = {
    "H100": (1980, 2619, 5, 16),
    "H20": (1980, 2619, 5, 16),
    "A100": (1410, 1593, 4, 16),
    "PPU": (1800, 1600, 5, 16),
    "910B": (1800, 1600, 4, 16),
    "MLU590": (1500, 1600, 5, 16),
    "DCU": (1500, 1600, 4, 16),
}
_FAULT_RE = re.compile(r"^(xid(\d{1,4})|ecc-dbe|thermal|lost):(\d{1,4}):(\d+(?:\.\d+)?)$")
_AMBIENT_C = 30.0


@dataclass(frozen=True)
class Fault:
    kind: str  # "xid", "ecc-dbe", "thermal", "lost"
    device: int
    after_s: float
    xid: int | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        m = _FAULT_RE.match(text.strip().lower())
        if not m:
            raise CollectorError(
                f"bad --sim-fault {text!r}: expected KIND:DEVICE:AFTER_SECONDS with KIND one of "
                "xid<N>, ecc-dbe, thermal, lost (e.g. xid79:3:120)"
            )
        number = int(m.group(2)) if m.group(2) else None
        kind = "xid" if number is not None else m.group(1)
        return cls(kind, int(m.group(3)), float(m.group(4)), number)


@dataclass
class SimProcess:
    pid: int
    name: str
    mem_mib: float
    util_pct: float


@dataclass
class _Device:
    info: DeviceInfo
    util: float = 0.0
    mem_used: float = 0.0
    temp: float = _AMBIENT_C + 5
    power: float = 0.0
    energy_mj: int = 0
    sbe_vol: int = 0
    dbe_vol: int = 0
    sbe_agg: int = 0
    dbe_agg: int = 0
    replays: int = 0
    thermal: bool = False
    lost: bool = False
    processes: list[SimProcess] = field(default_factory=list)


class SimCollector(Collector):
    name = "sim"

    def __init__(self, options: CollectorOptions | None = None) -> None:
        super().__init__(options)
        opts = self.options
        try:
            self.spec = catalog.spec(opts.sim_model)
        except KeyError as exc:
            raise CollectorError(f"sim: {exc.args[0]}") from None
        s = self.spec
        if None in (s.power_limit_w, s.slowdown_temp_c, s.shutdown_temp_c):
            # The simulation draws power and heat from these; a catalog entry without a
            # datasheet figure for them cannot be simulated faithfully.
            able = [k for k, m in catalog.models().items()
                    if None not in (m.power_limit_w, m.slowdown_temp_c, m.shutdown_temp_c)]
            raise CollectorError(f"sim: model {s.model} has no power or thermal figures in the "
                                 f"catalog; simulate one of {', '.join(able)}")
        if not 1 <= opts.sim_devices <= 64:
            raise CollectorError(f"sim: --sim-devices must be 1..64, got {opts.sim_devices}")
        self.faults = [Fault.parse(f) for f in opts.sim_faults]
        for f in self.faults:
            if f.device >= opts.sim_devices:
                raise CollectorError(
                    f"sim: fault on device {f.device} but only {opts.sim_devices} devices"
                )
        self.rng = random.Random(opts.sim_seed)
        self._devices: list[_Device] = []
        self._events: list[CollectorEvent] = []
        self._fired: set[int] = set()
        self._t0: float | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> SystemInfo:
        s = self.spec
        _sm, _mem, gen, width = _CLOCKS.get(s.model, (1500, 1600, 4, 16))
        for i in range(self.options.sim_devices):
            digest = hashlib.sha1(f"{self.options.sim_seed}:{s.model}:{i}".encode()).hexdigest()
            uuid = f"{'GPU' if s.vendor == 'nvidia' else s.model}-{digest[:8]}-{digest[8:12]}-" \
                   f"{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
            info = DeviceInfo(
                uuid=uuid, index=i, vendor=s.vendor, model=s.model, name=s.name, pool=s.pool,
                mem_total_mib=float(s.mem_mib), pci_bus_id=f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                serial=f"SIM{digest[:10].upper()}", power_limit_max_w=s.power_limit_w,
                slowdown_temp_c=s.slowdown_temp_c, shutdown_temp_c=s.shutdown_temp_c,
                pcie_gen_max=gen, pcie_width_max=width,
                compute_capability="9.0" if s.model in ("H100", "H20") else
                ("8.0" if s.model == "A100" else None),
            )
            dev = _Device(info=info, power=s.power_limit_w * 0.12)
            self._devices.append(dev)
        self._seed_load()
        driver = "550.54.15" if s.vendor == "nvidia" else "sim-1.0"
        runtime = "12.4" if s.vendor == "nvidia" else None
        return SystemInfo(driver_version=driver, runtime_version=runtime,
                          devices=tuple(d.info for d in self._devices))

    def _seed_load(self) -> None:
        # Without a scheduler telling us what runs where, make a believable node: most devices
        # busy with one training or inference process, a few idle.
        for dev in self._devices:
            if self.rng.random() < 0.75:
                kind = self.rng.choice(["train.py", "infer_server", "finetune.py"])
                mem = dev.info.mem_total_mib * self.rng.uniform(0.35, 0.9)
                dev.processes = [SimProcess(self.rng.randint(1000, 60000), f"python {kind}",
                                            round(mem), self.rng.uniform(60, 98))]
                dev.util = dev.processes[0].util_pct

    def set_workload(self, index: int, processes: list[SimProcess]) -> None:
        """Replace what runs on device `index` (the demo's scheduler places jobs this way)."""
        self._devices[index].processes = list(processes)

    def poll_events(self) -> list[CollectorEvent]:
        events, self._events = self._events, []
        return events

    # -- sampling -----------------------------------------------------------------------

    def sample(self, now: float) -> list[DeviceSample]:
        if self._t0 is None:
            self._t0 = now
        self._fire_faults(now, now - self._t0)
        return [self._step(d) for d in self._devices]

    def _fire_faults(self, now: float, elapsed: float) -> None:
        for n, fault in enumerate(self.faults):
            if n in self._fired or elapsed < fault.after_s:
                continue
            self._fired.add(n)
            dev = self._devices[fault.device]
            if dev.lost:
                continue
            if fault.kind == "xid":
                self._xid(now, dev, fault.xid or 0)
            elif fault.kind == "ecc-dbe":
                if dev.info.vendor == "nvidia":
                    self._xid(now, dev, 48)  # the driver reports a DBE as Xid 48
                else:
                    dev.dbe_vol += 1
                    dev.dbe_agg += 1
            elif fault.kind == "thermal":
                dev.thermal = True
            elif fault.kind == "lost":
                self._lose(now, dev)

    def _xid(self, now: float, dev: _Device, n: int) -> None:
        info = xid.lookup(n) if dev.info.vendor == "nvidia" else None
        label = f" ({info.mnemonic})" if info else ""
        self._events.append(CollectorEvent(now, "xid", dev.info.index, f"Xid {n}{label}", n))
        if n == 48:
            dev.dbe_vol += 1
            dev.dbe_agg += 1
        elif n == 79:
            self._lose(now, dev)

    def _lose(self, now: float, dev: _Device) -> None:
        dev.lost = True
        self._events.append(CollectorEvent(
            now, "device-lost", dev.info.index, "GPU has fallen off the bus", None))

    def _step(self, d: _Device) -> DeviceSample:
        info = d.info
        base = DeviceSample(uuid=info.uuid, index=info.index, vendor=info.vendor,
                            model=info.model, pool=info.pool)
        if d.lost:
            return base
        rng, s = self.rng, self.spec
        load = min(100.0, sum(p.util_pct for p in d.processes))
        d.util = _clamp(d.util + (load - d.util) * 0.3 + rng.gauss(0, 4 if load else 1), 0, 100)
        held = sum(p.mem_mib for p in d.processes)
        d.mem_used = _clamp(held + 500 + rng.gauss(0, 40), 0, s.mem_mib)
        idle_w = s.power_limit_w * 0.12
        d.power = _clamp(idle_w + (s.power_limit_w * 0.92 - idle_w) * d.util / 100
                         + rng.gauss(0, s.power_limit_w * 0.01), 0, s.power_limit_w)
        target = _AMBIENT_C + 45 * d.power / s.power_limit_w
        if d.thermal:
            target = s.slowdown_temp_c + 4
        d.temp += (target - d.temp) * 0.2 + rng.gauss(0, 0.3)
        d.energy_mj += int(d.power * 1000)
        if rng.random() < 0.002:
            d.sbe_vol += 1
            d.sbe_agg += 1
        sm_max, mem_mhz, gen, width = _CLOCKS.get(s.model, (1500, 1600, 4, 16))
        throttled = d.thermal and d.temp >= s.slowdown_temp_c
        busy = d.util > 5
        sm = sm_max * (0.7 if throttled else 1.0) if busy else 345.0
        nvidia = info.vendor == "nvidia"
        reasons: list[str] = []
        if nvidia:
            if not busy:
                reasons.append("gpu-idle")
            if throttled:
                reasons += ["hw-slowdown", "hw-thermal"]
        base.util_pct = round(d.util, 1)
        base.mem_util_pct = round(d.util * 0.6, 1)
        base.mem_used_mib = round(d.mem_used)
        base.mem_total_mib = float(s.mem_mib)
        base.temp_c = round(d.temp, 1)
        base.power_w = round(d.power, 1)
        base.power_limit_w = s.power_limit_w
        base.energy_mj = d.energy_mj
        base.sm_clock_mhz = round(sm)
        base.mem_clock_mhz = float(mem_mhz)
        base.ecc_sbe_volatile, base.ecc_dbe_volatile = d.sbe_vol, d.dbe_vol
        base.ecc_sbe_aggregate, base.ecc_dbe_aggregate = d.sbe_agg, d.dbe_agg
        base.pcie_gen, base.pcie_width, base.pcie_replays = gen, width, d.replays
        base.processes = tuple(Process(pid=p.pid, name=p.name, used_mib=p.mem_mib)
                               for p in d.processes)
        if nvidia:
            # Fields only NVML reports; domestic tools leave them out, so the sim does too.
            base.mem_temp_c = round(d.temp + 6, 1)
            base.pstate = 0 if busy else 8
            base.throttle_reasons = tuple(reasons)
            base.remapped_rows_correctable = 0
            base.remapped_rows_uncorrectable = d.dbe_agg
            base.remap_pending = d.dbe_vol > 0
            base.remap_failure = False
            base.recovery_action = "gpu-reset" if d.dbe_vol else "none"
            base.mig_mode = False
        else:
            base.vendor_health = "Warning" if throttled else "OK"
        return base


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x
