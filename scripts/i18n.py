#!/usr/bin/env python3
"""Translations of whatsapp_crm: the template exported by Odoo itself, and Croatian.

    python3 scripts/i18n.py export   # rewrite i18n/whatsapp_crm.pot from Odoo; add its new entries to
                                     # every .po (empty, to translate) and drop the entries it no longer has
    python3 scripts/i18n.py check    # `make lint`: fail when the .pot is stale or a .po leaves an entry
                                     # untranslated, fuzzy, obsolete, or with other placeholders

Which strings are translatable is Odoo's decision (field labels derived from field names, selection
values, view and data terms, `_()` in Python, `_t()` in JavaScript...), so the .pot is never written
by hand nor guessed by a parser of the sources: Odoo exports it (``--i18n-export``) from a database
where the module is installed without demo data. That database is kept between runs (it is named
after this checkout) and only updated (``-u``), which costs seconds instead of an install; a fresh
machine (CI) pays for one install. The export is cached by a hash of the module's files (all but
i18n/): while they do not change, the check reads no database at all. Entries are compared as sets
of (context, msgid), so line references, ordering and dates never make the check fail.
"""

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import polib  # Odoo's own dependency for .po files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev

I18N = dev.REPO / dev.MODULE / "i18n"
POT = I18N / f"{dev.MODULE}.pot"
PLACEHOLDER_RE = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")


def database_name():
    return f"{dev.MODULE}_i18n_{hashlib.sha1(str(dev.REPO).encode()).hexdigest()[:8]}"


def odoo_export(database):
    """The .pot as Odoo exports it for the current sources (bytes)."""
    cache = Path(tempfile.gettempdir()) / f"{database}-{dev.sources_hash()}.pot"
    if cache.exists():
        return cache.read_bytes()
    exported = _odoo_export(database)
    cache.write_bytes(exported)
    return exported


def _odoo_export(database):
    """Install or update the module in ``database``, then export its terms."""
    odoo_bin = dev.find_odoo()
    dev.check_postgres()
    common = ["-d", database, f"--addons-path={dev.addons_path(odoo_bin)}", "--log-level=warn", "--no-http"]
    state = subprocess.run(
        ["psql", "-d", database, "-Atc", f"select state from ir_module_module where name = '{dev.MODULE}'"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if state != "installed":
        subprocess.run(["dropdb", "--if-exists", database], check=False)
        step = ["-i", dev.MODULE, "--without-demo=all"]
    else:
        step = ["-u", dev.MODULE]
    if subprocess.run([odoo_bin, *common, *step, "--stop-after-init"], check=False).returncode:
        dev.fail(f"Installing {dev.MODULE} in {database} failed: no .pot to compare with.")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"{dev.MODULE}.pot"
        command = [odoo_bin, *common, f"--i18n-export={out}", f"--modules={dev.MODULE}", "--stop-after-init"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        errors = [line for line in result.stderr.splitlines() if " ERROR " in line or " CRITICAL " in line]
        if result.returncode or not out.exists() or errors:
            # e.g. "Failed to extract terms from <file>": that file's strings would be missing
            dev.fail("Odoo could not export all the module's terms:\n" + "\n".join(errors or [result.stderr]))
        return out.read_bytes()


def read_catalog(path_or_text):
    """A polib catalog of a file (Path) or of exported text (str)."""
    return polib.pofile(str(path_or_text) if isinstance(path_or_text, Path) else path_or_text, wrapwidth=78)


def keys(catalog):
    return {(entry.msgctxt, entry.msgid) for entry in catalog if not entry.obsolete}


def placeholders(text):
    return sorted(PLACEHOLDER_RE.findall(text or ""))


def po_problems(pot, po_path):
    """What is wrong with one translation file against the template."""
    po = read_catalog(po_path)
    expected, present = keys(pot), keys(po)
    problems = [f"missing: {msgid!r}" for _context, msgid in sorted(expected - present, key=str)]
    problems += [f"obsolete (not in the .pot): {msgid!r}" for _context, msgid in sorted(present - expected, key=str)]
    for entry in po:
        if entry.obsolete or (entry.msgctxt, entry.msgid) not in expected:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        elif not entry.msgstr:
            problems.append(f"untranslated: {entry.msgid!r}")
        elif placeholders(entry.msgid) != placeholders(entry.msgstr):
            problems.append(f"placeholders differ: {entry.msgid!r} -> {entry.msgstr!r}")
    return [f"{po_path.relative_to(dev.REPO)}: {problem}" for problem in problems]


def command_check(args):
    if not POT.exists():
        dev.fail(f"{POT.relative_to(dev.REPO)} is missing: run `python3 scripts/i18n.py export`.", code=1)
    pot = read_catalog(POT)
    problems = []
    if not args.po_only:
        exported = read_catalog(odoo_export(args.database).decode())
        new, gone = keys(exported) - keys(pot), keys(pot) - keys(exported)
        problems += [f"{POT.name} is stale: Odoo now exports {msgid!r}" for _c, msgid in sorted(new, key=str)]
        problems += [f"{POT.name} is stale: Odoo no longer exports {msgid!r}" for _c, msgid in sorted(gone, key=str)]
    for po_path in sorted(I18N.glob("*.po")):
        problems += po_problems(pot, po_path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} translation problem(s): `python3 scripts/i18n.py export`, then translate.")
        return 1
    print(f"Translations: {len(keys(pot))} terms, {', '.join(p.stem for p in sorted(I18N.glob('*.po')))} complete.")
    return 0


def command_export(args):
    exported = odoo_export(args.database)
    I18N.mkdir(exist_ok=True)
    POT.write_bytes(exported)
    for po_path in sorted(I18N.glob("*.po")):
        old = read_catalog(po_path)
        translated = {(entry.msgctxt, entry.msgid): entry for entry in old if not entry.obsolete}
        merged = read_catalog(POT)
        merged.header, merged.metadata = old.header, old.metadata  # the translation team's header
        for entry in merged:
            if known := translated.get((entry.msgctxt, entry.msgid)):
                entry.msgstr = known.msgstr
                entry.flags = sorted(set(entry.flags) | ({"fuzzy"} & set(known.flags)))
        merged.save(str(po_path))
        todo = sum(1 for entry in merged if not entry.msgstr)
        print(f"{po_path.relative_to(dev.REPO)}: {todo} entries to translate")
    print(f"{POT.relative_to(dev.REPO)}: {len(keys(read_catalog(POT)))} terms")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "check"):
        command = sub.add_parser(name)
        command.add_argument("--database", default=database_name(), help="kept between runs (default: %(default)s)")
    sub.choices["check"].add_argument("--po-only", action="store_true", help="skip Odoo: only the .po files")
    args = parser.parse_args()
    return {"export": command_export, "check": command_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
