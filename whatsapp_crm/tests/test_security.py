"""Who sees and changes what: two salespeople in "Own Documents Only", a manager, over the paths
a real user's RPC calls take (search_read, web_read, read_group, export, name_search, write,
/web/content)."""

import base64
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged, users

from .common import WhatsappCase

PICTURE = b"\x89PNG\r\n\x1a\n private picture of B's customer"


class SecurityCase(WhatsappCase):
    """Salesperson A (``user_salesman``) and salesperson B (``user_salesman_2``), each with a lead,
    a conversation and an inbound picture; a manager."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # they may export what they can read: the test is that they cannot read
        users = cls.user_salesman | cls.user_salesman_2 | cls.user_manager
        users.write({"groups_id": [(4, cls.env.ref("base.group_allow_export").id)]})
        cls.chats = {}
        for key, user, number in (("a", cls.user_salesman, "32470000001"), ("b", cls.user_salesman_2, "32470000002")):
            partner = cls.env["res.partner"].create({"name": f"Customer {key.upper()}", "mobile": f"+{number}"})
            lead = cls.env["crm.lead"].create(
                {"name": f"Deal {key.upper()}", "partner_id": partner.id, "user_id": user.id}
            )
            conversation = cls.env["crm.whatsapp.conversation"].create(
                {
                    "account_id": cls.account.id,
                    "wa_id": number,
                    "partner_id": partner.id,
                    "lead_id": lead.id,
                    "user_id": user.id,
                    "last_inbound_at": fields.Datetime.now() - timedelta(hours=1),
                }
            )
            message = cls.env["crm.whatsapp.message"].create(
                {
                    "account_id": cls.account.id,
                    "conversation_id": conversation.id,
                    "partner_id": partner.id,
                    "lead_id": lead.id,
                    "direction": "inbound",
                    "state": "received",
                    "message_type": "image",
                    "wamid": f"wamid.SECURITY{key}",
                    "body": f"Private words of customer {key.upper()}",
                    "payload": {"from": number, "type": "image"},
                }
            )
            attachment = cls.env["ir.attachment"].create(
                {
                    "name": f"picture_{key}.png",
                    "raw": PICTURE,
                    "mimetype": "image/png",
                    "res_model": "crm.whatsapp.message",
                    "res_id": message.id,
                }
            )
            message.attachment_ids = attachment
            cls.chats[key] = {
                "partner": partner,
                "lead": lead,
                "conversation": conversation,
                "message": message,
                "attachment": attachment,
            }
        cls.conversation_b = cls.chats["b"]["conversation"]
        cls.message_b = cls.chats["b"]["message"]
        cls.attachment_b = cls.chats["b"]["attachment"]


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestSalespersonIsolation(SecurityCase):
    @users("wa_salesman")
    def test_cannot_read_other_conversations(self):
        Conversation = self.env["crm.whatsapp.conversation"]
        mine = self.chats["a"]["conversation"]
        self.assertEqual(Conversation.search([("account_id", "=", self.account.id)]), mine)
        self.assertEqual(Conversation.search_count([("wa_id", "=", self.conversation_b.wa_id)]), 0)
        rows = Conversation.search_read([], ["wa_id"])
        self.assertEqual([row["id"] for row in rows], mine.ids)
        groups = Conversation.read_group([], ["user_id"], ["user_id"])
        self.assertEqual(sum(group["user_id_count"] for group in groups), 1)
        self.assertEqual(Conversation.name_search("Customer B"), [])
        theirs = self.conversation_b.with_env(self.env)
        for path in (
            lambda: theirs.read(["wa_id"]),
            lambda: theirs.web_read({"wa_id": {}, "display_name": {}}),
            lambda: theirs.export_data(["wa_id", "partner_id/name"]),
            lambda: theirs.message_ids_wa.mapped("body"),
        ):
            with self.subTest(path=path), self.assertRaises(AccessError):
                path()

    @users("wa_salesman")
    def test_cannot_read_other_messages(self):
        Message = self.env["crm.whatsapp.message"]
        mine = self.chats["a"]["message"]
        self.assertEqual(Message.search([("direction", "=", "inbound")]), mine)
        self.assertEqual(Message.search_count([("body", "ilike", "customer B")]), 0)
        self.assertEqual([row["id"] for row in Message.search_read([], ["body", "payload"])], mine.ids)
        groups = Message.read_group([], ["conversation_id"], ["conversation_id"])
        self.assertEqual([group["conversation_id"][0] for group in groups], mine.conversation_id.ids)
        theirs = self.message_b.with_env(self.env)
        for path in (
            lambda: theirs.read(["body", "payload"]),
            lambda: theirs.web_read({"body": {}, "payload": {}}),
            lambda: theirs.export_data(["body", "payload", "wamid"]),
        ):
            with self.subTest(path=path), self.assertRaises(AccessError):
                path()
        # nor through the contact or the lead they can see
        partner_b = self.chats["b"]["partner"].with_env(self.env)
        self.assertFalse(partner_b.whatsapp_message_ids)
        self.assertFalse(partner_b.whatsapp_conversation_ids)

    @users("wa_salesman")
    def test_cannot_read_other_media(self):
        Attachment = self.env["ir.attachment"]
        found = Attachment.search([("res_model", "=", "crm.whatsapp.message")])
        self.assertEqual(found, self.chats["a"]["attachment"])
        self.assertFalse(Attachment.search_read([("id", "=", self.attachment_b.id)], ["datas"]))
        theirs = self.attachment_b.with_env(self.env)
        for path in (lambda: theirs.read(["datas"]), lambda: theirs.raw):
            with self.subTest(path=path), self.assertRaises(AccessError):
                path()

    @users("wa_salesman")
    def test_cannot_write_system_fields(self):
        """Even on their own conversation and messages."""
        conversation = self.chats["a"]["conversation"].with_env(self.env)
        other_account = (
            self.env["crm.whatsapp.account"]
            .sudo()
            .create({"name": "Other", "waba_id": "W2", "phone_number_id": "P2", "access_token": "t"})
        )
        for values in (
            {"wa_id": "32479999999"},  # B's next reply would go to another number
            {"wa_user_id": "US.123"},
            {"account_id": other_account.id},
            {"last_inbound_at": fields.Datetime.now()},  # a faked 24-hour window
            {"state": "closed"},  # state goes through the buttons
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                conversation.write(values)
        message = self.chats["a"]["message"].with_env(self.env)
        for values in (
            {"state": "queued"},
            {"body": "Altered"},
            {"wamid": "wamid.FORGED"},
            {"direction": "outbound"},
            {"media_id": "other-media"},
            {"attachment_ids": [(5, 0, 0)]},
        ):
            with self.subTest(values=values), self.assertRaises(AccessError):
                message.write(values)
        with self.assertRaises(AccessError):
            self.conversation_b.with_env(self.env).write({"user_id": self.env.uid})  # not theirs to take
        # what a user may change: the assignee, and the state through the buttons
        conversation.write({"user_id": self.user_salesman.id})
        conversation.action_close()
        self.assertEqual(conversation.state, "closed")
        conversation.action_reopen()
        self.assertEqual(conversation.state, "open")

    @users("wa_salesman")
    def test_composer_from_contact_obeys_the_rules(self):
        """B's customer is a contact A can open: A cannot write in B's conversation from it."""
        partner_b = self.chats["b"]["partner"].with_env(self.env)
        with self.mock_whatsapp_api():
            message = partner_b._message_whatsapp("Hello from A", account=self.account)
            self.assertNoWhatsAppSent()
        self.assertWhatsAppRefused(message, "only they or a manager")
        self.assertFalse(message.conversation_id)
        self.assertFalse(self.conversation_b.message_ids_wa.filtered(lambda m: m.direction == "outbound"))

    @users("wa_salesman")
    def test_team_sees_unassigned_conversations(self):
        self.env["crm.team"].browse(self.team.id).sudo().member_ids = self.user_salesman
        self.conversation_b.write({"user_id": False, "team_id": self.team.id, "lead_id": False})
        self.assertIn(self.conversation_b, self.env["crm.whatsapp.conversation"].search([]))
        self.assertIn(self.message_b, self.env["crm.whatsapp.message"].search([]))

    @users("wa_salesman")
    def test_name_search_returns(self):
        """display_name is computed: name_search must not recurse on it."""
        Conversation = self.env["crm.whatsapp.conversation"]
        mine = self.chats["a"]["conversation"]
        self.assertEqual([row[0] for row in Conversation.name_search("Customer A")], mine.ids)
        self.assertEqual([row[0] for row in Conversation.name_search("+32 470 000001")], mine.ids)
        self.assertEqual(Conversation.search([("display_name", "ilike", "Customer A")]), mine)
        self.assertTrue(Conversation.name_search(""))

    @users("wa_manager")
    def test_manager_sees_everything(self):
        Conversation = self.env["crm.whatsapp.conversation"]
        conversations = self.chats["a"]["conversation"] | self.conversation_b
        self.assertEqual(Conversation.search([("id", "in", conversations.ids)]), conversations)
        self.assertEqual(self.conversation_b.with_env(self.env).read(["wa_id"])[0]["wa_id"], "32470000002")
        message = self.message_b.with_env(self.env)
        self.assertEqual(message.read(["body"])[0]["body"], "Private words of customer B")
        self.assertTrue(message.export_data(["body", "payload"])["datas"])
        self.assertEqual(self.attachment_b.with_env(self.env).raw, PICTURE)
        groups = self.env["crm.whatsapp.message"].read_group(
            [("id", "in", (self.chats["a"]["message"] | message).ids)], ["conversation_id"], ["conversation_id"]
        )
        self.assertEqual(len(groups), 2)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestManagerOnlyActions(SecurityCase):
    @users("wa_salesman")
    def test_salesperson_cannot_regenerate_token_or_reprocess(self):
        with self.assertRaises(AccessError):
            self.account.with_env(self.env).action_regenerate_verify_token()
        event = self.env["crm.whatsapp.webhook.event"].sudo().create({"account_id": self.account.id, "payload": "{}"})
        with self.assertRaises(AccessError):
            event.with_env(self.env).action_process_again()

    @users("wa_manager")
    def test_manager_regenerates_token_and_reprocesses(self):
        token = self.account.sudo().verify_token
        self.account.with_env(self.env).action_regenerate_verify_token()
        self.assertNotEqual(self.account.sudo().verify_token, token)
        event = self.env["crm.whatsapp.webhook.event"].sudo().create({"account_id": self.account.id, "payload": "{}"})
        event.with_env(self.env).action_process_again()
        self.assertEqual(event.state, "pending", "queued again for its lane")
        self.env["crm.whatsapp.webhook.event"].sudo()._cron_process()
        self.assertEqual(event.state, "ignored")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestMediaDownloadAccess(HttpCase, SecurityCase):
    def _download(self, login, attachment):
        self.authenticate(login, login)
        return self.url_open(f"/web/content/{attachment.id}?download=true")

    def test_web_content(self):
        response = self._download("wa_salesman", self.attachment_b)
        self.assertIn(response.status_code, (403, 404))
        self.assertNotIn(PICTURE, response.content)
        own = self._download("wa_salesman", self.chats["a"]["attachment"])
        self.assertEqual((own.status_code, own.content), (200, PICTURE))
        manager = self._download("wa_manager", self.attachment_b)
        self.assertEqual((manager.status_code, manager.content), (200, PICTURE))
        self.assertEqual(base64.b64decode(self.attachment_b.datas), PICTURE)
