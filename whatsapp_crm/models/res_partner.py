from odoo import _, api, fields, models
from odoo.tools.sql import create_index

from ..tools.phone import wa_digits, wa_id_variants

# The last 8 digits of a number, whatever its formatting: what every WhatsApp spelling of it shares.
# _whatsapp_find() queries exactly this expression, so that the indexes of init() serve it.
PHONE_TAIL_SQL = "right(regexp_replace({column}, '\\D', '', 'g'), 8)"


class ResPartner(models.Model):
    _inherit = "res.partner"

    whatsapp_conversation_ids = fields.One2many("crm.whatsapp.conversation", "partner_id", "WhatsApp Conversations")
    whatsapp_message_ids = fields.One2many("crm.whatsapp.message", "partner_id", "WhatsApp Messages")
    whatsapp_message_count = fields.Integer(compute="_compute_whatsapp_message_count")
    whatsapp_consent_ids = fields.One2many("crm.whatsapp.consent", "partner_id", "WhatsApp Consents")
    whatsapp_consent_history_ids = fields.One2many(
        "crm.whatsapp.consent.history", compute="_compute_whatsapp_consent", string="WhatsApp Consent History"
    )
    whatsapp_blacklisted = fields.Boolean(
        "In the Phone Blacklist", compute="_compute_whatsapp_consent", help="Nothing is sent to this number."
    )

    def init(self):
        super().init()
        # contact matching runs in the webhook request for every new customer: no sequential scan
        for column in ("mobile", "phone"):
            create_index(
                self.env.cr,
                f"res_partner_whatsapp_{column}_tail_index",
                self._table,
                [PHONE_TAIL_SQL.format(column=column)],
            )

    def _compute_whatsapp_message_count(self):
        counts = dict(
            self.env["crm.whatsapp.message"]._read_group([("partner_id", "in", self.ids)], ["partner_id"], ["__count"])
        )
        for partner in self:
            partner.whatsapp_message_count = counts.get(partner, 0)

    @api.depends("whatsapp_consent_ids", "mobile", "phone")
    def _compute_whatsapp_consent(self):
        History = self.env["crm.whatsapp.consent.history"]
        histories = History.search([("consent_id.partner_id", "in", self.ids)]) if self.ids else History
        numbers = {p: [n for n in (p._phone_format(fname="mobile"), p._phone_format(fname="phone")) if n] for p in self}
        all_numbers = [n for ns in numbers.values() for n in ns]
        # sudo: the blacklist is the administrator's; its verdict is what the salesperson needs
        listed = set(self.env["phone.blacklist"].sudo().search([("number", "in", all_numbers)]).mapped("number"))
        for partner in self:
            partner.whatsapp_consent_history_ids = histories.filtered(lambda h, p=partner: h.consent_id.partner_id == p)
            partner.whatsapp_blacklisted = bool(listed.intersection(numbers[partner]))

    def action_whatsapp_record_consent(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("whatsapp_crm.crm_whatsapp_consent_wizard_action")
        action["context"] = {"default_partner_id": self.id}
        return action

    def _whatsapp_get_recipients_info(self, account=None):
        """A contact is its own customer: its mobile, else its phone."""
        result = super()._whatsapp_get_recipients_info(account=None)
        for partner in self:
            result[partner.id]["partner"] = partner
        if account:
            self._whatsapp_find_conversations(account, result)
        return result

    def _whatsapp_wa_id(self):
        """The partner's number as a wa_id (mobile first), or False."""
        self.ensure_one()
        for fname in ("mobile", "phone"):
            if self[fname]:
                number = self._phone_format(fname=fname) or self[fname]
                if wa_digits(number):
                    return wa_digits(number)
        return False

    @api.model
    def _whatsapp_find(self, wa_id, company=None):
        """The oldest partner whose phone or mobile is this WhatsApp number (any variant).

        :param company: only contacts of this company or shared ones (an account's customers are
            matched within its company: another company's contact is not theirs)
        """
        variants = set(wa_id_variants(wa_id))
        if not variants:
            return self.browse()
        # Narrow with SQL: the last 8 digits are shared by every variant, whatever the formatting
        # ("+33 6 12 34 56 78" splits the last four), and indexed (see init); then compare E.164
        # numbers in Python.
        tail = wa_digits(wa_id)[-8:]
        self.env["res.partner"].flush_model(["phone", "mobile", "active", "company_id"])
        self.env.cr.execute(
            """
            SELECT id FROM res_partner
             WHERE active
               AND (right(regexp_replace(mobile, '\\D', '', 'g'), 8) = %s
                    OR right(regexp_replace(phone, '\\D', '', 'g'), 8) = %s)
               AND (%s IS NULL OR company_id IS NULL OR company_id = %s)
          ORDER BY id
            """,
            [tail, tail, company.id if company else None, company.id if company else None],
        )
        for partner in self.sudo().browse([row[0] for row in self.env.cr.fetchall()]):
            for fname in ("mobile", "phone"):
                if partner[fname] and wa_digits(partner._phone_format(fname=fname) or partner[fname]) in variants:
                    return partner.with_env(self.env)
        return self.browse()

    @api.model
    def _whatsapp_find_or_create(self, wa_id, name=None, company=None):
        """The contact of a WhatsApp number (within ``company``, see :meth:`_whatsapp_find`),
        created from the profile name if unknown."""
        partner = self._whatsapp_find(wa_id, company=company)
        if partner:
            return partner
        number = f"+{wa_digits(wa_id)}"
        return (
            self.sudo()
            .create(
                {
                    "name": name or number,
                    "mobile": self._phone_format(number=number, force_format="INTERNATIONAL") or number,
                    "comment": _("Created from WhatsApp."),
                }
            )
            .with_env(self.env)
        )

    def action_open_whatsapp(self):
        self.ensure_one()
        return self.env["crm.whatsapp.message"]._action_open([("partner_id", "=", self.id)])
