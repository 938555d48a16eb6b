import string
import unicodedata

from odoo import api, fields, models, tools

from .crm_whatsapp_consent import SCOPES


def normalize_keyword(text):
    """A message as keywords are compared: without case, accents, surrounding spaces and
    punctuation ("Arrêt !" is "arret")."""
    text = unicodedata.normalize("NFKD", str(text or "")).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.strip(string.punctuation + " \t\r\n¡¿").split())


class CrmWhatsappConsentKeyword(models.Model):
    """A word that, sent alone by a customer, stops or resumes our messages."""

    _name = "crm.whatsapp.consent.keyword"
    _description = "WhatsApp Consent Keyword"
    _order = "action desc, name"

    name = fields.Char("Keyword", required=True, help="Matched as the whole message, ignoring case and accents.")
    normalized = fields.Char(compute="_compute_normalized", store=True, index=True)
    action = fields.Selection([("stop", "Stop"), ("start", "Start Again")], required=True, default="stop")
    scope = fields.Selection(SCOPES, required=True, default="all", help="What the customer stops or resumes.")
    account_id = fields.Many2one(
        "crm.whatsapp.account", "WhatsApp Account", ondelete="cascade", help="Empty: every account."
    )
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("keyword_unique", "unique(account_id, normalized)", "This keyword already exists for this account."),
    ]

    @api.depends("name")
    def _compute_normalized(self):
        for keyword in self:
            keyword.normalized = normalize_keyword(keyword.name)

    @api.model
    def _match(self, messages):
        """``{message: keyword}`` for the text messages made of a keyword alone; an account's own
        keyword wins over the default one. No query: the keywords are cached."""
        table = self._keyword_table()
        matches = {}
        for message in messages:
            if message.message_type != "text" or not message.body or len(message.body) > 200:
                continue  # (a keyword is a word or two)
            text = normalize_keyword(message.body)
            keyword_id = table.get((message.account_id.id, text)) or table.get((False, text))
            if text and keyword_id:
                matches[message] = self.sudo().browse(keyword_id)
        return matches

    @api.model
    @tools.ormcache()
    def _keyword_table(self):
        """``{(account id or False, normalized keyword): keyword id}`` of the active keywords."""
        keywords = self.sudo().search_fetch([], ["account_id", "normalized"])
        return {(keyword.account_id.id, keyword.normalized): keyword.id for keyword in keywords}

    @api.model_create_multi
    def create(self, vals_list):
        self.env.registry.clear_cache()
        return super().create(vals_list)

    def write(self, vals):
        self.env.registry.clear_cache()
        return super().write(vals)

    def unlink(self):
        self.env.registry.clear_cache()
        return super().unlink()
