"""`make run`: Odoo with whatsapp_crm's demo data, talking to the local Cloud API emulator.

Called by ``scripts/dev.py run``. On the first run it installs what is missing (the Python
requirements into Odoo's own Python, the database with the module and its demo data); later
runs reuse the database as the user left it. Each run then:

1. points the demo account at the emulator started now (its URL), and reads the account's
   credentials and templates so that the emulator answers for exactly those;
2. switches off Odoo's "CRM: enrich leads (IAP)" job, which needs internet and an IAP account,
   and would fill the log with errors nobody can fix in a demo;
3. starts the emulator (with its customer phone page) and Odoo, waits until both answer, and
   prints where to go and how to log in. Ctrl-C stops both.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import dev

EMULATOR = dev.REPO / dev.MODULE / "tests" / "cloud_api_emulator.py"
LOGINS = (
    ("Administrator", "admin", "admin"),
    ("Salesperson", "demo", "demo"),  # Marc Demo
    ("Salesperson", "ana", "ana"),  # Ana Kovač: both take new chats in turn
)
SAMPLE_CUSTOMER = {"wa_id": "385911234567", "name": "Ivana Horvat"}
CONFIG_MARK = "WHATSAPP_CRM_DEMO_CONFIG "
SOURCES_KEY = "whatsapp_crm.demo_sources_hash"  # the add-on's files when the database was last updated

# Run inside `odoo-bin shell`: the demo account follows the emulator; the IAP job is switched off.
CONFIGURE = """
import json
SOURCES_KEY = {sources_key!r}
emulator_url = {emulator_url!r}
account = env.ref("whatsapp_crm.crm_whatsapp_account_demo", raise_if_not_found=False)
if account and account.api_base_url.startswith(("http://127.0.0.1", "http://localhost")):
    account.api_base_url = emulator_url
iap_cron = env.ref("crm_iap_enrich.ir_cron_lead_enrichment", raise_if_not_found=False)
if iap_cron:
    iap_cron.sudo().active = False
env["ir.config_parameter"].sudo().set_param("web.base.url", {base_url!r})
env["ir.config_parameter"].sudo().set_param(SOURCES_KEY, {sources!r})
config = {{"account": None, "templates": [], "customers": [], "iap_cron": bool(iap_cron)}}
if account and account.api_base_url == emulator_url:
    secrets = account.sudo()
    config["account"] = {{
        "name": account.name,
        "access_token": secrets.access_token,
        "app_secret": secrets.app_secret,
        "phone_number_id": account.phone_number_id,
        "waba_id": account.waba_id,
        "display_phone_number": account.display_phone_number or "",
        "verified_name": account.verified_name or account.company_id.name,
    }}
    Template = env["crm.whatsapp.template"].with_context(active_test=False)
    for template in Template.search([("account_id", "=", account.id)]):
        if hasattr(template, "_whatsapp_meta_components"):
            components = template._whatsapp_meta_components()
        else:
            components = [{{"type": "BODY", "text": template.body or ""}}]
        config["templates"].append({{
            "name": template.name,
            "language": template.language,
            "status": (template.status or "pending").upper(),
            "category": (template.category or "utility").upper(),
            "components": components,
            **({{"id": template.wa_template_id}} if template.wa_template_id else {{}}),
        }})
    conversations = env["crm.whatsapp.conversation"].search([("account_id", "=", account.id)], limit=20)
    config["customers"] = [
        {{"wa_id": c.wa_id, "name": c.profile_name or c.partner_id.name or c.wa_id}} for c in conversations if c.wa_id
    ]
env.cr.commit()
print({mark!r} + json.dumps(config))
"""


def odoo_python(odoo_bin):
    """The interpreter that runs ``odoo_bin`` (from its shebang), else this one."""
    try:
        with open(odoo_bin, "rb") as script:
            first = script.readline().decode(errors="replace").strip()
    except OSError:
        return sys.executable
    if not first.startswith("#!"):
        return sys.executable
    words = shlex.split(first[2:])
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return words[0] if words else sys.executable


def ensure_requirements(python):
    """Install requirements.txt into Odoo's Python when a distribution is missing."""
    requirements = [
        line.split("#")[0].strip()
        for line in (dev.REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.split("#")[0].strip()
    ]
    names = [
        requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].split("~")[0].strip()
        for requirement in requirements
    ]
    probe = (
        "import importlib.metadata as m, sys\n"
        "missing = []\n"
        f"for name in {names!r}:\n"
        "    try: m.version(name)\n"
        "    except m.PackageNotFoundError: missing.append(name)\n"
        "print(' '.join(missing))\n"
    )
    missing = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False).stdout.split()
    if not missing:
        return
    print(f"Installing the missing Python requirements into Odoo's Python ({python}): {', '.join(missing)}")
    command = [python, "-m", "pip", "install", "--quiet", *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode and "externally-managed-environment" in result.stderr:
        # Debian/Ubuntu's system Python: install for this user only, never over the system's packages
        result = subprocess.run([*command, "--user", "--break-system-packages"], check=False)
    if result.returncode:
        dev.fail(f"Could not install {', '.join(missing)} into {python}: {result.stderr}")


def module_state(database):
    """``None`` when the database does not exist, else the module's state ("" when unknown)."""
    exists = subprocess.run(
        ["psql", "-d", "postgres", "-Atc", f"select 1 from pg_database where datname = '{database}'"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not exists:
        return None
    state = subprocess.run(
        ["psql", "-d", database, "-Atc", f"select state from ir_module_module where name = '{dev.MODULE}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    return state.stdout.strip()


def odoo_command(odoo_bin, database, *extra, command=()):
    """``odoo-bin [command] -d database --addons-path=... extra``"""
    return [odoo_bin, *command, "-d", database, f"--addons-path={dev.addons_path(odoo_bin)}", *extra]


def install(odoo_bin, database):
    print(f"Creating the database {database} with {dev.MODULE} and its demo data (once; a few minutes)...")
    started = time.monotonic()
    result = subprocess.run(
        odoo_command(odoo_bin, database, "-i", dev.MODULE, "--stop-after-init", "--log-level=warn", "--no-http"),
        check=False,
    )
    if result.returncode:
        dev.fail(f"Installing {dev.MODULE} on {database} failed (see the log above).")
    print(f"Database {database} ready in {time.monotonic() - started:.0f} s.")


def update_if_changed(odoo_bin, database):
    """``-u`` the add-on when its files changed since the last run (a pull, a branch): views and
    data follow the code. Demo data is only loaded at install, so the user's changes stay."""
    known = subprocess.run(
        ["psql", "-d", database, "-Atc", f"select value from ir_config_parameter where key = '{SOURCES_KEY}'"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if known == dev.sources_hash():
        return
    print(f"{dev.MODULE} changed since {database} was last started: updating it (your data stays)...")
    command = odoo_command(odoo_bin, database, "-u", dev.MODULE, "--stop-after-init", "--log-level=warn", "--no-http")
    if subprocess.run(command, check=False).returncode:
        dev.fail(f"Updating {dev.MODULE} on {database} failed (see the log above).")


def configure(odoo_bin, database, emulator_url, base_url):
    script = CONFIGURE.format(
        emulator_url=emulator_url,
        base_url=base_url,
        mark=CONFIG_MARK,
        sources_key=SOURCES_KEY,
        sources=dev.sources_hash(),
    )
    result = subprocess.run(
        odoo_command(odoo_bin, database, "--no-http", "--log-level=warn", command=["shell"]),
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith(CONFIG_MARK)), None)
    if result.returncode or line is None:
        dev.fail(f"Could not configure the demo database {database}:\n{result.stdout}\n{result.stderr}")
    return json.loads(line[len(CONFIG_MARK) :])


def wait_until_up(url, process, name, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            dev.fail(f"{name} stopped (exit code {process.returncode}).")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    dev.fail(f"{name} did not answer on {url} within {seconds} s.")


def check_free(port, name):
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            dev.fail(f"Port {port} for {name} is already in use: choose another one (PORT=..., EMULATOR_PORT=...).")


def banner(args, config, odoo_url, emulator_url):
    phone_url = f"{emulator_url}/phone/"
    sample = json.dumps({"type": "text", "from": SAMPLE_CUSTOMER["wa_id"], "name": SAMPLE_CUSTOMER["name"],
                         "body": "Hello! Do you have the oak desk in stock?"})  # fmt: skip
    lines = [
        "",
        "=" * 78,
        f"  WhatsApp CRM demo is running (database {args.database})",
        "",
        f"  Odoo:          {odoo_url}/odoo/crm",
        *(f"  {role + ':':<15}login {login!r}, password {password!r}" for role, login, password in LOGINS),
        f"  Customer phone: {phone_url}  (play the customers: text, photo, voice, buttons)",
        f'  Emulated Cloud API: {emulator_url}  (WhatsApp account "{config["account"]["name"]}")',
        "",
        "  Send a customer message from a terminal:",
        f"    curl -s {emulator_url}/_emulator/inbound -H 'Content-Type: application/json' \\",
        f"         -d '{sample}'",
        "",
    ]
    if config["iap_cron"]:
        lines.append('  Odoo\'s "CRM: enrich leads (IAP)" job is switched off here: it needs internet and')
        lines.append("  IAP credits, and would only log errors. Switch it on in Settings > Scheduled Actions.")
    lines += ["  Ctrl-C stops Odoo and the emulator. The next `make run` keeps your changes.", "=" * 78, ""]
    print("\n".join(lines), flush=True)


def stop(process, interrupted, seconds=15):
    """Stop ``process``; after a Ctrl-C it got the SIGINT too, and is given time to finish."""
    if process.poll() is None and not interrupted:
        process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args):
    odoo_bin = dev.find_odoo()
    dev.check_postgres()
    ensure_requirements(odoo_python(odoo_bin))
    check_free(args.port, "Odoo")
    check_free(args.emulator_port, "the emulator")
    odoo_url = f"http://localhost:{args.port}"
    emulator_url = f"http://127.0.0.1:{args.emulator_port}"
    state = module_state(args.database)
    if state != "installed":
        if state is not None and state != "":
            dev.fail(f"{dev.MODULE} is {state!r} in the database {args.database}: fix it, or choose DB=another.")
        install(odoo_bin, args.database)
    else:
        print(f"Reusing the database {args.database} as you left it (DB=other for a new one).")
        update_if_changed(odoo_bin, args.database)
    config = configure(odoo_bin, args.database, emulator_url, odoo_url)
    account = config["account"]
    if not account:
        dev.fail(
            f"The database {args.database} has no demo WhatsApp account talking to a local emulator "
            "(it was created without demo data, or the account points at Meta): choose DB=another."
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="whatsapp_crm_templates_", delete=False) as file:
        json.dump(config["templates"], file)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="whatsapp_crm_customers_", delete=False) as people:
        json.dump([SAMPLE_CUSTOMER, *config["customers"]], people)
    emulator = subprocess.Popen(
        [
            sys.executable,
            str(EMULATOR),
            f"--port={args.emulator_port}",
            f"--webhook-url=http://127.0.0.1:{args.port}/{dev.MODULE}/webhook",
            f"--app-secret={account['app_secret']}",
            f"--access-token={account['access_token']}",
            f"--phone-number-id={account['phone_number_id']}",
            f"--waba-id={account['waba_id']}",
            f"--display-phone-number={account['display_phone_number']}",
            f"--verified-name={account['verified_name']}",
            f"--templates={file.name}",
            f"--customers={people.name}",
            # the demo's chat history never went through this emulator: Odoo checks the window itself
            "--no-window",
        ]
    )
    odoo, interrupted = None, False
    try:
        wait_until_up(f"{emulator_url}/_emulator/requests", emulator, "The emulator", seconds=15)
        odoo = subprocess.Popen(
            odoo_command(
                odoo_bin,
                args.database,
                f"--db-filter=^{args.database}$",
                f"--http-port={args.port}",
                "--log-level=warn",
            )
        )
        wait_until_up(f"http://127.0.0.1:{args.port}/web/health", odoo, "Odoo")
        banner(args, config, odoo_url, emulator_url)
        return odoo.wait()
    except KeyboardInterrupt:
        interrupted = True
        print("\nStopping Odoo and the emulator...", flush=True)
        return 0
    finally:
        if odoo:
            stop(odoo, interrupted)
        stop(emulator, interrupted, seconds=5)
        os.unlink(file.name)
        os.unlink(people.name)
