"""The device catalog: the entry a printed model name selects, and what each entry states."""

from __future__ import annotations

import re

import pytest

from agents import catalog


@pytest.mark.parametrize(
    ("printed", "model", "mem_mib"),
    [
        # What npu-smi prints (tests/data/real/npu-smi) and `npu-smi info -m` / soc_version.
        pytest.param("910B1", "910B", 65536, id="910b1"),
        pytest.param("910B2", "910B", 65536, id="910b2"),
        pytest.param("910B2C", "910B", 65536, id="910b2c"),
        pytest.param("910B3", "910B", 65536, id="910b3"),
        pytest.param("Ascend910B3", "910B", 65536, id="soc-name-910b3"),
        pytest.param("910B4", "910B4", 32768, id="910b4-is-32gib"),
        pytest.param("910B4vir05_1c_8g", "910B4", 32768, id="910b4-vnpu-template"),
        pytest.param("910B", "910", 32768, id="bare-910b-is-the-first-generation-bin"),
        pytest.param("910A", "910", 32768, id="910a"),
        pytest.param("910ProB", "910", 32768, id="910prob"),
        pytest.param("910PremiumA", "910", 32768, id="910premiuma"),
        pytest.param("Ascend910", "910_93", 65536, id="a3-as-npu-smi-prints-it"),
        pytest.param("Ascend910_9391", "910_93", 65536, id="a3-soc-name"),
        pytest.param("310", "310", 8192, id="310-digits-only"),
        pytest.param("310B4", "310B", 8192, id="310b4"),
        pytest.param("310P3", "310P", 24576, id="310p3"),
        pytest.param("Ascend310P3", "310P", 24576, id="soc-name-310p3"),
        # Key-in-name matching still serves the entries without `names`.
        pytest.param("NVIDIA H100 80GB HBM3", "H100", 81559, id="h100"),
        pytest.param("MLU590-M9", "MLU590", 98304, id="mlu590"),
        pytest.param("PPU-ZW810E", "PPU", 98304, id="ppu"),
    ],
)
def test_printed_name_selects_the_entry(printed: str, model: str, mem_mib: int) -> None:
    spec = catalog.find_printed(printed)
    assert spec is not None and (spec.model, spec.mem_mib) == (model, mem_mib)


@pytest.mark.parametrize(
    "printed", ["NVIDIA H200", "GH100", "MLU370-X8", "BW", "3100", "910C", "910B4-1", "Ascend950PR"]
)
def test_names_no_entry_lists_select_nothing(printed: str) -> None:
    # An Ascend part no entry names stays unknown rather than borrow the "910" or "910B4" entry's
    # memory: its own reported memory is used instead.
    assert catalog.find_printed(printed) is None


def test_name_patterns_are_disjoint_and_whole() -> None:
    entries = catalog.models().values()
    for spec in entries:
        for pattern in spec.names:
            re.compile(pattern)
            assert catalog.find_printed(spec.name) is spec, spec.model
    printed = [spec.name for spec in entries if spec.names]
    for name in printed:
        owners = [s.model for s in entries
                  if any(re.fullmatch(p, name, re.IGNORECASE) for p in s.names)]
        assert len(owners) == 1, (name, owners)


def test_a_catalog_key_names_its_own_entry() -> None:
    # The wire and the inventory carry keys: "910B" there is the family, whatever npu-smi means
    # by the same four characters; a printed name from an older agent still resolves.
    assert [catalog.find(k).model for k in ("910B", "910b", "910", "310P", "910_93")] == [
        "910B", "910B", "910", "310P", "910_93"]
    assert catalog.find("310P3").model == "310P"
    assert catalog.find_printed("910B").model == "910"


def test_entries_without_a_datasheet_figure_leave_it_null() -> None:
    # Better no limit than an invented one; the entries the simulator offers have all three.
    for key in ("H100", "H20", "A100", "PPU", "910B", "MLU590", "DCU"):
        spec = catalog.spec(key)
        assert None not in (spec.power_limit_w, spec.slowdown_temp_c, spec.shutdown_temp_c)
    assert catalog.spec("910").power_limit_w is None
    assert catalog.spec("910B4").slowdown_temp_c == catalog.spec("910B").slowdown_temp_c
