"""Shared fixtures: paths to ../shared data (tests skip cleanly without it) and PDF making."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a clean skip when this machine has no such data."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (evaluation data lives beside the checkout, in ../shared)")
    return path


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    """The folder holding the seed news article."""
    return shared_path("seeds")


@pytest.fixture(scope="session")
def seed_file(seed_dir: Path) -> Path:
    return seed_dir / "000_17d6ea71f6fbed30.txt"


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A real PDF (fpdf2), one string per page, with text pypdf extracts back."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[[str, Sequence[str]], Path]:
    """make_pdf("name.pdf", ["page one text", "page two text"]) -> path in tmp_path."""

    def make(name: str, pages: Sequence[str]) -> Path:
        return write_pdf(tmp_path / name, pages)

    return make
