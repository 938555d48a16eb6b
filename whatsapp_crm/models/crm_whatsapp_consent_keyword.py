import string
import unicodedata

from odoo import api, fields, models

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
        """``{message: keyword}`` for the text messages made of a keyword alone, in one query;
        an account's own keyword wins over the default one."""
        texts = {m: normalize_keyword(m.body) for m in messages if m.message_type == "text" and m.body}
        texts = {m: t for m, t in texts.items() if t and len(t) <= 32}
        if not texts:
            return {}
        keywords = self.sudo().search(
            [("normalized", "in", list(set(texts.values()))), ("account_id", "in", [False, *messages.account_id.ids])]
        )
        table = {}
        for keyword in keywords.sorted(lambda k: bool(k.account_id)):  # accounts' own last: they win
            table[keyword.account_id.id, keyword.normalized] = keyword
        matches = {}
        for message, text in texts.items():
            keyword = table.get((message.account_id.id, text)) or table.get((False, text))
            if keyword:
                matches[message] = keyword
        return matches
