"""`fleetops-agent once`'s table: plain aligned text, printable whatever the node reports."""

from __future__ import annotations

import io

from agents.collectors.base import CollectorOptions
from agents.collectors.sim import SimCollector
from agents.sampler import Sampler
from agents.table import print_report, render, width
from agents.wire import Report


def _snapshot(devices: int = 2, **kw):
    sampler = Sampler(SimCollector(CollectorOptions(sim_devices=devices, **kw)), node="gpu-01")
    report = next(f for f in sampler.tick() if isinstance(f, Report))
    return sampler.hello(), report


def test_columns_line_up_on_every_row():
    hello, report = _snapshot(4, sim_faults=["xid79:1:0"])
    lines = render(hello, report).splitlines()
    assert lines[0].startswith("gpu-01 · sim · driver ")
    header, rule, *rows = lines[1:]
    assert len(rows) == 4 and "✖ crit" in rows[1] and "xid 79" in rows[1]
    start = header.index("health")
    assert all(r[start:].startswith(("✔", "▲", "✖")) for r in rows)
    assert rule.split() == ["─" * len(c) for c in ("#", "model", "util %")] + rule.split()[3:]


def test_node_text_is_printed_escaped_never_raw():
    hello, report = _snapshot(1)
    hello.node = "evil\x1b]0;pwned\x07\x1b[2J\u202e名前"
    report.errors = ("tool said \x1b[31mred\x1b[0m\r\n",)
    text = render(hello, report)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\u202e" not in text
    assert "evil\\x1b]0;pwned\\x07" in text and "名前" in text
    assert width("名前") == 4


def test_colour_only_when_asked_and_only_sgr():
    hello, report = _snapshot(1)
    plain = io.StringIO()
    print_report(hello, report, plain)  # a StringIO is not a terminal
    assert "\x1b" not in plain.getvalue()
    coloured = render(hello, report, colour=True)
    assert "\x1b[32m✔ ok" in coloured
    assert coloured.replace("\x1b[32m", "").replace("\x1b[0m", "") == plain.getvalue()
