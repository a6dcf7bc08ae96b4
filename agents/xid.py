"""NVIDIA Xid catalog, reduced to what an operator acts on.

Classes (from NVIDIA's Xid catalog immediate/investigatory buckets):
- APP: application error; restart the job, the node stays in service.
- RESET: drain the GPU's jobs and reset the GPU, then return it to service.
- DRAIN: take the node out of service (reboot or hands-on fix); RMA if it recurs.
- INFO: record and trend only.

These rules are NVIDIA's. T-Head PPU and other vendors have their own Xid tables, so the
collectors only look up NVIDIA devices here.
"""

from __future__ import annotations

from typing import NamedTuple


class XidInfo(NamedTuple):
    mnemonic: str
    action_class: str  # APP, RESET, DRAIN, INFO
    action: str


_APP = "restart the job; the GPU stays in service (escalate if it repeats on this GPU)"
_RESET = "drain the GPU's jobs and reset the GPU, then return it to service"
_DRAIN = "drain the node and reboot or inspect it; open a hardware ticket if it recurs"
_INFO = "record only; watch the trend"

CATALOG: dict[int, XidInfo] = {
    8: XidInfo("FIFO_ERROR_IDLE_TIMEOUT", "APP", _APP),
    11: XidInfo("GR_ERROR_MISSING_HW", "APP", _APP),
    13: XidInfo("GR_EXCEPTION", "APP", _APP),
    14: XidInfo("FAKE_ERROR", "INFO", _INFO),
    25: XidInfo("GR_ILLEGAL_NOTIFY", "APP", _APP),
    31: XidInfo("FIFO_ERROR_MMU_ERR_FLT", "APP", _APP),
    32: XidInfo("PBDMA_ERROR", "APP", _APP + "; check the PCIe replay counter"),
    37: XidInfo("FECS_ERROR", "INFO", _INFO),
    38: XidInfo("FECS_ERROR", "INFO", _INFO),
    43: XidInfo("RESETCHANNEL_VERIF_ERROR", "APP", _APP),
    44: XidInfo("CTXSW_ERROR", "INFO", _INFO),
    45: XidInfo("PREEMPTIVE_REMOVAL", "INFO", "correlate with neighbouring Xids"),
    46: XidInfo("GPU_TIMEOUT_ERROR", "RESET", _RESET),
    48: XidInfo("GPU_ECC_DBE", "RESET", _RESET + "; RMA if it recurs"),
    54: XidInfo("PWR_REDUCED_CLOCKING", "DRAIN", "drain the node and check auxiliary power"),
    61: XidInfo("PMU_BREAKPOINT", "RESET", _RESET),
    62: XidInfo("PMU_HALT_ERROR", "RESET", _RESET + "; RMA if it persists"),
    63: XidInfo("INFOROM_DRAM_RETIREMENT_EVENT", "INFO", "reset the GPU when idle if a remap is pending"),
    64: XidInfo("INFOROM_DRAM_RETIREMENT_FAILURE", "RESET", _RESET + "; RMA if remap failure is set"),
    66: XidInfo("CTXSW_ERROR", "INFO", _INFO),
    67: XidInfo("CTXSW_ERROR", "INFO", _INFO),
    68: XidInfo("NVDEC0_ERROR", "APP", _APP),
    74: XidInfo("NVLINK_ERROR", "RESET", _RESET + "; check NVLink peers too"),
    79: XidInfo("GPU_HAS_FALLEN_OFF_THE_BUS", "DRAIN", "drain the node and reboot it; RMA if it recurs"),
    92: XidInfo("EXCESSIVE_SBE_INTERRUPTS", "INFO", "watch the corrected-ECC trend; RMA if sustained"),
    94: XidInfo("CONTAINED_ERROR", "APP", "restart the affected job; reset the GPU when idle"),
    95: XidInfo("UNCONTAINED_ERROR", "RESET", _RESET),
    106: XidInfo("SMBPBI_TEST_MESSAGE", "INFO", _INFO),
    107: XidInfo("SMBPBI_TEST_MESSAGE_SILENT", "INFO", _INFO),
    109: XidInfo("CTXSW_TIMEOUT_ERROR", "RESET", _RESET),
    110: XidInfo("SEC_FAULT_ERROR", "DRAIN", _DRAIN),
    119: XidInfo("GSP_RPC_TIMEOUT", "RESET", _RESET + "; power-cycle if it persists"),
    120: XidInfo("GSP_ERROR", "RESET", _RESET + "; power-cycle if it persists"),
    136: XidInfo("ALI_TRAINING_FAIL", "RESET", _RESET + "; check the NVLink hardware"),
    137: XidInfo("NVLINK_PRIV_ERR", "APP", _APP),
    140: XidInfo("UNRECOVERABLE_ECC_ERROR_ESCAPE", "RESET", _RESET + "; RMA if it recurs"),
    143: XidInfo("GPU_INIT_ERROR", "RESET", _RESET),
    154: XidInfo("GPU_RECOVERY_ACTION_CHANGED", "INFO", "follow the recovery action it reports"),
    158: XidInfo("GPU_FATAL_TIMEOUT", "RESET", _RESET),
}
for _n in range(144, 151):
    CATALOG[_n] = XidInfo("NVLINK_ERROR", "RESET", _RESET + "; decode the NVLink5 error status")

# Unknown Xids are treated as needing a reset: failing safe means an operator looks at it.
UNKNOWN = XidInfo("UNKNOWN", "RESET", "unknown Xid: " + _RESET)

# Classes whose Xid means the node should be drained (the console proposes a drain plan).
DRAIN_CLASSES = frozenset({"RESET", "DRAIN"})


def lookup(xid: int) -> XidInfo:
    return CATALOG.get(xid, UNKNOWN)
