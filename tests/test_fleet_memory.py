"""What the planner counts on per device: the memory devices report, the catalog only as a
fallback (console/ops/fleet_views.py::_model_and_memory)."""

from __future__ import annotations

from agents.wire import DeviceInfo, DeviceSample, Hello
from console.model.fleet import NodeState
from console.planning.fleet_views import _model_and_memory


def _node(*devices: tuple[str, float | None], hello: bool = True) -> NodeState:
    node = NodeState("n1", "dc1", "domestic")
    infos = tuple(DeviceInfo(uuid=f"npu-{i}-0", index=i, vendor="huawei", model=model,
                             name=model, pool="domestic", mem_total_mib=mem)
                  for i, (model, mem) in enumerate(devices))
    if hello:
        node.hello = Hello(v=1, node="n1", seq=0, ts=1.0, agent_version="t", hostname="n1",
                           collectors=("ascend",), interval_s=1.0, devices=infos)
    else:
        node.samples = [DeviceSample(uuid=d.uuid, index=d.index, vendor=d.vendor, model=d.model,
                                     pool=d.pool, mem_total_mib=d.mem_total_mib) for d in infos]
    return node


def test_reported_memory_wins_over_the_catalog() -> None:
    # A 96 GiB Atlas 300I Duo's chips report 44280 / 43693 MiB; the catalog's 310P says 24 GiB.
    assert _model_and_memory(_node(("310P", 44280.0), ("310P", 43693.0))) == ("310P", 2, 43693)
    # A 910B4 used to borrow the 64 GiB 910B entry; what it reports is what a job can use.
    assert _model_and_memory(_node(("910B4", 32768.0))) == ("910B4", 1, 32768)


def test_reported_memory_from_samples_when_there_is_no_hello() -> None:
    assert _model_and_memory(_node(("910", 32768.0), hello=False)) == ("910", 1, 32768)


def test_catalog_memory_only_when_no_device_reports_any() -> None:
    assert _model_and_memory(_node(("910B3", None), ("910B3", None))) == ("910B", 2, 65536)
    assert _model_and_memory(_node(("MLU370-X8", None))) == ("MLU370-X8", 1, 0)


def test_no_node_or_no_devices() -> None:
    assert _model_and_memory(None) == (None, 0, 0)
    assert _model_and_memory(_node()) == (None, 0, 0)
