import hashlib
import hmac
import logging
import time

from odoo import SUPERUSER_ID, http
from odoo.http import request

from ..models.crm_whatsapp_webhook_event import lanes_of
from ..tools.webhook_payload import MAX_PAYLOAD_BYTES, InvalidPayload, loggable, parse_payload

_logger = logging.getLogger(__name__)

WEBHOOK_ROUTE = "/whatsapp_crm/webhook"


def _signature(secret, raw):
    return b"sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()


class WhatsappCrmWebhook(http.Controller):
    @http.route(WEBHOOK_ROUTE, type="http", auth="none", methods=["GET"], csrf=False, save_session=False)
    def whatsapp_verify(self, **kwargs):
        """Meta's subscription handshake: echo the challenge when the verify token is ours."""
        env = request.env(user=SUPERUSER_ID)
        if kwargs.get("hub.mode") == "subscribe" and env["crm.whatsapp.account"]._find_by_verify_token(
            kwargs.get("hub.verify_token")
        ):
            return request.make_response(kwargs.get("hub.challenge") or "", headers=[("Content-Type", "text/plain")])
        # values of the request are logged escaped: a newline in them must not forge a log line
        _logger.warning("WhatsApp webhook verification refused (mode %s)", loggable(kwargs.get("hub.mode")))
        return request.make_response("Forbidden", headers=[("Content-Type", "text/plain")], status=403)

    @http.route(
        WEBHOOK_ROUTE, type="http", auth="none", methods=["POST"], csrf=False, save_session=False, readonly=False
    )
    def whatsapp_receive(self, **kwargs):
        """Verify, store the raw delivery, commit, wake its processing lane, answer 200: three
        queries. Processing happens in the lane's cron (see crm.whatsapp.webhook.event)."""
        started = time.monotonic()
        if (request.httprequest.content_length or 0) > MAX_PAYLOAD_BYTES:
            _logger.warning("WhatsApp webhook refused: too large (%s bytes)", request.httprequest.content_length)
            return self._answer("Payload Too Large", 413)
        raw = request.httprequest.get_data()
        try:
            payload = parse_payload(raw)
        except InvalidPayload as error:
            _logger.warning("WhatsApp webhook refused: %s (%s bytes)", error, len(raw))
            return self._answer("Bad Request", 400)
        env = request.env(user=SUPERUSER_ID)
        Event = env["crm.whatsapp.webhook.event"]
        accounts = Event._payload_accounts(payload)
        # bytes: compare_digest() refuses str with non-ASCII characters, which a forged header may have
        signature = (request.httprequest.headers.get("X-Hub-Signature-256") or "").strip().lower().encode("utf-8")
        account = next(
            (a for a in accounts if a.app_secret and hmac.compare_digest(_signature(a.app_secret, raw), signature)),
            None,
        )
        if not account:
            _logger.warning(
                "WhatsApp webhook refused: %s",
                "bad or missing signature" if accounts else "no account for this payload",
            )
            return self._answer("Forbidden", 403)
        active = account.active  # read before the commit, which empties the cache
        events = Event._store(raw, payload, account)
        env.cr.commit()  # durable before acknowledging: Meta will not send it again
        if events and active:
            # a new transaction: its snapshot sees the lane runs that started before our commit
            for lane in lanes_of(payload):
                Event._wake(lane)
            env.cr.commit()
        _logger.debug("WhatsApp webhook handled in %.0f ms", (time.monotonic() - started) * 1000)
        return self._answer("OK", 200)

    @staticmethod
    def _answer(text, status):
        return request.make_response(text, headers=[("Content-Type", "text/plain")], status=status)
