#!/usr/bin/env python3
"""Build whatsapp_crm/README.rst from the Markdown fragments in whatsapp_crm/readme/.

Handles the Markdown the fragments use: headings, paragraphs, bullet lists, inline code,
links and fenced code blocks.
"""

import ast
import re
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parent.parent / "whatsapp_crm"
SECTIONS = [
    ("DESCRIPTION.md", None),
    ("CONFIGURE.md", "Configuration"),
    ("USAGE.md", "Usage"),
    ("ROADMAP.md", "Known issues / Roadmap"),
    ("CONTRIBUTORS.md", "Contributors"),
]
UNDERLINES = {1: "=", 2: "-", 3: "~"}


def inline(text):
    text = re.sub(r"`([^`]+)`", r"``\1``", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"**\1**", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"`\1 <\2>`_", text)


def heading(text, level):
    return [text, UNDERLINES[level] * len(text), ""]


def convert(markdown, base_level):
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            lines += ["::", ""] if in_code else [""]
            continue
        if in_code:
            lines.append(f"    {line}")
        elif match := re.match(r"^(#+)\s+(.*)", line):
            lines += heading(match.group(2), min(base_level + len(match.group(1)), 3))
        else:
            lines.append(inline(line))
    return lines


def build():
    manifest = ast.literal_eval((MODULE / "__manifest__.py").read_text())
    title = manifest["name"]
    out = ["=" * len(title), title, "=" * len(title), "", inline(manifest["summary"]), ""]
    out += ["**Table of contents**", "", ".. contents::", "   :local:", ""]
    for filename, section in SECTIONS:
        path = MODULE / "readme" / filename
        if not path.exists():
            continue
        if section:
            out += heading(section, 1)
        out += [*convert(path.read_text(), 1 if section else 0), ""]
    return "\n".join(line.rstrip() for line in out).rstrip() + "\n"


if __name__ == "__main__":
    text = build()
    target = MODULE / "README.rst"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            sys.exit("whatsapp_crm/README.rst is out of date: run `make readme`.")
    else:
        target.write_text(text)
