"""The inbox: who owns a chat, what the list shows and finds, who is told live, read receipts."""

import json
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import common, tagged

from .common import WhatsappCase, new_wamid
from .webhook_common import WebhookCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInbox(WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.lead_policy = "no_open_lead"
        cls.user_a, cls.user_b, cls.user_c = (
            common.new_test_user(cls.env, login=f"wa_member_{name}", groups="sales_team.group_sale_salesman", name=name)
            for name in ("Anna", "Bruno", "Chloe")
        )
        Member = cls.env["crm.team.member"]
        cls.members = Member.create(
            [{"crm_team_id": cls.team.id, "user_id": user.id} for user in (cls.user_a, cls.user_b, cls.user_c)]
        )

    def new_conversation(self, wa_id, **values):
        conversation = self.env["crm.whatsapp.conversation"]._find_or_create(self.account, wa_id, profile_name="Kim")
        if values:
            conversation.write(values)
        return conversation

    def receive(self, conversation, body, **values):
        return self.env["crm.whatsapp.message"].create(
            {
                "account_id": conversation.account_id.id,
                "conversation_id": conversation.id,
                "partner_id": conversation.partner_id.id,
                "lead_id": conversation.lead_id.id,
                "direction": "inbound",
                "state": "received",
                "wamid": new_wamid(),
                "body": body,
                "timestamp": fields.Datetime.now(),
                **values,
            }
        )

    def bus_notifications(self, user):
        """The whatsapp_crm notifications queued for ``user`` in this transaction."""
        self.env.cr.precommit.run()
        channel = json.dumps([self.env.cr.dbname, "res.partner", user.partner_id.id], separators=(",", ":"))
        notifications = self.env["bus.bus"].sudo().search([("channel", "=", channel)])
        return [
            json.loads(n.message)["payload"]
            for n in notifications
            if json.loads(n.message)["type"] == "whatsapp_crm/update"
        ]

    # ------------------------------------------------------------
    # Who owns a chat
    # ------------------------------------------------------------

    def test_round_robin_skips_unavailable_member(self):
        self.members.filtered(lambda m: m.user_id == self.user_b).whatsapp_available = False
        owners = [self.new_conversation(f"3247000000{i}").user_id for i in range(4)]
        self.assertEqual(owners, [self.user_a, self.user_c, self.user_a, self.user_c])

    def test_least_open_conversations(self):
        self.team.whatsapp_assignment = "least_open"
        self.new_conversation("32470000010", user_id=self.user_a.id)
        self.new_conversation("32470000011", user_id=self.user_a.id)
        self.new_conversation("32470000012", user_id=self.user_b.id)
        self.assertEqual(self.new_conversation("32470000013").user_id, self.user_c)
        self.assertEqual(self.new_conversation("32470000014").user_id, self.user_b)

    def test_waiting_too_long_goes_to_next_member(self):
        self.team.whatsapp_reassign_minutes = 10
        conversation = self.new_conversation("32470000020")
        self.assertEqual(conversation.user_id, self.user_a)
        self.receive(conversation, "Hello?")
        self.env["crm.whatsapp.conversation"]._cron_whatsapp_reassign()
        self.assertEqual(conversation.user_id, self.user_a, "not waiting long enough yet")
        later = fields.Datetime.now() + timedelta(minutes=11)
        with self.patch_now(later):
            self.env["crm.whatsapp.conversation"]._cron_whatsapp_reassign()
        self.assertEqual(conversation.user_id, self.user_b)

    def patch_now(self, when):
        from unittest.mock import patch  # noqa: PLC0415

        return patch.object(fields.Datetime, "now", return_value=when)

    def test_first_reply_assigns(self):
        self.members.whatsapp_available = False
        self.env["crm.team.member"].create(
            {"crm_team_id": self.team.id, "user_id": self.user_salesman.id, "whatsapp_available": False}
        )
        conversation = self.new_conversation("32470000030")
        conversation._register_inbound(fields.Datetime.now())
        self.receive(conversation, "Is anyone there?")
        self.assertFalse(conversation.user_id)
        with self.mock_whatsapp_api():
            conversation.with_user(self.user_salesman).whatsapp_chat_send(body="Yes, how can I help?")
        self.assertEqual(conversation.user_id, self.user_salesman)
        self.assertEqual(conversation.unread_count, 0)
        self.assertFalse(conversation.waiting_since)

    def test_lead_follows_owner(self):
        conversation = self.new_conversation("32470123499")
        lead = conversation._ensure_lead(True)
        self.assertRecordValues(
            lead,
            [
                {
                    "user_id": self.user_a.id,
                    "type": "opportunity",
                    "country_id": self.env.ref("base.be").id,
                }
            ],
        )
        self.assertTrue(lead.phone)
        conversation.user_id = self.user_c
        self.assertEqual(lead.user_id, self.user_c)
        self.receive(conversation, "Hi")
        self.assertTrue(lead.whatsapp_has_conversation)
        self.assertEqual(lead.whatsapp_unread_count, 1)

    # ------------------------------------------------------------
    # The list
    # ------------------------------------------------------------

    def test_search_by_message_text_and_number(self):
        Conversation = self.env["crm.whatsapp.conversation"].with_user(self.user_manager)
        first = self.new_conversation("32470000040")
        second = self.new_conversation("32470000041")
        other = self.new_conversation("32470000042")
        self.receive(first, "Do you have the sofa in blue?")
        self.receive(second, "My SOFA arrived broken")
        self.receive(other, "Where is my invoice?")
        self.assertEqual(Conversation.search([("inbox_search", "ilike", "sofa")]), first | second)
        self.assertEqual(Conversation.search([("message_text", "ilike", "sofa")]), first | second)
        self.assertEqual(Conversation.search([("inbox_search", "ilike", "+32 470 00 00 42")]), other)
        self.assertFalse(Conversation.search([("inbox_search", "ilike", "armchair")]))
        # words anywhere in the chat, each as a word or its beginning, whatever the case
        self.receive(first, "Or an armchair, delivered tomorrow")
        self.assertEqual(Conversation.search([("message_text", "ilike", "blue ARMCH")]), first)
        self.assertEqual(Conversation.search([("message_text", "ilike", "delivered")]), first)
        self.assertFalse(Conversation.search([("message_text", "ilike", "blue broken")]))
        self.assertFalse(Conversation.search([("message_text", "ilike", "?!")]))
        # an edited text is found by its new words too
        second.message_ids_wa.body = "My sofa arrived scratched"
        self.assertEqual(Conversation.search([("inbox_search", "ilike", "scratch")]), second)
        # a customer by part of their name, as the contact or as their WhatsApp profile
        other.partner_id = self.env["res.partner"].create({"name": "Zoe Renamed"})
        self.assertEqual(Conversation.search([("inbox_search", "ilike", "renam")]), other)
        self.assertEqual(Conversation.search([("inbox_search", "ilike", "ki")]), first | second | other)
        # a salesperson finds only the chats they may read
        first.user_id = self.user_a
        second.user_id = self.user_b
        Mine = self.env["crm.whatsapp.conversation"].with_user(self.user_a)
        self.assertEqual(Mine.search([("message_text", "ilike", "sofa")]), first)

    def test_preview_unread_and_waiting(self):
        conversation = self.new_conversation("32470000050")
        conversation._register_inbound(fields.Datetime.now())
        self.receive(conversation, "First question\nwith a second line")
        self.receive(conversation, "", message_type="location", payload={"location": {"latitude": 1, "longitude": 2}})
        self.assertEqual(conversation.unread_count, 2)
        self.assertEqual(conversation.last_message_preview, "📍 Location")
        self.assertTrue(conversation.waiting_since)
        self.assertEqual(conversation.window_state, "open")

    # ------------------------------------------------------------
    # Live
    # ------------------------------------------------------------

    def test_bus_reaches_assignee_not_other_salesperson(self):
        conversation = self.new_conversation("32470000060", user_id=self.user_a.id)
        self.bus_notifications(self.user_a)  # flush what the setup queued
        self.env["bus.bus"].sudo().search([]).unlink()
        message = self.receive(conversation, "Are you open on Sunday?")
        [payload] = self.bus_notifications(self.user_a)
        self.assertEqual(payload["conversation_ids"], [conversation.id])
        self.assertEqual(payload["message_ids"], [message.id])
        self.assertEqual(payload["notification"]["conversation_id"], conversation.id)
        self.assertIn("Are you open on Sunday?", payload["notification"]["message"])
        self.assertFalse(self.bus_notifications(self.user_b))
        self.assertFalse(self.bus_notifications(self.user_salesman))

    def test_bus_reaches_team_while_unassigned(self):
        self.members.whatsapp_available = False
        conversation = self.new_conversation("32470000061")
        self.assertFalse(conversation.user_id)
        self.env.cr.precommit.run()
        self.env["bus.bus"].sudo().search([]).unlink()
        self.receive(conversation, "Hello team")
        for user in (self.user_a, self.user_b, self.user_c):
            self.assertEqual(len(self.bus_notifications(user)), 1, user.name)
        self.assertFalse(self.bus_notifications(self.user_salesman))

    def test_push_leaves_out_what_was_deleted_since(self):
        """The push trusts that what it was told of exists (no query), unless something was
        deleted in the transaction: by the ORM, or behind its back by the database."""
        kept = self.new_conversation("32470000062", user_id=self.user_a.id)
        for delete in ("orm", "database"):
            gone = self.new_conversation(f"3247000006{3 if delete == 'orm' else 4}", user_id=self.user_a.id)
            self.env.cr.precommit.run()
            self.env["bus.bus"].sudo().search([]).unlink()
            message = self.receive(kept, f"Still here ({delete})")
            self.receive(gone, "About to go")
            if delete == "orm":
                gone.unlink()
            else:  # as a cascade does: Odoo's cache no longer has it
                self.env.cr.execute("DELETE FROM crm_whatsapp_conversation WHERE id = %s", [gone.id])
                self.env.invalidate_all()
            [payload] = self.bus_notifications(self.user_a)
            self.assertEqual(payload["conversation_ids"], [kept.id], delete)
            self.assertEqual(payload["message_ids"], [message.id], delete)

    # ------------------------------------------------------------
    # Read receipts
    # ------------------------------------------------------------

    def test_opening_chat_marks_read_once(self):
        conversation = self.new_conversation("32470000070", user_id=self.user_a.id)
        self.receive(conversation, "One")
        last = self.receive(conversation, "Two")
        Message = self.env["crm.whatsapp.message"]
        chat = conversation.with_user(self.user_a).whatsapp_chat_load()
        self.assertEqual([m["body"] for m in chat["messages"]], ["One", "Two"])
        self.assertEqual(conversation.unread_count, 0)
        conversation.with_user(self.user_a).whatsapp_chat_load()
        with self.mock_whatsapp_api() as requests:
            Message._cron_send_read_receipts()
            conversation.with_user(self.user_a).whatsapp_chat_load()
            Message._cron_send_read_receipts()
        reads = [r["json"] for r in requests if (r["json"] or {}).get("status") == "read"]
        self.assertEqual(reads, [{"messaging_product": "whatsapp", "status": "read", "message_id": last.wamid}])


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxWebhook(WebhookCase):
    """Through the real webhook: the team's members take new chats, the assignee is told live."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.user_ids = False
        cls.member = common.new_test_user(
            cls.env, login="wa_member_webhook", groups="sales_team.group_sale_salesman", name="Wendy Webhook"
        )
        cls.env["crm.team.member"].create({"crm_team_id": cls.team.id, "user_id": cls.member.id})

    def test_new_chat_goes_to_member_and_lead_follows(self):
        message = self.receive(self.inbound("text", {"body": "Hello, I saw your ad"}))
        conversation = message.conversation_id
        self.assertEqual(conversation.user_id, self.member)
        self.assertEqual(conversation.unread_count, 1)
        self.assertEqual(conversation.last_message_preview, "Hello, I saw your ad")
        self.assertRecordValues(
            message.lead_id,
            [{"user_id": self.member.id, "type": "opportunity", "country_id": self.env.ref("base.br").id}],
        )
        self.assertTrue(message.lead_id.phone)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestInboxChat(WhatsappCase):
    """What the chat component receives, and the canned responses it offers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.env["res.partner"].create({"name": "Noor Chat", "mobile": "+32 470 55 66 77"})
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470556677",
                "partner_id": cls.partner.id,
                "user_id": cls.user_salesman.id,
                "team_id": cls.team.id,
                "last_inbound_at": fields.Datetime.now(),
            }
        )

    def message(self, **values):
        return self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "conversation_id": self.conversation.id,
                "partner_id": self.partner.id,
                "direction": "inbound",
                "state": "received",
                "wamid": new_wamid(),
                "timestamp": fields.Datetime.now(),
                **values,
            }
        )

    def test_bubbles(self):
        picture = self.env["ir.attachment"].create(
            {"name": "sofa.jpg", "raw": b"\xff\xd8\xff fake jpeg", "mimetype": "image/jpeg"}
        )
        image = self.message(message_type="image", body="The one I want", attachment_ids=[(6, 0, picture.ids)])
        location = self.message(
            message_type="location",
            body="Shop",
            payload={"location": {"latitude": 50.85, "longitude": 4.35, "name": "Grand Place"}},
        )
        card = self.message(
            message_type="contacts",
            payload={"contacts": [{"name": {"formatted_name": "Jane Doe"}, "phones": [{"phone": "+1 555 0123"}]}]},
        )
        self.message(message_type="reaction", body="👍", reaction_to_id=image.id)
        reply = self.message(body="Is it in stock?", reply_to_id=image.id)
        chat = self.conversation.with_user(self.user_salesman).whatsapp_chat_load()
        bubbles = {bubble["id"]: bubble for bubble in chat["messages"]}
        self.assertEqual(list(bubbles), [image.id, location.id, card.id, reply.id], "a reaction is no bubble")
        self.assertEqual(
            bubbles[image.id]["attachments"], [{"id": picture.id, "name": "sofa.jpg", "mimetype": "image/jpeg"}]
        )
        self.assertEqual(bubbles[image.id]["reactions"], [{"emoji": "👍", "direction": "inbound"}])
        self.assertIn("mlat=50.85&mlon=4.35", bubbles[location.id]["location"]["url"])
        self.assertEqual(bubbles[location.id]["location"]["name"], "Grand Place")
        self.assertEqual(bubbles[card.id]["contacts"], [{"name": "Jane Doe", "phones": ["+1 555 0123"], "emails": []}])
        self.assertEqual(bubbles[reply.id]["reply_to"]["preview"], "📷 The one I want")
        self.assertNotIn("wamid", str(chat), "no WhatsApp id where users read")
        self.assertEqual(chat["conversation"]["customer"], "Noor Chat")

    def test_chat_load_queries_do_not_grow_with_messages(self):
        Conversation = self.conversation.with_user(self.user_salesman)
        for index in range(5):
            self.message(body=f"Message {index}")
        queries = []
        for count in (5, 40, 80):
            while len(self.conversation.message_ids_wa) < count:
                self.message(body="More")
            Conversation.whatsapp_chat_load(mark_read=False)  # warm-up: access rules, translations...
            self.env.invalidate_all()
            start = self.cr.sql_log_count
            Conversation.whatsapp_chat_load(mark_read=False)
            queries.append(self.cr.sql_log_count - start)
        # the first chat of the test also fills caches of the registry: compare the later ones
        self.assertEqual(queries[1], queries[2], "one set of queries for the whole chat")

    def test_canned_responses_personal_team_and_shared(self):
        colleague = common.new_test_user(
            self.env, login="wa_colleague", groups="sales_team.group_sale_salesman", name="Colin Colleague"
        )
        outsider = common.new_test_user(
            self.env, login="wa_outsider", groups="sales_team.group_sale_salesman", name="Olga Outsider"
        )
        self.env["crm.team.member"].create(
            [{"crm_team_id": self.team.id, "user_id": u.id} for u in (self.user_salesman, colleague)]
        )
        Canned = self.env["crm.whatsapp.canned.response"]
        Canned.search([]).action_archive()  # the demo's, when the database has demo data
        Canned.with_user(self.user_salesman).create({"shortcut": "/price", "body": "From 499 EUR."})
        Canned.with_user(self.user_salesman).create(
            {"shortcut": "pricelist", "body": "Here is our list.", "scope": "team", "team_id": self.team.id}
        )
        Canned.with_user(self.user_manager).create({"shortcut": "hours", "body": "9 to 5.", "scope": "all"})

        def shortcuts(user, prefix=""):
            return [r["shortcut"] for r in Canned.with_user(user).whatsapp_canned_search(prefix)]

        self.assertEqual(shortcuts(self.user_salesman, "/pri"), ["price", "pricelist"])
        self.assertEqual(shortcuts(colleague), ["hours", "pricelist"])
        self.assertEqual(shortcuts(outsider), ["hours"])
        shared = Canned.with_user(colleague).search([("shortcut", "=", "pricelist")])
        with self.assertRaises(AccessError):
            shared.write({"body": "Changed by a colleague"})

    def test_react_and_template_from_the_reply_box(self):
        question = self.message(body="Can you deliver on Monday?")
        chat = self.conversation.with_user(self.user_salesman)
        with self.mock_whatsapp_api():
            [bubble] = chat.whatsapp_chat_send(reaction="👍", reply_to_id=question.id)
        self.assertEqual(bubble["reactions"], [{"emoji": "👍", "direction": "outbound"}])
        [payload] = self.sent_payloads()
        self.assertEqual(payload["reaction"], {"message_id": question.wamid, "emoji": "👍"})
        template = self.env["crm.whatsapp.template"].create(
            {"name": "follow_up", "account_id": self.account.id, "status": "approved", "body": "Still interested?"}
        )
        self.conversation.last_inbound_at = fields.Datetime.now() - timedelta(days=2)
        header = chat.whatsapp_chat_load()["conversation"]
        self.assertFalse(header["can_send_free_text"])
        self.assertIn(template.id, [t["id"] for t in header["templates"]])
        with self.mock_whatsapp_api():
            [sent] = chat.whatsapp_chat_send(template_id=template.id)
        self.assertEqual((sent["type"], sent["state"], sent["template"]), ("template", "sent", template.display_name))
        self.assertEqual(self.sent_payloads()[0]["template"]["name"], "follow_up")
