from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .test_outbound_send import NOW, OutboundCase


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestOutboundServerAction(OutboundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead_model = cls.env["ir.model"]._get("crm.lead")
        cls.won_stage = cls.env["crm.stage"].create({"name": "Signed", "sequence": 90})

    def _whatsapp_action(self, **values):
        return self.env["ir.actions.server"].create(
            {
                "name": "WhatsApp the customer",
                "model_id": self.lead_model.id,
                "state": "whatsapp_crm",
                "whatsapp_crm_template_id": self.template.id,
                **values,
            }
        )

    def test_automation_on_stage_change(self):
        automation = self.env["base.automation"].create(
            {
                "name": "Tell the customer the deal is signed",
                "model_id": self.lead_model.id,
                "trigger": "on_stage_set",
                "trg_field_ref": self.won_stage.id,
            }
        )
        self._whatsapp_action(base_automation_id=automation.id, usage="base_automation")
        self.assertFalse(self._whatsapp_action().whatsapp_crm_send_now, "queued by default")
        triggers = self.env["ir.cron.trigger"].search_count([])
        with self.mock_whatsapp_api():
            self.lead.with_user(self.user_salesman).stage_id = self.won_stage
            message = self.lead.whatsapp_message_ids
            self.assertRecordValues(
                message,
                [
                    {
                        "state": "queued",
                        "message_type": "template",
                        "template_id": self.template.id,
                        "author_id": self.user_salesman.id,
                        "body": "Hello Alice Customer, your order Big deal is ready.",
                    }
                ],
            )
            self.assertFalse(self._wa_requests, "automations queue")
            self.assertGreater(self.env["ir.cron.trigger"].search_count([]), triggers)
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(message.state, "sent")
        self.assertEqual(self.sent_payloads()[0]["template"]["name"], "order_ready")
        self.assertEqual(self.sent_payloads()[0]["to"], "+32470123456")
        # another stage does not send
        with self.mock_whatsapp_api():
            self.lead.stage_id = self.env["crm.stage"].create({"name": "Other"})
        self.assertEqual(len(self.lead.whatsapp_message_ids), 1)

    def test_automation_on_lead_creation(self):
        automation = self.env["base.automation"].create(
            {
                "name": "Greet leads once they have a mobile number",
                "model_id": self.lead_model.id,
                "trigger": "on_create_or_write",
                "trigger_field_ids": [(6, 0, self.env["ir.model.fields"]._get("crm.lead", "mobile").ids)],
                "filter_pre_domain": "[('mobile', '=', False)]",
                "filter_domain": "[('mobile', '!=', False)]",
            }
        )
        self._whatsapp_action(base_automation_id=automation.id, usage="base_automation")
        with self.mock_whatsapp_api():
            lead = self.env["crm.lead"].create(
                {"name": "Website form", "contact_name": "Dan", "mobile": "+32 470 11 22 33"}
            )
            self.env["crm.whatsapp.message"]._process_queue()
            lead.write({"name": "Website form (qualified)", "mobile": "+32 470 11 22 34"})
        self.assertEqual(len(self.sent_payloads()), 1, "the rule fires once")
        self.assertEqual(lead.whatsapp_message_ids.state, "sent")
        self.assertEqual(self.sent_payloads()[0]["to"], "+32470112233")
        # the variable without value falls back to its default
        self.assertEqual(lead.whatsapp_message_ids.body, "Hello there, your order Website form is ready.")

    def test_action_menu_send_now(self):
        action = self._whatsapp_action(
            whatsapp_crm_template_id=False, whatsapp_crm_body="We are on our way", whatsapp_crm_send_now=True
        )
        with self.mock_whatsapp_api():
            action.with_context(active_model="crm.lead", active_ids=self.lead.ids).run()
        self.assertEqual(self.sent_payloads()[0]["text"]["body"], "We are on our way")
        self.assertEqual(self.lead.whatsapp_message_ids.state, "sent")

    def test_action_needs_template_or_text(self):
        with self.assertRaises(ValidationError):
            self._whatsapp_action(whatsapp_crm_template_id=False)

    def test_action_menu_send_now_many_records_queued(self):
        """Sending at once is for one document: many go through the throttled queue."""
        other = self.env["res.partner"].create({"name": "Carol", "mobile": "+32 470 55 44 33"})
        self.env["crm.whatsapp.conversation"].create(
            {"account_id": self.account.id, "wa_id": "32470554433", "partner_id": other.id, "last_inbound_at": NOW}
        )
        leads = self.lead | self.env["crm.lead"].create({"name": "Carol's deal", "partner_id": other.id})
        action = self._whatsapp_action(
            whatsapp_crm_template_id=False, whatsapp_crm_body="We are on our way", whatsapp_crm_send_now=True
        )
        with self.mock_whatsapp_api():
            action.with_context(active_model="crm.lead", active_ids=leads.ids).run()
            self.assertFalse(self._wa_requests)
            self.assertEqual(leads.whatsapp_message_ids.mapped("state"), ["queued", "queued"])
            self.env["crm.whatsapp.message"]._process_queue()
        self.assertEqual(leads.whatsapp_message_ids.mapped("state"), ["sent", "sent"])

    def _lead_of_company_without_whatsapp(self, partner):
        """A lead of a company that has no WhatsApp account, and a rule messaging won leads."""
        company = self.env["res.company"].create({"name": "No WhatsApp Ltd"})
        self.user_salesman.write({"company_ids": [(4, company.id)]})
        automation = self.env["base.automation"].create(
            {
                "name": "Tell the customer the deal is signed",
                "model_id": self.lead_model.id,
                "trigger": "on_stage_set",
                "trg_field_ref": self.won_stage.id,
            }
        )
        self._whatsapp_action(
            base_automation_id=automation.id,
            usage="base_automation",
            whatsapp_crm_template_id=False,
            whatsapp_crm_body="Signed!",
        )
        lead = self.env["crm.lead"].create(
            {
                "name": "Other company deal",
                "partner_id": partner.id,
                "company_id": company.id,
                "user_id": self.user_salesman.id,
            }
        )
        with self.mock_whatsapp_api():
            lead.with_user(self.user_salesman).with_context(allowed_company_ids=[company.id]).stage_id = self.won_stage
        return lead

    def test_automation_without_account_does_not_block(self):
        """No WhatsApp account for the record's company: the lead is saved, nothing is sent."""
        lead = self._lead_of_company_without_whatsapp(
            self.env["res.partner"].create({"name": "Eve", "mobile": "+32 470 66 77 88"})
        )
        self.assertEqual(lead.stage_id, self.won_stage)
        self.assertFalse(lead.whatsapp_message_ids)
        self.assertFalse(self._wa_requests)

    def test_automation_sends_from_the_company_of_the_lead(self):
        """The contact talked with another company's number: that number does not answer
        for a lead of a company without WhatsApp."""
        lead = self._lead_of_company_without_whatsapp(self.partner)  # talks with self.account (first company)
        self.assertFalse(lead.whatsapp_message_ids)
        self.assertFalse(self._wa_requests)
        # a lead of the account's company is still answered from it
        self.assertEqual(self.lead._whatsapp_default_account(), self.account)
