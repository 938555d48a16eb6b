"""Test API of whatsapp_crm: fixtures, the Graph API mock and signed webhooks."""

import hashlib
import hmac
import itertools
import json
from contextlib import contextmanager
from unittest.mock import patch

from odoo.tests import common

from ..tools.whatsapp_cloud_api import WhatsAppApiError, WhatsAppCloudApi

APP_SECRET = "test-app-secret"
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "109000000000001"
WABA_ID = "209000000000001"

_wamid_counter = itertools.count(1)


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
        cls.user_manager = common.new_test_user(
            cls.env, login="wa_manager", groups="sales_team.group_sale_manager", name="Manny Manager"
        )

    # Graph API mock
    @contextmanager
    def mock_whatsapp_api(self, sim_error=None, responses=None):
        """Patch the client's single request method.

        Records every call in ``self._wa_requests`` (dicts: method, path, json, params).
        :param sim_error: a ``WhatsAppApiError`` raised by every call, or a list of errors
            (``None`` entries succeed) consumed one per call.
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

    def api_error(self, code, details="", http_status=400):
        return WhatsAppApiError(code=code, title=f"(#{code})", details=details, http_status=http_status)

    def sent_payloads(self):
        """The message payloads sent through the mock (excluding read receipts)."""
        return [
            r["json"]
            for r in self._wa_requests
            if r["path"].endswith("/messages") and r["json"] and r["json"].get("status") != "read"
        ]


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
