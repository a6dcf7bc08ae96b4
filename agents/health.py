"""Health rules: a device sample plus a short history of its Xids -> (health, reasons).

Pure: no I/O, the clock is an argument. `assess` applies the rule table; `XidWindow` keeps the
windowed Xid counts a rule needs ("3 application Xids in 10 minutes", not "last value forever").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agents import xid as xidcat
from agents.wire import DeviceSample, Health

SEVERITY_RANK: dict[str, int] = {"ok": 0, "warn": 1, "crit": 2}

# Clock-event reasons that mean the hardware is protecting itself; the others (idle, software
# power cap, application clocks) are normal operation.
HW_THROTTLE = frozenset({"hw-slowdown", "hw-thermal", "hw-power-brake"})

# Recovery actions NVIDIA reports (field 230 / Xid 154) and how urgent each one is.
RECOVERY_SEVERITY: dict[str, Health] = {
    "none": "ok",
    "drain-p2p": "warn",
    "gpu-reset": "crit",
    "drain-and-reset": "crit",
    "node-reboot": "crit",
    "recover-imex-domain": "warn",
    "bus-reset": "crit",
    "system-reboot": "crit",
}

# Vendor health words (Ascend npu-smi, Cambricon cnmon, Hygon hy-smi, T-Head ppu-smi).
VENDOR_HEALTH: dict[str, Health] = {
    "ok": "ok", "healthy": "ok", "good": "ok", "pass": "ok", "normal": "ok", "0": "ok",
    "warning": "warn", "warn": "warn", "minor": "warn", "10": "warn",
    "alarm": "crit", "major": "crit", "critical": "crit", "fail": "crit", "error": "crit",
    "problem": "crit", "unhealthy": "crit", "20": "crit",
}


@dataclass(frozen=True)
class XidPolicy:
    """How many Xids of a class within how many seconds make which health."""

    action_class: str
    threshold: int
    window_s: float
    health: Health


XID_POLICIES: tuple[XidPolicy, ...] = (
    XidPolicy("DRAIN", 1, 24 * 3600, "crit"),
    XidPolicy("RESET", 1, 3600, "crit"),
    XidPolicy("APP", 3, 600, "warn"),
)
# An excessive-SBE Xid is INFO alone but worth a warning while it keeps coming.
XID_92_WINDOW_S = 3600


class XidWindow:
    """Recent Xids of one device, pruned to the longest window any policy looks at."""

    def __init__(self, horizon_s: float = max(p.window_s for p in XID_POLICIES)) -> None:
        self.horizon_s = horizon_s
        self._seen: deque[tuple[float, int]] = deque()

    def record(self, ts: float, xid: int) -> None:
        self._seen.append((ts, xid))

    def recent(self, now: float) -> list[tuple[float, int]]:
        while self._seen and self._seen[0][0] < now - self.horizon_s:
            self._seen.popleft()
        return list(self._seen)


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the sample."""

    now: float
    slowdown_temp_c: float | None = None
    shutdown_temp_c: float | None = None
    lost: bool = False
    xids: tuple[tuple[float, int], ...] = ()  # (ts, xid), oldest first
    apply_xid_catalog: bool = True  # NVIDIA's table; other vendors have their own


Finding = tuple[Health, str]
Rule = Callable[[DeviceSample, Context], Iterable[Finding]]


def _lost(s: DeviceSample, c: Context) -> Iterable[Finding]:
    if c.lost:
        yield "crit", "device lost (fell off the bus)"


def _temperature(s: DeviceSample, c: Context) -> Iterable[Finding]:
    if s.temp_c is None:
        return
    if c.shutdown_temp_c is not None and s.temp_c >= c.shutdown_temp_c:
        yield "crit", f"temp {s.temp_c:.0f}C at shutdown threshold {c.shutdown_temp_c:.0f}C"
    elif c.slowdown_temp_c is not None and s.temp_c >= c.slowdown_temp_c:
        yield "warn", f"temp {s.temp_c:.0f}C over slowdown threshold {c.slowdown_temp_c:.0f}C"


def _throttle(s: DeviceSample, c: Context) -> Iterable[Finding]:
    hw = sorted(HW_THROTTLE.intersection(s.throttle_reasons or ()))
    if hw:
        yield "warn", "throttled: " + ", ".join(hw)


def _ecc(s: DeviceSample, c: Context) -> Iterable[Finding]:
    if s.ecc_dbe_volatile:
        yield "crit", f"uncorrectable ECC errors: {s.ecc_dbe_volatile} since driver load"


def _remap(s: DeviceSample, c: Context) -> Iterable[Finding]:
    if s.remap_failure:
        yield "crit", "row remap failed (RMA candidate)"
    elif s.remap_pending:
        yield "warn", "row remap pending (reset the GPU when idle)"


def _recovery(s: DeviceSample, c: Context) -> Iterable[Finding]:
    action = s.recovery_action
    if action and action != "none":
        yield RECOVERY_SEVERITY.get(action, "crit"), f"recovery action: {action}"


def _xids(s: DeviceSample, c: Context) -> Iterable[Finding]:
    if not c.xids:
        return
    if not c.apply_xid_catalog:
        # Another vendor's Xid table: report what was seen, let its own rules decide.
        recent = [x for ts, x in c.xids if ts >= c.now - 3600]
        if recent:
            yield "warn", f"vendor Xid {recent[-1]} ({len(recent)} in 1h)"
        return
    for policy in XID_POLICIES:
        since = c.now - policy.window_s
        hits = [x for ts, x in c.xids
                if ts >= since and xidcat.lookup(x).action_class == policy.action_class]
        if len(hits) >= policy.threshold:
            last = hits[-1]
            window = _fmt_window(policy.window_s)
            yield policy.health, (
                f"xid {last} {xidcat.lookup(last).mnemonic} ({len(hits)} in {window}): "
                f"{policy.action_class.lower()}"
            )
    sbe = [x for ts, x in c.xids if x == 92 and ts >= c.now - XID_92_WINDOW_S]
    if sbe:
        yield "warn", f"xid 92 excessive corrected ECC ({len(sbe)} in 1h)"


def _vendor_health(s: DeviceSample, c: Context) -> Iterable[Finding]:
    word = s.vendor_health
    if word is None:
        return
    level = VENDOR_HEALTH.get(word.strip().lower())
    if level is None:
        yield "warn", f"vendor health {word!r} not recognised"
    elif level != "ok":
        yield level, f"vendor health: {word}"


RULES: tuple[Rule, ...] = (
    _lost, _temperature, _throttle, _ecc, _remap, _recovery, _xids, _vendor_health,
)


def assess(sample: DeviceSample, ctx: Context) -> tuple[Health, list[str]]:
    """Apply every rule; the worst finding sets the health, reasons come worst first."""
    findings = [f for rule in RULES for f in rule(sample, ctx)]
    findings.sort(key=lambda f: -SEVERITY_RANK[f[0]])
    health: Health = findings[0][0] if findings else "ok"
    return health, [reason for _, reason in findings]


def worst(healths: Iterable[str]) -> Health:
    result: Health = "ok"
    for h in healths:
        if SEVERITY_RANK.get(h, 0) > SEVERITY_RANK[result]:
            result = h  # type: ignore[assignment]
    return result


def _fmt_window(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m"
