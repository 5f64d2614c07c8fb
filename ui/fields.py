"""Input fields shared by the tabs."""
from __future__ import annotations

import gradio as gr


def optional_frame(label: str, placeholder: str = "any") -> gr.Textbox:
    """A frame number that may stay empty. A Textbox, not a Number: Gradio shows an empty Number as 0 and sends 0,
    which would silently mean "frame 0" (an enrollment or ingest of frames 0..0). reid_core.checks.frame parses it:
    empty -> None, a whole number >= 0, else one clear error."""
    return gr.Textbox(label=label, value="", placeholder=placeholder)
