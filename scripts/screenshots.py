#!/usr/bin/env python3
"""Screenshots of the running demo (`make run`) for the module's description page.

    python3 scripts/screenshots.py [--odoo http://localhost:8069] [--phone http://127.0.0.1:8099/phone/]

Drives headless Chromium over its DevTools protocol: logs in as the demo salesperson, opens the
lead of a customer's conversation on its live chat, the inbox, and that customer's phone page,
waits for each to settle and saves a PNG into whatsapp_crm/static/description/. Chat with the
customer first (phone page and lead), so that both sides show a conversation.
"""

import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import websocket  # websocket-client, in requirements-dev.txt

OUT = Path(__file__).resolve().parent.parent / "whatsapp_crm" / "static" / "description"


class Chromium:
    def __init__(self, width, height):
        names = ("chromium", "chromium-browser", "google-chrome")
        binary = next((shutil.which(name) for name in names if shutil.which(name)), None)
        if not binary:
            sys.exit("Chromium is required.")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="whatsapp_crm_shots_")
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as answer:
                    page = next(t for t in json.load(answer) if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    sys.exit("Chromium did not start.")
                time.sleep(0.2)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.ids = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.ids:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url, ready="true", settle=1.5, timeout=30):
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"document.readyState === 'complete' && !!({ready})"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready: {ready}")
            time.sleep(0.3)
        time.sleep(settle)

    def shot(self, name):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        (OUT / name).write_bytes(base64.b64decode(data))
        print(f"{OUT / name}")

    def close(self):
        self.ws.close()
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def login(odoo, database, login, password):
    """A session id of ``login``."""
    request = urllib.request.Request(
        f"{odoo}/web/session/authenticate",
        data=json.dumps({"jsonrpc": "2.0", "params": {"db": database, "login": login, "password": password}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        cookie = answer.headers["Set-Cookie"]
        if json.load(answer).get("error"):
            sys.exit(f"Login of {login} failed.")
    return cookie.split("session_id=")[1].split(";")[0]


def lead_of(odoo, session, wa_id):
    """The lead of the customer's conversation, read over JSON-RPC as the logged-in user."""
    request = urllib.request.Request(
        f"{odoo}/web/dataset/call_kw",
        data=json.dumps({"jsonrpc": "2.0", "params": {
            "model": "crm.whatsapp.conversation", "method": "search_read",
            "args": [[["wa_id", "=", wa_id], ["lead_id", "!=", False]]], "kwargs": {"fields": ["lead_id"], "limit": 1},
        }}).encode(),
        headers={"Content-Type": "application/json", "Cookie": f"session_id={session}"},
    )  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        found = json.load(answer).get("result")
    if not found:
        sys.exit(f"No lead with a WhatsApp conversation of +{wa_id} that this user can read: chat with them first.")
    return found[0]["lead_id"][0]


def check_emoji_font():
    """Reactions and emoji render as empty boxes without a colour emoji font (fonts-noto-color-emoji)."""
    if shutil.which("fc-list"):
        found = subprocess.run(["fc-list", ":charset=1f44d"], capture_output=True, text=True, check=False).stdout
        if not found.strip():
            print("Warning: no emoji font is installed (e.g. fonts-noto-color-emoji): emoji will show as boxes.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--odoo", default="http://localhost:8069")
    parser.add_argument("--database", default="whatsapp_crm")
    parser.add_argument("--phone", default="http://127.0.0.1:8099/phone/")
    parser.add_argument("--login", default="demo")
    parser.add_argument("--wa-id", default="582126810538", help="the customer of the chat and phone screenshots")
    parser.add_argument("--name", default="Azure Interior", help="the customer's name on the phone page")
    parser.add_argument("--lead-url", help="the page of the chat screenshot (default: the customer's lead)")
    parser.add_argument("--inbox-url", default="/odoo/action-whatsapp_crm.crm_whatsapp_conversation_action")
    args = parser.parse_args()
    check_emoji_font()
    browser = Chromium(1440, 900)
    try:
        session = login(args.odoo, args.database, args.login, args.login)
        host = args.odoo.split("//")[1].split(":")[0].split("/")[0]
        browser.call("Network.enable")
        browser.call("Network.setCookie", name="session_id", value=session, domain=host, path="/")
        web_ready = "document.querySelector('.o_action_manager .o_view_controller, .o_form_view')"
        lead_url = args.lead_url or f"/odoo/crm/{lead_of(args.odoo, session, args.wa_id)}"
        browser.open(f"{args.odoo}{lead_url}", ready=web_ready, settle=3)
        # the lead's WhatsApp tab, when the form has one
        browser.evaluate(
            "[...document.querySelectorAll('.o_notebook .nav-link')]"
            ".find((tab) => tab.textContent.trim() === 'WhatsApp')?.click(); true"
        )
        deadline = time.monotonic() + 15
        while not browser.evaluate("!!document.querySelector('.o_whatsapp_crm_chat .o_whatsapp_crm_bubble')"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        time.sleep(2)
        # the chat fills the screen, under the lead's tabs
        browser.evaluate("document.querySelector('.o_notebook')?.scrollIntoView({block: 'start'}); true")
        time.sleep(1)
        browser.shot("screenshot_chat.png")
        browser.open(f"{args.odoo}{args.inbox_url}", ready=web_ready, settle=3)
        browser.shot("screenshot_inbox.png")
        customer = urllib.parse.urlencode({"wa_id": args.wa_id, "name": args.name})
        browser.open(f"{args.phone}?{customer}", ready="!document.getElementById('phone').hidden", settle=2)
        browser.shot("screenshot_phone.png")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
