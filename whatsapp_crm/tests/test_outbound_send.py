from contextlib import closing, contextmanager
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import sql_db
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users, warmup

from ..models.crm_whatsapp_message import media_type_of
from ..models.crm_whatsapp_message_queue import SEND_QUEUE_LOCK
from .cloud_api_emulator import encode_webhook
from .common import WhatsappCase, WhatsappEmulatorMixin

NOW = datetime(2026, 11, 20, 10, 0, 0)
WINDOW_TEXT = "Outside the 24-hour window: choose an approved template"


class OutboundCase(WhatsappCase):
    """A lead of a customer who wrote an hour before ``NOW``, and an approved template."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "Alice Customer", "mobile": "+32 470 12 34 56"})
        cls.lead = cls.env["crm.lead"].create(
            {"name": "Big deal", "partner_id": cls.partner.id, "user_id": cls.user_salesman.id, "type": "opportunity"}
        )
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470123456",
                "partner_id": cls.partner.id,
                "lead_id": cls.lead.id,
                "user_id": cls.user_salesman.id,
                "last_inbound_at": NOW - timedelta(hours=1),
            }
        )
        cls.template = cls.env["crm.whatsapp.template"].create(
            {
                "name": "order_ready",
                "language": "en_US",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Hello {{1}}, your order {{2}} is ready.",
                "variable_ids": [
                    (0, 0, {"placeholder": "1", "field_path": "partner_id.name", "default_value": "there"}),
                    (0, 0, {"placeholder": "2", "field_path": "name"}),
                ],
            }
        )

    freeze = True  # tests run at NOW

    def setUp(self):
        super().setUp()
        if self.freeze:
            self.frozen = self.startPatcher(freeze_time(NOW))

    @contextmanager
    def assertUserError(self, text):
        """A UserError containing ``text``; its transaction is rolled back (as in the UI)."""
        with self.assertRaises(UserError) as catcher:
            yield
        self.assertIn(text, str(catcher.exception))

    def _message(self, **values):
        """A queued outbound message, as the send API stores it (for the current test user)."""
        return (
            self.env["crm.whatsapp.message"]
            .sudo()
            .create(
                {
                    "account_id": self.account.id,
                    "conversation_id": self.conversation.id,
                    "partner_id": self.partner.id,
                    "lead_id": self.lead.id,
                    "author_id": self.env.uid,
                    "direction": "outbound",
                    "message_type": "text",
                    "body": "Hello Alice",
                    **values,
                }
            )
            .with_env(self.env)
        )

    def _template_message(self):
        return self._message(
            message_type="template",
            template_id=self.template.id,
            template_parameters={"1": "Alice Customer", "2": "Big deal"},
            body="Hello Alice Customer, your order Big deal is ready.",
        )

    def _close_window(self):
        self.frozen.move_to(NOW + timedelta(days=2))
        self.env.invalidate_all()


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundSend(OutboundCase):
    @users("wa_salesman")
    def test_send_inside_window(self):
        message = self._message()
        self.assertEqual(self.conversation.state, "new")
        with self.mock_whatsapp_api():
            message._send(raise_exception=True)
        expected = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+32470123456",
            "type": "text",
            "text": {"preview_url": False, "body": "Hello Alice"},
            "biz_opaque_callback_data": f"crm.whatsapp.message:{message.id}",
        }
        self.assertEqual(self.sent_payloads(), [expected])
        self.assertEqual(message.state, "sent")
        self.assertTrue(message.wamid.startswith("wamid."))
        self.assertEqual(message.payload, {k: v for k, v in expected.items() if k != "messaging_product"})
        self.assertEqual(self.conversation.state, "pending", "answered: waiting for the customer")
        self.assertEqual(self.conversation.last_message_at, message.timestamp)

    @users("wa_salesman")
    def test_free_text_outside_window_refused(self):
        self._close_window()
        message = self._message()
        with self.mock_whatsapp_api():
            with self.assertUserError(WINDOW_TEXT):
                message._send(raise_exception=True)
            self.assertFalse(self._wa_requests)
            # queued (bulk) path: the refusal is recorded on the message
            message._enqueue()
            self.env["crm.whatsapp.message"]._process_queue()
            self.assertFalse(self._wa_requests)
        self.assertEqual(message.state, "refused")
        self.assertEqual(message.error_message, WINDOW_TEXT)

    @users("wa_salesman")
    def test_template_outside_window(self):
        self._close_window()
        message = self._template_message()
        with self.mock_whatsapp_api():
            message._send(raise_exception=True)
        self.assertEqual(
            self.sent_payloads(),
            [
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "+32470123456",
                    "type": "template",
                    "template": {
                        "name": "order_ready",
                        "language": {"code": "en_US"},
                        "components": [
                            {
                                "type": "body",
                                "parameters": [
                                    {"type": "text", "text": "Alice Customer"},
                                    {"type": "text", "text": "Big deal"},
                                ],
                            }
                        ],
                    },
                    "biz_opaque_callback_data": f"crm.whatsapp.message:{message.id}",
                }
            ],
        )
        self.assertEqual(message.state, "sent")

    @users("wa_salesman")
    def test_unapproved_template_refused(self):
        self.template.status = "pending"
        message = self._template_message()
        with self.mock_whatsapp_api(), self.assertUserError("Only approved templates"):
            message._send(raise_exception=True)
        self.assertFalse(self._wa_requests)

    @users("wa_salesman")
    def test_opted_out_number_refused(self):
        self.env["phone.blacklist"].sudo().create({"number": "+32470123456"})
        message = self._template_message()
        with self.mock_whatsapp_api():
            message._send()
        self.assertFalse(self._wa_requests)
        self.assertEqual(message.state, "refused")
        self.assertIn("opted out", message.error_message)

    @users("wa_salesman")
    def test_invalid_number_refused(self):
        self.conversation.wa_id = "3212"
        message = self._message()
        with self.mock_whatsapp_api():
            message._send()
        self.assertFalse(self._wa_requests)
        self.assertEqual(message.state, "refused")
        self.assertIn("not a valid WhatsApp number", message.error_message)

    @users("wa_salesman")
    def test_username_recipient_and_reply_context(self):
        self.conversation.write({"wa_id": False, "wa_user_id": "US.13491208655302741918"})
        customer_message = self._message(direction="inbound", state="received", wamid="wamid.IN1")
        message = self._message(reply_to_id=customer_message.id, body="See https://example.com")
        with self.mock_whatsapp_api():
            message._send(raise_exception=True)
        self.assertEqual(
            self.sent_payloads(),
            [
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "recipient": "US.13491208655302741918",
                    "type": "text",
                    "context": {"message_id": "wamid.IN1"},
                    "text": {"preview_url": True, "body": "See https://example.com"},
                    "biz_opaque_callback_data": f"crm.whatsapp.message:{message.id}",
                }
            ],
        )

    @users("wa_salesman")
    def test_interactive_buttons_payload(self):
        buttons = [{"id": "button_1", "title": "Yes"}, {"id": "button_2", "title": "No"}]
        message = self._message(message_type="interactive", body="Confirm?", buttons=buttons)
        with self.mock_whatsapp_api():
            message._send(raise_exception=True)
        self.assertEqual(
            self.sent_payloads()[0]["interactive"],
            {
                "type": "button",
                "body": {"text": "Confirm?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "button_1", "title": "Yes"}},
                        {"type": "reply", "reply": {"id": "button_2", "title": "No"}},
                    ]
                },
            },
        )
        too_long = self._message(message_type="interactive", body="?", buttons=[{"id": "b", "title": "x" * 21}])
        with self.mock_whatsapp_api(), self.assertUserError("1 to 20 characters"):
            too_long._send(raise_exception=True)

    @users("wa_salesman")
    def test_media_uploaded_then_sent_by_id(self):
        attachment = self.env["ir.attachment"].create(
            {"name": "quote.pdf", "raw": b"%PDF-1.4 quote", "mimetype": "application/pdf"}
        )
        message = self._message(
            message_type="document",
            body="Your quote",
            attachment_ids=[(6, 0, attachment.ids)],
            media_filename="quote.pdf",
        )
        with self.mock_whatsapp_api():
            message._send(raise_exception=True)
        upload, send = self._wa_requests
        self.assertTrue(upload["path"].endswith("/media"))
        self.assertEqual(upload["files"]["file"], ("quote.pdf", b"%PDF-1.4 quote", "application/pdf"))
        self.assertEqual(
            send["json"]["document"], {"id": "media-upload-1", "caption": "Your quote", "filename": "quote.pdf"}
        )
        self.assertEqual(message.state, "sent")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundRetry(OutboundCase):
    @users("wa_salesman")
    def test_retryable_error_then_success(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=[self.api_error(131000, http_status=500), None]):
            message._send()
            self.assertEqual(message.state, "queued")
            self.assertEqual(message.retry_count, 1)
            self.assertEqual(message.next_try_at, NOW + timedelta(seconds=4))
            self.assertEqual(message.error_code, 131000)
            # not due yet: the cron leaves it alone
            self.env["crm.whatsapp.message"]._process_queue()
            self.assertEqual(len(self._wa_requests), 1)
            self.frozen.tick(timedelta(seconds=5))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self._wa_requests), 2)
        self.assertEqual(self._wa_requests[0]["json"], self._wa_requests[1]["json"])
        self.assertEqual(message.state, "sent")
        self.assertEqual(message.retry_count, 1)
        self.assertFalse(message.error_message)
        self.assertFalse(message.next_try_at)
        self.assertEqual(
            self.env["crm.whatsapp.message"].search_count([("conversation_id", "=", self.conversation.id)]), 1
        )

    @users("wa_salesman")
    def test_backoff_grows_and_retries_end(self):
        self.env["ir.config_parameter"].sudo().set_param("whatsapp_crm.send_max_retries", "2")
        message = self._message()
        with self.mock_whatsapp_api(sim_error=self.api_error(130429)):
            message._send()
            self.assertEqual(message.next_try_at, NOW + timedelta(seconds=4))
            self.assertIn("throughput limit for this number was reached", message.error_message)
            self.assertIn("Attempt 1 of 3 failed; the next one is at 2026-11-20 10:00:04 UTC.", message.error_message)
            self.frozen.tick(timedelta(seconds=4))
            self.env["crm.whatsapp.message"]._process_queue()
            self.assertEqual(message.next_try_at, NOW + timedelta(seconds=4 + 16))
            self.frozen.tick(timedelta(seconds=16))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self._wa_requests), 3)
        self.assertWhatsAppFailed(message, reason="Gave up after 3 attempts.", code=130429)
        self.assertNotIn("retr", message.error_message.replace("Gave up", ""), "a final failure promises nothing")

    @users("wa_salesman")
    def test_http_429_says_what_it_is(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=["http_429", None]):
            message._send()
            self.assertEqual(message.state, "queued")
            self.assertIn("rate limit was reached (HTTP 429: too many requests)", message.error_message)
            self.assertIn("Attempt 1 of 6", message.error_message)
            self.frozen.tick(timedelta(seconds=5))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertWhatsAppSent(message)

    @users("wa_salesman")
    def test_permanent_error_fails_at_once(self):
        message = self._template_message()
        with self.mock_whatsapp_api(sim_error=self.api_error(132001, details="template name does not exist")):
            message._send()
            self.frozen.tick(timedelta(hours=1))
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(len(self._wa_requests), 1, "a permanent error is not retried")
        self.assertEqual(message.state, "failed")
        self.assertEqual(message.error_code, 132001)
        self.assertIn("does not exist or is not approved", message.error_message)
        self.assertFalse(message.retry_count)

    @users("wa_salesman")
    def test_manual_retry(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=[self.api_error(131026), None]):
            message._send()
            self.assertEqual(message.state, "failed")
            message.action_retry()
            self.assertEqual(message.state, "queued")
            self.assertFalse(message.error_message)
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(message.state, "sent")
        self.assertEqual(len(self._wa_requests), 2)

    @users("wa_salesman")
    def test_window_error_explains(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=self.api_error(131047)):
            message._send()
        self.assertEqual(message.state, "failed")
        self.assertIn(WINDOW_TEXT, message.error_message)

    @users("wa_salesman")
    def test_opt_out_error_refuses_marketing_only(self):
        """131050: the customer stopped marketing messages. Recorded as a marketing consent, never on
        phone.blacklist (which would stop SMS and service replies too)."""
        self.template.category = "marketing"
        self.env["crm.whatsapp.consent"].sudo()._whatsapp_record(
            [
                {
                    "company": self.account.company_id,
                    "number": "+32470123456",
                    "scope": "marketing",
                    "state": "opt_in",
                    "source": "web_form",
                    "proof": "Newsletter form",
                }
            ]
        )
        message = self._template_message()
        with self.mock_whatsapp_api(sim_error="opt_out"):
            message._send()
        self.assertWhatsAppFailed(message, reason="stopped marketing messages", code=131050)
        consent = self.env["crm.whatsapp.consent"].sudo().search([("number", "=", "+32470123456")])
        self.assertEqual((consent.scope, consent.state, consent.source), ("marketing", "opt_out", "api_error"))
        self.assertFalse(self.env["phone.blacklist"].sudo().search([("number", "=", "+32470123456")]))
        with self.mock_whatsapp_api():
            marketing = self._template_message()
            marketing._send()
            self.assertWhatsAppRefused(marketing, "stopped marketing messages")
            self.assertNoWhatsAppSent()
            # service replies still go: free text in the window, and utility templates
            reply = self._message(body="Your order ships today")
            reply._send(raise_exception=True)
            self.template.category = "utility"
            utility = self._template_message()
            utility._send(raise_exception=True)
        self.assertWhatsAppSent(reply | utility)

    @users("wa_salesman")
    def test_token_error_flags_account(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=self.api_error(190, http_status=401)):
            message._send()
        self.assertEqual(message.state, "failed")
        self.assertTrue(self.account.token_invalid)
        with self.mock_whatsapp_api():
            self._message()._send()
        self.assertFalse(self._wa_requests, "nothing is sent with a token known to be invalid")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundChatter(OutboundCase):
    """Delivery statuses are mail.notification rows of the chatter note, as for SMS."""

    @users("wa_salesman")
    def test_status_as_notification(self):
        message = self._message()
        mail_message = message.mail_message_id
        self.assertEqual(mail_message.model, "crm.lead")
        self.assertEqual(mail_message.res_id, self.lead.id)
        self.assertEqual(mail_message.author_id, self.env.user.partner_id)
        self.assertEqual(mail_message.message_type, "whatsapp_crm")
        body = mail_message.body
        self.assertIn("Hello Alice", body)
        self.assertWhatsAppNotification(message, "ready")
        with self.mock_whatsapp_api():
            message._send()
        self.assertWhatsAppNotification(message, "pending")  # Odoo's "Sent"
        for state in ("delivered", "read"):
            # status webhooks write the state
            message.sudo().write({"state": state})
            self.assertWhatsAppNotification(message, "sent")  # Odoo's "Delivered"
        self.assertEqual(mail_message.body, body, "the chatter body is not rewritten per status")

    @users("wa_salesman")
    def test_failure_as_notification(self):
        message = self._message()
        with self.mock_whatsapp_api(sim_error=self.api_error(131026)):
            message._send()
        self.assertWhatsAppNotification(message, "exception", failure_type="whatsapp_crm_failed")
        notification = message.notification_ids
        self.assertIn("may not be on WhatsApp", notification.failure_reason)
        self.assertEqual(notification.author_id, self.user_salesman.partner_id, "the sender's failure systray")
        # the failure opens the message, whose Retry resends it
        action = self.env["mail.message"].whatsapp_failure_action(message.mail_message_id.id)
        self.assertEqual((action["res_model"], action["res_id"]), ("crm.whatsapp.message", message.id))
        with self.mock_whatsapp_api():
            message.action_retry()
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertWhatsAppSent(message)
        self.assertWhatsAppNotification(message, "pending")

    @users("wa_salesman")
    def test_refusal_as_notification(self):
        self._close_window()
        message = self._message()
        message._enqueue()
        self.assertWhatsAppRefused(message, WINDOW_TEXT)
        self.assertWhatsAppNotification(message, "exception", failure_type="whatsapp_crm_refused")

    @users("wa_salesman")
    def test_partner_chatter_without_lead(self):
        message = self._message(lead_id=False)
        self.assertEqual(message.mail_message_id.model, "res.partner")
        self.assertEqual(message.mail_message_id.res_id, self.partner.id)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundEmulator(WhatsappEmulatorMixin, OutboundCase):
    """Over real HTTP to the emulator: retries, and status webhooks (processed by the inbound
    side) showing in the chatter."""

    @users("wa_salesman")
    def test_statuses_from_webhook(self):
        emulator = self.start_emulator()
        emulator.open_window(self.conversation.wa_id)
        message = self._message()
        message._send(raise_exception=True)
        self.assertEqual(message.state, "sent")
        self.assertEqual(emulator.sent_messages[message.wamid]["payload"]["text"]["body"], "Hello Alice")
        Event = self.env["crm.whatsapp.webhook.event"].sudo()
        self.assertWhatsAppNotification(message, "pending")
        for status, state in (("delivered", "delivered"), ("read", "read"), ("delivered", "read")):
            payload = emulator.build_statuses(message.wamid, [status])
            Event._store(encode_webhook(payload), payload, self.account)._process()
            self.assertEqual(message.state, state, "a late 'delivered' does not move the status back")
            self.assertWhatsAppNotification(message, "sent")

    @users("wa_salesman")
    def test_retry_over_http(self):
        emulator = self.start_emulator()
        emulator.open_window(self.conversation.wa_id)
        emulator.fail_next(1, code=131000, http_status=500)
        message = self._message()
        message._send()
        self.assertRecordValues(message, [{"state": "queued", "retry_count": 1, "error_code": 131000}])
        self.frozen.tick(timedelta(seconds=5))
        self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual([r["status"] for r in emulator.requests], [500, 200])
        self.assertEqual(message.state, "sent")
        self.assertIn(message.wamid, emulator.sent_messages)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundAccess(OutboundCase):
    """A salesperson sends through the send API only, about documents and with files they may
    read; messages are never created or changed by hand (over RPC)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a lead of another salesperson: the salesperson cannot read it
        cls.secret_lead = cls.env["crm.lead"].create({"name": "Secret deal", "user_id": cls.user_manager.id})
        cls.secret_file = cls.env["ir.attachment"].create(
            {
                "name": "contract.pdf",
                "raw": b"%PDF confidential",
                "mimetype": "application/pdf",
                "res_model": "crm.lead",
                "res_id": cls.secret_lead.id,
            }
        )

    def _rpc_values(self, **values):
        return {
            "account_id": self.account.id,
            "conversation_id": self.conversation.id,
            "partner_id": self.partner.id,
            "lead_id": self.lead.id,
            "author_id": self.user_salesman.id,
            "direction": "outbound",
            "message_type": "text",
            "body": "Hello",
            **values,
        }

    @users("wa_salesman")
    def test_salesperson_sends_through_the_api(self):
        with self.mock_whatsapp_api():
            message = self.lead.with_env(self.env)._message_whatsapp("Hello", account=self.account)
        self.assertWhatsAppOutgoing(message, {"author_id": self.user_salesman.id, "body": "Hello"})
        self.assertEqual(message.mail_message_id.author_id, self.user_salesman.partner_id)

    @users("wa_salesman")
    def test_salesperson_cannot_create_or_forge(self):
        Message = self.env["crm.whatsapp.message"]
        for values in (
            {},  # even an honest one: only the send API creates messages
            {"author_id": self.user_manager.id},  # a chatter note signed by someone else
            {"direction": "inbound", "state": "received"},  # a fake customer message
            {"state": "sent"},  # a message that never went out
            {"lead_id": self.secret_lead.id},  # a note on a lead they cannot read
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                Message.create(self._rpc_values(**values))
        with self.assertRaises(AccessError):
            self.secret_lead.with_env(self.env)._message_whatsapp("Hello", account=self.account)
        self.assertFalse(self.secret_lead.message_ids.filtered(lambda m: m.message_type == "whatsapp_crm"))

    @users("wa_salesman")
    def test_salesperson_cannot_send_unreadable_file(self):
        with self.assertRaises(AccessError):
            self.lead.with_env(self.env)._message_whatsapp(
                account=self.account, attachments=self.secret_file.with_env(self.env)
            )
        message = self._message()
        for values in (
            {"message_type": "document", "attachment_ids": [(6, 0, self.secret_file.ids)]},
            {"author_id": self.user_manager.id},
            {"body": "Altered text"},
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                message.write(values)
        with self.mock_whatsapp_api():
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertFalse([r for r in self._wa_requests if r["path"].endswith("/media")])
        self.assertEqual(self.sent_payloads()[0]["text"]["body"], "Hello Alice")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundMediaLimits(OutboundCase):
    @users("wa_salesman")
    def test_too_large_refused_before_upload(self):
        """Meta's size limits are checked before uploading, with the reason on the message."""
        picture = self.env["ir.attachment"].create(
            {"name": "huge.png", "raw": b"\x89PNG" + b"0" * (5 * 1024 * 1024), "mimetype": "image/png"}
        )
        message = self._message(message_type="image", body=False, attachment_ids=[(6, 0, picture.ids)])
        with self.mock_whatsapp_api():
            message._send()
        self.assertFalse(self._wa_requests, "nothing is uploaded")
        self.assertEqual(message.state, "refused")
        self.assertIn("huge.png is too large for WhatsApp", message.error_message)
        self.assertIn("at most 5 MB", message.error_message)
        # the same file fits as a document
        document = self._message(message_type="document", body=False, attachment_ids=[(6, 0, picture.ids)])
        with self.mock_whatsapp_api():
            document._send(raise_exception=True)
        self.assertEqual(document.state, "sent")

    @users("wa_salesman")
    def test_unsupported_audio_goes_as_document(self):
        self.assertEqual(media_type_of("audio/ogg; codecs=opus"), "audio")
        self.assertEqual(media_type_of("audio/mpeg"), "audio")
        self.assertEqual(media_type_of("audio/wav"), "document")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundQueueConcurrency(OutboundCase):
    @users("wa_salesman")
    def test_one_run_at_a_time(self):
        """While another run sends (e.g. a manual run beside the cron worker), a run sends nothing."""
        message = self._message()
        message._enqueue()
        Message = self.env["crm.whatsapp.message"]
        with closing(sql_db.db_connect(self.env.cr.dbname).cursor()) as other_run:
            other_run.execute("SELECT pg_try_advisory_lock(%s)", [SEND_QUEUE_LOCK])
            self.assertTrue(other_run.fetchone()[0])
            try:
                with self.mock_whatsapp_api():
                    Message._process_queue()
                self.assertFalse(self._wa_requests)
                self.assertEqual(message.state, "queued")
            finally:
                other_run.execute("SELECT pg_advisory_unlock(%s)", [SEND_QUEUE_LOCK])
        with self.mock_whatsapp_api():
            Message._process_queue()
            Message._process_queue()  # the lock was released: a second run is possible
        self.assertEqual(len(self.sent_payloads()), 1)
        self.assertEqual(message.state, "sent")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundQueuedThenChanged(OutboundCase):
    """The policy is checked again when the cron sends what was queued earlier."""

    def _assert_refused_when_sent(self, message, change, reason):
        """Queue ``message``, apply ``change``, run the cron: nothing reaches WhatsApp."""
        self.assertEqual(message._enqueue(), message)
        change()
        with self.mock_whatsapp_api():
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertFalse(self._wa_requests)
        self.assertEqual(message.state, "refused")
        self.assertIn(reason, message.error_message)

    @users("wa_salesman")
    def test_template_paused_after_queuing(self):
        def pause():
            self.template.status = "paused"

        self._assert_refused_when_sent(self._template_message(), pause, "Only approved templates")

    @users("wa_salesman")
    def test_template_archived_after_queuing(self):
        def archive():
            self.template.active = False

        self._assert_refused_when_sent(self._template_message(), archive, "Only approved templates")

    @users("wa_salesman")
    def test_opted_out_after_queuing(self):
        def opt_out():
            self.env["phone.blacklist"].sudo()._add(["+32470123456"])

        self._assert_refused_when_sent(self._template_message(), opt_out, "opted out")

    @users("wa_salesman")
    def test_window_closed_after_queuing(self):
        self._assert_refused_when_sent(self._message(), self._close_window, WINDOW_TEXT)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundPolicyBatch(OutboundCase):
    """The policy answers for a batch with a fixed number of queries, whatever its size: 10 for 5
    messages as for 20 (messages, conversations, company, contacts, country, blacklist, account,
    token, consents...), not one blacklist query per message."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.conversations = cls.env["crm.whatsapp.conversation"].create(
            [
                {
                    "account_id": cls.account.id,
                    "wa_id": f"32470777{index:03d}",
                    "partner_id": cls.partner.id,
                    "user_id": cls.user_salesman.id,
                    "last_inbound_at": NOW - timedelta(hours=1),
                }
                for index in range(20)
            ]
        )
        cls.env["phone.blacklist"].sudo()._add(["+32470777010"])

    def _batch(self, size):
        messages = self.env["crm.whatsapp.message"]
        for conversation in self.conversations[:size]:
            messages |= self._message(conversation_id=conversation.id, lead_id=False)
        self.env.invalidate_all()
        return messages.with_env(self.env)

    @users("wa_salesman")
    @warmup
    def test_policy_queries_do_not_grow_with_the_batch(self):
        one, twenty = self._batch(5), self._batch(20)
        self.env.flush_all()
        self.env.invalidate_all()
        with self.assertQueryCount(wa_salesman=10):
            refusals = one._whatsapp_policy_refusals()
        self.assertFalse(refusals)
        self.env.invalidate_all()
        with self.assertQueryCount(wa_salesman=10):
            refusals = twenty._whatsapp_policy_refusals()
        self.assertEqual(list(refusals.values()), [("blacklist", "This number opted out of WhatsApp messages.")])
