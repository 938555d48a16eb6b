"""Never sent twice: a send whose answer is lost after the request left waits for Meta's status
(matched by ``biz_opaque_callback_data``) instead of being retried blindly."""

from datetime import timedelta

from odoo.tests import tagged, users

from .cloud_api_emulator import encode_webhook
from .common import WhatsappEmulatorMixin
from .test_outbound_send import NOW, OutboundCase


class UnconfirmedCase(OutboundCase):
    def _process_statuses(self, payload):
        Event = self.env["crm.whatsapp.webhook.event"].sudo()
        event = Event._store(encode_webhook(payload), payload, self.account)
        event._process()
        return event

    def _status_payload(self, message, wamid, status="sent"):
        """A status webhook as Meta sends it for a message whose answer we never got."""
        entry = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(NOW.timestamp())),
            "recipient_id": self.conversation.wa_id,
            "biz_opaque_callback_data": message._callback_data(),
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.account.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": self.account.phone_number_id},
                                "statuses": [entry],
                            },
                        }
                    ],
                }
            ],
        }


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundUnconfirmed(UnconfirmedCase):
    @users("wa_salesman")
    def test_read_timeout_waits_for_the_status(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=["timeout", None]):
            message._send()
            self.assertEqual(message.state, "unconfirmed")
            self.assertIn("not sent again", message.error_message)
            self.assertNotIn("will be retried", message.error_message)
            self.assertEqual(message.next_try_at, NOW + timedelta(seconds=600))
            self.assertWhatsAppNotification(message, "process")
            self.frozen.tick(timedelta(seconds=60))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self.sent_payloads()), 1, "not sent again while its status is awaited")
        self.assertEqual(self.sent_payloads()[0]["biz_opaque_callback_data"], f"crm.whatsapp.message:{message.id}")
        self._process_statuses(self._status_payload(message, "wamid.LOST1"))
        self.assertWhatsAppSent(message)
        self.assertEqual(message.wamid, "wamid.LOST1", "the status gave the wamid the answer lost")
        self.assertFalse(message.error_message)
        self.assertWhatsAppNotification(message, "pending")
        self._process_statuses(self._status_payload(message, "wamid.LOST1", "delivered"))
        self.assertEqual(message.state, "delivered")

    @users("wa_salesman")
    def test_no_status_fails_after_the_wait_without_resending(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error="timeout"):
            message._send()
            self.frozen.tick(timedelta(seconds=601))
            self.env["crm.whatsapp.message"]._process_queue()
            self.frozen.tick(timedelta(hours=1))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self.sent_payloads()), 1, "never sent twice")
        self.assertWhatsAppFailed(message, reason="most likely not sent")
        self.assertWhatsAppNotification(message, "exception", failure_type="whatsapp_crm_failed")
        # a late status still proves it went
        self._process_statuses(self._status_payload(message, "wamid.LATE1", "delivered"))
        self.assertEqual(message.state, "delivered")

    @users("wa_salesman")
    def test_connection_error_before_sending_is_retried(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=["connection", None]):
            message._send()
            self.assertRecordValues(message, [{"state": "queued", "retry_count": 1}])
            self.assertIn("could not be reached", message.error_message)
            self.assertIn("Attempt 1 of 6", message.error_message)
            self.frozen.tick(timedelta(seconds=5))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self.sent_payloads()), 2)
        self.assertWhatsAppSent(message)

    @users("wa_salesman")
    def test_only_our_callback_data_is_adopted(self):
        message = self._message()
        sent = self._message(body="Already sent")
        with self.mock_whatsapp_api(sim_error=["timeout", None]):
            message._send()
            sent._send()
        forged = self._status_payload(message, "wamid.FORGED")
        forged["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = "crm.whatsapp.message:x"
        self._process_statuses(forged)
        self.assertEqual(message.state, "unconfirmed")
        wamid = sent.wamid
        self._process_statuses(self._status_payload(sent, "wamid.OTHER", "delivered"))
        self.assertEqual((sent.state, sent.wamid), ("sent", wamid), "a known message keeps its wamid")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundUnconfirmedEmulator(WhatsappEmulatorMixin, UnconfirmedCase):
    """Over real HTTP: the emulator takes each message, then answers too late for the client."""

    @users("wa_salesman")
    def test_ten_timeouts_reach_the_emulator_once_each(self):
        emulator = self.start_emulator()
        emulator.enforce_window = False
        self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.api_read_timeout", "0.3")
        conversations = (
            self.env["crm.whatsapp.conversation"]
            .sudo()
            .create(
                [
                    {
                        "account_id": self.account.id,
                        "wa_id": f"32470555{index:03d}",
                        "partner_id": self.partner.id,
                        "user_id": self.user_salesman.id,
                        "last_inbound_at": NOW - timedelta(hours=1),
                    }
                    for index in range(10)
                ]
            )
        )
        messages = self.env["crm.whatsapp.message"]
        for conversation in conversations:
            messages |= self._message(
                conversation_id=conversation.id, lead_id=False, body=f"Hello {conversation.wa_id}"
            )
        messages._enqueue()
        emulator.answer_delay = 1.0
        Message = self.env["crm.whatsapp.message"]
        Message._process_queue()
        self.assertEqual(set(messages.mapped("state")), {"unconfirmed"}, messages.mapped("error_message"))
        emulator.answer_delay = 0.0
        self.frozen.tick(timedelta(seconds=120))
        Message._process_queue()  # the status is awaited: nothing is sent again
        posts = [r for r in emulator.requests if r["path"].endswith("/messages")]
        self.assertEqual(len(posts), 10, "each message reached WhatsApp exactly once")
        self.assertEqual(len(emulator.sent_messages), 10)
        callbacks = {
            sent["payload"]["biz_opaque_callback_data"]: wamid for wamid, sent in emulator.sent_messages.items()
        }
        self.assertEqual(set(callbacks), {message._callback_data() for message in messages})
        for wamid in emulator.sent_messages:
            self._process_statuses(emulator.build_statuses(wamid, ["sent"]))
        messages.invalidate_recordset()
        self.assertEqual(set(messages.mapped("state")), {"sent"})
        for message in messages:
            self.assertEqual(message.wamid, callbacks[message._callback_data()])
        self.frozen.tick(timedelta(hours=1))
        Message._process_queue()
        self.assertEqual(len([r for r in emulator.requests if r["path"].endswith("/messages")]), 10)
