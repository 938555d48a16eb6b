"""Consent: keywords through the inbound hook, Meta's preferences and 131050, the policy, the cap."""

import time
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import new_wamid
from .webhook_common import CUSTOMER_WA_ID, WebhookCase

CUSTOMER_NUMBER = f"+{CUSTOMER_WA_ID}"
USER_ID = "US.13491208655302741918"


class ConsentCase(WebhookCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Consent = cls.env["crm.whatsapp.consent"]
        cls.promo = cls.env["crm.whatsapp.template"].create(
            {
                "name": "black_friday",
                "account_id": cls.account.id,
                "category": "marketing",
                "status": "approved",
                "body": "Black Friday: 30% off everything!",
            }
        )
        cls.reminder = cls.env["crm.whatsapp.template"].create(
            {
                "name": "appointment",
                "account_id": cls.account.id,
                "category": "utility",
                "status": "approved",
                "body": "See you tomorrow.",
            }
        )

    def text(self, body, **kwargs):
        return self.receive(self.inbound("text", {"body": body}), **kwargs)

    def consent(self, scope="all", number=CUSTOMER_NUMBER, wa_user_id=None):
        domain = [("scope", "=", scope), ("company_id", "=", self.account.company_id.id)]
        domain.append(("number", "=", number) if number else ("wa_user_id", "=", wa_user_id))
        return self.Consent.search(domain)

    def outbound(self, conversation, template=None, body=None, reply_to=None):
        return self.env["crm.whatsapp.message"].create(
            {
                "account_id": self.account.id,
                "conversation_id": conversation.id,
                "partner_id": conversation.partner_id.id,
                "direction": "outbound",
                "message_type": "template" if template else "text",
                "template_id": template.id if template else False,
                "template_parameters": {},
                "body": body or (template.body if template else ""),
                "reply_to_id": reply_to.id if reply_to else False,
            }
        )

    def history(self, consent):
        """The consent's history, newest first, as the form shows it."""
        return consent.history_ids.sorted(lambda line: (line.date, line.id), reverse=True)

    def confirmations(self, conversation):
        return conversation.message_ids_wa.filtered(lambda m: m.direction == "outbound" and m.reply_to_id)

    def opt_in_marketing(self, number=CUSTOMER_NUMBER):
        self.Consent._whatsapp_record(
            [
                {
                    "company": self.account.company_id,
                    "number": number,
                    "scope": "marketing",
                    "state": "opt_in",
                    "source": "web_form",
                    "proof": "Newsletter form, 1 Nov",
                }
            ]
        )


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestConsentKeywords(ConsentCase):
    def test_odjava_opts_out_with_history_and_one_confirmation(self):
        with self.mock_whatsapp_api():
            stop = self.text("odjava")
            conversation = stop.conversation_id
            consent = self.consent()
            self.assertEqual((consent.state, consent.source), ("opt_out", "keyword"))
            self.assertEqual(consent.partner_id, conversation.partner_id)
            self.assertEqual(len(consent.history_ids), 1)
            line = consent.history_ids
            self.assertEqual((line.state, line.source, line.message_id), ("opt_out", "keyword", stop))
            self.assertIn('"odjava"', line.proof)
            confirmation = self.confirmations(conversation)
            self.assertEqual(len(confirmation), 1, "the keyword is answered")
            self.assertEqual(confirmation.state, "queued", "allowed: the customer opened the window")
            self.assertIn("START", confirmation.body)

            # the same keyword again changes nothing and is not answered twice
            self.text(" ODJAVA! ")
            self.assertEqual(len(consent.history_ids), 1)
            self.assertEqual(len(self.confirmations(conversation)), 1)

            # a marketing template is refused, saying why; a service reply in the window goes out
            promo = self.outbound(conversation, self.promo)._send()
            self.assertEqual(promo.state, "refused")
            self.assertIn("opted out of all business-initiated messages", promo.error_message)
            self.assertIn("Inbound Keyword", promo.error_message)
            reply = self.outbound(conversation, body="Sure, we will not write again.")._send()
            self.assertEqual(reply.state, "sent", reply.error_message)

            # unless the account answers nobody who opted out, even in their window
            self.account.consent_window_replies = False
            reply = self.outbound(conversation, body="One more thing...")._send()
            self.assertEqual(reply.state, "refused")

            # PRIJAVA reverses it; the history keeps both, the first line untouched
            self.text("Prijava")
            self.assertEqual(consent.state, "opt_in")
            self.assertEqual(self.history(consent).mapped("state"), ["opt_in", "opt_out"])
            self.assertEqual(line.state, "opt_out")
            self.assertEqual(len(self.confirmations(conversation)), 2, "a start is answered once too")

    def test_accents_and_case_and_whole_message(self):
        self.text("Arret")
        self.assertEqual(self.consent().state, "opt_out", "ARRÊT without its accent")
        self.consent().sudo().with_context(whatsapp_consent_recording=True).state = "opt_in"
        self.text("please stop sending me promotions")
        self.assertEqual(self.consent().state, "opt_in", "a keyword is the whole message, not a word of it")

    def test_account_keyword(self):
        self.env["crm.whatsapp.consent.keyword"].create(
            {"name": "Genug", "account_id": self.account.id, "scope": "marketing"}
        )
        self.text("GENUG")
        self.assertEqual(self.consent("marketing").state, "opt_out")
        self.assertFalse(self.consent("all"))

    def test_keyword_changes_apply_at_once(self):
        """Keywords are cached: creating, renaming and archiving one applies to the next message."""
        keyword = self.env["crm.whatsapp.consent.keyword"].create(
            {"name": "Basta", "account_id": self.account.id, "scope": "marketing"}
        )
        keyword.name = "Chega"
        self.text("basta")
        self.assertFalse(self.consent("marketing"), "renamed")
        self.text("Chega!")
        self.assertEqual(self.consent("marketing").state, "opt_out")
        self.consent("marketing").sudo().with_context(whatsapp_consent_recording=True).state = "opt_in"
        keyword.active = False
        self.text("chega")
        self.assertEqual(self.consent("marketing").state, "opt_in", "archived")

    def test_username_only_customer_opted_out(self):
        message = {
            "from_user_id": USER_ID,
            "id": new_wamid(),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "STOP"},
        }
        value = self.messages_value([message])
        value["contacts"] = [{"profile": {"name": "Ana"}, "user_id": USER_ID, "username": "@ana"}]
        with self.mock_whatsapp_api():
            self.assertEqual(self.post(self.envelope(value)).status_code, 200)
        consent = self.consent(number=None, wa_user_id=USER_ID)
        self.assertEqual((consent.state, consent.number, consent.partner_id.name), ("opt_out", False, "Ana"))
        conversation = consent.partner_id.whatsapp_conversation_ids
        refused = self.outbound(conversation, self.reminder)
        conversation.last_inbound_at = datetime.now() - timedelta(days=2)
        with self.mock_whatsapp_api():
            refused._send()
        self.assertEqual(refused.state, "refused")
        self.assertIn("opted out", refused.error_message)


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestConsentPolicy(ConsentCase):
    def setUp(self):
        super().setUp()
        self.conversation = self.env["crm.whatsapp.conversation"]._find_or_create(
            self.account, wa_id=CUSTOMER_WA_ID, profile_name="Joana"
        )
        self.conversation.last_inbound_at = datetime.now() - timedelta(hours=1)

    def test_marketing_template_needs_explicit_opt_in(self):
        with self.mock_whatsapp_api():
            promo = self.outbound(self.conversation, self.promo)._send()
            self.assertEqual(promo.state, "refused")
            self.assertIn("explicit opt-in", promo.error_message)
            utility = self.outbound(self.conversation, self.reminder)._send()
            self.assertEqual(utility.state, "sent", "a utility template needs no marketing opt-in")
            self.opt_in_marketing()
            promo = self.outbound(self.conversation, self.promo)._send()
            self.assertEqual(promo.state, "sent", promo.error_message)

    def test_meta_preferences_record_consent(self):
        self.post(self.user_preferences("stop"))
        consent = self.consent("marketing")
        self.assertEqual((consent.state, consent.source), ("opt_out", "meta_preferences"))
        self.post(self.user_preferences("resume"))
        self.assertEqual(consent.state, "opt_in")
        self.assertEqual(consent.history_ids.mapped("source"), ["meta_preferences", "meta_preferences"])

    def test_131050_records_marketing_opt_out(self):
        self.opt_in_marketing()
        message = self.outbound(self.conversation, self.promo)
        with self.mock_whatsapp_api(sim_error=self.api_error(131050)):
            message._send()
        self.assertEqual(message.state, "failed")
        consent = self.consent("marketing")
        self.assertEqual((consent.state, consent.source), ("opt_out", "api_error"))
        self.assertEqual(self.history(consent).mapped("state"), ["opt_out", "opt_in"])
        with self.mock_whatsapp_api():
            again = self.outbound(self.conversation, self.promo)._send()
        self.assertEqual(again.state, "refused")
        self.assertIn("WhatsApp Error 131050", again.error_message)

    def test_frequency_cap(self):
        self.account.write({"marketing_cap_count": 2, "marketing_cap_days": 7})
        self.opt_in_marketing()
        start = datetime(2026, 11, 2, 9, 0)
        with freeze_time(start) as frozen, self.mock_whatsapp_api():
            self.conversation.last_inbound_at = start - timedelta(hours=1)
            self.assertEqual(self.outbound(self.conversation, self.promo)._send().state, "sent")
            frozen.tick(timedelta(days=2))
            self.assertEqual(self.outbound(self.conversation, self.promo)._send().state, "sent")
            frozen.tick(timedelta(days=2))
            third = self.outbound(self.conversation, self.promo)._send()
            self.assertEqual(third.state, "refused", "the 3rd marketing template within 7 days")
            self.assertIn("already received 2 marketing templates in the last 7 days", third.error_message)
            self.assertEqual(
                self.outbound(self.conversation, self.reminder)._send().state, "sent", "utility is not capped"
            )
            frozen.tick(timedelta(days=4))  # the first is now 8 days old
            self.assertEqual(self.outbound(self.conversation, self.promo)._send().state, "sent")

    def test_frequency_cap_within_one_batch(self):
        self.account.write({"marketing_cap_count": 1, "marketing_cap_days": 7})
        self.opt_in_marketing()
        batch = self.outbound(self.conversation, self.promo) | self.outbound(self.conversation, self.promo)
        with self.mock_whatsapp_api():
            batch._send()
        self.assertEqual(batch.mapped("state"), ["sent", "refused"])


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestConsentRecords(ConsentCase):
    def test_history_is_append_only(self):
        self.opt_in_marketing()
        consent = self.consent("marketing")
        line = consent.history_ids
        with self.assertRaises(UserError):
            line.sudo().write({"proof": "forged"})
        with self.assertRaises(UserError):
            line.sudo().unlink()
        with self.assertRaises(UserError):
            consent.sudo().unlink()
        with self.assertRaises(UserError):
            self.env["crm.whatsapp.consent.history"].with_user(self.user_manager).create(
                {"consent_id": consent.id, "state": "opt_out", "source": "manual"}
            )

    def test_wizard_records_opt_in_with_proof(self):
        partner = self.env["res.partner"].create({"name": "Marta", "mobile": "+34 612 34 56 78"})
        wizard = Form(
            self.env["crm.whatsapp.consent.wizard"]
            .with_user(self.user_salesman)
            .with_context(active_model="res.partner", active_id=partner.id)
        )
        self.assertEqual(wizard.number, "+34612345678")
        wizard.proof = "Signed form at the fair, 12 March"
        wizard.save().action_record()
        consent = partner.whatsapp_consent_ids
        self.assertEqual((consent.scope, consent.state, consent.source), ("marketing", "opt_in", "manual"))
        self.assertEqual(consent.history_ids.user_id, self.user_salesman)
        self.assertEqual(partner.whatsapp_consent_history_ids, consent.history_ids)

    def test_wizard_refuses_another_company(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        partner = self.env["res.partner"].create({"name": "Marta", "mobile": "+34 612 34 56 78"})
        wizard = (
            self.env["crm.whatsapp.consent.wizard"]
            .with_user(self.user_salesman)
            .create({"partner_id": partner.id, "company_id": other.id, "proof": "Forged"})
        )
        with self.assertRaises(AccessError):
            wizard.action_record()
        self.assertFalse(self.Consent.sudo().search([("number", "=", "+34612345678")]))

    def test_manual_change_needs_proof_and_keeps_history(self):
        consent = self.Consent.create(
            {"number": "+34612345678", "scope": "marketing", "state": "opt_in", "proof": "E-mail of 3 May"}
        )
        self.assertEqual(consent.history_ids.source, "manual")
        with self.assertRaisesRegex(UserError, "needs its proof"):
            self.Consent.create({"number": "+34600000000", "scope": "marketing", "state": "opt_in"})
        with self.assertRaisesRegex(UserError, "cannot be changed"):
            consent.number = "+34600000000"
        consent.write({"state": "opt_out", "proof": "Phone call of 5 May"})
        self.assertEqual(self.history(consent).mapped("proof"), ["Phone call of 5 May", "E-mail of 3 May"])

    def test_import(self):
        Consent = self.Consent.with_context(import_file=True)
        result = Consent.load(
            ["number", "scope", "state", "proof"],
            [["+34 612 34 56 78", "marketing", "opt_in", "Fair list 2026"]],
        )
        self.assertFalse(result["messages"], result["messages"])
        consent = self.Consent.browse(result["ids"])
        self.assertEqual((consent.number, consent.source), ("+34612345678", "import"))
        self.assertEqual(consent.history_ids.source, "import")

    def test_blacklist_shown_beside(self):
        partner = self.env["res.partner"].create({"name": "Marta", "mobile": "+34 612 34 56 78"})
        self.assertFalse(partner.whatsapp_blacklisted)
        self.env["phone.blacklist"].sudo()._add(["+34612345678"])
        partner.invalidate_recordset(["whatsapp_blacklisted"])
        self.assertTrue(partner.whatsapp_blacklisted)

    def test_other_company_consent_hidden(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        self.Consent.create(
            {"company_id": other.id, "number": "+34612345678", "scope": "all", "state": "opt_out", "proof": "x"}
        )
        Consent = self.Consent.with_user(self.user_salesman)
        self.assertFalse(Consent.search([("number", "=", "+34612345678")]))
