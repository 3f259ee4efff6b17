"""Helpers shared by component tests (no fixtures here)."""
from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file below ``path`` (relative name -> digest), for 'unchanged' checks."""
    out = {}
    for f in sorted(Path(path).rglob("*")):
        if f.is_file():
            out[str(f.relative_to(path))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.refs.append(value)


def broken_weblog_links(weblog: Path) -> list[str]:
    """Every href/src in every HTML page of the weblog that does not resolve to a file."""
    broken = []
    for page in Path(weblog).rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text())
        for ref in parser.refs:
            url = urlparse(ref)
            if url.scheme in ("http", "https"):
                broken.append(f"{page}: external link {ref}")
                continue
            if url.scheme or ref.startswith("#"):
                continue
            target = (page.parent / unquote(url.path)).resolve()
            if not target.exists():
                broken.append(f"{page}: {ref}")
    return broken


def stage_page_names(weblog: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(weblog).glob("stage*/index.html"))


def strip_volatile(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:]+", "T", text)
