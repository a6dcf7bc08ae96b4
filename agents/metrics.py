"""Prometheus metrics under dcgm-exporter's names, units and labels.

Existing Grafana dashboards (12239) and alert rules keep working: FB in MiB, power in W,
energy in mJ, and the labels gpu, UUID, pci_bus_id, device, modelName, Hostname and
DCGM_FI_DRIVER_VERSION, plus `vendor` and `pool` so domestic devices sit beside Nvidia ones.
A metric a device cannot report is left out, as current dcgm-exporter drops blank values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.wire import DeviceSample, Event, Hello, Report

# (metric, type, help, value from a sample)
_Getter = Callable[[DeviceSample], float | None]
METRICS: tuple[tuple[str, str, str, _Getter], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda s: s.util_pct),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).",
     lambda s: s.mem_util_pct),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).",
     lambda s: s.mem_used_mib),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).",
     lambda s: None if s.mem_total_mib is None or s.mem_used_mib is None
     else max(0.0, s.mem_total_mib - s.mem_used_mib)),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda s: s.temp_c),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", lambda s: s.mem_temp_c),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda s: s.power_w),
    ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "gauge", "Enforced power limit (in W).",
     lambda s: s.power_limit_w),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", lambda s: s.energy_mj),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda s: s.sm_clock_mhz),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).",
     lambda s: s.mem_clock_mhz),
    ("DCGM_FI_DEV_PSTATE", "gauge", "Performance state.", lambda s: s.pstate),
    ("DCGM_FI_DEV_FAN_SPEED", "gauge", "Fan speed (in %).", lambda s: s.fan_pct),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.",
     lambda s: s.pcie_replays),
    ("DCGM_FI_DEV_PCIE_LINK_GEN", "gauge", "PCIe current link generation.", lambda s: s.pcie_gen),
    ("DCGM_FI_DEV_PCIE_LINK_WIDTH", "gauge", "PCIe current link width.", lambda s: s.pcie_width),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total single-bit volatile ECC errors.",
     lambda s: s.ecc_sbe_volatile),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total double-bit volatile ECC errors.",
     lambda s: s.ecc_dbe_volatile),
    ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "counter", "Total single-bit persistent ECC errors.",
     lambda s: s.ecc_sbe_aggregate),
    ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "counter", "Total double-bit persistent ECC errors.",
     lambda s: s.ecc_dbe_aggregate),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for correctable errors.", lambda s: s.remapped_rows_correctable),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for uncorrectable errors.",
     lambda s: s.remapped_rows_uncorrectable),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed.",
     lambda s: None if s.remap_failure is None else float(s.remap_failure)),
    ("DCGM_FI_DEV_ROW_REMAP_PENDING", "gauge", "Whether a row remap is pending.",
     lambda s: None if s.remap_pending is None else float(s.remap_pending)),
    ("fleetops_device_health", "gauge", "fleetops health: 0 ok, 1 warn, 2 crit.",
     lambda s: {"ok": 0.0, "warn": 1.0, "crit": 2.0}[s.health]),
)

BASE_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "vendor", "pool")


class FleetopsMetrics(Collector):
    """Renders the daemon's latest report on every scrape; holds no state of its own."""

    def __init__(self, hello: Hello, latest: Callable[[], Report | None],
                 events: Callable[[], list[Event]], hostname_label: str = "Hostname") -> None:
        self.hello = hello
        self.latest = latest
        self.events = events
        self.hostname_label = hostname_label
        self.labels = (*BASE_LABELS, hostname_label, "DCGM_FI_DRIVER_VERSION")
        self._static = {d.index: d for d in hello.devices}

    def _label_values(self, s: DeviceSample) -> list[str]:
        info = self._static.get(s.index)
        prefix = "nvidia" if s.vendor == "nvidia" else s.vendor
        return [
            str(s.index), s.uuid, (info.pci_bus_id if info else None) or "",
            f"{prefix}{s.index}", info.name if info else s.model, s.vendor, s.pool,
            self.hello.node, self.hello.driver_version or "",
        ]

    def collect(self) -> Iterator[Metric]:
        report = self.latest()
        if report is None:
            return
        rows = [(self._label_values(s), s) for s in report.devices]
        for name, kind, help_text, get in METRICS:
            # dcgm-exporter's counters have no `_total` suffix, and prometheus_client's text
            # format renames a counter's metadata to `<name>_total`. Keeping the names exact
            # matters more to dashboards than the TYPE line, so counters go out as untyped.
            family = Metric(name, help_text, "unknown" if kind == "counter" else kind)
            for labels, s in rows:
                value = get(s)
                if value is not None:
                    family.add_sample(name, dict(zip(self.labels, labels, strict=True)),
                                      float(value))
            yield family
        yield from self._xid_metric(rows)

    def _xid_metric(self, rows) -> Iterator[Metric]:
        # dcgm-exporter's XID_ERRORS is the value of the *last* Xid, with err_code/err_msg.
        last: dict[int, Event] = {}
        for e in self.events():
            if e.event == "xid" and e.device_index is not None:
                last[e.device_index] = e
        family = GaugeMetricFamily("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error "
                                   "encountered.", labels=(*self.labels, "err_code", "err_msg"))
        for labels, s in rows:
            e = last.get(s.index)
            if e is not None and e.code is not None:
                family.add_metric([*labels, str(e.code), e.message[:200]], float(e.code))
        yield family
