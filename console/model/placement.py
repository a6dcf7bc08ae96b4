"""Placements as people read them and as execution compares them. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from console.model.jobs import Placement


def fmt_placement(placement: Sequence[Placement]) -> str:
    """n1[0-3,6] + n2[0-7]"""
    parts = []
    for p in placement:
        runs: list[list[int]] = []
        for d in sorted(p.devices):
            if runs and d == runs[-1][-1] + 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        parts.append(p.node + "[" + ",".join(
            f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) + "]")
    return " + ".join(parts) or "nowhere"


def same_place(a: Sequence[Placement], b: Sequence[Placement], by_device: bool = True) -> bool:
    """Whether two placements are the same: node and devices, or nodes only for an engine that
    picks device indices itself (Slurm)."""
    if by_device:
        return ({(p.node, tuple(sorted(p.devices))) for p in a}
                == {(p.node, tuple(sorted(p.devices))) for p in b})
    return {p.node for p in a} == {p.node for p in b}


def to_json(placement: Sequence[Placement]) -> list[dict]:
    return [{"node": p.node, "devices": list(p.devices)} for p in placement]
