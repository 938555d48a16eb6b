#!/usr/bin/env python3
"""A local stand-in for Meta's WhatsApp Business Cloud API, for tests, demos and benchmarks.

Standard library only (no Odoo import): it runs alone::

    python3 whatsapp_crm/tests/cloud_api_emulator.py --port 8099 \\
        --webhook-url http://127.0.0.1:8069/whatsapp_crm/webhook \\
        --app-secret S --access-token T --phone-number-id ID --waba-id W

or in a thread of a test::

    with CloudApiEmulator(access_token="T", webhook_url=...) as emulator:
        client = WhatsAppCloudApi("T", ..., base_url=emulator.base_url)

It serves the Graph endpoints the module uses with Meta's validation, answers and error
objects, enforces the 24-hour window and the throughput cap, injects failures and latency,
records every request, and delivers signed webhooks shaped like Meta's (inbound messages,
statuses, template status updates).

The same controls over HTTP, for demos and benchmarks driving it from another process
(JSON bodies; no authentication, so bind it to localhost only):

- ``POST /_emulator/inbound`` ``{"type": "text", "from": "4915112345678", "name": ..., "body": ...}``
  (any :meth:`CloudApiEmulator.send_inbound` argument; media bytes as ``content_b64``)
- ``POST /_emulator/fail_next`` ``{"n": 2, "code": 131000}`` or ``{"code": null, "http_status": 503}``
- ``POST /_emulator/open_window`` ``{"wa_id": ...}``, ``POST /_emulator/statuses``
  ``{"wamid": ..., "statuses": ["sent", "delivered", "read"]}``, ``POST /_emulator/template_status``
  ``{"template": name or id, "event": "APPROVED"}``
- ``POST /_emulator/config`` ``{"throughput": 10, "latency": 0.2, "enforce_window": false, ...}``
- ``POST /_emulator/reset``; ``GET /_emulator/requests``, ``/_emulator/webhooks``, ``/_emulator/messages``

The customer phone page, ``GET /phone/`` (files in ``customer_phone/`` beside this file), plays the
customers in a browser: every action is one of the controls above, so it reaches Odoo as a signed
webhook. It reads a customer's chat, with the business messages' last status, from
``POST /_emulator/chat`` ``{"wa_id": ...}``, media from ``GET /phone/media/<id>``, and the customers
to offer from ``GET /_emulator/customers``.
"""

import argparse
import base64
import collections
import copy
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

_logger = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600
SEND_TYPES = {
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
    "template", "reaction",
}  # fmt: skip
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Meta's upload limits (bytes) by MIME type family
MEDIA_LIMITS = {
    "image/jpeg": 5 << 20, "image/png": 5 << 20, "image/webp": 500 << 10,
    "audio/aac": 16 << 20, "audio/amr": 16 << 20, "audio/mpeg": 16 << 20, "audio/mp4": 16 << 20,
    "audio/ogg": 16 << 20, "video/mp4": 16 << 20, "video/3gpp": 16 << 20,
}  # fmt: skip
DOCUMENT_LIMIT = 100 << 20
DEFAULT_MIME_TYPES = {
    "image": "image/jpeg",
    "audio": "audio/ogg; codecs=opus",
    "video": "video/mp4",
    "document": "application/pdf",
    "sticker": "image/webp",
}
STATUS_ORDER = ("sent", "delivered", "read")
PHONE_DIR = Path(__file__).resolve().with_name("customer_phone")
PHONE_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".jpg": "image/jpeg", ".png": "image/png", ".svg": "image/svg+xml", ".ogg": "audio/ogg",
}  # fmt: skip
# settings that ``POST /_emulator/config`` may change
CONFIG_KEYS = {
    "throughput", "enforce_window", "auto_statuses", "status_delay", "latency", "template_status", "page_size",
    "webhook_url", "quality_rating", "template_review", "review_delay",
}  # fmt: skip
# The templates of the demo data (demo/crm_whatsapp_conversation_demo.xml), as Meta knows them
DEMO_TEMPLATES = [
    {
        "name": "quote_follow_up",
        "language": "en_US",
        "category": "UTILITY",
        "id": "900000000000001",
        "components": [
            {
                "type": "BODY",
                "text": 'Hello {{1}}, your quotation for "{{2}}" is ready. Shall we schedule a call to go through it?',
                "example": {"body_text": [["there", "your project"]]},
            }
        ],
    },
    {
        "name": "welcome_offer",
        "language": "en_US",
        "category": "MARKETING",
        "id": "900000000000002",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}! Thank you for your interest in our office furniture. "
                "Reply to this message to talk to an advisor.",
                "example": {"body_text": [["there"]]},
            },
            {"type": "FOOTER", "text": "Reply STOP to unsubscribe"},
        ],
    },
    {
        "name": "appointment_reminder",
        "language": "en_US",
        "category": "UTILITY",
        "status": "PENDING",
        "id": "900000000000003",
        "components": [
            {
                "type": "BODY",
                "text": "Reminder: our showroom visit is planned for {{1}}. Reply STOP to cancel.",
                "example": {"body_text": [["Monday 10:00"]]},
            }
        ],
    },
]
PLACEHOLDER = re.compile(r"{{\s*[\w]+\s*}}")
VERSION_PATH = re.compile(r"^/v\d+\.\d+(/.*)?$")

# Meta's wording of the errors the emulator produces
ERRORS = {
    1: "An unknown error occurred",
    2: "Service temporarily unavailable",
    100: "Invalid parameter",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131047: "Re-engagement message",
    131051: "Message type unknown",
    131053: "Media upload error",
    130429: "Rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132015: "Template is Paused",
    132016: "Template is Disabled",
    190: "Invalid OAuth access token - Cannot parse access token",
}


class GraphError(Exception):
    """An error answered in Meta's shape."""

    def __init__(self, code, details="", http_status=400, message=None, subcode=None):
        super().__init__(details)
        self.code = code
        self.details = details
        self.http_status = http_status
        self.message = message or ERRORS.get(code, "An unknown error occurred")
        self.subcode = subcode

    def body(self):
        message = self.message if self.code == 190 else f"(#{self.code}) {self.message}"
        error = {
            "message": message,
            "type": "OAuthException",
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details or self.message},
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
        if self.subcode:
            error["error_subcode"] = self.subcode
        return {"error": error}


def new_wamid(wa_id=""):
    """A message id shaped like Meta's (``wamid.`` + base64)."""
    raw = f"\x18\x0b{wa_id}\x15\x02\x00\x12\x18\x14{secrets.token_hex(10).upper()}\x00".encode()
    return "wamid." + base64.b64encode(raw).decode()


def encode_webhook(payload):
    """Serialize a webhook body as Meta does: compact, ASCII-escaped JSON with escaped slashes."""
    # "/" only occurs inside JSON strings, where "\\/" is a valid escape
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def sign_webhook(body, app_secret):
    """``X-Hub-Signature-256`` value of a raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def build_webhook(field, value, waba_id):
    """Meta's webhook envelope around one change."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}],
    }


def build_messages_value(metadata, contacts=None, messages=None, statuses=None):
    value = {"messaging_product": "whatsapp", "metadata": metadata}
    if contacts is not None:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return value


def build_inbound_message(message_type, from_wa_id, timestamp=None, wamid=None, **kwargs):
    """One entry of ``value.messages`` as Meta sends it for a customer's message.

    ``message_type``: text, image, audio, video, document, sticker, location, contacts,
    interactive (or its shorthands button_reply / list_reply), button (template quick reply),
    reaction, order, system, unsupported. Keyword arguments fill the type's object (``body``,
    ``media_id``, ``mime_type``, ``sha256``, ``caption``, ``filename``, ``latitude``, ``reply_id``,
    ``title``, ``payload``, ``message_id``/``emoji`` for reactions, ...); any type also takes
    ``context`` (dict) or ``reply_to`` (wamid), ``referral`` (dict, or True for a sample ad)
    and ``from_user_id``; ``wamid`` sets the message's own id.
    """
    if message_type in ("button_reply", "list_reply"):
        kwargs.setdefault("reply_type", message_type)
        message_type = "interactive"
    message = {
        "from": from_wa_id,
        "id": wamid or new_wamid(from_wa_id or ""),
        "timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "type": message_type,
    }
    if not from_wa_id:  # a username user without phone number: only ``from_user_id``
        del message["from"]
    if kwargs.get("from_user_id"):
        message["from_user_id"] = kwargs["from_user_id"]
    if kwargs.get("reply_to"):
        message["context"] = {"from": kwargs.get("reply_from", ""), "id": kwargs["reply_to"]}
    if kwargs.get("context"):
        message["context"] = kwargs["context"]
    referral = kwargs.get("referral")
    if referral:
        message["referral"] = referral if isinstance(referral, dict) else sample_referral()
    builder = _INBOUND_BUILDERS.get(message_type)
    if builder is None:
        raise ValueError(f"Unknown inbound message type {message_type!r}")
    builder(message, kwargs)
    return message


def _inbound_text(message, kw):
    message["text"] = {"body": kw.get("body", "Hello")}


def _inbound_media(message, kw):
    media_type = message["type"]
    media = {
        "mime_type": kw.get("mime_type") or DEFAULT_MIME_TYPES[media_type],
        "sha256": kw.get("sha256", ""),
        "id": kw.get("media_id", ""),
    }
    if kw.get("caption") and media_type in ("image", "video", "document"):
        media["caption"] = kw["caption"]
    if media_type == "document":
        media["filename"] = kw.get("filename") or "document.pdf"
    if media_type == "audio":
        media["voice"] = kw.get("voice", True)
    if media_type == "sticker":
        media["animated"] = kw.get("animated", False)
    if kw.get("url"):
        media["url"] = kw["url"]
    message[media_type] = media


def _inbound_location(message, kw):
    location = {"latitude": kw.get("latitude", 48.8584), "longitude": kw.get("longitude", 2.2945)}
    for key in ("name", "address", "url"):  # ``name`` is the customer's: the place's is ``location_name``
        if kw.get(f"location_{key}") or kw.get(key):
            location[key] = kw.get(f"location_{key}") or kw[key]
    message["location"] = location


def _inbound_contacts(message, kw):
    message["contacts"] = kw.get("contacts") or [
        {
            "name": {"formatted_name": "Jane Doe", "first_name": "Jane", "last_name": "Doe"},
            "phones": [{"phone": "+1 555 0123", "wa_id": "15550123", "type": "CELL"}],
        }
    ]


def _inbound_interactive(message, kw):
    reply_type = kw.get("reply_type", "button_reply")
    reply = {"id": kw.get("reply_id", "reply-1"), "title": kw.get("title", "Yes")}
    if reply_type == "list_reply" and kw.get("description"):
        reply["description"] = kw["description"]
    message["interactive"] = {"type": reply_type, reply_type: reply}


def _inbound_button(message, kw):
    message["button"] = {"payload": kw.get("payload", "Yes"), "text": kw.get("text", "Yes")}


def _inbound_reaction(message, kw):
    reaction = {"message_id": kw.get("message_id") or new_wamid()}
    emoji = kw.get("emoji", "\U0001f44d")
    if emoji:  # no emoji: the customer removed the reaction
        reaction["emoji"] = emoji
    message["reaction"] = reaction


def _inbound_order(message, kw):
    message["order"] = {
        "catalog_id": kw.get("catalog_id", "300000000000001"),
        "text": kw.get("text", ""),
        "product_items": kw.get("product_items")
        or [{"product_retailer_id": "SKU-1", "quantity": "2", "item_price": "9.99", "currency": "USD"}],
    }


def _inbound_system(message, kw):
    new_wa_id = kw.get("new_wa_id", "15550009999")
    message["system"] = {
        "body": kw.get("body", f"User {message['from']} changed from {message['from']} to {new_wa_id}"),
        "wa_id": new_wa_id,
        "type": kw.get("system_type", "user_changed_number"),
    }


def _inbound_unsupported(message, kw):
    message["errors"] = [
        {
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."},
        }
    ]
    message["unsupported"] = {"type": kw.get("unsupported_type", "edit")}


_INBOUND_BUILDERS = {
    "text": _inbound_text,
    **dict.fromkeys(MEDIA_TYPES, _inbound_media),
    "location": _inbound_location,
    "contacts": _inbound_contacts,
    "interactive": _inbound_interactive,
    "button": _inbound_button,
    "reaction": _inbound_reaction,
    "order": _inbound_order,
    "system": _inbound_system,
    "unsupported": _inbound_unsupported,
}
INBOUND_TYPES = (*_INBOUND_BUILDERS, "button_reply", "list_reply")


def sample_referral():
    """A click-to-WhatsApp ad referral."""
    return {
        "source_url": "https://fb.me/emulated-ad",
        "source_id": "120000000000001",
        "source_type": "ad",
        "headline": "Spring offer",
        "body": "Chat with us about the spring offer",
        "media_type": "image",
        "image_url": "https://example.com/ad.jpg",
        "ctwa_clid": "ARA" + secrets.token_hex(12),
    }


def build_status(wamid, status, recipient_id, timestamp=None, category=None, errors=None, callback_data=None):
    """One entry of ``value.statuses``; Meta repeats the send's ``biz_opaque_callback_data``."""
    entry = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "recipient_id": recipient_id,
    }
    if callback_data:
        entry["biz_opaque_callback_data"] = callback_data
    if category and status != "failed":
        entry["conversation"] = {
            "id": hashlib.sha256(recipient_id.encode()).hexdigest()[:32],
            "origin": {"type": category},
        }
        if status == "sent":
            entry["conversation"]["expiration_timestamp"] = str(int(time.time()) + WINDOW_SECONDS)
        entry["pricing"] = {
            "billable": category != "service",
            "pricing_model": "PMP",
            "category": category,
            "type": "regular" if category != "service" else "free_customer_service",
        }
    if errors:
        entry["errors"] = errors
    return entry


class CloudApiEmulator:
    """The emulated Cloud API: one WABA with one phone number, in an HTTP server thread.

    Settings are plain attributes that may be changed at any time: ``throughput`` (messages/s
    per phone number, sliding one-second window; 0 = unlimited), ``enforce_window``,
    ``auto_statuses`` (emit sent/delivered/read in a background thread after each accepted
    message, ``status_delay`` seconds apart), ``latency`` (seconds before each Graph answer),
    ``template_status`` (status of created templates), ``template_review`` (the event, e.g.
    ``APPROVED``, that a status webhook delivers ``review_delay`` seconds after a template is
    created or edited; None: no webhook), ``demo_templates`` (also know the demo data's
    templates), ``page_size`` (default page size).
    """

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        *,
        access_token="demo-access-token",
        app_secret="demo-app-secret",
        phone_number_id="100000000000002",
        waba_id="100000000000001",
        display_phone_number="+1 555 0100",
        verified_name="Emulated Business",
        quality_rating="GREEN",
        messaging_limit_tier="TIER_1K",
        webhook_url=None,
        throughput=80,
        enforce_window=True,
        auto_statuses=False,
        status_delay=0.5,
        latency=0.0,
        template_status="APPROVED",
        template_review=None,
        review_delay=1.0,
        demo_templates=False,
        page_size=25,
        webhook_timeout=10,
    ):
        self.host, self.port = host, port
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = str(phone_number_id)
        self.waba_id = str(waba_id)
        self.display_phone_number = display_phone_number
        self.verified_name = verified_name
        self.quality_rating = quality_rating
        self.messaging_limit_tier = messaging_limit_tier
        self.webhook_url = webhook_url
        self.throughput = throughput
        self.enforce_window = enforce_window
        self.auto_statuses = auto_statuses
        self.status_delay = status_delay
        self.latency = latency
        # seconds a Graph answer waits *after* the request was handled: a client timing out
        # meanwhile lost an answer to a request that took effect (e.g. a message sent)
        self.answer_delay = 0.0
        self.template_status = template_status
        self.template_review = template_review
        self.review_delay = review_delay
        self.demo_templates = demo_templates
        self.page_size = page_size
        self.webhook_timeout = webhook_timeout
        self.clock = time.time  # replaceable to test the 24-hour window
        self.customers = []  # [{wa_id, name}] the phone page offers to play
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server = None
        self._thread = None
        self.reset()

    # Life cycle
    def start(self):
        """Serve in a daemon thread; return self. Port 0 picks a free port."""
        self._server = _Server((self.host, self.port), _Handler)
        self._server.emulator = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="cloud-api-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def base_url(self):
        """What a client uses as Graph base URL (the version is appended to it)."""
        return f"http://{self.host}:{self.port}"

    def reset(self):
        """Forget requests, webhooks, windows, injected failures, media and sent messages;
        restore the sample template."""
        with self._lock:
            self.requests = []  # every Graph request received
            self.webhooks = []  # every webhook delivered
            self.sent_messages = {}  # wamid -> {to, type, category, payload}
            self.windows = {}  # wa_id -> time of the customer's last message
            self.media = {}  # media id -> {content, mime_type, filename, sha256}
            self._failures = collections.deque()
            self._send_times = collections.deque()
            self.templates = []
            self.add_template(
                "hello_world",
                language="en_US",
                category="UTILITY",
                components=[
                    {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                    {"type": "BODY", "text": "Welcome and congratulations!! This is a sample template."},
                    {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
                ],
            )
            if self.demo_templates:
                for template in DEMO_TEMPLATES:
                    self.add_template(**copy.deepcopy(template))

    def _new_id(self):
        return str(800000000000000 + next(self._ids))

    # Controls
    def fail_next(self, n=1, code=131000, http_status=None, details=""):
        """Make the next ``n`` Graph requests fail with Meta error ``code``, or, when ``code`` is
        None, with a bare HTTP ``http_status`` (default 500) and no JSON."""
        if http_status is None:
            http_status = 500 if code is None else (401 if code == 190 else 400)
        with self._lock:
            self._failures.extend([(code, http_status, details)] * n)

    def open_window(self, wa_id, timestamp=None):
        """Open (refresh) the customer-service window of ``wa_id``, as its message would."""
        with self._lock:
            self.windows[_wa_id(wa_id)] = self.clock() if timestamp is None else timestamp

    def close_window(self, wa_id):
        with self._lock:
            self.windows.pop(_wa_id(wa_id), None)

    def window_open(self, wa_id):
        opened = self.windows.get(_wa_id(wa_id))
        return opened is not None and self.clock() - opened < WINDOW_SECONDS

    def add_template(self, name, language="en_US", status="APPROVED", category="MARKETING", components=None, **extra):
        """Store a template as if created in Meta's manager; return it."""
        with self._lock:
            template = {
                "name": name,
                "language": language,
                "status": status,
                "category": category,
                "components": components or [{"type": "BODY", "text": f"Template {name}"}],
                "parameter_format": extra.pop("parameter_format", "POSITIONAL"),
                "id": self._new_id(),
                **extra,
            }
            self.templates.append(template)
            return template

    def find_template(self, template):
        """A stored template by id or name."""
        return next((t for t in self.templates if template in (t["id"], t["name"])), None)

    def add_media(self, content, mime_type, filename=None):
        """Store bytes as Meta would after an upload or a customer's message; return the media id."""
        media_id = self._new_id()
        with self._lock:
            self.media[media_id] = {
                "content": content,
                "mime_type": mime_type,
                "filename": filename,
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        return media_id

    def media_url(self, media_id):
        return f"{self.base_url}/whatsapp_business/attachments/?mid={media_id}&ext={int(time.time())}"

    # Webhooks
    @property
    def metadata(self):
        return {"display_phone_number": _wa_id(self.display_phone_number), "phone_number_id": self.phone_number_id}

    def build_inbound(self, message_type, from_wa_id, name="Emulated Customer", user_id=None, **kwargs):
        """The webhook payload (dict) of a customer's message, without sending it.

        Media types store ``content`` (bytes, generated if absent) so that the media
        endpoints serve it. See :func:`build_inbound_message` for the other arguments.
        """
        if message_type in MEDIA_TYPES and not kwargs.get("media_id"):
            content = kwargs.pop("content", None) or f"emulated {message_type} ".encode() + secrets.token_bytes(32)
            mime_type = kwargs.setdefault("mime_type", DEFAULT_MIME_TYPES[message_type])
            kwargs["media_id"] = self.add_media(content, mime_type.split(";")[0], kwargs.get("filename"))
            kwargs["sha256"] = self.media[kwargs["media_id"]]["sha256"]
        contact = {"profile": {"name": name}, "wa_id": from_wa_id}
        if user_id:  # business-scoped user id; ``from_wa_id`` None for a username user
            contact["user_id"] = kwargs["from_user_id"] = user_id
        if not from_wa_id:
            del contact["wa_id"]
        message = build_inbound_message(message_type, from_wa_id, timestamp=self.clock(), **kwargs)
        value = build_messages_value(self.metadata, contacts=[contact], messages=[message])
        return build_webhook("messages", value, self.waba_id)

    def send_inbound(self, message_type, from_wa_id, **kwargs):
        """Deliver a customer's message (see :meth:`build_inbound`) and open their window.

        :return: ``(message dict, HTTP status of the webhook answer or None)``
        """
        payload = self.build_inbound(message_type, from_wa_id, **kwargs)
        if message_type != "system":
            self.open_window(from_wa_id or kwargs["user_id"])
        status = self.deliver(payload)[0]
        return payload["entry"][0]["changes"][0]["value"]["messages"][0], status

    def build_statuses(self, wamid, statuses=STATUS_ORDER, recipient_id=None, error_code=None):
        """The webhook payload of statuses of a sent message, without sending it."""
        sent = self.sent_messages.get(wamid, {})
        recipient_id = recipient_id or sent.get("to") or ""
        entries = []
        for status in statuses:
            errors = None
            if status == "failed":
                code = error_code or 131026
                title = ERRORS.get(code, "Message undeliverable")
                errors = [{"code": code, "title": title, "message": title, "error_data": {"details": title}}]
            callback_data = (sent.get("payload") or {}).get("biz_opaque_callback_data")
            entries.append(
                build_status(wamid, status, recipient_id, self.clock(), sent.get("category"), errors, callback_data)
            )
        return build_webhook("messages", build_messages_value(self.metadata, statuses=entries), self.waba_id)

    def emit_statuses(self, wamid, statuses=STATUS_ORDER, recipient_id=None, error_code=None):
        """Deliver the statuses of a sent message now, one webhook each; return their HTTP statuses."""
        return [self.deliver(self.build_statuses(wamid, [status], recipient_id, error_code))[0] for status in statuses]

    def emit_template_status(self, template, event, reason="NONE"):
        """Change a template's status and deliver ``message_template_status_update``."""
        stored = self.find_template(template)
        if stored is None:
            raise KeyError(template)
        stored["status"] = event
        value = {
            "event": event,
            "message_template_id": int(stored["id"]),
            "message_template_name": stored["name"],
            "message_template_language": stored["language"],
            "reason": reason,
        }
        return self.deliver(build_webhook("message_template_status_update", value, self.waba_id))[0]

    def deliver(self, payload):
        """POST a signed webhook to ``webhook_url``; return ``(HTTP status or None, answer text)``."""
        if not self.webhook_url:
            raise RuntimeError("The emulator has no webhook URL")
        body = encode_webhook(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": sign_webhook(body, self.app_secret),
            "X-Hub-Signature": "sha1=" + hmac.new(self.app_secret.encode(), body, hashlib.sha1).hexdigest(),
        }
        request = urllib.request.Request(self.webhook_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.webhook_timeout) as response:
                status, answer = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            status, answer = None, str(exc)
        if status != 200:
            _logger.info("Webhook to %s answered %s: %s", self.webhook_url, status, answer[:200])
        with self._lock:
            self.webhooks.append(
                {"url": self.webhook_url, "body": body, "headers": headers, "status": status, "at": time.time()}
            )
        return status, answer

    def _emit_statuses_later(self, wamid):
        def run():
            for status in STATUS_ORDER:
                time.sleep(self.status_delay)
                try:
                    self.emit_statuses(wamid, [status])
                except Exception:  # a status thread must never die noisily
                    _logger.exception("Status %s of %s not delivered", status, wamid)

        threading.Thread(target=run, name=f"status-{wamid[-8:]}", daemon=True).start()

    # Graph API
    def handle(self, method, path, query, headers, body):
        """Answer one Graph request; return ``(HTTP status, content type, bytes)``."""
        # the log of the request's arrival: one still answering after a reset() (a client timed
        # out on it) is not logged among the next test's requests
        log = self.requests
        record = {
            "received_at": time.monotonic(),
            "method": method,
            "path": path,
            "query": {k: v for k, v in query.items() if k != "access_token"},
            "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
            "json": None,
            "form": None,
        }
        try:
            record["json"], record["form"] = _parse_body(headers, body)
            if self.latency:
                time.sleep(self.latency)
            self._check_failure()
            self._check_token(headers, query)
            status, result = self._route(method, path, query, record)
        except GraphError as error:
            status, result = error.http_status, error.body()
        except _PlainFailure as failure:
            status, result = failure.http_status, None
        record["status"] = status
        with self._lock:
            log.append(record)
        if self.answer_delay:
            time.sleep(self.answer_delay)
        if isinstance(result, bytes):
            return status, self.media[query["mid"]]["mime_type"], result
        if result is None:
            return status, "text/html", b"<html><body>Server Error</body></html>"
        return status, "application/json", json.dumps(result).encode()

    def _check_failure(self):
        with self._lock:
            if not self._failures:
                return
            code, http_status, details = self._failures.popleft()
        if code is None:
            raise _PlainFailure(http_status)
        raise GraphError(code, details, http_status)

    def _check_token(self, headers, query):
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else query.get("access_token", "")
        if not hmac.compare_digest(token.encode(), self.access_token.encode()):
            raise GraphError(190, "The access token could not be decrypted", http_status=401)

    def _route(self, method, path, query, record):
        if path.rstrip("/") == "/whatsapp_business/attachments" and method == "GET":
            if query.get("mid") not in self.media:
                raise GraphError(100, "Media not found", http_status=404)
            return 200, self.media[query["mid"]]["content"]
        match = VERSION_PATH.match(path)
        if not match:
            raise GraphError(100, "Unknown path components: " + path, message="Unknown path components")
        parts = [p for p in (match.group(1) or "").split("/") if p]
        node, edge = [*parts, None, None][:2]
        if len(parts) > 2 or node is None:
            raise _not_found(path)
        route = {
            ("POST", self.phone_number_id, "messages"): self._post_messages,
            ("POST", self.phone_number_id, "media"): self._post_media,
            ("GET", self.phone_number_id, None): self._get_phone_number,
            ("GET", self.waba_id, "message_templates"): self._get_templates,
            ("POST", self.waba_id, "message_templates"): self._post_template,
            ("DELETE", self.waba_id, "message_templates"): self._delete_template,
            ("POST", "app", "uploads"): self._post_upload_session,
            ("GET", self.waba_id, None): self._get_waba,
            ("GET", self.waba_id, "phone_numbers"): self._get_phone_numbers,
            ("POST", self.waba_id, "subscribed_apps"): lambda q, r: {"success": True},
        }.get((method, node, edge))
        if route:
            return 200, route(query, record)
        if method == "POST" and edge is None and node.startswith("upload:"):
            return 200, self._post_upload(node, record)
        if method == "POST" and edge is None and self.find_template(node) is not None:
            return 200, self._edit_template(node, record)
        if node in self.media and edge is None and method in ("GET", "DELETE"):
            if method == "DELETE":
                with self._lock:
                    del self.media[node]
                return 200, {"success": True}
            media = self.media[node]
            return 200, {
                "messaging_product": "whatsapp",
                "url": self.media_url(node),
                "mime_type": media["mime_type"],
                "sha256": media["sha256"],
                "file_size": len(media["content"]),
                "id": node,
            }
        raise _not_found(node)

    def _post_messages(self, query, record):
        payload = record["json"] or record["form"] or {}
        if payload.get("messaging_product") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required.", message="Invalid parameter")
        if payload.get("status") == "read":
            if not payload.get("message_id"):
                raise GraphError(100, "The parameter message_id is required.")
            return {"success": True}
        recipient = payload.get("to") or payload.get("recipient")
        if not recipient:
            raise GraphError(100, "The parameter to is required.")
        message_type = payload.get("type", "text")
        if message_type not in SEND_TYPES:
            raise GraphError(131009, f"Param type must be one of {{{', '.join(sorted(SEND_TYPES))}}}")
        content = payload.get(message_type)
        if not isinstance(content, (dict, list)) or not content:
            raise GraphError(131008, f"The parameter {message_type} is required.")
        wa_id = _wa_id(recipient) if payload.get("to") else recipient
        category = _VALIDATORS[message_type](self, content)
        with self._lock:
            now = self._check_throughput()
            if message_type != "template" and self.enforce_window and not self.window_open(wa_id):
                raise GraphError(
                    131047,
                    "Message failed to send because more than 24 hours have passed since the customer "
                    "last replied to this number.",
                )
            self._send_times.append(now)
            wamid = new_wamid(wa_id)
            self.sent_messages[wamid] = {
                "to": wa_id, "type": message_type, "category": category, "payload": payload, "at": time.time(),
            }  # fmt: skip
        if self.auto_statuses and self.webhook_url:
            self._emit_statuses_later(wamid)
        contact = {"input": recipient, "wa_id": wa_id} if payload.get("to") else {"input": recipient, "user_id": wa_id}
        message = {"id": wamid}
        if message_type == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}

    def _check_throughput(self):
        """Raise 130429 when the last second already holds ``throughput`` messages; return now."""
        now = time.monotonic()
        while self._send_times and now - self._send_times[0] >= 1:
            self._send_times.popleft()
        if self.throughput and len(self._send_times) >= self.throughput:
            raise GraphError(130429, "Cloud API message throughput has been reached.")
        return now

    # Validators of each message type: raise GraphError, return the pricing category
    def _check_text(self, text):
        body = text.get("body") if isinstance(text, dict) else None
        if not body:
            raise GraphError(100, "The parameter text['body'] is required.")
        if len(body) > 4096:
            raise GraphError(100, "Param text['body'] must be at most 4096 characters long.")
        return "service"

    def _check_media(self, media):
        if not media.get("id") and not media.get("link"):
            raise GraphError(131008, "Either id or link is required for a media message.")
        if media.get("id") and str(media["id"]) not in self.media:
            raise GraphError(131053, "Unable to find the media with id " + str(media["id"]))
        return "service"

    def _check_location(self, location):
        if "latitude" not in location or "longitude" not in location:
            raise GraphError(131008, "The parameters latitude and longitude are required.")
        return "service"

    def _check_contacts(self, contacts):
        if not isinstance(contacts, list) or not all(c.get("name", {}).get("formatted_name") for c in contacts):
            raise GraphError(131008, "The parameter contacts[0]['name']['formatted_name'] is required.")
        return "service"

    def _check_reaction(self, reaction):
        if not reaction.get("message_id"):
            raise GraphError(131008, "The parameter reaction['message_id'] is required.")
        return "service"

    def _check_interactive(self, interactive):
        kind, action = interactive.get("type"), interactive.get("action") or {}
        if kind not in ("button", "list", "cta_url", "product", "product_list", "flow", "location_request_message"):
            raise GraphError(131009, "The parameter interactive['type'] is not valid.")
        if not interactive.get("body", {}).get("text") and kind in ("button", "list", "cta_url"):
            raise GraphError(131008, "The parameter interactive['body']['text'] is required.")
        if kind == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= 3:
                raise GraphError(131009, "Reply buttons: between 1 and 3 buttons are allowed.")
            if any(len((b.get("reply") or {}).get("title") or "") not in range(1, 21) for b in buttons):
                raise GraphError(131009, "Button title length invalid. Min length: 1, Max length: 20")
        elif kind == "list":
            rows = [row for section in action.get("sections") or [] for row in section.get("rows") or []]
            if not action.get("button") or not 1 <= len(rows) <= 10:
                raise GraphError(131009, "A list needs a button text and between 1 and 10 rows.")
        return "service"

    def _check_template(self, template):
        name, language = template.get("name"), (template.get("language") or {}).get("code")
        if not name or not language:
            raise GraphError(131008, "The parameters template['name'] and template['language']['code'] are required")
        stored = next((t for t in self.templates if t["name"] == name and t["language"] == language), None)
        if stored is None or stored["status"] in ("PENDING", "REJECTED", "DELETED", "ARCHIVED"):
            raise GraphError(132001, f"template name ({name}) does not exist in {language}")
        if stored["status"] in ("PAUSED", "DISABLED"):
            code = 132015 if stored["status"] == "PAUSED" else 132016
            raise GraphError(code, f"Template {name} is {stored['status']}")
        given = {}
        for component in template.get("components") or []:
            kind = (component.get("type") or "").upper()
            key = (kind, str(component.get("index"))) if kind == "BUTTON" else (kind, None)
            given[key] = component
        defined = {(c.get("type") or "").upper(): c for c in stored["components"]}
        self._check_template_text(defined.get("HEADER"), given.pop(("HEADER", None), None), "header")
        self._check_template_text(defined.get("BODY"), given.pop(("BODY", None), None), "body")
        buttons = (defined.get("BUTTONS") or {}).get("buttons") or []
        for index, button in enumerate(buttons):
            sent = given.pop(("BUTTON", str(index)), None)
            kind = (button.get("type") or "").upper()
            needed = kind == "COPY_CODE" or (kind == "URL" and PLACEHOLDER.search(button.get("url") or ""))
            if needed and not (sent and sent.get("parameters")):
                raise GraphError(132000, f"button {index} ({kind}): a parameter is required")
            if sent and not needed:
                raise GraphError(132000, f"button {index} ({kind}) takes no parameter")
            if sent and (sent.get("sub_type") or "").upper() != kind:
                raise GraphError(132012, f"button {index}: sub_type {sent.get('sub_type')} is not {kind.lower()}")
            if sent and kind == "URL" and sent["parameters"][0].get("type") != "text":
                raise GraphError(132012, f"button {index}: a URL parameter is text")
            if sent and kind == "COPY_CODE" and not sent["parameters"][0].get("coupon_code"):
                raise GraphError(132012, f"button {index}: a copy code parameter is coupon_code")
        if given:
            raise GraphError(132000, f"Components not in the template: {sorted(k for k, _i in given)}")
        return stored["category"].lower()

    @staticmethod
    def _check_template_text(defined, sent, name):
        """A header or body component of a template send against the stored template."""
        parameters = (sent or {}).get("parameters") or []
        header_format = ((defined or {}).get("format") or "TEXT").upper() if name == "header" else "TEXT"
        if name == "header" and header_format != "TEXT":
            kind = header_format.lower()
            if len(parameters) != 1 or parameters[0].get("type") != kind or not parameters[0].get(kind):
                raise GraphError(132012, f"header: a {kind} parameter is required")
            media = parameters[0][kind]
            if kind != "location" and not (media.get("id") or media.get("link")):
                raise GraphError(131008, f"header: the {kind} needs an id or a link")
            if kind == "location" and not {"latitude", "longitude"} <= media.keys():
                raise GraphError(131008, "header: the location needs a latitude and a longitude")
            return
        expected = PLACEHOLDER.findall((defined or {}).get("text") or "")
        if sent is not None and defined is None:
            raise GraphError(132000, f"{name}: the template has no {name}")
        if len(parameters) != len(expected):
            raise GraphError(
                132000,
                f"{name}: number of localizable_params ({len(parameters)}) does not match the expected "
                f"number of params ({len(expected)})",
            )
        if any(p.get("type") not in ("text", "currency", "date_time") for p in parameters):
            raise GraphError(132012, f"{name}: parameters of a text are text, currency or date_time")
        if any(not p.get("text") for p in parameters if p.get("type") == "text"):
            raise GraphError(131008, f"{name}: a text parameter is empty")
        named = [p.get("parameter_name") for p in parameters if p.get("parameter_name")]
        if named and sorted(named) != sorted(expected):
            raise GraphError(132000, f"{name}: parameter names {named} are not {expected}")

    def _post_media(self, query, record):
        form = record["form"] or {}
        upload = form.get("file")
        if form.get("messaging_product") != "whatsapp":
            raise GraphError(100, "The parameter messaging_product is required.")
        if not isinstance(upload, dict):
            raise GraphError(100, "The parameter file is required.")
        mime_type = (form.get("type") or upload["content_type"] or "").split(";")[0].strip()
        limit = MEDIA_LIMITS.get(mime_type, DOCUMENT_LIMIT if mime_type.startswith(("application/", "text/")) else 0)
        if not limit:
            raise GraphError(
                131053, f"Param file must be a file of a supported type. Received file of type '{mime_type}'."
            )
        if upload["size"] > limit:
            raise GraphError(131053, f"The file of type {mime_type} is larger than {limit} bytes.")
        return {"id": self.add_media(upload.pop("content"), mime_type, upload["filename"])}

    def _get_phone_number(self, query, record):
        details = {
            "display_phone_number": self.display_phone_number,
            "verified_name": self.verified_name,
            "quality_rating": self.quality_rating,
            "messaging_limit_tier": self.messaging_limit_tier,
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": self.phone_number_id,
        }
        return _only_fields(details, query)

    def _get_phone_numbers(self, query, record):
        return {"data": [self._get_phone_number({}, record)]}

    def _get_waba(self, query, record):
        details = {"id": self.waba_id, "name": self.verified_name, "currency": "USD", "timezone_id": "1"}
        return _only_fields(details, query)

    def _get_templates(self, query, record):
        try:
            # like Meta, a page holds at most page_size templates, whatever the limit asked
            limit = max(1, min(int(query.get("limit", self.page_size)), self.page_size))
            start = int(_decode_cursor(query["after"])) + 1 if query.get("after") else 0
        except ValueError:
            raise GraphError(100, "Invalid paging parameters.")
        templates = [
            t
            for t in self.templates
            if all(query.get(key) in (None, t[key]) for key in ("name", "status", "category", "language"))
        ]
        page = templates[start : start + limit]
        result = {"data": copy.deepcopy(page)}
        if page:
            result["paging"] = {
                "cursors": {"before": _encode_cursor(start), "after": _encode_cursor(start + len(page) - 1)}
            }
            if start + limit < len(templates):
                next_query = {**query, "limit": limit, "after": _encode_cursor(start + len(page) - 1)}
                next_query["access_token"] = self.access_token  # Meta's ``next`` carries the token too
                result["paging"]["next"] = f"{self.base_url}{record['path']}?{urlencode(next_query)}"
        return result

    def _post_template(self, query, record):
        values = record["json"] or {}
        name, language, category = values.get("name") or "", values.get("language"), values.get("category")
        if not re.fullmatch(r"[a-z0-9_]{1,512}", name):
            raise GraphError(100, "Name can only have lowercase letters, numbers and underscores.")
        if not language:
            raise GraphError(100, "The parameter language is required.")
        if category not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            raise GraphError(100, "Param category must be one of {MARKETING, UTILITY, AUTHENTICATION}.")
        components = values.get("components") or []
        if not any((c.get("type") or "").upper() == "BODY" for c in components):
            raise GraphError(100, "The BODY component is required.")
        if any(t["name"] == name and t["language"] == language for t in self.templates):
            raise GraphError(100, f"Content in {language} already exists for {name}.", subcode=2388024)
        template = self.add_template(
            name,
            language=language,
            status=self.template_status,
            category=category,
            components=components,
            parameter_format=(values.get("parameter_format") or "POSITIONAL").upper(),
        )
        self._review_later(template)
        return {"id": template["id"], "status": template["status"], "category": category}

    def _delete_template(self, query, record):
        name, hsm_id = query.get("name"), query.get("hsm_id")
        if not name:
            raise GraphError(100, "The parameter name is required.")
        with self._lock:
            kept = [t for t in self.templates if t["name"] != name or (hsm_id and t["id"] != hsm_id)]
            if len(kept) == len(self.templates):
                raise GraphError(100, f"Message template {name} not found.", subcode=2593002)
            self.templates = kept
        return {"success": True}

    def _edit_template(self, template_id, record):
        values = record["json"] or {}
        stored = self.find_template(template_id)
        if stored["status"] in ("PENDING", "IN_APPEAL"):
            raise GraphError(100, "A template in review cannot be edited.", subcode=2388051)
        with self._lock:
            if values.get("components"):
                stored["components"] = values["components"]
            if values.get("category"):
                stored["category"] = values["category"]
            stored["status"] = "PENDING"
        self._review_later(stored)
        return {"success": True}

    def _post_upload_session(self, query, record):
        if not query.get("file_length") or not query.get("file_type"):
            raise GraphError(100, "The parameters file_length and file_type are required.")
        return {"id": f"upload:{secrets.token_hex(8)}"}

    def _post_upload(self, session, record):
        offset = next((v for k, v in record["headers"].items() if k.lower() == "file_offset"), None)
        if offset != "0":
            raise GraphError(100, "The header file_offset is required.")
        return {"h": f"4::{session.split(':', 1)[1]}"}

    def _review_later(self, template):
        """Deliver ``template_review`` as a status webhook, as Meta does once it reviewed a template."""
        if not self.template_review or not self.webhook_url:
            return

        def run():
            time.sleep(self.review_delay)
            try:
                self.emit_template_status(template["id"], self.template_review)
            except Exception:  # a background thread: log, never raise
                _logger.exception("Template review webhook failed")

        threading.Thread(target=run, name=f"review-{template['name']}", daemon=True).start()

    def control(self, method, path, data):
        """The ``/_emulator/...`` API; return a JSON-able answer (raise KeyError for 404)."""
        action = path[len("/_emulator/") :].strip("/")
        if method == "GET" and action == "requests":
            with self._lock:
                return {"requests": self.requests}
        if method == "GET" and action == "webhooks":
            with self._lock:
                return {"webhooks": [{**w, "body": w["body"].decode()} for w in self.webhooks]}
        if method == "GET" and action == "messages":
            return {"messages": self.sent_messages}
        if method == "GET" and action == "customers":
            return {"customers": self.customers}
        if method != "POST":
            raise KeyError(action)
        if action == "reset":
            self.reset()
        elif action == "inbound":
            kwargs = dict(data)
            message_type, wa_id = kwargs.pop("type"), kwargs.pop("from")
            if "content_b64" in kwargs:
                kwargs["content"] = base64.b64decode(kwargs.pop("content_b64"))
            message, status = self.send_inbound(message_type, wa_id, **kwargs)
            return {"message": message, "webhook_status": status}
        elif action == "fail_next":
            self.fail_next(**data)
        elif action == "open_window":
            self.open_window(data["wa_id"])
        elif action == "statuses":
            return {"webhook_statuses": self.emit_statuses(data["wamid"], data.get("statuses", STATUS_ORDER))}
        elif action == "template_status":
            return {"webhook_status": self.emit_template_status(data["template"], data["event"])}
        elif action == "config":
            for key in CONFIG_KEYS & data.keys():
                setattr(self, key, data[key])
        elif action == "chat":
            return self.chat(data["wa_id"])
        else:
            raise KeyError(action)
        return {"success": True}

    # Customer phone page
    def chat(self, wa_id):
        """What a customer's phone shows: their messages and the business's, oldest first.

        Each item: ``direction`` (in: from the customer), ``wamid``, ``type``, ``at`` (epoch),
        the message's own object (``message``), the business message's last ``status`` and, for
        templates, the stored ``template`` (its components) to render. Customer messages tell
        whether the webhook was accepted (``webhook_status``).
        """
        wa_id = _wa_id(wa_id)
        with self._lock:
            webhooks, sent = list(self.webhooks), list(self.sent_messages.items())
        items, statuses = [], {}
        for webhook in webhooks:
            for entry in json.loads(webhook["body"]).get("entry", []):
                for change in entry.get("changes", []):
                    value = change.get("value") or {}
                    for status in value.get("statuses") or []:
                        statuses[status["id"]] = status["status"]
                    for message in value.get("messages") or []:
                        if message.get("from") == wa_id:
                            items.append(
                                {
                                    "direction": "in",
                                    "wamid": message["id"],
                                    "type": message["type"],
                                    "at": webhook.get("at", 0),
                                    "message": message.get(message["type"]),
                                    "context": message.get("context"),
                                    "webhook_status": webhook["status"],
                                }
                            )
        for wamid, message in sent:
            if message["to"] != wa_id:
                continue
            payload = message["payload"]
            item = {
                "direction": "out",
                "wamid": wamid,
                "type": message["type"],
                "at": message.get("at", 0),
                "message": payload.get(message["type"]),
                "context": payload.get("context"),
                "status": statuses.get(wamid, "accepted"),
            }
            if message["type"] == "template":
                template = payload["template"]
                stored = next(
                    (
                        t
                        for t in self.templates
                        if t["name"] == template.get("name")
                        and t["language"] == template.get("language", {}).get("code")
                    ),
                    None,
                )
                item["template"] = stored and stored["components"]
            items.append(item)
        items.sort(key=lambda item: item["at"])
        return {"wa_id": wa_id, "messages": items, "business": self.verified_name, "phone": self.display_phone_number}

    def phone_file(self, path):
        """``(status, content type, bytes)`` of a phone page file or of a stored media."""
        relative = path[len("/phone") :].strip("/") or "index.html"
        if relative.startswith("media/"):
            media = self.media.get(relative[len("media/") :])
            if media is None:
                return 404, "text/plain", b"no such media"
            return 200, media["mime_type"], media["content"]
        file = (PHONE_DIR / relative).resolve()
        if PHONE_DIR not in file.parents or not file.is_file():
            return 404, "text/plain", b"not found"
        return 200, PHONE_CONTENT_TYPES.get(file.suffix, "application/octet-stream"), file.read_bytes()


_VALIDATORS = {
    "text": CloudApiEmulator._check_text,
    **dict.fromkeys(MEDIA_TYPES, CloudApiEmulator._check_media),
    "location": CloudApiEmulator._check_location,
    "contacts": CloudApiEmulator._check_contacts,
    "interactive": CloudApiEmulator._check_interactive,
    "template": CloudApiEmulator._check_template,
    "reaction": CloudApiEmulator._check_reaction,
}


class _PlainFailure(Exception):
    def __init__(self, http_status):
        super().__init__(http_status)
        self.http_status = http_status


def _not_found(node):
    return GraphError(
        100,
        f"Unsupported request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation.",
        subcode=33,
        message=f"Unsupported request - method type: Object with ID '{node}' does not exist",
    )


def _wa_id(number):
    return re.sub(r"\D", "", str(number))


def _encode_cursor(index):
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _decode_cursor(cursor):
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeError) as exc:
        raise ValueError(cursor) from exc


def _only_fields(details, query):
    if not query.get("fields"):
        return details
    wanted = {f.strip() for f in query["fields"].split(",")} | {"id"}
    return {k: v for k, v in details.items() if k in wanted}


def _parse_body(headers, body):
    """``(json, form)`` of a request body; uploaded files become {filename, content_type, size, content}."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if not body:
        return None, None
    if content_type.startswith("application/json"):
        try:
            return json.loads(body), None
        except ValueError:
            raise GraphError(100, "The request body is not valid JSON.")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return None, {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        form = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            content = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                form[name] = {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(content),
                    "content": content,
                }
            else:
                form[name] = content.decode()
        return None, form
    return None, None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator = None

    def handle_error(self, request, client_address):
        # clients that gave up (timeouts) close the socket: not worth a traceback
        _logger.debug("Emulator connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CloudApiEmulator/1.0"

    def _serve(self):
        emulator = self.server.emulator
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/phone":
            self.send_response(301)
            self.send_header("Location", "/phone/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path.startswith("/phone/"):
            status, content_type, content = emulator.phone_file(url.path)
        elif url.path.startswith("/_emulator/"):
            try:
                data = json.loads(body or b"{}")
                status, result = 200, emulator.control(self.command, url.path, data)
            except KeyError as exc:
                status, result = 404, {"error": f"unknown control {exc}"}
            except (ValueError, TypeError) as exc:
                status, result = 400, {"error": str(exc)}
            content_type, content = "application/json", json.dumps(result, default=_json_default).encode()
        else:
            try:
                status, content_type, content = emulator.handle(self.command, url.path, query, dict(self.headers), body)
            except Exception:  # an emulator bug must still answer
                _logger.exception("Emulator failed on %s %s", self.command, url.path)
                status, content_type, content = 500, "text/plain", b"emulator error"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format, *args):
        _logger.debug("%s " + format, self.address_string(), *args)


def _json_default(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--webhook-url", default="http://127.0.0.1:8069/whatsapp_crm/webhook")
    parser.add_argument("--app-secret", default="demo-app-secret")
    parser.add_argument("--access-token", default="demo-access-token")
    parser.add_argument("--phone-number-id", default="100000000000002")
    parser.add_argument("--waba-id", default="100000000000001")
    parser.add_argument("--display-phone-number", default="+1 555 0100")
    parser.add_argument("--verified-name", default="Emulated Business", help="the business name customers see")
    parser.add_argument("--throughput", type=int, default=80, help="messages/s per phone number (0: no cap)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--template-status", default="PENDING", choices=["APPROVED", "PENDING"])
    parser.add_argument("--template-review", default="APPROVED", help="status webhook sent after a submit (NONE: none)")
    parser.add_argument("--no-demo-templates", action="store_true", help="do not know the demo data's templates")
    parser.add_argument("--no-window", action="store_true", help="do not enforce the 24-hour window")
    parser.add_argument("--no-statuses", action="store_true", help="do not emit sent/delivered/read")
    parser.add_argument("--status-delay", type=float, default=1.0)
    parser.add_argument("--templates", help="JSON file of templates to know: [{name, language, status, components...}]")
    parser.add_argument("--customers", help="JSON file of customers the phone page offers: [{wa_id, name}]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulator = CloudApiEmulator(
        args.host,
        args.port,
        access_token=args.access_token,
        app_secret=args.app_secret,
        phone_number_id=args.phone_number_id,
        waba_id=args.waba_id,
        display_phone_number=args.display_phone_number,
        verified_name=args.verified_name,
        webhook_url=args.webhook_url,
        throughput=args.throughput,
        latency=args.latency,
        template_status=args.template_status,
        template_review=None if args.template_review.upper() == "NONE" else args.template_review.upper(),
        review_delay=3.0,
        demo_templates=not args.no_demo_templates,
        enforce_window=not args.no_window,
        auto_statuses=not args.no_statuses,
        status_delay=args.status_delay,
    )
    if args.templates:
        with open(args.templates, encoding="utf-8") as file:
            for template in json.load(file):
                # the database's copy of a template replaces the emulator's own (demo) one
                key = (template.get("name"), template.get("language", "en_US"))
                emulator.templates = [t for t in emulator.templates if (t["name"], t["language"]) != key]
                emulator.add_template(**template)
    if args.customers:
        with open(args.customers, encoding="utf-8") as file:
            emulator.customers = json.load(file)
    emulator.start()
    _logger.info("WhatsApp Cloud API emulator on %s, webhooks to %s", emulator.base_url, args.webhook_url)
    _logger.info("Customer phone page: %s/phone/", emulator.base_url)
    try:
        emulator._thread.join()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
