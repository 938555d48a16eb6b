"""What the composer tells before sending: counters, files too large, and for a mass send who
the policy would refuse, and after it who was refused and why."""

from odoo.tests import Form, tagged

from ..models.crm_whatsapp_message import format_size
from .test_outbound_send import WINDOW_TEXT, OutboundCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestComposerChecks(OutboundCase):
    def _mass_form(self, records):
        return Form(
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .with_context(active_model=records._name, active_ids=records.ids, default_composition_mode="mass")
        )

    def _three_leads(self):
        """Alice wrote an hour ago; Carol has a number but never wrote; nobody has no number."""
        carol = self.env["res.partner"].create({"name": "Carol", "mobile": "+32 470 55 44 33"})
        return self.lead | self.env["crm.lead"].create(
            [
                {"name": "Carol's deal", "partner_id": carol.id, "user_id": self.user_salesman.id},
                {"name": "Nobody", "user_id": self.user_salesman.id},
            ]
        )

    def test_counters(self):
        form = Form(
            self.env["crm.whatsapp.composer"]
            .with_user(self.user_salesman)
            .with_context(default_res_model="crm.lead", default_res_id=self.lead.id)
        )
        form.body = "Your quote is ready"
        self.assertEqual(form.body_counter, "19 / 4,096 characters")
        form.kind = "buttons"
        form.button_1 = "Yes"
        form.button_2 = "Call me tomorrow"
        self.assertEqual(form.body_counter, "19 / 1,024 characters", "a text with buttons has a smaller limit")
        self.assertEqual(form.buttons_counter, "Yes 3/20 · Call me tomorrow 16/20")

    def test_attachment_too_large_at_upload(self):
        composer = self.env["crm.whatsapp.composer"].create({"res_model": "crm.lead", "res_ids": repr(self.lead.ids)})
        small, large = self.env["ir.attachment"].create(
            [
                {"name": "plan.jpg", "raw": b"\xff" * 1000, "mimetype": "image/jpeg"},
                {"name": "photo.jpg", "raw": b"\xff" * (6 << 20), "mimetype": "image/jpeg"},
            ]
        )
        composer.attachment_ids = small
        self.assertFalse(composer.attachment_warning)
        composer.attachment_ids = small | large
        self.assertEqual(
            composer.attachment_warning,
            "photo.jpg is too large for WhatsApp: 6 MB, at most 5 MB for this kind of file.",
        )

    def test_sizes_in_words(self):
        self.assertEqual(
            [format_size(size) for size in (512, 500 << 10, 5 << 20, int(1.5 * (1 << 20)), 100 << 20)],
            ["512 B", "500 KB", "5 MB", "1.5 MB", "100 MB"],
        )

    def test_mass_forecast_before_sending(self):
        form = self._mass_form(self._three_leads())
        form.body = "Spring sale: 20% off desks"
        self.assertEqual(
            form.forecast.splitlines(),
            [
                "1 of 3 recipients can receive it now.",
                f"• 1: {WINDOW_TEXT}",
                "• 1: This recipient has no WhatsApp number.",
            ],
        )
        self.assertFalse(self.env["crm.whatsapp.message"].search([("body", "=", "Spring sale: 20% off desks")]))
        self.assertFalse(self.env["crm.whatsapp.conversation"].search([("wa_id", "=", "32470554433")]))
        form.kind = "template"
        form.template_id = self.template
        self.assertEqual(
            form.forecast.splitlines(),
            ["2 of 3 recipients can receive it now.", "• 1: This recipient has no WhatsApp number."],
        )

    def test_mass_forecast_counts_opt_outs(self):
        self.env["phone.blacklist"].sudo().add("+32 470 12 34 56")
        form = self._mass_form(self._three_leads())
        form.kind = "template"
        form.template_id = self.template
        self.assertIn("• 1: This number opted out of WhatsApp messages.", form.forecast.splitlines())

    def test_mass_send_says_who_was_refused_and_why(self):
        form = self._mass_form(self._three_leads())
        form.body = "Spring sale"
        with self.mock_whatsapp_api():
            action = form.save().action_send()
        self.assertEqual(action["params"]["type"], "warning")
        self.assertTrue(action["params"]["sticky"])
        message = action["params"]["message"]
        self.assertIn(f"Carol: {WINDOW_TEXT}", message)
        self.assertIn("This recipient has no WhatsApp number.", message)
