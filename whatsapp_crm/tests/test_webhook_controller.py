"""The webhook endpoint: handshake, signatures, durability, idempotency, statuses, retries."""

import json
import time
from datetime import timedelta
from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..models.crm_whatsapp_webhook_event import lane_of
from ..tools import webhook_payload as wp
from .common import PHONE_NUMBER_ID, encode_payload, new_wamid, sign
from .webhook_common import CUSTOMER_WA_ID, WEBHOOK_URL, WebhookCase

CONTROLLER_LOGGER = "odoo.addons.whatsapp_crm.controllers.webhook"
EVENT_LOGGER = "odoo.addons.whatsapp_crm.models.crm_whatsapp_webhook_event"


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookController(WebhookCase):
    def _counts(self):
        return {
            model: self.env[model].search_count([])
            for model in (
                "crm.whatsapp.webhook.event",
                "crm.whatsapp.message",
                "crm.whatsapp.conversation",
                "res.partner",
                "crm.lead",
                "mail.message",
            )
        }

    def _outbound(self, state="sent"):
        return self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "direction": "outbound",
                "state": state,
                "wamid": new_wamid(),
                "body": "Oi!",
            }
        )

    def _post_statuses(self, *statuses):
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": list(statuses),
        }
        response = self.post(self.envelope(value))
        self.assertEqual(response.status_code, 200)
        return self.env["crm.whatsapp.webhook.event"].search([], limit=1)

    # Handshake
    def test_verification_handshake(self):
        token = self.account.verify_token
        response = self.url_open(f"{WEBHOOK_URL}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.text, "1158201444")
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        with mute_logger(CONTROLLER_LOGGER):
            wrong = self.url_open(f"{WEBHOOK_URL}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
            no_mode = self.url_open(f"{WEBHOOK_URL}?hub.verify_token={token}&hub.challenge=1")
        self.assertEqual(wrong.status_code, 403)
        self.assertEqual(no_mode.status_code, 403)
        self.assertNotIn("1", wrong.text)

    # Refusals
    @mute_logger(CONTROLLER_LOGGER)
    def test_bad_or_missing_signature_refused(self):
        before = self._counts()
        raw = encode_payload(self.envelope(self.messages_value([self.inbound("text", {"body": "hi"})])))
        for signature in (False, "sha256=" + "0" * 64, sign(raw, secret="another-secret"), "garbage", "sha256=é"):
            response = self.post_raw(raw, signature=signature)
            self.assertEqual(response.status_code, 403, signature)
            self.assertNotIn("Traceback", response.text)
        # a body altered after signing
        response = self.post_raw(raw.replace(b"hi", b"ho"), signature=sign(raw))
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self._counts(), before, "nothing stored")

    @mute_logger(CONTROLLER_LOGGER)
    def test_unknown_account_refused(self):
        before = self._counts()
        value = self.messages_value([self.inbound("text", {"body": "hi"})], phone_number_id="999")
        response = self.post(self.envelope(value, waba_id="888"))
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self._counts(), before)

    @mute_logger(CONTROLLER_LOGGER)
    def test_malformed_body(self):
        before = self._counts()
        for raw in (
            b"not json at all",
            b"{",
            b"[1, 2]",
            encode_payload({"object": "page", "entry": []}),
            encode_payload({"object": "whatsapp_business_account", "entry": "nope"}),
            encode_payload({"object": "whatsapp_business_account"}),
        ):
            response = self.post_raw(raw)
            self.assertEqual(response.status_code, 400, raw)
            self.assertNotIn("Traceback", response.text)
        self.assertEqual(self._counts(), before)

    @mute_logger(CONTROLLER_LOGGER)
    def test_hostile_bodies_refused_without_traceback(self):
        """Deep nesting, other encodings, malformed changes and huge bodies are answered, not crashed on."""
        before = self._counts()
        head = b'{"object": "whatsapp_business_account", "entry": ['
        nested = head + b"[" * 200000 + b"]" * 200000 + b"]}"
        utf16 = json.dumps(self.envelope(self.messages_value([self.inbound("text", {"body": "hi"})]))).encode("utf-16")
        bad_value = head + b'{"id": "1", "changes": [{"field": "messages", "value": [1]}, "x", null]}]}'
        bad_metadata = head + (
            b'{"id": "1", "changes": [{"field": "messages", "value": {"metadata": "%s"}}]}]}' % PHONE_NUMBER_ID.encode()
        )
        huge = head + b" " * (5 * 1024 * 1024) + b"]}"
        for raw, status in ((nested, 400), (utf16, 400), (bad_value, 403), (bad_metadata, 403), (huge, 413)):
            response = self.post_raw(raw, signature=sign(raw))
            self.assertEqual(response.status_code, status, raw[:80])
            self.assertNotIn("Traceback", response.text)
        self.assertEqual(self._counts(), before)

    def test_signature_of_any_candidate_account(self):
        """One Meta app serves several numbers: the app secret of any named account is accepted."""
        other = self.env["crm.whatsapp.account"].create(
            {
                "name": "Second line",
                "waba_id": "209000000000002",
                "phone_number_id": "109000000000002",
                "access_token": "token-2",
                "app_secret": "second-secret",
                "team_id": self.team.id,
            }
        )
        message = self.inbound("text", {"body": "to the second line"})
        raw = encode_payload(
            self.envelope(self.messages_value([message], phone_number_id="109000000000002"), waba_id="209000000000002")
        )
        with mute_logger(CONTROLLER_LOGGER):
            self.assertEqual(self.post_raw(raw).status_code, 403, "first account's secret does not sign for the second")
        self.assertEqual(self.post_raw(raw, signature=sign(raw, "second-secret")).status_code, 200)
        stored = self.env["crm.whatsapp.message"].search([("wamid", "=", message["id"])])
        self.assertEqual(stored.account_id, other)
        self.assertEqual(stored.conversation_id.account_id, other)

    def test_other_apps_secret_cannot_write_into_an_account(self):
        """Signed with B's app secret, a payload naming A's number and B's creates nothing under A:
        no message, and no status applied to A's messages."""
        Message = self.env["crm.whatsapp.message"]
        other = self.env["crm.whatsapp.account"].create(
            {
                "name": "Other app's line",
                "waba_id": "209000000000002",
                "phone_number_id": "109000000000002",
                "access_token": "token-2",
                "app_secret": "second-secret",
                "team_id": self.team.id,
            }
        )
        ours = self._outbound()
        injected = self.inbound("text", {"body": "injected into A"})
        legit = self.inbound("text", {"body": "for B"})
        status_value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [self.status(ours.wamid, "failed", int(time.time()))],
        }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": other.waba_id,
                    "changes": [
                        {"field": "messages", "value": self.messages_value([injected])},
                        {"field": "messages", "value": status_value},
                        {"field": "messages", "value": self.messages_value([legit], phone_number_id="109000000000002")},
                    ],
                }
            ],
        }
        raw = encode_payload(payload)
        self.assertEqual(self.post_raw(raw, signature=sign(raw, "second-secret")).status_code, 200)
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertEqual(event.account_id, other)
        self.assertFalse(Message.search([("wamid", "=", injected["id"])]), "nothing stored under A")
        self.assertEqual(ours.state, "sent", "A's message untouched")
        self.assertEqual(Message.search([("wamid", "=", legit["id"])]).account_id, other)
        self.assertFalse(self.env["crm.whatsapp.conversation"].search([("account_id", "=", self.account.id)]))

    # Durability and idempotency
    def test_event_stored_and_done(self):
        message = self.inbound("text", {"body": "hello"})
        self.receive(message)
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertEqual(event.account_id, self.account)
        self.assertEqual(event.state, "done")
        self.assertEqual(event.fields_summary, "messages")
        self.assertIn(message["id"], event.payload)
        self.assertTrue(event.processed_at)
        self.assertFalse(event.error)

    def test_duplicate_delivery_creates_nothing(self):
        message = self.inbound("image", {"id": "MEDIA-DUP", "mime_type": "image/jpeg"})
        payload = self.envelope(self.messages_value([message]))
        self.assertEqual(self.post(payload).status_code, 200)
        before = self._counts()
        self.assertEqual(self.post(payload).status_code, 200, "a re-delivery is acknowledged")
        self.assertEqual(self._counts(), before, "same body: not even a new event")
        # the same message inside another envelope (Meta batches differently on retries)
        other = self.inbound("text", {"body": "second"})
        self.assertEqual(self.post(self.envelope(self.messages_value([message, other]))).status_code, 200)
        after = self._counts()
        self.assertEqual(after["crm.whatsapp.message"], before["crm.whatsapp.message"] + 1)
        self.assertEqual(after["crm.whatsapp.conversation"], before["crm.whatsapp.conversation"])
        self.assertEqual(after["crm.lead"], before["crm.lead"])
        self.assertEqual(after["res.partner"], before["res.partner"])
        self.assertEqual(self.env["crm.whatsapp.message"].search_count([("wamid", "=", message["id"])]), 1)

    # Statuses
    def test_statuses_out_of_order(self):
        sent = self._outbound()
        now = int(time.time())
        pricing = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
        conversation = {"id": "CONV-1", "origin": {"type": "utility"}}
        self._post_statuses(self.status(sent.wamid, "read", now + 20, pricing=pricing, conversation=conversation))
        self._post_statuses(self.status(sent.wamid, "delivered", now + 10))
        self._post_statuses(self.status(sent.wamid, "sent", now))
        self.assertEqual(sent.state, "read")
        self.assertEqual(sent.pricing_category, "utility")
        self.assertEqual(sent.wa_conversation_id, "CONV-1")
        self.assertEqual(int(sent.status_timestamp.timestamp()), now + 20)
        # a late failure does not undo a read
        self._post_statuses(
            self.status(sent.wamid, "failed", now + 30, errors=[{"code": 131026, "title": "Undeliverable"}])
        )
        self.assertEqual(sent.state, "read")

    def test_status_without_wamid_touches_no_queued_message(self):
        queued = self.env["crm.whatsapp.message"].create(
            {"account_id": self.account.id, "direction": "outbound", "state": "queued", "body": "not sent yet"}
        )
        status = self.status(False, "delivered", int(time.time()))
        del status["id"]
        self._post_statuses(status)
        self.assertEqual(queued.state, "queued")

    def test_status_failed_then_proven_delivered(self):
        message = self._outbound()
        now = int(time.time())
        errors = [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Not on WhatsApp"}}]
        self._post_statuses(self.status(message.wamid, "failed", now, errors=errors))
        self.assertEqual(message.state, "failed")
        self.assertEqual(message.error_code, 131026)
        self.assertEqual(
            message.error_message,
            "[131026] The message could not be delivered: the number may not be on WhatsApp. (Not on WhatsApp)",
        )
        self._post_statuses(self.status(message.wamid, "sent", now - 5))
        self.assertEqual(message.state, "failed", "a sent status does not revive a failure")
        self._post_statuses(self.status(message.wamid, "delivered", now + 5))
        self.assertEqual(message.state, "delivered", "delivery proves the message arrived")

    def test_failed_status_opt_out_and_invalid_token(self):
        """Failures reported by status webhooks have the consequences of send errors."""
        conversation = self.env["crm.whatsapp.conversation"].create(
            {"account_id": self.account.id, "wa_id": "5511987654321"}
        )
        opted_out, refused = self._outbound(), self._outbound()
        (opted_out | refused).conversation_id = conversation
        now = int(time.time())
        self._post_statuses(self.status(opted_out.wamid, "failed", now, errors=[{"code": 131050, "title": "Stopped"}]))
        self.assertEqual(opted_out.error_code, 131050)
        self.assertIn("stopped marketing messages", opted_out.error_message)
        consent = self.env["crm.whatsapp.consent"].search([("number", "=", "+5511987654321")])
        self.assertEqual((consent.scope, consent.state, consent.source), ("marketing", "opt_out", "api_error"))
        self.assertFalse(
            self.env["phone.blacklist"].search([("number", "=", "+5511987654321")]),
            "not blacklisted: SMS and service replies still go",
        )
        self.assertFalse(self.account.token_invalid)
        self._post_statuses(self.status(refused.wamid, "failed", now, errors=[{"code": 190, "title": "Expired"}]))
        self.assertTrue(self.account.token_invalid)

    def test_status_before_message_is_known(self):
        wamid = new_wamid()
        event = self._post_statuses(self.status(wamid, "delivered", int(time.time())))
        self.assertEqual(event.state, "pending")
        self.assertIn(wamid, event.error)
        self.assertEqual(event.attempts, 1)
        self.assertTrue(event.next_attempt_at)
        # the send's response is stored afterwards
        message = self.env["crm.whatsapp.message"].create(
            {"account_id": self.account.id, "direction": "outbound", "state": "sent", "wamid": wamid}
        )
        event.next_attempt_at = "2000-01-01 00:00:00"
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertEqual(message.state, "delivered")

    def test_status_retry_does_not_reapply_the_rest(self):
        """A payload mixing other changes with a status of a not-yet-stored message: only the status is retried."""
        wamid = new_wamid()
        statuses = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [self.status(wamid, "read", int(time.time()))],
        }
        quality = {"display_phone_number": "15550199", "event": "UPGRADE", "current_limit": "TIER_100K"}
        payload = self.envelope(statuses)
        payload["entry"][0]["changes"].append({"field": "phone_number_quality_update", "value": quality})
        self.assertEqual(self.post(payload).status_code, 200)
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertEqual(event.state, "pending")
        posts = self.account.message_ids.filtered(lambda m: "TIER_100K" in (m.body or ""))
        self.assertEqual(len(posts), 1)
        message = self._outbound()
        message.wamid = wamid
        event.next_attempt_at = "2000-01-01 00:00:00"
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertEqual(message.state, "read")
        self.assertEqual(self.account.message_ids.filtered(lambda m: "TIER_100K" in (m.body or "")), posts)

    def test_status_of_unknown_message_eventually_ignored(self):
        event = self._post_statuses(self.status(new_wamid(), "read", int(time.time())))
        for _attempt in range(3):
            event.next_attempt_at = "2000-01-01 00:00:00"
            self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "ignored")
        self.assertFalse(event.next_attempt_at)

    # Failures and retries
    def _broken_receive(self):
        """Storing a customer message hits a bug while ``state["broken"]``."""
        Message = type(self.env["crm.whatsapp.message"])
        original = Message._whatsapp_receive
        state = {"broken": True}

        def broken(event, *args, **kwargs):
            if state["broken"]:
                raise ValueError("database hiccup")
            return original(event, *args, **kwargs)

        return patch.object(Message, "_whatsapp_receive", broken), state

    def test_processing_failure_retried_by_cron(self):
        message = self.inbound("text", {"body": "will fail once"})
        patcher, receive = self._broken_receive()
        with patcher, mute_logger(EVENT_LOGGER):
            response = self.post(self.envelope(self.messages_value([message])))
            self.assertEqual(response.status_code, 200, "stored, hence acknowledged")
            event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
            self.assertEqual(event.state, "failed")
            self.assertIn("database hiccup", event.error)
            self.assertEqual(event.attempts, 1)
            self.assertTrue(event.next_attempt_at)
            retry_cron = self.env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{event.lane}")
            self.assertTrue(
                self.env["ir.cron.trigger"].search_count(
                    [("cron_id", "=", retry_cron.id), ("call_at", "=", event.next_attempt_at)]
                ),
                "the retry cron is woken up when the attempt is due",
            )
            self.assertFalse(self.env["crm.whatsapp.message"].search([("wamid", "=", message["id"])]))
            self.assertFalse(
                self.env["crm.whatsapp.conversation"].search([("wa_id", "=", CUSTOMER_WA_ID)]), "rolled back"
            )
            self.env["crm.whatsapp.webhook.event"]._cron_process()
            self.assertEqual(event.state, "failed", "not retried before its backoff")
            receive["broken"] = False
            event.next_attempt_at = "2000-01-01 00:00:00"
            self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertFalse(event.error)
        stored = self.env["crm.whatsapp.message"].search([("wamid", "=", message["id"])])
        self.assertInbound(stored, "text", "will fail once")

    def test_process_again_button(self):
        message = self.inbound("text", {"body": "button retry"})
        patcher, receive = self._broken_receive()
        with patcher, mute_logger(EVENT_LOGGER):
            self.post(self.envelope(self.messages_value([message])))
            event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
            self.assertEqual((event.state, event.attempts), ("failed", 1))
            event.action_process_again()
            self.assertEqual((event.state, event.attempts), ("pending", 0), "queued again for its lane")
            self.env["crm.whatsapp.webhook.event"]._cron_process()
            self.assertEqual((event.state, event.attempts), ("failed", 1))
            receive["broken"] = False
            event.action_process_again()
            self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertEqual(self.env["crm.whatsapp.message"].search_count([("wamid", "=", message["id"])]), 1)

    def test_process_again_needs_the_managers_rights(self):
        """The button re-processes as superuser: a salesperson calling it directly is refused."""
        self._post_statuses(self.status("wamid.UNKNOWN-FOR-ACCESS", "read", int(time.time())))
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        with self.assertRaises(AccessError):
            event.with_user(self.user_salesman).action_process_again()
        self.assertEqual((event.state, event.attempts), ("pending", 1), "not queued again")
        event.with_user(self.user_manager).action_process_again()
        self.assertEqual((event.state, event.attempts), ("pending", 0))
        lane_cron = self.env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{event.lane}")
        self.assertTrue(self.env["ir.cron.trigger"].search_count([("cron_id", "=", lane_cron.id)]), "lane woken")

    def test_event_log_for_managers_only(self):
        self._post_statuses(self.status("wamid.UNKNOWN-FOR-LOG", "read", int(time.time())))
        Event = self.env["crm.whatsapp.webhook.event"]
        menu = self.env.ref("whatsapp_crm.crm_whatsapp_webhook_event_menu")
        Menu = self.env["ir.ui.menu"]
        as_manager = Event.with_user(self.user_manager)
        views = as_manager.get_views([(False, "list"), (False, "form"), (False, "search")])
        self.assertEqual(set(views["views"]), {"list", "form", "search"})
        rows = as_manager.search([]).read(["account_id", "state", "error", "payload", "attempts"])
        self.assertTrue(rows and rows[0]["error"])
        self.assertIn(menu.id, Menu.with_user(self.user_manager)._visible_menu_ids())
        with self.assertRaises(AccessError):
            Event.with_user(self.user_salesman).search([])
        self.assertNotIn(menu.id, Menu.with_user(self.user_salesman)._visible_menu_ids())

    def test_event_log_of_other_companies_hidden(self):
        """Payloads carry customer data: a manager sees only the events of their companies' accounts."""
        self._post_statuses(self.status("wamid.UNKNOWN-FOR-COMPANY", "read", int(time.time())))
        Event = self.env["crm.whatsapp.webhook.event"]
        event = Event.search([("account_id", "=", self.account.id)], limit=1)
        self.assertIn(event, Event.with_user(self.user_manager).search([]))
        other_company = self.env["res.company"].create({"name": "Other Company"})
        self.account.company_id = other_company
        self.assertNotIn(event, Event.with_user(self.user_manager).search([]))

    # Conversations, leads, assignment
    def test_conversation_states(self):
        """New until answered; a customer message reopens a conversation waiting for them or closed."""
        conversation = self.receive(self.inbound("text", {"body": "first"})).conversation_id
        self.assertEqual(conversation.state, "new")
        for state in ("pending", "closed"):
            conversation.state = state
            self.receive(self.inbound("text", {"body": f"again after {state}"}))
            self.assertEqual(conversation.state, "open", state)

    def test_lead_policy_never_posts_on_contact(self):
        self.account.lead_policy = "never"
        message = self.receive(self.inbound("text", {"body": "no lead please"}))
        self.assertFalse(message.lead_id)
        self.assertEqual(message.mail_message_id.model, "res.partner")
        self.assertEqual(message.mail_message_id.res_id, message.partner_id.id)

    def test_lead_policy_no_open_lead_reuses_open_lead(self):
        partner = self.env["res.partner"].create({"name": "Known", "mobile": f"+{CUSTOMER_WA_ID}"})
        lead = self.env["crm.lead"].create({"name": "Existing deal", "partner_id": partner.id, "team_id": self.team.id})
        message = self.receive(self.inbound("text", {"body": "about my deal"}))
        self.assertEqual(message.lead_id, lead)

    def test_lead_policy_no_open_lead_ignores_won_and_lost_leads(self):
        partner = self.env["res.partner"].create({"name": "Known", "mobile": f"+{CUSTOMER_WA_ID}"})
        won_stage = self.env["crm.stage"].create({"name": "Won here", "is_won": True})
        won = self.env["crm.lead"].create(
            {"name": "Won deal", "partner_id": partner.id, "team_id": self.team.id, "stage_id": won_stage.id}
        )
        lost = self.env["crm.lead"].create({"name": "Lost deal", "partner_id": partner.id, "team_id": self.team.id})
        lost.action_set_lost()
        message = self.receive(self.inbound("text", {"body": "new project"}))
        self.assertTrue(message.lead_id)
        self.assertNotIn(message.lead_id, won | lost, "closed leads are not open")
        self.assertEqual(message.partner_id, partner)

    def test_lead_policy_no_open_lead_ignores_other_companies_leads(self):
        partner = self.env["res.partner"].create({"name": "Known", "mobile": f"+{CUSTOMER_WA_ID}"})
        other_company = self.env["res.company"].create({"name": "Other company"})
        elsewhere = self.env["crm.lead"].create(
            {"name": "Deal elsewhere", "partner_id": partner.id, "company_id": other_company.id}
        )
        message = self.receive(self.inbound("text", {"body": "hello"}))
        self.assertNotEqual(message.lead_id, elsewhere)
        self.assertEqual(message.lead_id.company_id, self.account.company_id)

    def test_out_of_order_message_does_not_move_the_window_back(self):
        now = int(time.time())
        latest = self.receive(self.inbound("text", {"body": "second"}, timestamp=now))
        conversation = latest.conversation_id
        older = self.receive(self.inbound("text", {"body": "first, late"}, timestamp=now - 3600))
        self.assertEqual(older.conversation_id, conversation)
        self.assertEqual(older.timestamp, latest.timestamp - timedelta(hours=1), "the payload's time is kept")
        self.assertEqual(conversation.last_inbound_at, latest.timestamp)
        self.assertEqual(conversation.window_expires_at, latest.timestamp + timedelta(hours=24))

    def test_lead_policy_new_conversation_and_reopen(self):
        self.account.lead_policy = "new_conversation"
        first = self.receive(self.inbound("text", {"body": "first chat"}))
        conversation = first.conversation_id
        self.assertTrue(first.lead_id)
        second = self.receive(self.inbound("text", {"body": "same chat"}))
        self.assertEqual(second.lead_id, first.lead_id)
        conversation.action_close()
        third = self.receive(self.inbound("text", {"body": "new chat"}))
        self.assertEqual(conversation.state, "open", "an inbound message reopens the conversation")
        self.assertNotEqual(third.lead_id, first.lead_id)
        self.assertEqual(conversation.lead_id, third.lead_id)

    def test_closed_chat_reopened_once_per_batch(self):
        """Two messages of a closed chat in one batch start one new lead, whether the batch is
        applied at once or, because another of its events is bad, item by item."""
        self.account.lead_policy = "new_conversation"
        conversation = self.receive(self.inbound("text", {"body": "first chat"})).conversation_id
        self.process_after_post = False
        Event = self.env["crm.whatsapp.webhook.event"]
        for poisoned in (False, True):
            conversation.action_close()
            leads_before = conversation.lead_id
            messages = [self.inbound("text", {"body": f"back {poisoned} {n}"}) for n in range(2)]
            if poisoned:
                messages.insert(1, self.inbound("text", {"body": "x"}, wamid="wamid." + "C" * 300))
            for message in messages:
                self.post(self.envelope(self.messages_value([message])))
            with mute_logger(EVENT_LOGGER):
                Event.search([("state", "=", "pending")])._process()
            stored = self.env["crm.whatsapp.message"].search([("body", "like", f"back {poisoned} %")])
            self.assertEqual(len(stored), 2)
            self.assertEqual(len(stored.lead_id), 1, "one new lead")
            self.assertNotEqual(stored.lead_id, leads_before)
            self.assertEqual(conversation.state, "open")

    def test_assignment_falls_back_to_lead_salesperson(self):
        self.account.user_ids = False
        partner = self.env["res.partner"].create({"name": "Known", "phone": f"+{CUSTOMER_WA_ID}"})
        lead = self.env["crm.lead"].create(
            {"name": "Deal", "partner_id": partner.id, "team_id": self.team.id, "user_id": self.user_manager.id}
        )
        message = self.receive(self.inbound("text", {"body": "hello"}))
        self.assertEqual(message.lead_id, lead)
        self.assertEqual(message.conversation_id.user_id, self.user_manager)

    def test_round_robin_assignment(self):
        second_agent = self.user_manager
        self.account.user_ids = self.user_salesman | second_agent
        users = [
            self.receive(self.inbound("text", {"body": "hi"}, wa_id=wa_id), wa_id=wa_id).conversation_id.user_id
            for wa_id in ("4915112345671", "4915112345672", "4915112345673")
        ]
        self.assertEqual(set(users[0].ids + users[1].ids), set((self.user_salesman | second_agent).ids))
        self.assertEqual(users[2], users[0])

    def test_base_automation_on_incoming_message(self):
        automation = self.env["base.automation"].create(
            {
                "name": "Flag leads with WhatsApp replies",
                "model_id": self.env.ref("crm.model_crm_lead").id,
                "trigger": "on_message_received",
            }
        )
        self.env["ir.actions.server"].create(
            {
                "name": "Set priority",
                "model_id": self.env.ref("crm.model_crm_lead").id,
                "base_automation_id": automation.id,
                "state": "code",
                "code": "record.write({'priority': '3'})",
            }
        )
        message = self.receive(self.inbound("text", {"body": "any news?"}))
        self.assertEqual(message.lead_id.priority, "3")

    # Other fields
    def test_template_status_update(self):
        template = self.env["crm.whatsapp.template"].create(
            {
                "name": "order_update",
                "language": "pt_BR",
                "account_id": self.account.id,
                "status": "pending",
                "body": "Oi {{1}}",
            }
        )
        value = {
            "event": "APPROVED",
            "message_template_id": 1234567890,
            "message_template_name": "order_update",
            "message_template_language": "pt_BR",
            "reason": "NONE",
        }
        self.assertEqual(self.post(self.envelope(value, field="message_template_status_update")).status_code, 200)
        self.assertEqual(template.status, "approved")
        self.assertEqual(template.wa_template_id, "1234567890")
        value.update(event="REJECTED", reason="INVALID_FORMAT")
        self.post(self.envelope(value, field="message_template_status_update"))
        self.assertEqual(template.status, "rejected", "found by its Meta id now")

    def test_phone_number_quality_update(self):
        value = {"display_phone_number": "15550199", "event": "UPGRADE", "current_limit": "TIER_10K"}
        self.post(self.envelope(value, field="phone_number_quality_update"))
        self.assertEqual(self.account.messaging_limit_tier, "TIER_10K")
        self.assertIn("TIER_10K", self.account.message_ids[0].body)

    def test_account_update_posted(self):
        value = {
            "phone_number": "15550199",
            "event": "ACCOUNT_RESTRICTION",
            "restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}],
        }
        self.post(self.envelope(value, field="account_update"))
        self.assertIn("ACCOUNT_RESTRICTION", self.account.message_ids[0].body)
        self.assertEqual(self.env["crm.whatsapp.webhook.event"].search([], limit=1).state, "done")

    def test_user_preferences_logged(self):
        self.post(self.user_preferences("stop"))
        conversation = self.env["crm.whatsapp.conversation"].search([("wa_id", "=", CUSTOMER_WA_ID)])
        self.assertTrue(conversation)
        self.assertIn("marketing_messages", conversation.message_ids[0].body)
        self.assertIn("stop", conversation.partner_id.message_ids[0].body)

    def test_calls_logged(self):
        now = int(time.time())
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Joana"}, "wa_id": CUSTOMER_WA_ID}],
            "calls": [
                {
                    "id": "wacid.CALL1",
                    "from": CUSTOMER_WA_ID,
                    "to": "15550199",
                    "event": "terminate",
                    "direction": "USER_INITIATED",
                    "timestamp": str(now),
                    "status": "COMPLETED",
                    "duration": 87,
                },
            ],
        }
        self.post(self.envelope(value, field="calls"))
        call = self.env["crm.whatsapp.message"].search([("message_type", "=", "call")])
        self.assertEqual(len(call), 1)
        self.assertEqual(call.direction, "inbound")
        self.assertIn("87", call.body)
        self.assertIn("87", call.conversation_id.message_ids[0].body)
        self.assertTrue(call.conversation_id.can_send_free_text, "a user call opens the window")

    def test_preference_and_call_without_customer_noted_not_failed(self):
        metadata = {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID}
        preference = {"category": "marketing_messages", "value": "stop", "timestamp": int(time.time())}
        call = {"id": "wacid.NOBODY", "event": "connect", "direction": "USER_INITIATED"}
        for field, value in (
            ("user_preferences", {"metadata": metadata, "user_preferences": [preference]}),
            ("calls", {"metadata": metadata, "calls": [call]}),
        ):
            self.assertEqual(self.post(self.envelope(value, field=field)).status_code, 200)
            event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
            self.assertEqual(event.state, "done", field)
            self.assertIn("no customer", event.error)

    def test_calls_and_preferences_go_to_their_customers_lane(self):
        """What creates a customer's contact runs in that customer's lane (one customer's events one
        after the other), whoever started the call."""
        metadata = {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID}
        outbound_call = {"id": "wacid.OUT", "from": "15550199", "to": CUSTOMER_WA_ID, "direction": "BUSINESS_INITIATED"}
        preference = {"wa_id": CUSTOMER_WA_ID, "category": "marketing_messages", "value": "stop"}
        message = self.envelope(self.messages_value([self.inbound("text", {"body": "hi"}, wa_id="551187654321")]))
        self.assertEqual(wp.lane_key(message), min(CUSTOMER_WA_ID, "551187654321"), "any spelling of the number")
        for field, value in (
            ("calls", {"metadata": metadata, "calls": [outbound_call]}),
            ("user_preferences", {"metadata": metadata, "user_preferences": [preference]}),
        ):
            payload = self.envelope(value, field=field)
            self.assertEqual(wp.lane_key(payload), wp.lane_key(message), field)
            self.assertEqual(lane_of(payload), lane_of(message), field)

    def test_unknown_field_ignored_with_note(self):
        self.post(self.envelope({"foo": "bar"}, field="business_capability_update_v2"))
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertEqual(event.state, "ignored")
        self.assertIn("business_capability_update_v2", event.error)

    # Views
    def test_lead_and_partner_show_whatsapp(self):
        message = self.receive(self.inbound("text", {"body": "show me"}))
        lead = message.lead_id.with_user(self.user_salesman)
        partner = message.partner_id.with_user(self.user_salesman)
        self.assertEqual(lead.whatsapp_message_count, 1)
        self.assertEqual(partner.whatsapp_message_count, 1)
        self.assertEqual(lead.action_open_whatsapp()["domain"], [("lead_id", "=", lead.id)])
        self.assertEqual(self.env["crm.whatsapp.message"].search(partner.action_open_whatsapp()["domain"]), message)
        for model in ("crm.lead", "res.partner"):
            arch = self.env[model].with_user(self.user_salesman).get_views([(False, "form")])["views"]["form"]["arch"]
            self.assertIn('<widget name="whatsapp_chat"', arch)
            self.assertIn('name="action_open_whatsapp"', arch)
        conversation = message.conversation_id.with_user(self.user_salesman)
        self.assertEqual(conversation.wa_message_count, 1)
        self.assertIn(CUSTOMER_WA_ID, conversation.display_name)
