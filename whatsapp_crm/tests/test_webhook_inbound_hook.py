"""The inbound hook: one call per processed batch, with the messages it stored."""

from unittest.mock import patch

from odoo.tests import tagged

from .common import WhatsappCase, encode_payload
from .webhook_common import WebhookPayloads


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookInboundHook(WhatsappCase, WebhookPayloads):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.lead_policy = "no_open_lead"

    def _store(self, *messages, wa_id="5511987650001"):
        payload = self.envelope(self.messages_value(list(messages), wa_id=wa_id))
        return self.env["crm.whatsapp.webhook.event"]._store(encode_payload(payload), payload, self.account)

    def _extend_hook(self):
        """Extend the hook as a feature module would (the override calls super()); record each call."""
        Conversation = type(self.env["crm.whatsapp.conversation"])
        original, calls = Conversation._whatsapp_on_inbound, []

        def extension(conversations, messages):
            calls.append((messages, messages.mapped("conversation_id.state")))
            return original(conversations, messages)

        return patch.object(Conversation, "_whatsapp_on_inbound", extension), calls

    def test_called_once_per_batch_with_the_stored_messages(self):
        first = self.inbound("text", {"body": "one"}, wa_id="5511987650001")
        second = self.inbound("text", {"body": "two"}, wa_id="5511987650001")
        third = self.inbound("text", {"body": "three"}, wa_id="5511987650002")
        events = self._store(first, second) | self._store(third, wa_id="5511987650002")
        events |= self._store(first)  # a re-delivery inside another payload: nothing new
        patcher, calls = self._extend_hook()
        with patcher:
            events._process()
        self.assertEqual(len(calls), 1, "one call for the batch")
        messages, _states = calls[0]
        self.assertEqual(messages.mapped("wamid"), [first["id"], second["id"], third["id"]], "in the order applied")
        self.assertEqual(set(messages.mapped("direction")), {"inbound"})
        self.assertTrue(all(messages.mapped("mail_message_id")), "already posted")
        self.assertEqual(len(messages.conversation_id), 2)

    def test_not_called_without_new_messages(self):
        message = self.inbound("text", {"body": "once"}, wa_id="5511987650001")
        self._store(message)._process()
        patcher, calls = self._extend_hook()
        with patcher:
            self._store(message)._process()  # stored once already: a re-delivery
            self.env["crm.whatsapp.webhook.event"].browse()._process()
        self.assertEqual(calls, [])

    def test_reopens_and_assigns(self):
        """Its first use: a customer message reopens the chat, and an unassigned chat goes to the
        lead's salesperson (no agent on the account)."""
        self._store(self.inbound("text", {"body": "hello"}, wa_id="5511987650001"))._process()
        conversation = self.env["crm.whatsapp.conversation"].search([("wa_id", "=", "5511987650001")])
        self.assertEqual(conversation.user_id, self.team.user_id or self.env["res.users"])
        conversation.lead_id.user_id = self.user_salesman
        conversation.write({"state": "closed", "user_id": False})
        patcher, calls = self._extend_hook()
        with patcher:
            self._store(self.inbound("text", {"body": "back again"}, wa_id="5511987650001"))._process()
        self.assertEqual(calls[0][1], ["closed"], "the messages are stored before the hook reopens the chat")
        self.assertEqual(conversation.state, "open")
        self.assertEqual(conversation.user_id, self.user_salesman)
