"""Test API of whatsapp_crm: fixtures, the Graph API mock and signed webhooks."""

import hashlib
import hmac
import itertools
import json
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import common

from ..tools.whatsapp_cloud_api import WhatsAppApiError, WhatsAppCloudApi

APP_SECRET = "test-app-secret"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "109000000000001"
WABA_ID = "209000000000001"

_wamid_counter = itertools.count(1)

# What ``sim_error`` may name, as WhatsAppApiError arguments.
SIM_ERRORS = {
    "timeout": {"title": "ReadTimeout", "retryable": True, "timeout": True, "request_sent": True},
    "connection": {"title": "ConnectionError", "retryable": True},
    "rate_limit": {"code": 130429, "title": "(#130429) Rate limit hit", "http_status": 400},
    "http_429": {"title": "Too Many Requests", "http_status": 429},
    "opt_out": {"code": 131050, "title": "(#131050) User stopped marketing messages", "http_status": 400},
    "token": {"code": 190, "title": "(#190) Invalid OAuth access token", "http_status": 401},
    "server": {"title": "Internal Server Error", "http_status": 500},
    "window": {"code": 131047, "title": "(#131047) Re-engagement message", "http_status": 400},
}


def new_wamid():
    return f"wamid.TEST{next(_wamid_counter):012d}"


def sign(body, secret=APP_SECRET):
    """``X-Hub-Signature-256`` header value of a raw body (bytes)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_payload(payload):
    """Serialize like Meta: ASCII-escaped JSON bytes."""
    return json.dumps(payload, ensure_ascii=True).encode()


class WhatsappCase(common.TransactionCase):
    """An account, a salesperson and a Graph API mock."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["crm.team"].create({"name": "WhatsApp Sales Team"})
        cls.account = cls.env["crm.whatsapp.account"].create(
            {
                "name": "Test line",
                "sequence": 0,  # the default line, before any other (demo data included)
                "waba_id": WABA_ID,
                "phone_number_id": PHONE_NUMBER_ID,
                "display_phone_number": "+1 555 0199",
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "api_base_url": "http://127.0.0.1:9",  # nothing listens: the mock must answer
                "team_id": cls.team.id,
            }
        )
        cls.user_salesman = common.new_test_user(
            cls.env, login="wa_salesman", groups="sales_team.group_sale_salesman", name="Sally Sales"
        )
        cls.user_salesman_2 = common.new_test_user(
            cls.env, login="wa_salesman_2", groups="sales_team.group_sale_salesman", name="Bob Other Sales"
        )
        cls.user_manager = common.new_test_user(
            cls.env, login="wa_manager", groups="sales_team.group_sale_manager", name="Manny Manager"
        )

    @classmethod
    def _create_customer_chat(cls, partner_values, body, post=False):
        """The tours' customer, her opportunity with the salesperson and their open conversation, in
        which she wrote ``body`` an hour ago (posted in the lead's chatter with ``post``, as the
        webhook does): sets ``partner``, ``lead`` and ``conversation``, returns the message."""
        cls.partner = cls.env["res.partner"].create({"name": "Ines Tour", **partner_values})
        cls.lead = cls.env["crm.lead"].create(
            {
                "name": "Sofas for the lobby",
                "type": "opportunity",
                "partner_id": cls.partner.id,
                "user_id": cls.user_salesman.id,
                "team_id": cls.team.id,
            }
        )
        received_at = fields.Datetime.now() - timedelta(hours=1)
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470123456",
                "partner_id": cls.partner.id,
                "lead_id": cls.lead.id,
                "user_id": cls.user_salesman.id,
                "team_id": cls.team.id,
                "state": "open",
                "last_inbound_at": received_at,
                "last_message_at": received_at,
            }
        )
        values = {
            "account_id": cls.account.id,
            "conversation_id": cls.conversation.id,
            "partner_id": cls.partner.id,
            "lead_id": cls.lead.id,
            "direction": "inbound",
            "state": "received",
            "message_type": "text",
            "wamid": new_wamid(),
            "body": body,
            "timestamp": received_at,
        }
        if post:
            values["mail_message_id"] = (
                cls.lead.with_context(mail_notify_force_send=False)
                .message_post(
                    body=body, author_id=cls.partner.id, message_type="comment", subtype_xmlid="mail.mt_comment"
                )
                .id
            )
        return cls.env["crm.whatsapp.message"].create(values)

    # Graph API mock
    @contextmanager
    def mock_whatsapp_api(self, sim_error=None, responses=None):
        """Patch the client's single request method (the gateway mock, like sms's ``mockSMSGateway``).

        Records every call in ``self._wa_requests`` (dicts: method, path, json, params).
        :param sim_error: what every call raises, or a list of them (``None`` entries succeed)
            consumed one per call: a ``WhatsAppApiError``, a Meta error code (int), or one of
            ``SIM_ERRORS`` ("timeout": the answer is lost after the request left, "connection":
            the request never left, "rate_limit", "opt_out", "token", "server", "window", "http_429").
        :param responses: ``{(method, path suffix): result}`` overriding the default answers.
        """
        self._wa_requests = []
        errors = list(sim_error) if isinstance(sim_error, (list, tuple)) else None
        responses = responses or {}

        def _request(
            api, method, path, json=None, params=None, data=None, files=None, raw=False, timeout=None, headers=None
        ):
            self._wa_requests.append(
                {"method": method, "path": path, "json": json, "params": params, "data": data, "files": files}
            )
            error = errors.pop(0) if errors else (None if errors is not None else sim_error)
            if error:
                error = self.whatsapp_error(error)
                # a lost answer (timeout after the request left) still reached WhatsApp
                self._wa_requests[-1]["reached"] = error.request_sent
                raise error
            for (r_method, suffix), result in responses.items():
                if r_method == method and path.endswith(suffix):
                    return result(json) if callable(result) else result
            if path.endswith("/messages") and json and json.get("status") == "read":
                return {"success": True}
            if path.endswith("/messages"):
                return {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": json.get("to"), "wa_id": (json.get("to") or "").lstrip("+")}],
                    "messages": [{"id": new_wamid()}],
                }
            if path.endswith("/media") and method == "POST":
                return {"id": "media-upload-1"}
            if raw:
                return b"fake-media-bytes"
            return {}

        with patch.object(WhatsAppCloudApi, "_request", autospec=True, side_effect=_request):
            yield self._wa_requests

    mockWhatsAppGateway = mock_whatsapp_api  # the name sms's tests use

    def whatsapp_error(self, error):
        """A ``WhatsAppApiError`` from what ``sim_error`` accepts."""
        if isinstance(error, WhatsAppApiError):
            return error
        if isinstance(error, int):
            return self.api_error(error)
        if error not in SIM_ERRORS:
            raise ValueError(f"Unknown simulated WhatsApp error {error!r}: one of {sorted(SIM_ERRORS)}")
        return WhatsAppApiError(**SIM_ERRORS[error])

    def api_error(self, code, details="", http_status=400):
        return WhatsAppApiError(code=code, title=f"(#{code})", details=details, http_status=http_status)

    def sent_payloads(self):
        """The message payloads sent through the mock (excluding read receipts)."""
        return [
            r["json"]
            for r in self._wa_requests
            if r["path"].endswith("/messages") and r["json"] and r["json"].get("status") != "read"
        ]

    # Assertions named after the feature
    def _assertWhatsApp(self, messages, state, fields_values=None):
        messages.invalidate_recordset()
        self.assertTrue(messages, "expected WhatsApp messages")
        for message in messages:
            self.assertEqual(message.direction, "outbound")
            self.assertEqual(message.state, state, f"{message.body!r}: {message.error_message}")
            if fields_values:
                self.assertRecordValues(message, [fields_values])

    def assertWhatsAppOutgoing(self, messages, fields_values=None):
        """Queued for the send cron, nothing sent yet."""
        self._assertWhatsApp(messages, "queued", fields_values)
        for message in messages:
            self.assertFalse(message.wamid)

    def assertWhatsAppSent(self, messages, content=None, fields_values=None):
        """Accepted by WhatsApp (state sent, a wamid), each having reached the mock exactly once
        (failed attempts that never left do not count), with ``content`` (text body or template
        name) when given."""
        self._assertWhatsApp(messages, "sent", fields_values)
        payloads = None
        if hasattr(self, "_wa_requests"):  # the mock's requests that reached WhatsApp
            payloads = [
                r["json"] for r in self._wa_requests if r["path"].endswith("/messages") and r.get("reached", True)
            ]
        for message in messages:
            self.assertTrue(message.wamid)
            if payloads is None:
                continue
            mine = [p for p in payloads if p and p.get("biz_opaque_callback_data") == message._callback_data()]
            self.assertEqual(len(mine), 1, "reached WhatsApp exactly once")
            if content is not None:
                sent = mine[0].get("text", {}).get("body") or mine[0].get("template", {}).get("name")
                self.assertEqual(sent, content)

    def assertWhatsAppFailed(self, messages, reason=None, code=None, fields_values=None):
        """Failed for good: the reason contains ``reason``, never promises a retry."""
        self._assertWhatsApp(messages, "failed", fields_values)
        for message in messages:
            self.assertNotIn("will be retried", message.error_message or "")
            if reason:
                self.assertIn(reason, message.error_message or "")
            if code is not None:
                self.assertEqual(message.error_code, code)

    def assertWhatsAppRefused(self, messages, reason=None):
        """Refused by the policy before any request."""
        self._assertWhatsApp(messages, "refused")
        for message in messages:
            if reason:
                self.assertIn(reason, message.error_message or "")

    def assertWhatsAppNotification(self, messages, status, failure_type=None):
        """The chatter note of each message carries its delivery status as a mail.notification."""
        for message in messages:
            notification = message.mail_message_id.notification_ids.filtered(
                lambda n: n.notification_type == "whatsapp_crm"
            )
            self.assertEqual(len(notification), 1, "one WhatsApp notification on the chatter note")
            self.assertEqual(notification.whatsapp_message_id, message)
            self.assertEqual(notification.res_partner_id, message.partner_id)
            self.assertEqual(notification.notification_status, status)
            self.assertEqual(notification.failure_type or False, failure_type or False)

    def assertNoWhatsAppSent(self):
        self.assertFalse(self.sent_payloads(), "nothing was sent to WhatsApp")


# Local Cloud API emulator: real HTTP on localhost, which Odoo's tests allow
def start_cloud_api_emulator(**kwargs):
    """Start a ``CloudApiEmulator`` on a free localhost port; stop it with ``.stop()``.

    It answers for the fixtures' credentials and ids unless told otherwise, and delivers its
    webhooks to this Odoo server's webhook route.
    """
    from odoo.tools import config  # noqa: PLC0415 (kept local: this block is appended)

    from .cloud_api_emulator import CloudApiEmulator  # noqa: PLC0415

    options = {
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "phone_number_id": PHONE_NUMBER_ID,
        "waba_id": WABA_ID,
        "webhook_url": f"http://{common.HOST}:{config['http_port']}/whatsapp_crm/webhook",
        **kwargs,
    }
    return CloudApiEmulator(**options).start()


@contextmanager
def cloud_api_emulator(**kwargs):
    """Context manager around :func:`start_cloud_api_emulator`."""
    emulator = start_cloud_api_emulator(**kwargs)
    try:
        yield emulator
    finally:
        emulator.stop()


class WhatsappEmulatorMixin:
    """For test cases: ``self.start_emulator()`` serves the Graph API for ``self.account``."""

    def start_emulator(self, account=None, **kwargs):
        """Start an emulator stopped at the test's end; point ``account`` (default
        ``self.account``) at it and return it."""
        emulator = start_cloud_api_emulator(**kwargs)
        self.addCleanup(emulator.stop)
        account = account if account is not None else getattr(self, "account", None)
        if account:
            account.api_base_url = emulator.base_url
        return emulator

    def process_webhooks(self):
        """What the webhook lane crons do once woken: apply the deliveries the emulator posted."""
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.env.invalidate_all()
