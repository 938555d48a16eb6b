"""The Cloud API emulator itself: webhooks like Meta's, window, statuses, control API."""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from odoo.tests import TransactionCase, tagged

from ..tools.whatsapp_cloud_api import WhatsAppApiError, WhatsAppCloudApi
from . import cloud_api_emulator
from .common import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, WABA_ID, start_cloud_api_emulator

CUSTOMER_WA_ID = "4915112345678"


class WebhookReceiver:
    """A tiny HTTP server keeping the raw bodies and headers it receives."""

    def __init__(self, status=200):
        self.received = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"body": body, "headers": dict(self.headers)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def payloads(self):
        return [json.loads(item["body"]) for item in self.received]


def first_value(payload):
    return payload["entry"][0]["changes"][0]["value"]


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestCloudApiEmulator(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.receiver = WebhookReceiver()
        cls.addClassCleanup(cls.receiver.stop)
        cls.emulator = start_cloud_api_emulator(webhook_url=cls.receiver.url)
        cls.addClassCleanup(cls.emulator.stop)

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.emulator.auto_statuses, self.emulator.enforce_window = False, True
        self.receiver.received.clear()
        self.client = WhatsAppCloudApi(
            ACCESS_TOKEN, PHONE_NUMBER_ID, WABA_ID, base_url=self.emulator.base_url, version="v25.0"
        )

    def send_text(self, to=CUSTOMER_WA_ID):
        return self.client.send_message({"to": to, "type": "text", "text": {"body": "Hi"}})

    def test_webhook_signature_and_ascii_body(self):
        message, status = self.emulator.send_inbound(
            "text", CUSTOMER_WA_ID, name="Jürgen", body="Grüße, see https://example.com/a"
        )
        self.assertEqual(status, 200)
        self.assertEqual(len(self.receiver.received), 1)
        received = self.receiver.received[0]
        body, signature = received["body"], received["headers"]["X-Hub-Signature-256"]
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(signature, expected))
        forged = "sha256=" + hmac.new(b"another-secret", body, hashlib.sha256).hexdigest()
        self.assertFalse(hmac.compare_digest(signature, forged))
        # Meta's body is ASCII-escaped: re-serializing it would break the signature
        self.assertIn(b"J\\u00fcrgen", body)
        self.assertNotIn("Jürgen".encode(), body)
        self.assertIn(b"https:\\/\\/example.com\\/a", body)
        self.assertEqual(body, body.decode("ascii").encode())
        payload = json.loads(body)
        self.assertEqual(payload["object"], "whatsapp_business_account")
        self.assertEqual(payload["entry"][0]["id"], WABA_ID)
        self.assertEqual(payload["entry"][0]["changes"][0]["field"], "messages")
        value = first_value(payload)
        self.assertEqual(value["messaging_product"], "whatsapp")
        self.assertEqual(value["metadata"]["phone_number_id"], PHONE_NUMBER_ID)
        self.assertEqual(value["contacts"], [{"profile": {"name": "Jürgen"}, "wa_id": CUSTOMER_WA_ID}])
        self.assertEqual(value["messages"], [message])
        self.assertEqual(message["text"]["body"], "Grüße, see https://example.com/a")
        self.assertTrue(message["id"].startswith("wamid."))
        self.assertTrue(message["timestamp"].isdigit())

    def test_inbound_message_types(self):
        expected_keys = {
            "text": "text",
            "image": "image",
            "audio": "audio",
            "video": "video",
            "document": "document",
            "sticker": "sticker",
            "location": "location",
            "contacts": "contacts",
            "button_reply": "interactive",
            "list_reply": "interactive",
            "button": "button",
            "reaction": "reaction",
            "order": "order",
            "system": "system",
            "unsupported": "unsupported",
        }
        for message_type, key in expected_keys.items():
            with self.subTest(message_type=message_type):
                payload = self.emulator.build_inbound(message_type, CUSTOMER_WA_ID)
                message = first_value(payload)["messages"][0]
                self.assertEqual(message["type"], "interactive" if key == "interactive" else message_type)
                self.assertTrue(message[key])
        interactive = first_value(self.emulator.build_inbound("list_reply", CUSTOMER_WA_ID, reply_id="row-2"))
        self.assertEqual(interactive["messages"][0]["interactive"]["list_reply"]["id"], "row-2")
        unsupported = first_value(self.emulator.build_inbound("unsupported", CUSTOMER_WA_ID))["messages"][0]
        self.assertEqual(unsupported["errors"][0]["code"], 131051)
        self.assertEqual(self.receiver.received, [], "building does not send")

    def test_inbound_reaction_and_removal(self):
        build = self.emulator.build_inbound
        reaction = first_value(build("reaction", CUSTOMER_WA_ID, message_id="wamid.OUT1", emoji="❤"))
        self.assertEqual(reaction["messages"][0]["reaction"], {"message_id": "wamid.OUT1", "emoji": "❤"})
        removal = first_value(build("reaction", CUSTOMER_WA_ID, message_id="wamid.OUT1", emoji=""))
        self.assertEqual(removal["messages"][0]["reaction"], {"message_id": "wamid.OUT1"})

    def test_inbound_referral_and_context(self):
        message = first_value(
            self.emulator.build_inbound("image", CUSTOMER_WA_ID, referral=True, reply_to="wamid.OUT2")
        )["messages"][0]
        self.assertEqual(message["referral"]["source_type"], "ad")
        self.assertTrue(message["referral"]["ctwa_clid"])
        self.assertEqual(message["context"]["id"], "wamid.OUT2")

    def test_inbound_username_user(self):
        """A user known by a business-scoped id only, answered with ``recipient``."""
        message, status = self.emulator.send_inbound("text", None, user_id="US.13491208655302741918")
        self.assertEqual(status, 200)
        self.assertNotIn("from", message)
        self.assertEqual(message["from_user_id"], "US.13491208655302741918")
        contact = first_value(self.receiver.payloads()[-1])["contacts"][0]
        self.assertEqual(contact, {"profile": {"name": "Emulated Customer"}, "user_id": "US.13491208655302741918"})
        result = self.client._request(
            "POST",
            f"{PHONE_NUMBER_ID}/messages",
            json={
                "messaging_product": "whatsapp",
                "recipient": "US.13491208655302741918",
                "type": "text",
                "text": {"body": "Hi"},
            },
        )
        self.assertEqual(
            result["contacts"], [{"input": "US.13491208655302741918", "user_id": "US.13491208655302741918"}]
        )

    def test_inbound_media_downloadable(self):
        content = b"%PDF-1.4 emulated"
        message, _status = self.emulator.send_inbound(
            "document", CUSTOMER_WA_ID, content=content, filename="quote.pdf", caption="Our quote"
        )
        document = message["document"]
        self.assertEqual((document["filename"], document["caption"]), ("quote.pdf", "Our quote"))
        info = self.client.get_media_info(document["id"])
        self.assertEqual(info["sha256"], document["sha256"])
        self.assertEqual(self.client.download_media(info["url"]), content)

    def test_window_opened_by_inbound_message(self):
        with self.assertRaises(WhatsAppApiError) as caught:
            self.send_text()
        self.assertEqual(caught.exception.code, 131047)
        self.emulator.send_inbound("text", CUSTOMER_WA_ID)
        self.assertTrue(self.send_text())
        # 25 hours later the window is closed again
        self.emulator.clock = lambda: time.time() + 25 * 3600
        self.addCleanup(setattr, self.emulator, "clock", time.time)
        with self.assertRaises(WhatsAppApiError) as caught:
            self.send_text()
        self.assertEqual(caught.exception.code, 131047)

    def test_statuses_on_demand(self):
        self.emulator.open_window(CUSTOMER_WA_ID)
        wamid = self.send_text()
        self.assertEqual(self.emulator.emit_statuses(wamid), [200, 200, 200])
        statuses = [first_value(p)["statuses"][0] for p in self.receiver.payloads()]
        self.assertEqual([s["status"] for s in statuses], ["sent", "delivered", "read"])
        self.assertEqual({s["id"] for s in statuses}, {wamid})
        self.assertEqual({s["recipient_id"] for s in statuses}, {CUSTOMER_WA_ID})
        self.assertEqual(statuses[0]["pricing"]["category"], "service")
        self.emulator.emit_statuses(wamid, ["failed"], error_code=131026)
        failed = first_value(self.receiver.payloads()[-1])["statuses"][0]
        self.assertEqual((failed["status"], failed["errors"][0]["code"]), ("failed", 131026))

    def test_statuses_automatic(self):
        self.emulator.auto_statuses, self.emulator.status_delay = True, 0.01
        wamid = self.client.send_message(
            {
                "to": CUSTOMER_WA_ID,
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}},
            }
        )
        deadline = time.monotonic() + 5
        while len(self.receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        statuses = [first_value(p)["statuses"][0] for p in self.receiver.payloads()]
        self.assertEqual(
            [(s["id"], s["status"]) for s in statuses], [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
        )
        self.assertEqual(statuses[0]["pricing"]["category"], "utility")

    def test_template_status_update(self):
        template = self.emulator.add_template("spring_sale", status="PENDING")
        self.assertEqual(self.emulator.emit_template_status(template["id"], "APPROVED"), 200)
        payload = self.receiver.payloads()[0]
        self.assertEqual(payload["entry"][0]["changes"][0]["field"], "message_template_status_update")
        value = first_value(payload)
        self.assertEqual((value["event"], value["message_template_name"]), ("APPROVED", "spring_sale"))
        self.assertEqual(template["status"], "APPROVED")

    def test_error_shape(self):
        response = requests.post(
            f"{self.emulator.base_url}/v25.0/{PHONE_NUMBER_ID}/messages",
            json={"to": CUSTOMER_WA_ID, "type": "text", "text": {"body": "Hi"}},
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
            timeout=5,
        )
        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(set(error), {"message", "type", "code", "error_data", "fbtrace_id"})
        self.assertEqual((error["code"], error["type"]), (100, "OAuthException"))
        self.assertTrue(error["message"].startswith("(#100) "))
        self.assertEqual(error["error_data"]["messaging_product"], "whatsapp")

    def test_requests_recorded(self):
        self.client.mark_as_read("wamid.IN1")
        self.client._request("GET", f"{PHONE_NUMBER_ID}", params={"fields": "verified_name", "access_token": "x"})
        first, second = self.emulator.requests
        self.assertEqual(first["json"], {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"})
        self.assertEqual(
            (second["method"], second["query"], second["status"]), ("GET", {"fields": "verified_name"}, 200)
        )
        self.assertNotIn("Authorization", second["headers"])
        self.emulator.reset()
        self.assertEqual(self.emulator.requests, [])

    def test_control_api(self):
        control = f"{self.emulator.base_url}/_emulator"
        requests.post(f"{control}/fail_next", json={"n": 1, "code": 131000}, timeout=5).raise_for_status()
        with self.assertRaises(WhatsAppApiError) as caught:
            self.client.get_phone_number()
        self.assertEqual(caught.exception.code, 131000)
        answer = requests.post(
            f"{control}/inbound", json={"type": "text", "from": CUSTOMER_WA_ID, "body": "Via HTTP"}, timeout=5
        ).json()
        self.assertEqual(answer["webhook_status"], 200)
        self.assertEqual(first_value(self.receiver.payloads()[-1])["messages"][0]["text"]["body"], "Via HTTP")
        self.assertTrue(self.send_text(), "an inbound message opens the window")
        recorded = requests.get(f"{control}/requests", timeout=5).json()["requests"]
        self.assertEqual([r["status"] for r in recorded], [400, 200])
        requests.post(f"{control}/config", json={"throughput": 1}, timeout=5).raise_for_status()
        self.assertEqual(self.emulator.throughput, 1)
        self.addCleanup(setattr, self.emulator, "throughput", 80)
        self.assertEqual(requests.post(f"{control}/unknown", json={}, timeout=5).status_code, 404)

    def test_runs_standalone_without_odoo(self):
        emulator = start_cloud_api_emulator()  # only to get a free port
        port = emulator.port
        emulator.stop()
        script = (
            "import runpy, sys; sys.modules['odoo'] = None; "  # any Odoo import would fail
            f"sys.argv = ['emulator', '--port', '{port}', '--access-token', 'T', '--phone-number-id', '42', "
            "'--waba-id', 'W', '--app-secret', 'S', '--webhook-url', 'http://127.0.0.1:9/hook']; "
            f"runpy.run_path({cloud_api_emulator.__file__!r}, run_name='__main__')"
        )
        process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, env=dict(os.environ))
        self.addCleanup(process.stderr.close)
        self.addCleanup(process.wait, 5)
        self.addCleanup(process.terminate)
        client = WhatsAppCloudApi("T", "42", "W", base_url=f"http://127.0.0.1:{port}", version="v23.0", timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                details = client.get_phone_number()
                break
            except WhatsAppApiError:
                if process.poll() is not None or time.monotonic() > deadline:
                    self.fail(f"the emulator did not start: {process.stderr.read().decode()}")
                time.sleep(0.1)
        self.assertEqual(details["id"], "42")

    def test_runtime_code_never_imports_the_emulator(self):
        """The emulator has an open control API: only tests and development may reach it."""
        addon = Path(cloud_api_emulator.__file__).resolve().parent.parent
        self.assertEqual(Path(cloud_api_emulator.__file__).resolve().parent.name, "tests")
        offenders = [
            str(path.relative_to(addon))
            for path in addon.rglob("*.py")
            if "tests" not in path.relative_to(addon).parts
            and re.search(r"^\s*(from|import)\s.*cloud_api_emulator", path.read_text(encoding="utf-8"), re.M)
        ]
        self.assertFalse(offenders, "runtime modules import the Cloud API emulator")
