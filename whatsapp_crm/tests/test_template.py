"""Templates: fields, variables rendered in batch, payloads, preview, who may send what."""

import base64
from datetime import date, timedelta

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged, users, warmup

from ..tools import whatsapp_template as wt
from .common import WhatsappCase

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
)


class TemplateCase(WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.currency_id = cls.env.ref("base.USD")
        cls.lead_model = cls.env["ir.model"]._get("crm.lead")
        cls.partner = cls.env["res.partner"].create({"name": "Alice Customer", "mobile": "+32 470 12 34 56"})
        cls.lead = cls.env["crm.lead"].create(
            {
                "name": "Big deal",
                "partner_id": cls.partner.id,
                "user_id": cls.user_salesman.id,
                "type": "opportunity",
                "expected_revenue": 1500,
                "date_deadline": date(2026, 12, 24),
            }
        )
        cls.promo = cls.env["crm.whatsapp.template"].create(
            {
                "name": "spring_offer",
                "language": "en_US",
                "account_id": cls.account.id,
                "category": "marketing",
                "status": "approved",
                "model_id": cls.lead_model.id,
                "header_type": "image",
                "header_file": PNG,
                "header_filename": "offer.png",
                "body": "Hello {{1}}, {{2}} offers {{3}} until {{4}}. {{5}}",
                "footer": "Reply STOP to unsubscribe",
                "button_ids": [
                    (0, 0, {"button_type": "url", "text": "See offer", "url": "https://shop.example.com/o/{{1}}"}),
                    (0, 0, {"button_type": "quick_reply", "text": "Not interested"}),
                ],
            }
        )
        # a marketing template needs the customer's opt-in (see test_consent.py)
        cls.env["crm.whatsapp.consent"]._whatsapp_record(
            [
                {
                    "company": cls.account.company_id,
                    "number": "+32470123456",
                    "partner": cls.partner,
                    "scope": "marketing",
                    "state": "opt_in",
                    "source": "web_form",
                    "proof": "Newsletter form",
                }
            ]
        )
        url_button = cls.promo.button_ids[0]
        cls.promo.variable_ids = [
            (0, 0, {"placeholder": "1", "field_path": "partner_id.name", "default_value": "there"}),
            (0, 0, {"placeholder": "2", "field_path": "user_id.name", "default_value": "our team"}),
            (0, 0, {"placeholder": "3", "field_path": "expected_revenue"}),
            (0, 0, {"placeholder": "4", "field_path": "date_deadline", "default_value": "soon"}),
            (0, 0, {"placeholder": "5", "source": "fixed", "fixed_value": "See you!"}),
            (0, 0, {"component": "button", "button_id": url_button.id, "placeholder": "1", "field_path": "id"}),
        ]


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestTemplate(TemplateCase):
    def test_variables_formatted_as_odoo_formats_them(self):
        values = self.promo._render_values(self.lead)
        self.assertEqual(values["1"], "Alice Customer")
        self.assertEqual(values["2"], "Sally Sales")
        self.assertEqual(values["3"], "$\xa01,500.00", "an amount with its currency")
        self.assertEqual(values["4"], "12/24/2026", "a date in the reader's format")
        self.assertEqual(values["5"], "See you!", "a fixed value")
        self.assertEqual(values["button:0:1"], str(self.lead.id))

    def test_fallback_and_missing_value(self):
        self.lead.write({"user_id": False, "date_deadline": False})
        values = self.promo._render_values(self.lead)
        self.assertEqual((values["2"], values["4"]), ("our team", "soon"))
        self.lead.expected_revenue = 0
        with self.assertRaisesRegex(UserError, r"\{\{3\}\} of template spring_offer \[en_US\] has no value"):
            self.promo._render_values(self.lead)

    def test_wrong_field_path_refused(self):
        with self.assertRaisesRegex(ValidationError, "does not exist on crm.lead"):
            self.promo.variable_ids[0].field_path = "partner_id.nope"
        with self.assertRaisesRegex(ValidationError, "does not exist on crm.lead"):
            self.promo.variable_ids[0].field_path = "__class__"

    def test_header_image_and_url_button_in_payload(self):
        values = self.promo._render_values(self.lead)
        payload = self.promo._prepare_payload(values)
        self.assertEqual(payload["name"], "spring_offer")
        header, body, button = payload["components"]
        self.assertEqual(header["type"], "header")
        link = header["parameters"][0]["image"]["link"]
        self.assertRegex(link, r"/web/content/\d+\?access_token=\w+")
        self.assertEqual([p["text"] for p in body["parameters"]][:2], ["Alice Customer", "Sally Sales"])
        self.assertEqual(
            button,
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": str(self.lead.id)}],
            },
        )

    def test_named_parameters(self):
        template = self.env["crm.whatsapp.template"].create(
            {
                "name": "named_hello",
                "account_id": self.account.id,
                "status": "approved",
                "parameter_format": "named",
                "header_type": "text",
                "header_text": "Hi {{first_name}}",
                "body": "Dear {{first_name}}, about {{deal}}",
                "variable_ids": [
                    (0, 0, {"placeholder": "first_name", "field_path": "partner_id.name"}),
                    (0, 0, {"component": "header", "placeholder": "first_name", "field_path": "partner_id.name"}),
                    (0, 0, {"placeholder": "deal", "field_path": "name"}),
                ],
            }
        )
        payload = template._prepare_payload(template._render_values(self.lead))
        header, body = payload["components"]
        self.assertEqual(
            header["parameters"], [{"type": "text", "text": "Alice Customer", "parameter_name": "first_name"}]
        )
        self.assertEqual([p["parameter_name"] for p in body["parameters"]], ["first_name", "deal"])
        with self.assertRaisesRegex(ValidationError, "parameter format"):
            template.parameter_format = "positional"

    def test_preview_shows_header_body_footer_buttons(self):
        self.promo.preview_record = f"crm.lead,{self.lead.id}"
        html = str(self.promo.preview_html)
        self.assertIn("[offer.png]", html)
        self.assertIn("Hello Alice Customer, Sally Sales offers $\xa01,500.00", html)
        self.assertIn("Reply STOP to unsubscribe", html)
        self.assertIn(f"See offer (https://shop.example.com/o/{self.lead.id})", html)
        self.assertIn("Not interested", html)

    def test_creation_components_with_examples(self):
        self.promo.variable_ids.filtered(lambda v: v.placeholder == "3" and v.component == "body").default_value = "10%"
        self.promo.variable_ids.filtered(lambda v: v.component == "button").default_value = "A42"
        components = wt.creation_components(self.promo._as_dict(), self.promo._examples(), header_handle="4::aW1n")
        header, body, footer, buttons = components
        self.assertEqual(header, {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1n"]}})
        self.assertEqual(body["example"]["body_text"], [["there", "our team", "10%", "soon", "See you!"]])
        self.assertEqual(footer["text"], "Reply STOP to unsubscribe")
        self.assertEqual(
            buttons["buttons"][0],
            {
                "type": "URL",
                "text": "See offer",
                "url": "https://shop.example.com/o/{{1}}",
                "example": ["https://shop.example.com/o/A42"],
            },
        )
        self.assertEqual(buttons["buttons"][1], {"type": "QUICK_REPLY", "text": "Not interested"})

    def test_parse_meta_template(self):
        values = wt.parse_template(
            {
                "id": "777",
                "name": "order_ready",
                "language": "fr",
                "status": "PAUSED",
                "category": "UTILITY",
                "quality_score": {"score": "RED"},
                "components": [
                    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["42"]}},
                    {"type": "BODY", "text": "Bonjour {{1}}", "example": {"body_text": [["Alice"]]}},
                    {"type": "BUTTONS", "buttons": [{"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+3222"}]},
                ],
            }
        )
        self.assertEqual((values["status"], values["quality_score"], values["category"]), ("paused", "red", "utility"))
        self.assertEqual(values["examples"], {"header:1": "42", "1": "Alice"})
        self.assertEqual(values["buttons"][0]["phone_number"], "+3222")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestTemplateBatch(TemplateCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        partners = cls.env["res.partner"].create([{"name": f"Customer {i}"} for i in range(200)])
        users_ = cls.user_salesman | cls.user_manager
        cls.leads = cls.env["crm.lead"].create(
            [
                {
                    "name": f"Deal {i}",
                    "partner_id": partner.id,
                    "user_id": users_[i % 2].id,
                    "expected_revenue": 100 * i,
                    "date_deadline": date(2026, 12, 1) + timedelta(days=i % 30),
                }
                for i, partner in enumerate(partners)
            ]
        )
        cls.promo.variable_ids.filtered(lambda v: v.placeholder == "3").default_value = "a discount"

    @users("wa_manager")
    @warmup
    def test_render_200_leads_fixed_queries(self):
        leads = self.env["crm.lead"].sudo().browse(self.leads.ids).with_env(self.env)
        template = self.promo.with_env(self.env)
        self.env.invalidate_all()
        with self.assertQueryCount(wa_manager=12):
            values = template._render_values_batch(leads)
        self.assertEqual(len(values), 200)
        last = values[leads[-1].id]
        self.assertEqual((last["1"], last["2"]), ("Customer 199", "Manny Manager"))
        self.assertEqual(values[leads[0].id]["3"], "a discount", "0 is empty: the fallback")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestTemplateSending(TemplateCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.conversation = cls.env["crm.whatsapp.conversation"].create(
            {
                "account_id": cls.account.id,
                "wa_id": "32470123456",
                "partner_id": cls.partner.id,
                "lead_id": cls.lead.id,
                "last_inbound_at": fields.Datetime.now() - timedelta(hours=1),
            }
        )

    def _message(self, template, **values):
        return self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "conversation_id": self.conversation.id,
                "lead_id": self.lead.id,
                "direction": "outbound",
                "message_type": "template",
                "template_id": template.id,
                "template_parameters": template._render_values(self.lead),
                **values,
            }
        )

    def test_non_approved_template_not_sent(self):
        self.promo.status = "pending"
        message = self._message(self.promo)
        with self.mock_whatsapp_api():
            message._send()
            self.assertFalse(self.sent_payloads())
        self.assertEqual(message.state, "refused")
        self.assertIn("Only approved templates can be sent: spring_offer [en_US] is pending", message.error_message)

    def test_paused_or_red_refused_for_campaigns_with_reason(self):
        self.promo.write({"status": "paused", "rejection_reason": "LOW_QUALITY"})
        paused = self._message(self.promo)
        with self.mock_whatsapp_api():
            paused._send()
        self.assertEqual(paused.state, "refused")
        self.assertIn("spring_offer [en_US] is paused at WhatsApp (LOW_QUALITY)", paused.error_message)
        self.promo.write({"status": "approved", "rejection_reason": False})
        self.promo.sudo()._apply_meta_quality("RED")
        campaign, single = self._message(self.promo, is_campaign=True), self._message(self.promo)
        with self.mock_whatsapp_api():
            (campaign | single)._send()
        self.assertEqual(campaign.state, "refused")
        self.assertIn("low quality rating", campaign.error_message)
        self.assertEqual(single.state, "sent", "one customer at a time is still allowed")

    def test_only_approved_active_templates_offered(self):
        Template = self.env["crm.whatsapp.template"]
        pending = self.promo.copy({"name": "spring_offer_two", "status": "pending"})
        offered = Template.search(Template._sendable_domain())
        self.assertIn(self.promo, offered)
        self.assertNotIn(pending, offered)
        self.promo.active = False
        self.assertNotIn(self.promo, Template.search(Template._sendable_domain()))

    def test_132001_marks_template_for_resync(self):
        message = self._message(self.promo)
        with self.mock_whatsapp_api(sim_error=self.api_error(132001, "template name does not exist in en_US")):
            message._send()
        self.assertEqual(message.state, "failed")
        self.assertTrue(self.promo.needs_sync)
        self.assertIn("marked for re-sync", self.promo.message_ids[0].body)
        self.assertIn("re-sync", message.error_message)
