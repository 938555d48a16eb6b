"""Templates against the Cloud API emulator over real HTTP: sync, submit and review, sends."""

import time
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from ..tools import whatsapp_template as wt
from .cloud_api_emulator import DEMO_TEMPLATES
from .common import WhatsappEmulatorMixin
from .test_template import TemplateCase
from .webhook_common import WebhookCase

IMAGE_URL_COMPONENTS = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}},
    {"type": "BODY", "text": "Hello {{1}}, {{2}} offers {{3}} until {{4}}. {{5}}"},
    {"type": "FOOTER", "text": "Reply STOP to unsubscribe"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "URL", "text": "See offer", "url": "https://shop.example.com/o/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Not interested"},
        ],
    },
]


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestTemplateEmulator(WebhookCase, TemplateCase, WhatsappEmulatorMixin):
    def setUp(self):
        super().setUp()
        self.emulator = self.start_emulator()

    def process_webhooks(self):
        """What the lane crons do once the emulator's webhooks woke them."""
        self.env["crm.whatsapp.webhook.event"]._cron_process()
        self.env.invalidate_all()

    def test_sync_two_pages(self):
        Template = self.env["crm.whatsapp.template"].with_context(active_test=False)
        self.emulator.page_size = 2
        self.emulator.add_template(
            "spring_offer", category="MARKETING", components=IMAGE_URL_COMPONENTS, quality_score={"score": "GREEN"}
        )
        self.emulator.add_template(
            "old_news", status="PAUSED", category="UTILITY", components=[{"type": "BODY", "text": "Old {{1}}"}]
        )
        gone = Template.create(
            {"name": "removed_at_meta", "account_id": self.account.id, "status": "approved", "body": "Bye"}
        )
        gone.wa_template_id = "123"
        mapped = self.promo.variable_ids.filtered(lambda v: v.component == "body" and v.placeholder == "1")

        action = self.account.action_sync_templates()

        pages = [r for r in self.emulator.requests if r["path"].endswith("/message_templates")]
        self.assertEqual(len(pages), 2, "every page of message_templates is read")
        self.assertEqual(action["params"]["message"], "1 account(s): 2 templates created, 1 updated, 1 archived.")
        self.assertIn("2 created, 1 updated, 1 archived", self.account.message_ids[0].body)
        hello = Template.search([("name", "=", "hello_world"), ("account_id", "=", self.account.id)])
        self.assertEqual((hello.header_type, hello.header_text, hello.status), ("text", "Hello World", "approved"))
        self.assertEqual(hello.footer, "WhatsApp Business Platform sample message")
        paused = Template.search([("name", "=", "old_news")])
        self.assertEqual((paused.status, paused.category), ("paused", "utility"))
        self.assertEqual(paused.variable_ids.mapped("placeholder"), ["1"], "a variable per placeholder")
        self.assertTrue(self.promo.wa_template_id, "the local template is matched by name and language")
        self.assertEqual(self.promo.quality_score, "green")
        self.assertEqual(self.promo.button_ids.mapped("button_type"), ["url", "quick_reply"])
        self.assertEqual(mapped.field_path, "partner_id.name", "the user's mapping is kept")
        self.assertFalse(gone.active)
        self.assertEqual(gone.status, "deleted")

        # a second sync changes nothing it does not have to
        self.account.action_sync_templates()
        self.assertEqual(Template.search_count([("account_id", "=", self.account.id)]), 4)

    def test_submit_then_approving_webhook(self):
        self.emulator.template_status = "PENDING"
        draft = self.promo.copy({"name": "autumn_offer", "status": "draft"})
        draft.variable_ids.filtered(lambda v: v.placeholder == "3" and v.component == "body").default_value = "10%"
        draft.variable_ids.filtered(lambda v: v.component == "button").default_value = "A42"

        draft.action_submit()

        self.assertEqual(draft.status, "pending")
        stored = self.emulator.find_template("autumn_offer")
        self.assertEqual(draft.wa_template_id, stored["id"])
        header, body = stored["components"][:2]
        self.assertTrue(header["example"]["header_handle"][0].startswith("4::"), "the example file was uploaded")
        self.assertEqual(body["example"]["body_text"], [["there", "our team", "10%", "soon", "See you!"]])
        uploads = [r for r in self.emulator.requests if "upload" in r["path"]]
        self.assertEqual(len(uploads), 2, "resumable upload: a session, then the file")

        self.env.flush_all()  # the webhook is handled by the server, which reads the database
        self.assertEqual(self.emulator.emit_template_status(stored["id"], "APPROVED"), 200)
        self.process_webhooks()
        event = self.env["crm.whatsapp.webhook.event"].search([], limit=1)
        self.assertEqual((event.fields_summary, event.state), ("message_template_status_update", "done"), event.error)
        self.assertEqual(draft.status, "approved")

        self.assertEqual(self.emulator.emit_template_status(stored["id"], "REJECTED", "INVALID_FORMAT"), 200)
        self.process_webhooks()
        self.assertEqual(draft.status, "rejected")

    def test_emulator_reviews_a_submitted_template(self):
        """After a submit, the emulator answers with a status webhook, as Meta does after its review."""
        self.emulator.template_status, self.emulator.template_review = "PENDING", "APPROVED"
        self.emulator.review_delay = 1.0
        template = self.env["crm.whatsapp.template"].create(
            {"name": "plain_news", "account_id": self.account.id, "category": "utility", "body": "News!"}
        )
        template.action_submit()
        self.env.flush_all()  # the webhook is handled by the server, which reads the database
        self.assertEqual(template.status, "pending")
        deadline = time.monotonic() + 10
        while not self.emulator.webhooks and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual([w["status"] for w in self.emulator.webhooks], [200])
        self.process_webhooks()
        self.assertEqual(template.status, "approved")

    def test_quality_and_category_webhooks(self):
        self.promo.wa_template_id = "555"
        value = {
            "message_template_id": 555,
            "message_template_name": "spring_offer",
            "message_template_language": "en_US",
        }
        self.post(
            self.envelope(
                {**value, "previous_quality_score": "GREEN", "new_quality_score": "RED"},
                field="message_template_quality_update",
            )
        )
        self.assertEqual(self.promo.quality_score, "red")
        self.post(
            self.envelope(
                {**value, "previous_category": "MARKETING", "new_category": "UTILITY"}, field="template_category_update"
            )
        )
        self.assertEqual(self.promo.category, "utility")
        self.assertTrue(self.promo.message_ids.tracking_value_ids, "the changes are tracked on the template")

    def _conversation(self):
        return self.env["crm.whatsapp.conversation"].search([("wa_id", "=", "32470123456")]) or self.env[
            "crm.whatsapp.conversation"
        ].create(
            {
                "account_id": self.account.id,
                "wa_id": "32470123456",
                "partner_id": self.partner.id,
                "lead_id": self.lead.id,
                "last_inbound_at": fields.Datetime.now() - timedelta(hours=1),
            }
        )

    def _send(self, template):
        message = self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "conversation_id": self._conversation().id,
                "lead_id": self.lead.id,
                "direction": "outbound",
                "message_type": "template",
                "template_id": template.id,
                "template_parameters": template._render_values(self.lead),
            }
        )
        return message._send()

    def test_header_image_and_url_button_sent(self):
        self.emulator.add_template("spring_offer", components=IMAGE_URL_COMPONENTS)
        message = self._send(self.promo)
        self.assertEqual(message.state, "sent", message.error_message)
        sent = self.emulator.sent_messages[message.wamid]["payload"]["template"]
        components = {(c["type"], c.get("index")): c for c in sent["components"]}
        self.assertIn("/web/content/", components["header", None]["parameters"][0]["image"]["link"])
        self.assertEqual(components["button", "0"]["parameters"], [{"type": "text", "text": str(self.lead.id)}])
        self.assertEqual(len(components["body", None]["parameters"]), 5)

    def test_send_validated_against_meta(self):
        """The emulator refuses what Meta would: the local copy differs from Meta's."""
        self.emulator.add_template(
            "spring_offer", components=[{"type": "BODY", "text": "Hello {{1}}"}, *IMAGE_URL_COMPONENTS[3:]]
        )
        message = self._send(self.promo)
        self.assertEqual((message.state, message.error_code), ("failed", 132000))
        self.assertIn("marked for re-sync", message.error_message)
        self.assertTrue(self.promo.needs_sync)

        self.promo.needs_sync = False
        self.emulator.reset()
        message = self._send(self.promo)
        self.assertEqual((message.state, message.error_code), ("failed", 132001))
        self.assertTrue(self.promo.needs_sync)

    def test_emulator_delete_template(self):
        self.emulator.add_template("spring_offer", components=IMAGE_URL_COMPONENTS)
        with self.account._get_api() as api:
            self.assertTrue(api.delete_template("spring_offer"))
        self.assertIsNone(self.emulator.find_template("spring_offer"))

    def test_demo_templates_known_to_the_emulator(self):
        """The demo's templates are those the emulator started by ``make run`` knows."""
        Template = self.env["crm.whatsapp.template"].with_context(active_test=False)
        if not Template.search_count([("account_id.waba_id", "=", "100000000000001")]):
            self.skipTest("no demo data")
        for meta in DEMO_TEMPLATES:
            template = Template.search(
                [
                    ("account_id.waba_id", "=", "100000000000001"),
                    ("name", "=", meta["name"]),
                    ("language", "=", meta["language"]),
                ]
            )
            values = wt.parse_template({**meta, "status": meta.get("status", "APPROVED")})
            self.assertEqual(
                (template.wa_template_id, template.status, template.body, template.footer or False),
                (values["wa_template_id"], values["status"], values["body"], values["footer"]),
            )
