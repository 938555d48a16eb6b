"""WhatsApp number spellings and contact matching."""

from unittest.mock import patch

from odoo.tests import TransactionCase, tagged

from ..tools.phone import wa_digits, wa_id_variants


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestWebhookPhone(TransactionCase):
    def test_variants(self):
        self.assertEqual(wa_digits("+55 (11) 98765-4321"), "5511987654321")
        self.assertEqual(wa_digits("0049 151 1234567"), "491511234567")
        self.assertEqual(wa_id_variants("551187654321"), ["551187654321", "5511987654321"])
        self.assertEqual(wa_id_variants("5511987654321"), ["5511987654321", "551187654321"])
        self.assertEqual(wa_id_variants("551132654321"), ["551132654321"], "Brazilian landlines have no ninth digit")
        self.assertEqual(wa_id_variants("5215512345678"), ["5215512345678", "525512345678"])
        self.assertEqual(wa_id_variants("525512345678"), ["525512345678", "5215512345678"])
        self.assertEqual(wa_id_variants("5491123456789"), ["5491123456789", "541123456789"])
        self.assertEqual(wa_id_variants("491511234567"), ["491511234567"])
        self.assertEqual(wa_id_variants(""), [])

    def test_partner_matching(self):
        Partner = self.env["res.partner"]
        mexico = Partner.create({"name": "Mexico", "phone": "+52 55 1234 5678"})
        argentina = Partner.create({"name": "Argentina", "mobile": "+54 9 11 2345-6789"})
        local = Partner.create({"name": "Local", "mobile": "0151 12345678", "country_id": self.env.ref("base.de").id})
        Partner.create({"name": "Archived", "mobile": "+49 170 0000001", "active": False})
        self.assertEqual(Partner._whatsapp_find("5215512345678"), mexico)
        self.assertEqual(Partner._whatsapp_find("541123456789"), argentina)
        self.assertEqual(Partner._whatsapp_find("4915112345678"), local, "national format read with the country")
        self.assertFalse(Partner._whatsapp_find("491700000001"), "archived contacts are not matched")
        self.assertFalse(Partner._whatsapp_find("4916112345678"), "same tail, other number")
        created = Partner._whatsapp_find_or_create("4917012345678", "New Person")
        self.assertEqual(created.name, "New Person")
        self.assertEqual(created._whatsapp_wa_id(), "4917012345678")
        self.assertEqual(Partner._whatsapp_find_or_create("4917012345678", "Other Name"), created)

    def test_partner_matching_any_formatting_and_shared_number(self):
        """Numbers grouped in pairs are found; two contacts sharing a number give the oldest, no third."""
        Partner = self.env["res.partner"]
        french = Partner.create({"name": "Paris", "mobile": "+33 6 12 34 56 78"})
        spanish = Partner.create({"name": "Madrid", "phone": "+34 612 34 56 79"})
        self.assertEqual(Partner._whatsapp_find("33612345678"), french)
        self.assertEqual(Partner._whatsapp_find("34612345679"), spanish)
        twin = Partner.create(
            {"name": "Paris bis", "phone": "06 12 34 56 78", "country_id": self.env.ref("base.fr").id}
        )
        count = Partner.search_count([])
        self.assertEqual(Partner._whatsapp_find_or_create("33612345678", "Someone"), french)
        self.assertEqual(Partner.search_count([]), count, "no third contact")
        self.assertLess(french.id, twin.id)

    def test_partner_lookup_is_indexed(self):
        """Matching a new customer's number reads an index, not every contact, inside the webhook request."""
        cr, queries = self.env.cr, []
        execute = cr.execute

        def spy(query, params=None, log_exceptions=True):
            queries.append((query, params))
            return execute(query, params, log_exceptions)

        with patch.object(cr, "execute", spy):
            self.env["res.partner"]._whatsapp_find("33612345678")
        lookup = next((q, p) for q, p in queries if "regexp_replace" in str(q))
        # Leave the planner only bitmap scans, which need an index matching the condition: without our
        # indexes it falls back to the (disabled) sequential scan; with them it reads both.
        for method in ("seqscan", "indexscan", "indexonlyscan"):
            cr.execute(f"SET LOCAL enable_{method} = off")
        cr.execute(f"EXPLAIN {lookup[0]}", lookup[1])
        plan = "\n".join(row[0] for row in cr.fetchall())
        self.assertIn("res_partner_whatsapp_mobile_tail_index", plan)
        self.assertIn("res_partner_whatsapp_phone_tail_index", plan)
