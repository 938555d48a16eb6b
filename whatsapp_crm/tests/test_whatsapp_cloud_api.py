"""The Graph API client against the local emulator, over real HTTP."""

import hashlib
import logging
import socket
import time

from odoo.tests import TransactionCase, tagged

from ..tools.whatsapp_cloud_api import WhatsAppApiError, WhatsAppCloudApi
from .common import ACCESS_TOKEN, PHONE_NUMBER_ID, WABA_ID, start_cloud_api_emulator

CUSTOMER = "+49 151 1234 5678"
CUSTOMER_WA_ID = "4915112345678"


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWhatsAppCloudApi(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = start_cloud_api_emulator(webhook_url=None)
        cls.addClassCleanup(cls.emulator.stop)

    def setUp(self):
        super().setUp()
        self.emulator.reset()
        self.emulator.throughput, self.emulator.latency, self.emulator.enforce_window = 80, 0, True
        self.client = self.new_client()
        self.addCleanup(self.client.close)

    def new_client(self, token=ACCESS_TOKEN, base_url=None, **kwargs):
        return WhatsAppCloudApi(
            token, PHONE_NUMBER_ID, WABA_ID, base_url=base_url or self.emulator.base_url, version="v25.0", **kwargs
        )

    def send_text(self, body="Hello", to=CUSTOMER):
        return self.client.send_message({"to": to, "type": "text", "text": {"body": body}})

    def assertApiError(self, call, code, retryable, http_status=None):
        with self.assertRaises(WhatsAppApiError) as caught:
            call()
        error = caught.exception
        self.assertEqual(error.code, code)
        self.assertIs(error.retryable, retryable)
        if http_status is not None:
            self.assertEqual(error.http_status, http_status)
        return error

    # Success of every method
    def test_send_message(self):
        self.emulator.open_window(CUSTOMER_WA_ID)
        wamid = self.send_text("Grüße")
        self.assertTrue(wamid.startswith("wamid."))
        sent = self.emulator.sent_messages[wamid]
        self.assertEqual(sent["to"], CUSTOMER_WA_ID)
        self.assertEqual(sent["payload"]["text"], {"body": "Grüße"})
        request = self.emulator.requests[-1]
        self.assertEqual((request["method"], request["path"]), ("POST", f"/v25.0/{PHONE_NUMBER_ID}/messages"))
        self.assertEqual(request["json"]["messaging_product"], "whatsapp")
        self.assertNotIn("authorization", {key.lower() for key in request["headers"]})

    def test_send_template_outside_window(self):
        wamid = self.client.send_message(
            {"to": CUSTOMER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}
        )
        self.assertEqual(self.emulator.sent_messages[wamid]["category"], "utility")

    def test_mark_as_read(self):
        self.assertIs(self.client.mark_as_read("wamid.INBOUND1"), True)
        # the receipt (a request of an earlier test that timed out may be recorded late)
        receipts = [r["json"] for r in self.emulator.requests if (r.get("json") or {}).get("status") == "read"]
        self.assertEqual([receipt["message_id"] for receipt in receipts], ["wamid.INBOUND1"])

    def test_media_round_trip(self):
        content = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        media_id = self.client.upload_media(content, "image/png", "photo.png")
        info = self.client.get_media_info(media_id)
        self.assertEqual(info["id"], media_id)
        self.assertEqual(info["mime_type"], "image/png")
        self.assertEqual(info["file_size"], len(content))
        self.assertEqual(info["sha256"], hashlib.sha256(content).hexdigest())
        self.assertTrue(info["url"].startswith(self.emulator.base_url))
        self.assertEqual(self.client.download_media(info["url"]), content)
        # the upload (a request of an earlier test that timed out may be recorded late)
        form = next(r["form"] for r in self.emulator.requests if r["path"].endswith("/media"))
        self.assertEqual((form["messaging_product"], form["type"]), ("whatsapp", "image/png"))
        self.assertEqual(form["file"]["filename"], "photo.png")
        # the media URL needs the bearer token too
        self.assertApiError(lambda: self.new_client("wrong").download_media(info["url"]), 190, False, 401)

    def test_upload_unsupported_media(self):
        self.assertApiError(lambda: self.client.upload_media(b"x", "image/gif", "a.gif"), 131053, False)

    def test_list_templates_paginated(self):
        for index in range(24):
            self.emulator.add_template(f"offer_{index:02d}")
        templates = self.client.list_templates(limit=10)
        self.assertEqual(len(templates), 25)
        self.assertEqual(len({template["id"] for template in templates}), 25)
        self.assertEqual(templates[0]["name"], "hello_world")
        self.assertEqual(templates[-1]["name"], "offer_23")
        pages = [r for r in self.emulator.requests if r["path"].endswith("/message_templates")]
        self.assertEqual(len(pages), 3)
        self.assertTrue(pages[1]["query"]["after"])

    def test_create_template(self):
        values = {
            "name": "order_ready",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Your order {{1}} is ready", "example": {"body_text": [["42"]]}}],
        }
        result = self.client.create_template(values)
        self.assertEqual((result["status"], result["category"]), ("APPROVED", "UTILITY"))
        self.emulator.template_status = "PENDING"
        result = self.client.create_template({**values, "name": "order_shipped"})
        self.assertEqual(result["status"], "PENDING")
        self.assertEqual(
            {t["name"]: t["status"] for t in self.client.list_templates()}["order_shipped"],
            "PENDING",
        )
        error = self.assertApiError(lambda: self.client.create_template({**values, "name": "Bad Name"}), 100, False)
        self.assertIn("lowercase", error.message)

    def test_get_phone_number(self):
        details = self.client.get_phone_number()
        self.assertEqual(details["display_phone_number"], self.emulator.display_phone_number)
        self.assertEqual(details["verified_name"], self.emulator.verified_name)
        self.assertEqual(details["quality_rating"], "GREEN")
        self.assertEqual(details["messaging_limit_tier"], "TIER_1K")
        self.assertNotIn("platform_type", details, "only the fields asked for are returned")

    # Every error class
    def test_error_invalid_token(self):
        error = self.assertApiError(lambda: self.new_client("expired").get_phone_number(), 190, False, 401)
        self.assertIn("access token is invalid", error.message)
        self.assertTrue(error.fbtrace_id)
        self.assertNotIn("expired-token", repr(self.new_client("expired-token")))

    def test_error_template_missing(self):
        error = self.assertApiError(
            lambda: self.client.send_message(
                {"to": CUSTOMER, "type": "template", "template": {"name": "nope", "language": {"code": "en_US"}}}
            ),
            132001,
            False,
        )
        self.assertIn("does not exist", error.message)
        self.emulator.add_template("waiting", status="PENDING")
        self.assertApiError(
            lambda: self.client.send_message(
                {"to": CUSTOMER, "type": "template", "template": {"name": "waiting", "language": {"code": "en_US"}}}
            ),
            132001,
            False,
        )

    def test_error_template_parameter_count(self):
        self.emulator.add_template("promo", components=[{"type": "BODY", "text": "Hi {{1}}, {{2}}% off"}])
        template = {"name": "promo", "language": {"code": "en_US"}}
        self.assertApiError(
            lambda: self.client.send_message({"to": CUSTOMER, "type": "template", "template": template}), 132000, False
        )
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}] * 2}]
        self.assertTrue(self.client.send_message({"to": CUSTOMER, "type": "template", "template": template}))

    def test_error_outside_window(self):
        error = self.assertApiError(self.send_text, 131047, False)
        self.assertIn("24-hour window", error.message)
        self.emulator.open_window(CUSTOMER_WA_ID)
        self.assertTrue(self.send_text())
        self.emulator.enforce_window = False
        self.assertTrue(self.send_text(to="+33 6 00 00 00 01"))

    def test_error_throughput(self):
        self.emulator.enforce_window = False
        self.emulator.throughput = 3
        for _i in range(3):
            self.send_text()
        error = self.assertApiError(self.send_text, 130429, True)
        self.assertIn("throughput", error.message)
        time.sleep(1.05)  # the one-second window slides
        self.assertTrue(self.send_text())

    def test_error_validation(self):
        self.emulator.open_window(CUSTOMER_WA_ID)
        self.assertApiError(lambda: self.client.send_message({"type": "text", "text": {"body": "x"}}), 100, False)
        self.assertApiError(lambda: self.send_text("x" * 4097), 100, False)
        self.assertApiError(lambda: self.client.send_message({"to": CUSTOMER, "type": "text"}), 131008, False)
        buttons = [{"type": "reply", "reply": {"id": str(i), "title": f"Choice {i}"}} for i in range(4)]
        interactive = {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}
        self.assertApiError(
            lambda: self.client.send_message({"to": CUSTOMER, "type": "interactive", "interactive": interactive}),
            131009,
            False,
        )
        self.assertApiError(lambda: self.client.get_media_info("424242"), 100, False)

    def test_error_injected_server_error(self):
        self.emulator.fail_next(2, code=None, http_status=503)
        error = self.assertApiError(self.client.get_phone_number, None, True, 503)
        self.assertIn("server error", error.message)
        self.assertApiError(self.client.get_phone_number, None, True, 503)
        self.assertTrue(self.client.get_phone_number(), "only the next two requests fail")

    def test_error_injected_meta_codes(self):
        self.emulator.fail_next(code=131000, http_status=500)
        self.assertApiError(self.client.get_phone_number, 131000, True, 500)
        self.emulator.fail_next(code=131026)
        self.assertApiError(self.client.get_phone_number, 131026, False, 400)
        self.emulator.fail_next(code=80007)
        self.assertApiError(self.client.get_phone_number, 80007, True)

    def test_error_timeout(self):
        self.emulator.latency = 0.5
        client = self.new_client(timeout=(1, 0.1))
        error = self.assertApiError(client.get_phone_number, None, True)
        self.assertIsNone(error.http_status)
        self.assertTrue(error.timeout)
        self.assertIn("did not answer in time", error.message)
        self.client.close()
        client.close()
        self.emulator.reset()  # the next test's: the request still being answered is not in its log
        time.sleep(0.6)
        self.assertEqual(self.emulator.requests, [])

    def test_error_connection_refused(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        error = self.assertApiError(self.new_client(base_url=f"http://127.0.0.1:{port}").get_phone_number, None, True)
        self.assertIsNone(error.http_status)
        self.assertFalse(error.timeout)
        self.assertIn("could not be reached", error.message)

    def test_token_never_logged(self):
        url = f"{self.emulator.base_url}/v25.0/unknown_node?access_token={ACCESS_TOKEN}"
        with self.assertLogs("odoo.addons.whatsapp_crm.tools.whatsapp_cloud_api", logging.INFO) as logs:
            self.assertApiError(lambda: self.client._request("GET", url), 100, False)
        output = "\n".join(logs.output)
        self.assertIn("/v25.0/unknown_node", output)
        self.assertNotIn(ACCESS_TOKEN, output)
