"""What the benchmark scripts share: webhook payloads and their signature, a fresh database with the
module, an Odoo server for the length of a ``with`` block, XML-RPC calls and ``odoo shell`` runs."""

import contextlib
import hashlib
import hmac
import subprocess
import time
import urllib.request
import xmlrpc.client

import dev


def text_payload(sender, wamid, name, body, phone_number_id, waba_id):
    """A Cloud API webhook delivery of one inbound text message from ``sender``."""
    message = {"from": sender, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": body}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": sender}],
        "messages": [message],
    }
    change = {"field": "messages", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [change]}]}


def signed_headers(body, app_secret):
    """The headers of a webhook POST of ``body`` (bytes), signed as Meta signs it."""
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def odoo_command(odoo_bin, database, *subcommand):
    return [odoo_bin, *subcommand, "-d", database, f"--addons-path={dev.addons_path(odoo_bin)}", "--log-level=warn"]


def database_exists(name):
    probe = subprocess.run(
        ["psql", "-d", "postgres", "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() == "1"


def drop_database(database):
    subprocess.run(["dropdb", "--if-exists", database], check=False, capture_output=True)


def install_fresh(odoo_bin, database):
    """Drop ``database`` and install the module on a new one, without demo data."""
    dev.check_postgres()
    drop_database(database)
    print(f"Installing whatsapp_crm on a fresh database {database} (without demo data)...", flush=True)
    command = [*odoo_command(odoo_bin, database), "-i", dev.MODULE, "--without-demo=all", "--stop-after-init"]
    subprocess.run([*command, f"--http-port={dev.free_port()}"], check=True)


def wait_until_up(url, seconds, interval=0.2):
    """Until ``url`` answers a 2xx (or ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).read()
            return
        time.sleep(interval)


@contextlib.contextmanager
def odoo_server(database, *options, install=False, start_seconds=60, stop_seconds=30):
    """Odoo serving ``database`` with ``options`` (installed first with ``install``): yields its port."""
    odoo_bin = dev.find_odoo()
    if install:
        install_fresh(odoo_bin, database)
    port = dev.free_port()
    server = subprocess.Popen([*odoo_command(odoo_bin, database), f"--http-port={port}", *options])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/web/health", seconds=start_seconds, interval=0.3)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=stop_seconds)


def rpc_caller(port, database, login="admin", password="admin"):
    """``call(model, method, *args, **kwargs)`` over XML-RPC as ``login``."""
    base_url = f"http://127.0.0.1:{port}/xmlrpc/2"
    uid = xmlrpc.client.ServerProxy(f"{base_url}/common").authenticate(database, login, password, {})
    rpc = xmlrpc.client.ServerProxy(f"{base_url}/object")

    def call(model, method, *args, **kwargs):
        return rpc.execute_kw(database, uid, password, model, method, list(args), kwargs)

    return call


def create_account(call, phone_number_id, waba_id, app_secret, **values):
    """The benchmark's WhatsApp account: it answers the webhook, sends nowhere until told."""
    account = {
        "name": "Bench",
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "access_token": "bench",
        "app_secret": app_secret,
        "api_base_url": "http://127.0.0.1:9",
        "lead_policy": "no_open_lead",
    }
    return call("crm.whatsapp.account", "create", {**account, **values})


def odoo_shell(database, code):
    """Run ``code`` in ``odoo shell`` on ``database``: the completed process, output captured."""
    odoo_bin = dev.find_odoo()
    return subprocess.run(
        [*odoo_command(odoo_bin, database, "shell"), "--no-http"],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
