"""Accessibility checks of a page in real Chromium: axe-core's rules (from npm, web/node_modules,
never served to patients) and keyboard reach with a visible focus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"

_RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""

#: Every control a person could use now: visible, enabled, not inert.
_CONTROLS = """() => [...document.querySelectorAll(
    'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
  .filter((el) => !el.disabled && el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden" && !el.closest("[inert], dialog:not([open])"))
  .map((el) => el.id || el.dataset.key || el.getAttribute("aria-label") || el.textContent.trim())"""

_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  return {
    name: el.id || el.dataset.key || el.getAttribute("aria-label") || el.textContent.trim(),
    visible: outline || (style.boxShadow !== "none" && style.boxShadow !== ""),
    style: style.outlineStyle + " " + style.outlineWidth,
  };
}"""


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` as it is now."""
    if not await page.evaluate("() => Boolean(window.axe)"):
        if not AXE_JS.exists():
            raise RuntimeError(f"{AXE_JS} is missing: run `make assets` (npm ci)")
        # Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays on.
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = await page.evaluate(_RUN_AXE)
    return [v for v in found if v["impact"] in ("serious", "critical")]


async def keyboard_misses(page: Page, presses: int = 80) -> tuple[list[str], list[str]]:
    """Tab through ``page`` from the top: (controls never reached, controls reached without a
    visible focus indicator)."""
    wanted: list[str] = await page.evaluate(_CONTROLS)
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    unseen: set[str] = set()
    for _ in range(presses):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED)
        if focused is None:
            continue
        reached.add(focused["name"])
        if not focused["visible"]:
            unseen.add(f"{focused['name']} (outline {focused['style']})")
        if set(wanted) <= reached:
            break
    return [w for w in wanted if w not in reached], sorted(unseen)
