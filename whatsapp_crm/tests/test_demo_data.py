"""The demo data tells one consistent story: consents agree with the chats, the send policy
agrees with the consents, and each salesperson sees the canned responses meant for them."""

from odoo.tests import TransactionCase, new_test_user, tagged


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestDemoData(TransactionCase):
    def setUp(self):
        super().setUp()
        if not self.env.ref("whatsapp_crm.crm_whatsapp_consent_gemini_all_demo", raise_if_not_found=False):
            self.skipTest("no demo data")
        self.account = self.demo("crm_whatsapp_account_demo")

    def demo(self, name):
        return self.env.ref(f"whatsapp_crm.{name}")

    def test_consents_agree_with_their_history(self):
        numbers = ["+582126810538", "+18038736126", "+13123492324"]
        demo = self.env["crm.whatsapp.consent"].search([("number", "in", numbers)])
        self.assertEqual(len(demo), 4, "Azure, Ready Mat, Gemini (marketing and all)")
        for consent in demo:
            latest = consent.history_ids.sorted(lambda h: (h.date, h.id))[-1]
            self.assertEqual(
                (latest.state, latest.source, latest.date), (consent.state, consent.source, consent.changed_at)
            )
            self.assertTrue(consent.proof)
            self.assertEqual(consent.partner_id.whatsapp_consent_ids & consent, consent)

    def test_opted_out_chat_ends_with_the_keyword_confirmation(self):
        """After a customer's STOP, only the keyword's confirmation was sent, as the keyword
        feature does (crm_whatsapp_conversation_consent.py)."""
        opt_out = self.demo("crm_whatsapp_consent_gemini_all_demo")
        stop = opt_out.history_ids.message_id
        self.assertEqual((stop.body, stop.direction), ("STOP", "inbound"))
        conversation = stop.conversation_id
        after = conversation.message_ids_wa.filtered(lambda m: m.timestamp >= stop.timestamp and m != stop)
        self.assertEqual(len(after), 1)
        self.assertRecordValues(
            after, [{"direction": "outbound", "reply_to_id": stop.id, "body": self.account.consent_stop_reply}]
        )
        self.assertEqual((conversation.unread_count, conversation.waiting_since), (0, False))
        # no business-initiated message since: every demo customer's messages precede their opt-out
        for consent in self.env["crm.whatsapp.consent"].search([("state", "=", "opt_out")]):
            sent = self.env["crm.whatsapp.message"].search(
                [
                    ("conversation_id.wa_id", "=", consent.number.lstrip("+")),
                    ("direction", "=", "outbound"),
                    ("timestamp", ">", consent.changed_at),
                ]
            )
            keywords = consent.history_ids.message_id
            replies = sent.filtered(lambda m, keywords=keywords: m.reply_to_id in keywords)
            self.assertEqual(sent - replies, sent.browse(), f"sent to {consent.customer} after the opt-out")

    def test_policy_follows_the_demo_consents(self):
        quote = self.demo("crm_whatsapp_template_quote_follow_up_demo")
        welcome = self.demo("crm_whatsapp_template_welcome_demo")
        gemini_lead = self.env.ref("crm.crm_case_20")
        refused = gemini_lead._message_whatsapp(account=self.account, template=quote)
        self.assertEqual(refused.state, "refused", "Gemini Furniture stopped every business-initiated message")
        self.assertIn("opted out", refused.error_message)
        azure, deco_addict = self.env.ref("base.res_partner_12"), self.env.ref("base.res_partner_2")
        sent = azure._message_whatsapp(account=self.account, template=welcome)
        self.assertEqual(sent.state, "queued", "Azure Interior opted in to marketing on the website")
        refused = deco_addict._message_whatsapp(account=self.account, template=welcome)
        self.assertEqual(refused.state, "refused", "no marketing opt-in recorded for Deco Addict")

    def test_canned_responses_of_each_salesperson(self):
        Canned = self.env["crm.whatsapp.canned.response"]
        outsider = new_test_user(self.env, login="wa_demo_outsider", groups="sales_team.group_sale_salesman")

        def shortcuts(user):
            return sorted(r["shortcut"] for r in Canned.with_user(user).whatsapp_canned_search("", limit=50))

        team = ["cijena", "delivery", "dostava", "price", "salon", "showroom"]
        self.assertEqual(shortcuts(self.env.ref("base.user_demo")), sorted([*team, "call"]))
        self.assertEqual(shortcuts(self.demo("res_users_salesperson_demo")), sorted([*team, "hvala"]))
        self.assertEqual(shortcuts(outsider), ["salon", "showroom"])
        [price] = Canned.with_user(self.env.ref("base.user_demo")).whatsapp_canned_search("/pri")
        self.assertIn("249 EUR", price["body"])
