"""Ingest: the acknowledgement path, isolation of every message, sanitising, echoes, archived accounts."""

import logging
import time
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from ..models.crm_whatsapp_webhook_event import lane_of
from ..tools import webhook_payload as wp
from .common import PHONE_NUMBER_ID, encode_payload, new_wamid
from .webhook_common import CUSTOMER_WA_ID, WEBHOOK_URL, WebhookCase

EVENT_LOGGER = "odoo.addons.whatsapp_crm.models.crm_whatsapp_webhook_event"
CONTROLLER_LOGGER = "odoo.addons.whatsapp_crm.controllers.webhook"


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookIngest(WebhookCase):
    def _event(self):
        return self.env["crm.whatsapp.webhook.event"].search([], limit=1)

    def _messages(self, *wamids):
        return self.env["crm.whatsapp.message"].search([("wamid", "in", list(wamids))])

    # The acknowledgement: store, commit, wake, answer
    def test_acknowledged_without_processing(self):
        self.process_after_post = False
        message = self.inbound("text", {"body": "later"})
        response = self.post(self.envelope(self.messages_value([message])))
        self.assertEqual(response.status_code, 200)
        event = self._event()
        self.assertEqual(event.state, "pending", "stored, processed by its lane")
        self.assertFalse(self._messages(message["id"]))
        cron = self.env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{event.lane}")
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), 1, "lane woken")
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertInbound(self._messages(message["id"]), "text", "later")

    def test_wake_up_coalesced(self):
        """A burst writes one trigger per lane run, not one per delivery; a delivery after the start
        of the lane's run writes a new one, so that it is not left for the next minute."""
        self.process_after_post = False
        Trigger, Event = self.env["ir.cron.trigger"], self.env["crm.whatsapp.webhook.event"]
        payload = self.envelope(self.messages_value([self.inbound("text", {"body": "1"})]))
        lane = Event._store(encode_payload(payload), payload, self.account).lane
        cron = self.env.ref(f"whatsapp_crm.ir_cron_whatsapp_webhook_lane_{lane}")
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        for _n in range(5):
            self.post(self.envelope(self.messages_value([self.inbound("text", {"body": "burst"})])))
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), 1)
        self.assertFalse(Event._wake(lane), "already woken")
        # the lane's run starts (Odoo records its progress), then a delivery comes
        self.env.cr.execute(
            "INSERT INTO ir_cron_progress (cron_id, create_date, write_date) VALUES (%s, clock_timestamp(), now())",
            [cron.id],
        )
        self.assertTrue(Event._wake(lane), "the trigger before the run's start is consumed by it")
        self.assertFalse(Event._wake(lane))
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), 2)

    def test_lane_run_ends_once_caught_up(self):
        """A lane's run ends after a batch smaller than a full one: with one cron worker, the other
        lanes get their turn; what arrived meanwhile waits for the lane's next run."""
        self.process_after_post = False
        Event = self.env["crm.whatsapp.webhook.event"]
        self.post(self.envelope(self.messages_value([self.inbound("text", {"body": "first"})])))
        event, late = self._event(), []
        original = type(Event)._process

        def process(events):
            original(events)
            if not late:  # the customer writes again while the lane runs
                payload = self.envelope(self.messages_value([self.inbound("text", {"body": "late"})]))
                late.append(Event._store(encode_payload(payload), payload, self.account))

        with patch.object(type(Event), "_process", process):
            Event._cron_process(event.lane)
        self.assertEqual(event.state, "done")
        self.assertEqual(late[0].state, "pending", "left for the lane's next run")
        Event._cron_process(event.lane)
        self.assertEqual(late[0].state, "done")

    def test_archived_account_stored_ignored_then_applied_again(self):
        self.account.active = False
        message = self.inbound("text", {"body": "while archived"})
        self.assertEqual(self.post(self.envelope(self.messages_value([message]))).status_code, 200)
        event = self._event()
        self.assertEqual(event.state, "ignored")
        self.assertIn("archived", event.error)
        self.assertFalse(self._messages(message["id"]))
        self.account.active = True
        event.action_process_again()
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertInbound(self._messages(message["id"]), "text", "while archived")

    @mute_logger(CONTROLLER_LOGGER)
    def test_request_values_never_logged_raw(self):
        with self.assertLogs(CONTROLLER_LOGGER, logging.WARNING) as logs:
            response = self.url_open(
                f"{WEBHOOK_URL}?hub.mode=subscribe%0A2026-01-01 00:00:00,000 1 INFO db forged: line"
                "&hub.verify_token=wrong&hub.challenge=1"
            )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(len(logs.records), 1)
        line = logs.records[0].getMessage()
        self.assertNotIn("\n", line)
        self.assertIn("\\n", line)

    # Every message on its own
    def test_poisoned_middle_message_does_not_lose_its_neighbours(self):
        for poison in (
            self.inbound("text", {"body": "x"}, wamid="wamid." + "A" * 300),  # longer than Meta's ids
            self.inbound("text", {"body": "x"}, wa_id="<WHATSAPP_USER_PHONE_NUMBER>"),  # a documentation placeholder
            self.inbound("text", {"body": "x"}, context="not an object"),
            "not an object",
        ):
            first, last = self.inbound("text", {"body": "first"}), self.inbound("text", {"body": "last"})
            with self.assertLogs(EVENT_LOGGER, logging.WARNING) as logs:
                self.post(self.envelope(self.messages_value([first, poison, last])))
            event = self._event()
            self.assertEqual(event.state, "done", poison)
            self.assertEqual(event.attempts, 0, "not retried: retrying cannot fix it")
            self.assertIn("ignored", event.error)
            self.assertEqual(len(self._messages(first["id"], last["id"])), 2, poison)
            self.assertEqual(len(logs.records), 1, "one warning line")
            self.assertFalse(logs.records[0].exc_info, "no traceback for expected data problems")

    def test_batch_applied_again_item_by_item_when_one_event_fails(self):
        """A batch is applied in one savepoint; when one of its events has a bad message, the
        batch is applied again item by item: the others are stored and posted once, and the
        problem is logged once."""
        self.process_after_post = False
        customers = ("5511987650301", "5511987650302", "5511987650303")
        first = self.inbound("text", {"body": "batch first"}, wa_id=customers[0])
        poison = self.inbound("text", {"body": "x"}, wa_id=customers[1], wamid="wamid." + "B" * 300)
        last = self.inbound("text", {"body": "batch last"}, wa_id=customers[2])
        for message, wa_id in zip((first, poison, last), customers, strict=True):
            self.post(self.envelope(self.messages_value([message], wa_id=wa_id)))
        events = self.env["crm.whatsapp.webhook.event"].search([("state", "=", "pending")], order="id")
        self.assertEqual(len(events), 3)
        with self.assertLogs(EVENT_LOGGER, logging.WARNING) as logs:
            events._process()  # one batch
        self.assertEqual(events.mapped("state"), ["done", "ignored", "done"], "nothing applicable in the second")
        self.assertFalse(events[0].error or events[2].error)
        self.assertIn("ignored", events[1].error)
        self.assertEqual(len(logs.records), 1, "one warning line, from the second pass only")
        stored = self._messages(first["id"], last["id"])
        self.assertEqual(len(stored), 2)
        for message in stored:
            thread = [("model", "=", "crm.lead"), ("res_id", "=", message.lead_id.id)]
            posts = self.env["mail.message"].search([*thread, ("author_id", "=", message.partner_id.id)])
            self.assertEqual(posts, message.mail_message_id, "posted once")
            self.assertEqual(message.conversation_id.unread_count, 1, "counted once")
        self.assertEqual(self.env["crm.whatsapp.conversation"].search_count([("wa_id", "in", customers)]), 2)

    def test_text_postgresql_cannot_store_is_cleaned(self):
        nul = self.inbound("text", {"body": "before\u0000after"})
        surrogate = self.inbound("text", {"body": "lone \ud83d surrogate"})
        huge_code = self.inbound("unsupported", None, errors=[{"code": 10**30, "title": "Unknown"}])
        self.receive(nul, surrogate, huge_code)
        self.assertEqual(self._event().state, "done")
        self.assertEqual(self._messages(nul["id"]).body, "before\ufffdafter")
        self.assertEqual(self._messages(surrogate["id"]).body, "lone \ufffd surrogate")
        stored = self._messages(huge_code["id"])
        self.assertEqual(stored.error_code, 0, "out of range: not an integer code")
        self.assertIn(str(10**30), stored.error_message, "kept as text")
        self.assertEqual(stored.payload["errors"][0]["code"], str(10**30))

    def test_nan_and_infinity_refused_at_parse(self):
        before = self.env["crm.whatsapp.webhook.event"].search_count([])
        raw = encode_payload(self.envelope(self.messages_value([self.inbound("text", {"body": "n"})])))
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            with mute_logger(CONTROLLER_LOGGER):
                response = self.post_raw(raw.replace(b'"timestamp": "', b'"n": %s, "timestamp": "' % constant, 1))
            self.assertEqual(response.status_code, 400)
        self.assertEqual(self.env["crm.whatsapp.webhook.event"].search_count([]), before)
        with self.assertRaises(ValueError):
            wp.loads('{"a": NaN}')

    def test_malformed_contacts_noted_messages_kept(self):
        message = self.inbound("text", {"body": "contacts broken"})
        value = {**self.messages_value([message]), "contacts": "xyz"}
        with self.assertLogs(EVENT_LOGGER, logging.WARNING):
            self.post(self.envelope(value))
        event = self._event()
        self.assertEqual(event.state, "done")
        self.assertIn("contacts", event.error)
        self.assertEqual(self._messages(message["id"]).conversation_id.wa_id, CUSTOMER_WA_ID)

    def test_bug_traceback_logged_once(self):
        """A real bug fails the event for a retry; its traceback is logged at the first attempt only."""
        Message = type(self.env["crm.whatsapp.message"])
        first, broken = self.inbound("text", {"body": "fine"}), self.inbound("text", {"body": "bug"})
        original = Message._whatsapp_receive

        def receive(model, account, message, contacts):
            if message["id"] == broken["id"]:
                raise KeyError("a bug")
            return original(model, account, message, contacts)

        with patch.object(Message, "_whatsapp_receive", receive):
            with self.assertLogs(EVENT_LOGGER, logging.WARNING) as logs:
                self.receive(first, broken)
            self.assertEqual([bool(r.exc_info) for r in logs.records], [True])
            event = self._event()
            self.assertEqual((event.state, event.attempts), ("failed", 1))
            self.assertTrue(self._messages(first["id"]), "its neighbour is stored")
            event.next_attempt_at = "2000-01-01 00:00:00"
            with self.assertLogs(EVENT_LOGGER, logging.WARNING) as logs:
                self.env["crm.whatsapp.webhook.event"]._cron_process()
            self.assertEqual([bool(r.exc_info) for r in logs.records], [False], "one line at the next attempts")
            self.assertEqual(event.attempts, 2)
        event.next_attempt_at = "2000-01-01 00:00:00"
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.assertEqual(event.state, "done")
        self.assertEqual(len(self._messages(first["id"], broken["id"])), 2, "each stored once")

    # Order
    def test_reaction_edit_and_reply_before_their_message(self):
        original, reply = new_wamid(), new_wamid()
        early = [
            self.inbound("reaction", {"message_id": original, "emoji": "❤"}),
            self.inbound("edit", {"original_message_id": original, "message": {"type": "text", "text": {"body": "B"}}}),
            self.inbound("text", {"body": "yes"}, wamid=reply, context={"id": original}),
        ]
        self.receive(*early)
        target = self.receive(self.inbound("text", {"body": "A"}, wamid=original))
        reaction, edit, answer = (self._messages(m["id"]) for m in early)
        self.assertEqual(reaction.reaction_to_id, target)
        self.assertEqual(edit.reply_to_id, target)
        self.assertEqual(answer.reply_to_id, target)
        self.assertTrue(target.edited)
        self.assertEqual(target.body, "A\n(edited: B)")

    def test_answers_to_our_message_before_its_send_answer(self):
        """The customer answers and reacts to our message before the send's answer (or the status
        that names it) told us its wamid: both are linked once we learn it."""
        conversation = self.receive(self.inbound("text", {"body": "hi"})).conversation_id
        ours = (
            self.env["crm.whatsapp.message"]
            .sudo()
            .create(
                {
                    "account_id": self.account.id,
                    "conversation_id": conversation.id,
                    "partner_id": conversation.partner_id.id,
                    "direction": "outbound",
                    "state": "unconfirmed",
                    "message_type": "text",
                    "body": "Our offer",
                }
            )
        )
        wamid = new_wamid()
        answer, reaction = self.receive(
            self.inbound("text", {"body": "deal"}, context={"id": wamid}),
            self.inbound("reaction", {"message_id": wamid, "emoji": "👍"}),
        ).sorted("message_type", reverse=True)
        self.assertFalse(answer.reply_to_id or reaction.reaction_to_id, "our message has no wamid yet")
        ours._apply_result(wamid=wamid)
        self.assertEqual(answer.reply_to_id, ours)
        self.assertEqual(reaction.reaction_to_id, ours)

    def test_delivery_of_customers_in_two_lanes(self):
        """Meta may batch several customers in one delivery: each customer's part goes to that
        customer's lane, where the customer's other deliveries are, so their order holds."""
        Event = self.env["crm.whatsapp.webhook.event"]
        first = "5511987650100"
        second = next(
            f"55119876501{n:02d}"
            for n in range(1, 100)
            if lane_of({"entry": [{"changes": [{"value": {"messages": [{"from": f"55119876501{n:02d}"}]}}]}]})
            != lane_of({"entry": [{"changes": [{"value": {"messages": [{"from": first}]}}]}]})
        )
        messages = [self.inbound("text", {"body": "from A"}, wa_id=first)]
        messages.append(self.inbound("text", {"body": "from B"}, wa_id=second))
        value = self.messages_value(messages, wa_id=first)
        value["contacts"].append({"profile": {"name": "Customer B"}, "wa_id": second})
        self.process_after_post = False
        last = Event.search([], order="id desc", limit=1).id  # (demo data has some)
        self.post(self.envelope(value))
        self.post(self.envelope(value) | {"replayed": False})  # another body: stored again, applied once
        self.post(self.envelope(value))  # the same body: a re-delivery, stored once per lane already
        later = self.envelope(self.messages_value([self.inbound("text", {"body": "B again"}, wa_id=second)], second))
        self.post(later)
        events = Event.search([("id", ">", last)], order="id")
        self.assertEqual(len(events), 5, "2 copies of each of the two bodies, and B's next delivery")
        self.assertEqual(events[:2].mapped("split"), [True, True])
        b_lane = lane_of(later)
        self.assertEqual(set(events[:2].mapped("lane")), {lane_of(self.envelope(value)), b_lane})
        self.assertFalse(events[4].split)
        Event._cron_process()
        self.assertEqual(set(events.mapped("state")), {"done"})
        conversation = self.env["crm.whatsapp.conversation"].search([("wa_id", "=", second)])
        Message = self.env["crm.whatsapp.message"]
        self.assertEqual(
            Message.search([("conversation_id", "=", conversation.id)], order="id").mapped("body"),
            ["from B", "B again"],
            "applied once each, in the order of B's lane",
        )
        self.assertEqual(Message.search_count([("body", "=", "from A")]), 1)

    # Phone-app echoes
    def test_phone_app_echoes_stored_as_outbound(self):
        conversation = self.receive(self.inbound("text", {"body": "hello"})).conversation_id
        echo = {
            "from": "15550199",
            "to": CUSTOMER_WA_ID,
            "id": new_wamid(),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "Typed on the phone"},
        }
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "message_echoes": [echo],
        }
        self.post(self.envelope(value, field="smb_message_echoes"))
        self.post(self.envelope(value, field="smb_message_echoes") | {"replayed": True})
        self.assertEqual(self._event().state, "done")
        message = self._messages(echo["id"])
        self.assertEqual(len(message), 1, "stored once")
        self.assertEqual((message.direction, message.state, message.body), ("outbound", "sent", "Typed on the phone"))
        self.assertEqual(message.conversation_id, conversation)
        self.assertIn("Typed on the phone", message.mail_message_id.body, "in the thread")
        self.assertEqual(conversation.state, "pending", "answered: waits for the customer")

    def test_phone_app_echo_media_downloaded(self):
        """A photo sent from the phone app shows in the thread as the customer's photos do."""
        self.receive(self.inbound("text", {"body": "hello"}))
        echo = {
            "from": "15550199",
            "to": CUSTOMER_WA_ID,
            "id": new_wamid(),
            "timestamp": str(int(time.time())),
            "type": "image",
            "image": {"id": "MEDIA-ECHO-1", "mime_type": "image/jpeg", "caption": "The catalogue"},
        }
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "message_echoes": [echo],
        }
        self.post(self.envelope(value, field="smb_message_echoes"))
        message = self._messages(echo["id"])
        self.assertEqual((message.direction, message.media_state), ("outbound", "pending"))
        responses = {("GET", "MEDIA-ECHO-1"): {"url": "https://lookaside.example/echo", "mime_type": "image/jpeg"}}
        with self.mock_whatsapp_api(responses=responses):
            self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual(message.media_state, "done")
        self.assertEqual(message.attachment_ids.mimetype, "image/jpeg")
        self.assertEqual(message.mail_message_id.attachment_ids, message.attachment_ids, "in the thread")

    def test_phone_app_contacts_name_the_customer(self):
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550199", "phone_number_id": PHONE_NUMBER_ID},
            "state_sync": [
                {
                    "type": "contact",
                    "contact": {"full_name": "Ana Phone", "first_name": "Ana", "phone_number": "5511912345678"},
                    "action": "add",
                    "metadata": {"timestamp": str(int(time.time()))},
                }
            ],
        }
        self.post(self.envelope(value, field="smb_app_state_sync"))
        self.assertEqual(self._event().state, "done")
        conversation = self.env["crm.whatsapp.conversation"].search([("wa_id", "=", "5511912345678")])
        self.assertEqual(conversation.partner_id.name, "Ana Phone")

    # Media
    def test_media_cron_one_client_per_account_and_run(self):
        messages = self.receive(
            *[self.inbound("image", {"id": f"MEDIA-ONE-{n}", "mime_type": "image/jpeg"}) for n in range(3)]
        )
        Account = type(self.env["crm.whatsapp.account"])
        original, clients = Account._get_api, []

        def get_api(account):
            client = original(account)
            clients.append(client)
            return client

        responses = {
            ("GET", f"MEDIA-ONE-{n}"): {"url": f"https://lookaside.example/{n}", "mime_type": "image/jpeg"}
            for n in range(3)
        }
        with self.mock_whatsapp_api(responses=responses), patch.object(Account, "_get_api", get_api):
            with patch.object(type(original(self.account)), "close", autospec=True) as close:
                self.env["crm.whatsapp.message"]._cron_download_media()
        self.assertEqual(set(messages.mapped("media_state")), {"done"})
        self.assertEqual(len(clients), 1, "one client for the account's three downloads")
        self.assertEqual(close.call_count, 1, "closed at the end of the run")
