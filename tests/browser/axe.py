"""axe-core in the browser tests: every page state checked against WCAG 2.2 A/AA and best practice.

The engine is ``vendor/axe.min.js``, the single file of the ``axe-core`` npm package
(version in its first line; Mozilla Public License 2.0, text in
``vendor/axe-core.LICENSE``), committed so the tests need no network or CDN. To update:
``npm pack axe-core@4`` and copy ``package/axe.min.js`` over it.

It is injected as a browser-context init script, which Chromium runs before any page
script and outside the page's Content-Security-Policy, so the policy stays as strict as
in production and every navigation and frame has ``window.axe`` from the start.
"""

from __future__ import annotations

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")

# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus Deque's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

RUN = """
async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.join(" "),
      html: n.html.slice(0, 160),
      summary: (n.failureSummary || "").replace(/\\s+/g, " ").trim(),
    })),
  }));
}
"""


SETTLED = """() => !document.querySelector(
  '[aria-busy="true"], .htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"""


class Axe:
    """Collects the violations of every page state a test visits, then reports them all.

    ``check(page, where)`` runs axe on what the page shows now (call it after the swap
    or navigation has finished); ``assert_clean()`` fails with one readable list.
    """

    def __init__(self) -> None:
        self.found: dict[str, list[dict]] = {}
        self.checked: list[str] = []

    @staticmethod
    def install(context) -> None:
        context.add_init_script(script=AXE_SOURCE)

    def check(self, page, where: str) -> list[dict]:
        page.wait_for_load_state("load")
        # Let htmx finish: a half-settled swap (dimmed while busy) is no state a user reads.
        page.wait_for_function(SETTLED)
        violations = page.evaluate(RUN, TAGS)
        self.checked.append(where)
        if violations:
            self.found[where] = violations
        return violations

    def report(self) -> str:
        lines = []
        for where, violations in self.found.items():
            lines.append(f"\n{where}:")
            for v in violations:
                lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
                for node in v["nodes"][:6]:
                    lines.append(f"      {node['target']}  {node['html']}")
                    if node["summary"]:
                        lines.append(f"        {node['summary'][:300]}")
                if len(v["nodes"]) > 6:
                    lines.append(f"      … and {len(v['nodes']) - 6} more")
        return "\n".join(lines)

    def count(self) -> int:
        return sum(len(v["nodes"]) for vs in self.found.values() for v in vs)

    def assert_clean(self) -> None:
        assert not self.found, (
            f"{self.count()} axe violation(s) in {len(self.found)} of {len(self.checked)} "
            f"page states:{self.report()}"
        )
