"""The audit as a page a curator reads: a summary table, then one table of findings per failing check.

Built from :meth:`AuditReport.to_dict`, the same document ``--json`` prints, so the figures always agree.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }
table { border-collapse: collapse; margin: 1rem 0 2rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f1ec; }
.pass { color: #1b6e20; font-weight: 600; } .fail { color: #a51d1d; font-weight: 600; }
code { font-size: .9em; }
"""


def _codes(rows: list[str]) -> str:
    return "<br>".join(f"<code>{escape(r)}</code>" for r in rows)


def render_audit_html(doc: dict[str, Any], *, archive: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(s['check'])}</td><td>{s['items_checked']}</td><td>{s['findings']}</td>"
        f'<td class="{s["status"]}">{s["status"]}</td></tr>'
        for s in doc["summary"]
    )
    sections = []
    for s in doc["summary"]:
        found = [f for f in doc["findings"] if f["check"] == s["check"]]
        if not found:
            continue
        body = "".join(f"<tr><td>{escape(f['message'])}</td><td>{_codes(f['rows'])}</td></tr>" for f in found)
        sections.append(
            f"<h2>{escape(s['check'])} ({len(found)})</h2><table><tr><th>finding</th><th>rows</th></tr>{body}</table>"
        )
    verdict = "All checks pass." if doc["ok"] else f"{len(doc['findings'])} finding(s) need attention."
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>heirloom audit</title>'
        f"<style>{_STYLE}</style></head><body><h1>heirloom audit</h1>"
        f"<p>Archive <code>{escape(archive)}</code>, audited {escape(doc['at'])}. {verdict}</p>"
        f"<table><tr><th>check</th><th>items checked</th><th>findings</th><th>status</th></tr>{rows}</table>"
        + "".join(sections)
        + "</body></html>"
    )
