"""A job summary as GitHub shows it: GFM to HTML, GitHub's markdown CSS, headless Chromium at 1280x800.

GitHub renders a job summary as GitHub-flavoured markdown with its markdown stylesheet, in a box
right of the run's sidebar. ``page`` builds that page (markdown-it-py's GFM preset; the light
theme of github-markdown-css, MIT, vendored beside this file); ``screenshot`` takes the first
screen as a PNG; ``positions`` reports where elements land, read from the DOM Chromium dumps
after a script on the page has measured them.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSS = HERE / "github-markdown-light.css"
WIDTH, HEIGHT = 1280, 800
SIDEBAR = 320  # GitHub's run page: the jobs list left of the summary
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Runs in the page: the box of every element we look for, written into the DOM for --dump-dom.
_MEASURE = """
<script>
addEventListener("load", () => {
  const boxes = [];
  for (const el of document.querySelectorAll(".markdown-body h2, .markdown-body p, .markdown-body table,"
      + " .markdown-body blockquote, .markdown-body details, .markdown-body strong, .markdown-body th, .markdown-body td")) {
    const r = el.getBoundingClientRect();
    boxes.push({tag: el.tagName.toLowerCase(), text: el.innerText.slice(0, 400), top: r.top + scrollY,
                bottom: r.bottom + scrollY, left: r.left, right: r.right});
  }
  const out = document.createElement("pre");
  out.id = "positions";
  out.textContent = JSON.stringify(boxes);
  document.body.appendChild(out);
});
</script>
"""


def to_html(markdown: str) -> str:
    """GitHub-flavoured markdown as HTML: tables, strikethrough, raw HTML (``<details>``) kept."""
    from markdown_it import MarkdownIt

    # gfm-like, without linkify (it needs linkify-it-py; the reports hold no bare URLs)
    return MarkdownIt("gfm-like", {"linkify": False}).render(markdown)


def page(markdown: str, measure: bool = False) -> str:
    style = CSS.read_text(encoding="utf-8")
    layout = (
        f"body {{ margin: 0; background: #f6f8fa; }} .run {{ display: flex; }} "
        f".sidebar {{ width: {SIDEBAR}px; flex: none; }} "
        ".box { flex: 1; margin: 16px 24px 16px 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; "
        "padding: 16px 32px; min-width: 0; } "
        ".markdown-body { font-family: -apple-system, 'Segoe UI', 'Noto Sans', Helvetica, Arial, sans-serif; }"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<style>{style}</style><style>{layout}</style></head><body>"
        "<div class='run'><div class='sidebar'></div><div class='box'><div class='markdown-body'>"
        f"{to_html(markdown)}</div></div></div>{_MEASURE if measure else ''}</body></html>"
    )


def chromium() -> str | None:
    """The Chromium binary, or None (Debian package ``chromium``; ``make screenshots`` installs it)."""
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    return found


def _run_chromium(html_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise RuntimeError("no Chromium: apt-get install chromium (make screenshots does)")
    with tempfile.TemporaryDirectory(prefix="summary-render-") as folder:
        source = Path(folder) / "summary.html"
        source.write_text(html_text, encoding="utf-8")
        command = [
            binary,
            "--headless",
            "--no-sandbox",  # as root in a container
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={folder}/profile",
            f"--window-size={WIDTH},{HEIGHT}",
            *args,
            source.as_uri(),
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True, cwd=folder)


def screenshot(markdown: str, png: Path) -> Path:
    """The first 1280x800 of the summary as GitHub would show it."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run_chromium(page(markdown), f"--screenshot={png.resolve()}")
    return png


def positions(markdown: str) -> list[dict]:
    """Where each heading, paragraph, table, cell and bold run lands: tag, text, top, bottom (px)."""
    done = _run_chromium(page(markdown, measure=True), "--dump-dom", "--virtual-time-budget=5000")
    match = re.search(r'<pre id="positions">(.*?)</pre>', done.stdout, re.S)
    if not match:
        raise RuntimeError(f"Chromium dumped no positions: {done.stdout[-500:]} {done.stderr[-500:]}")
    return json.loads(html.unescape(match.group(1)))
