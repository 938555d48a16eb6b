"""Shared fixtures of the webhook tests: Meta-shaped payloads posted through the real controller."""

import time

from odoo.tests import HttpCase

from .common import PHONE_NUMBER_ID, WABA_ID, WhatsappCase, encode_payload, new_wamid, sign

WEBHOOK_URL = "/whatsapp_crm/webhook"
CUSTOMER_WA_ID = "5511987654321"
CUSTOMER_NAME = "Joana Silva"


class WebhookPayloads:
    """Builders of webhook payloads in Meta's shapes."""

    def envelope(self, value, field="messages", waba_id=WABA_ID):
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}],
        }

    def messages_value(self, messages, wa_id=CUSTOMER_WA_ID, name=CUSTOMER_NAME, phone_number_id=PHONE_NUMBER_ID):
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": messages,
        }

    def user_preferences(self, choice, wa_id=CUSTOMER_WA_ID):
        """A ``user_preferences`` delivery: the customer's marketing messages ``choice`` (stop, resume)."""
        preference = {
            "wa_id": wa_id,
            "detail": "User requested to stop marketing messages",
            "category": "marketing_messages",
            "value": choice,
            "timestamp": int(time.time()),
        }
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Joana"}, "wa_id": wa_id}],
            "user_preferences": [preference],
        }
        return self.envelope(value, field="user_preferences")

    def inbound(self, kind, content, wa_id=CUSTOMER_WA_ID, wamid=None, timestamp=None, **extra):
        """A message object of type ``kind`` from ``wa_id``."""
        message = {
            "from": wa_id,
            "id": wamid or new_wamid(),
            "timestamp": str(timestamp or int(time.time())),
            "type": kind,
            **extra,
        }
        if content is not None:
            message[kind] = content
        return message

    def status(self, wamid, status, timestamp, **extra):
        return {
            "id": wamid,
            "status": status,
            "timestamp": str(timestamp),
            "recipient_id": CUSTOMER_WA_ID,
            **extra,
        }


class WebhookCase(HttpCase, WhatsappCase, WebhookPayloads):
    process_after_post = True  # run the processing crons after each delivery

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.lead_policy = "no_open_lead"
        cls.account.user_ids = cls.user_salesman

    # Posting
    def post_raw(self, raw, signature=True, headers=None):
        headers = {"Content-Type": "application/json", **(headers or {})}
        if signature is True:
            headers["X-Hub-Signature-256"] = sign(raw)
        elif signature:
            headers["X-Hub-Signature-256"] = signature
        response = self.url_open(WEBHOOK_URL, data=raw, headers=headers)
        self.env.invalidate_all()
        if self.process_after_post:
            # what the lane crons do once woken
            self.env["crm.whatsapp.webhook.event"]._cron_process()
            self.env.invalidate_all()
        return response

    def post(self, payload, **kwargs):
        return self.post_raw(encode_payload(payload), **kwargs)

    def receive(self, *messages, **kwargs):
        """Post inbound messages; assert the acknowledgement; return the stored messages."""
        response = self.post(self.envelope(self.messages_value(list(messages), **kwargs)))
        self.assertEqual(response.status_code, 200, response.text)
        return self.env["crm.whatsapp.message"].search([("wamid", "in", [m["id"] for m in messages])])

    # Assertions
    def assertInbound(self, message, kind, body):
        """The message is stored, linked to the customer, lead and conversation, and posted by the customer."""
        self.assertEqual(len(message), 1, "one message stored")
        self.assertEqual(message.direction, "inbound")
        self.assertEqual(message.state, "received")
        self.assertEqual(message.message_type, kind)
        self.assertEqual(message.body, body)
        self.assertEqual(message.account_id, self.account)
        partner = message.partner_id
        self.assertTrue(partner, "the customer has a contact")
        self.assertEqual(message.conversation_id.partner_id, partner)
        self.assertEqual(message.lead_id, message.conversation_id.lead_id)
        self.assertEqual(message.lead_id.partner_id, partner)
        self.assertEqual(message.lead_id.team_id, self.team)
        self.assertEqual(message.lead_id.source_id, self.env.ref("whatsapp_crm.utm_source_whatsapp"))
        mail_message = message.mail_message_id
        self.assertTrue(mail_message, "posted in the chatter")
        self.assertEqual((mail_message.model, mail_message.res_id), ("crm.lead", message.lead_id.id))
        self.assertEqual(mail_message.author_id, partner)
        self.assertEqual(mail_message.message_type, "comment")
        self.assertEqual(mail_message.subtype_id, self.env.ref("mail.mt_comment"))
        return message
