"""How numbers read on the page (formatting only; the numbers come from the library)."""

from __future__ import annotations

import re

from shufflenet.complexity import format_bytes


def count(n) -> str:
    """1865728 -> '1,865,728'."""
    return f"{int(n):,}"


def millions(n) -> str:
    """136500672 -> '136.5 M'."""
    return f"{n / 1e6:,.1f} M"


#: Decimal units: 7560832 -> '7.56 MB' (the library's, which its messages use too).
nbytes = format_bytes


def milliseconds(ms: float) -> str:
    return f"{ms:,.1f} ms"


def units(blocks) -> str:
    """Units per stage as the page writes them: (4, 8, 4) -> "4/8/4"."""
    return "/".join(map(str, blocks))


def part(stage: str, unit=None) -> str:
    """Where in the network, in words: ("stage4", 3) -> "stage 4, unit 3"; "stem" -> "the stem";
    "classifier" -> "the global pool" (the classifier's only layer with a window)."""
    if stage == "stem":
        return "the stem"
    if stage == "classifier":
        return "the global pool"
    where = f"stage {stage.removeprefix('stage')}"
    return where if unit is None else f"{where}, unit {int(unit)}"


def shape(s) -> str:
    """(28, 28, 240) -> '28×28×240'."""
    return "×".join(str(int(d)) for d in s)


def number_columns(df, *, skip=()) -> dict:
    """Column settings that show every whole-number column of `df` with thousands separators."""
    import streamlit as st

    return {
        col: st.column_config.NumberColumn(format="localized")
        for col in df.columns
        if col not in skip and str(df[col].dtype).lower().startswith(("int", "uint"))
    }


def upload_name(name: str, limit: int = 60) -> str:
    """An uploaded file's name as the page may show it (it is only ever shown, never a path):
    no folders, no control characters, shortened, and Markdown escaped so that a crafted name
    cannot add links or images to a message or caption."""
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if len(name) > limit:
        name = name[:limit - 1] + "…"
    name = re.sub(r"([\\`*_{}\[\]()<>#+!|~$:])", r"\\\1", name)
    name = re.sub(r"(?i)(www)\.", r"\1\\.", name)  # no bare-domain autolink either
    return name or "the uploaded file"
