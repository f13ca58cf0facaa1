"""Production build figures: JavaScript bundle size and time to the first meaningful page.

    python -m chiiki.bench.frontend     (starts the app in prod mode on a free loopback port)
"""

from __future__ import annotations

import gzip
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bundle_size(web_dir: Path) -> tuple[int, int, int]:
    """Files, bytes and gzipped bytes of every JavaScript file the production build serves."""
    files = [p for p in (web_dir / "build" / "client").rglob("*.js")] if (web_dir / "build").exists() else []
    if not files:
        files = [p for p in web_dir.rglob("*.js") if "node_modules" not in p.parts]
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), 6)) for p in files)
    return len(files), raw, gz


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import launch_app

    app = launch_app()
    try:
        n, raw, gz = bundle_size(app.tmp_dir / "web")
        print(f"JavaScript bundle: {n} files, {raw / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzipped)")
        print(f"server start to first HTTP 200: {app.startup_seconds:.1f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            for path in ("/", "/login"):
                fcp, ready = [], []
                for _ in range(5):
                    ctx = browser.new_context(viewport={"width": 390, "height": 844})
                    page = ctx.new_page()
                    page.goto(app.url + path, wait_until="load")
                    page.wait_for_selector("main h1", timeout=30_000)
                    ready.append(page.evaluate("() => performance.now()"))
                    fcp.append(page.evaluate(
                        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0"))
                    ctx.close()
                print(f"{path:8} first contentful paint median {statistics.median(fcp):.0f} ms; "
                      f"heading rendered (first meaningful page) median {statistics.median(ready):.0f} ms "
                      f"(target < 2000 ms)")
            browser.close()
    finally:
        app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
