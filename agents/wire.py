"""The fleetops wire protocol, version 1: NDJSON frames from a node agent to its readers.

This module is the contract. The console, the daemon and third parties all decode with it,
and `agents/schema/frames-v1.schema.json` is generated from it (`fleetops-agent schema`).

Rules every reader relies on:
- one JSON object per line, UTF-8, at most MAX_LINE_BYTES bytes including the newline;
- every frame has `v` (major protocol version), `kind`, `node`, `seq` (strictly increasing
  within one stream) and `ts` (Unix seconds);
- unknown fields are ignored, so minor additions do not break old readers; a frame whose `v`
  is not a version this reader speaks is rejected;
- a metric a device cannot report is `null`, never 0; units are in the field names.

The types are msgspec Structs rather than pydantic models because the console decodes every
frame of every node on its hot path: msgspec's typed decoder is several times faster than
`json.loads`, and it still validates types and the constraints declared below.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20  # 1 MiB, newline included

Health = Literal["ok", "warn", "crit"]
Pool = Literal["nvidia", "domestic"]

# Constrained scalars. Bounds are generous physical limits: they exist to reject garbage
# (negative memory, a 10^30 W reading), not to second-guess a real device.
Name = Annotated[str, Meta(max_length=256)]
Text = Annotated[str, Meta(max_length=4096)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Pct = Annotated[float, Meta(ge=0, le=100)]
MiB = Annotated[float, Meta(ge=0, le=2**40)]
Celsius = Annotated[float, Meta(ge=-100, le=300)]
Watts = Annotated[float, Meta(ge=0, le=100_000)]
MHz = Annotated[float, Meta(ge=0, le=100_000)]
Seconds = Annotated[float, Meta(ge=0, le=1e11)]

MAX_DEVICES = 256
MAX_PROCESSES = 1024


class Process(Struct, kw_only=True, frozen=True, gc=False):
    """A process holding device memory. `name` is node-supplied text: untrusted."""

    pid: Annotated[int, Meta(ge=0, le=2**31)]
    name: Name
    used_mib: MiB | None = None


class MigDevice(Struct, kw_only=True, frozen=True, gc=False):
    uuid: Name
    gpu_instance_id: Count | None = None
    compute_instance_id: Count | None = None
    mem_used_mib: MiB | None = None
    mem_total_mib: MiB | None = None


class DeviceInfo(Struct, kw_only=True, gc=False):
    """Static facts of one device, sent once in `hello`."""

    uuid: Name
    index: Count
    vendor: Name
    model: Name
    name: Name
    pool: Pool
    mem_total_mib: MiB | None = None
    pci_bus_id: Name | None = None
    serial: Name | None = None
    vbios: Name | None = None
    compute_capability: Name | None = None
    power_limit_max_w: Watts | None = None
    slowdown_temp_c: Celsius | None = None
    shutdown_temp_c: Celsius | None = None
    pcie_gen_max: Count | None = None
    pcie_width_max: Count | None = None


class DeviceSample(Struct, kw_only=True, gc=False):
    """One sample of one device. Every metric may be null (the device cannot report it)."""

    uuid: Name
    index: Count
    vendor: Name
    model: Name
    pool: Pool
    util_pct: Pct | None = None
    mem_util_pct: Pct | None = None
    mem_used_mib: MiB | None = None
    mem_total_mib: MiB | None = None
    temp_c: Celsius | None = None
    mem_temp_c: Celsius | None = None
    power_w: Watts | None = None
    power_limit_w: Watts | None = None
    energy_mj: Count | None = None
    sm_clock_mhz: MHz | None = None
    mem_clock_mhz: MHz | None = None
    pstate: Count | None = None
    fan_pct: Pct | None = None
    # Active clock-event (throttle) reasons, by short name ("hw-slowdown", "sw-power-cap", ...).
    throttle_reasons: Annotated[tuple[Name, ...], Meta(max_length=32)] | None = None
    ecc_sbe_volatile: Count | None = None
    ecc_dbe_volatile: Count | None = None
    ecc_sbe_aggregate: Count | None = None
    ecc_dbe_aggregate: Count | None = None
    remapped_rows_correctable: Count | None = None
    remapped_rows_uncorrectable: Count | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    pcie_gen: Count | None = None
    pcie_width: Count | None = None
    pcie_replays: Count | None = None
    # NVIDIA's recovery action ("none", "gpu-reset", "node-reboot", "drain-p2p", ...).
    recovery_action: Name | None = None
    mig_mode: bool | None = None
    mig_devices: Annotated[tuple[MigDevice, ...], Meta(max_length=64)] | None = None
    # Vendor's own health word, verbatim (Ascend "Warning", Cambricon "FAIL", ...).
    vendor_health: Name | None = None
    health: Health = "ok"
    reasons: Annotated[tuple[Name, ...], Meta(max_length=64)] = ()
    processes: Annotated[tuple[Process, ...], Meta(max_length=MAX_PROCESSES)] = ()


# Envelope fields are positional so they come first on the wire (after `kind`), which keeps
# lines readable by eye; each kind's own fields are keyword-only after them.
# gc=False on every wire type: frames never form reference cycles, and a console holding the
# latest sample of 80,000 devices should not have the garbage collector walk them all.
class _Frame(Struct, tag_field="kind", gc=False):
    v: Annotated[int, Meta(ge=0, le=2**31)]
    node: Name
    seq: Count
    ts: Seconds


class Hello(_Frame, tag="hello", kw_only=True):
    agent_version: Name
    hostname: Name
    collectors: Annotated[tuple[Name, ...], Meta(max_length=16)]
    interval_s: Annotated[float, Meta(gt=0, le=3600)]
    driver_version: Name | None = None
    runtime_version: Name | None = None
    devices: Annotated[tuple[DeviceInfo, ...], Meta(max_length=MAX_DEVICES)] = ()


class Report(_Frame, tag="report", kw_only=True):
    devices: Annotated[tuple[DeviceSample, ...], Meta(max_length=MAX_DEVICES)]
    # Collector trouble that did not stop the report (an SMI tool timing out, ...).
    errors: Annotated[tuple[Text, ...], Meta(max_length=64)] = ()


EventType = Literal[
    "xid", "ecc-dbe", "row-remap-failure", "device-lost", "health", "collector-error"
]
Severity = Literal["info", "warn", "crit"]


class Event(_Frame, tag="event", kw_only=True):
    event: EventType
    severity: Severity
    message: Text
    device_uuid: Name | None = None
    device_index: Count | None = None
    # XID number for `xid` events, the vendor's error code where it has one, else null.
    code: Count | None = None
    # NVIDIA's catalog class for XIDs: APP, RESET, DRAIN, INFO (see agents/xid.py).
    action_class: Name | None = None
    # What the operator should do, in a sentence.
    action: Text | None = None
    health_from: Health | None = None
    health_to: Health | None = None


Frame = Hello | Report | Event


class FrameError(ValueError):
    """A line that is not a valid frame. `reason` is a short category used in counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Envelope(Struct):
    v: object = None


_decoder = msgspec.json.Decoder(Frame)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()


def decode_frame(line: bytes | str) -> Frame:
    """Decode one line into a frame, or raise FrameError saying why not.

    Reasons: `too-long`, `invalid-json`, `version`, `schema`.
    """
    # The limit counts the newline; readers usually hand lines over without it.
    if len(line) >= MAX_LINE_BYTES:
        size = len(line) + (0 if bytes(line[-1:]) in (b"\n", b"") else 1)
        if size > MAX_LINE_BYTES:
            raise FrameError("too-long", f"line of {size} bytes exceeds {MAX_LINE_BYTES}")
    try:
        frame = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        _check_version(line)
        raise FrameError("schema", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise FrameError("invalid-json", str(exc)) from None
    if frame.v != PROTOCOL_VERSION:
        raise FrameError("version", _version_message(frame.v))
    return frame


def _check_version(line: bytes | str) -> None:
    # A frame of another major version may fail validation for shape reasons; say the real
    # reason (the version) rather than the first schema complaint.
    try:
        v = _envelope_decoder.decode(line).v
    except msgspec.DecodeError:
        return
    if v != PROTOCOL_VERSION and isinstance(v, int) and not isinstance(v, bool):
        raise FrameError("version", _version_message(v))


def _version_message(v: int) -> str:
    return f"unsupported protocol version {v} (this reader speaks {PROTOCOL_VERSION})"


def encode_frame(frame: Frame) -> bytes:
    """Encode a frame as one NDJSON line, newline included."""
    return _encoder.encode(frame) + b"\n"


def to_builtins(obj: object) -> object:
    """Plain dicts and lists, for `--json` output built from wire types."""
    return msgspec.to_builtins(obj)


def json_schema() -> dict:
    """JSON Schema of every frame kind (a oneOf discriminated by `kind`)."""
    schema = msgspec.json.schema(Frame)
    schema["title"] = f"fleetops wire protocol v{PROTOCOL_VERSION}"
    schema["$comment"] = (
        "NDJSON, one frame per line, at most 1 MiB a line. Readers ignore unknown fields and "
        "reject frames whose major version `v` they do not speak."
    )
    return schema
