"""User-controlled text (names, camera and file names, error messages that quote input) inside the app's Markdown.

Gradio's Markdown strips dangerous HTML but renders Markdown images, so a camera name like
`![x](https://evil.example/p.png)` made every viewer's browser fetch that address. Names are validated on the way in
(reid_core/names.py); this escapes them again on the way out, for stores written before the checks and for error
messages that repeat what was typed."""
from __future__ import annotations

import html
import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(text: object) -> str:
    """`text` shown literally in Markdown: HTML-escaped, Markdown punctuation backslash-escaped, on one line."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))
