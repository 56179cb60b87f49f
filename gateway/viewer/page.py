"""The viewer's HTML documents (notebook and password pages) and the headers they go out with.

No script runs on these pages: the Content-Security-Policy allows none, the one inline style
block is allowed by its hash, and the notebook's JSON (kept for scrapers, as PostHog's exporter
page embeds it) is a data block whose `<`, `>` and `&` are JSON escapes, so no text inside it
can close the element or open a comment (`</script>`, `<!--`).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any, Final

import orjson

STYLE: Final = """
:root{color-scheme:light dark;--fg:#1d1f27;--muted:#5f6470;--line:#d6d8de;--bg:#fff;
--soft:#f3f4f6;--accent:#1d4aff;--err:#b42318}
@media (prefers-color-scheme:dark){:root{--fg:#e7e9ee;--muted:#a2a7b3;--line:#3a3e48;
--bg:#14161b;--soft:#1f232b;--accent:#8fa6ff;--err:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}
main{max-width:48rem;margin:0 auto;padding:1.25rem 1rem 3rem}
h1{font-size:1.9rem;line-height:1.2;margin:.5rem 0 1.25rem}
h2{font-size:1.45rem}h3{font-size:1.2rem}h4,h5,h6{font-size:1rem}
a{color:var(--accent)}
img{max-width:100%;height:auto}
figure{margin:1rem 0}
blockquote{margin:1rem 0;padding:.1rem 1rem;border-left:4px solid var(--line);color:var(--muted)}
code{font:.9em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);
padding:.1em .3em;border-radius:4px}
pre{background:var(--soft);padding:.75rem;border-radius:6px;overflow-x:auto}
pre code{padding:0;background:none;white-space:pre}
hr{border:0;border-top:1px solid var(--line);margin:1.5rem 0}
.card,.query{border:1px solid var(--line);border-radius:8px;padding:.75rem 1rem;margin:1rem 0}
.card-label{font-weight:600;font-size:1rem;margin:0 0 .25rem}
.card-note,.table-note,.notice{color:var(--muted);font-size:.9rem;margin:.25rem 0 0}
dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .75rem;margin:.25rem 0;font-size:.9rem}
dt{color:var(--muted)}dd{margin:0}
summary{cursor:pointer;color:var(--muted);font-size:.9rem}
.table-wrap{overflow-x:auto;margin-top:.5rem}
table{border-collapse:collapse;font-size:.875rem;min-width:100%}
th,td{border-bottom:1px solid var(--line);padding:.3rem .6rem;text-align:left;
vertical-align:top;white-space:nowrap}
td.null{color:var(--muted);font-style:italic}
.error{color:var(--err)}
.mention,.timestamp{background:var(--soft);border-radius:4px;padding:0 .25rem}
form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
label{display:flex;flex-direction:column;gap:.25rem;flex:1 1 14rem}
input,button{font:inherit;padding:.5rem .75rem;border-radius:6px;border:1px solid var(--line)}
button{background:var(--accent);color:#fff;border-color:var(--accent)}
"""
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        f"style-src 'sha256-{_STYLE_HASH}'",
        # Notebook images live on other hosts (PostHog's media, CDNs); they cannot run code.
        "img-src http: https: data:",
        "form-action 'self'",
        "base-uri 'none'",
    ]
)
HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The link's token is in the URL: no Referer carries it to a linked or image host.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}
_DOCUMENT: Final = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<meta name="referrer" content="no-referrer">'
    "<title>{title}</title><style>{style}</style></head>\n<body><main>{body}</main>{data}"
    "</body></html>\n"
)
_UNLOCK: Final = (
    "<h1>This notebook is password protected</h1>"
    '<form method="post"><label>Password '
    '<input type="password" name="password" autocomplete="current-password" required autofocus>'
    '</label><button type="submit">Unlock</button></form>{error}'
)


def script_json(data: Any) -> str:
    """`data` as JSON that is inert inside a `<script>` element, whatever its strings hold."""
    text = orjson.dumps(data).decode()
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def document(title: str, body: str, data: Any = None) -> str:
    """A complete viewer page around `body` (already HTML); `data` becomes `#exported-data`."""
    block = (
        ""
        if data is None
        else f'<script type="application/json" id="exported-data">{script_json(data)}</script>'
    )
    return _DOCUMENT.format(title=escape(title), style=STYLE, body=body, data=block)


def unlock_document(error: str = "") -> str:
    """The password form; `error` (plain text) is shown under it."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return document("Password required", _UNLOCK.format(error=message), {"type": "unlock"})
