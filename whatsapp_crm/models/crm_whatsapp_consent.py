from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

SCOPES = [("marketing", "Marketing Messages"), ("all", "All Business-Initiated Messages")]
STATES = [("opt_in", "Opted In"), ("opt_out", "Opted Out")]
SOURCES = [
    ("keyword", "Inbound Keyword"),
    ("web_form", "Web Form"),
    ("import", "Import"),
    ("manual", "Manual, with Proof"),
    ("meta_preferences", "WhatsApp Preferences"),
    ("api_error", "WhatsApp Error 131050"),
]
RECORDING = "whatsapp_consent_recording"  # context key: the change comes from _whatsapp_record()


class CrmWhatsappConsent(models.Model):
    """The current consent of a customer (a number, or a WhatsApp user id for customers known
    only by a username) in a company, for one scope. Every change is kept in its history."""

    _name = "crm.whatsapp.consent"
    _description = "WhatsApp Consent"
    _order = "changed_at desc, id desc"
    _rec_name = "customer"

    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    number = fields.Char("Number", index=True, help="The customer's number in international format (+...).")
    wa_user_id = fields.Char("WhatsApp User ID", index=True, help="For customers who chat with a username only.")
    customer = fields.Char(compute="_compute_customer")
    partner_id = fields.Many2one("res.partner", "Contact", index=True, ondelete="set null")
    scope = fields.Selection(SCOPES, required=True, default="marketing")
    state = fields.Selection(STATES, required=True)
    source = fields.Selection(SOURCES, readonly=True, help="Where the last change came from.")
    proof = fields.Text(help="What proves the customer's choice: a form, a signed paper, the message received...")
    changed_at = fields.Datetime("Changed On", readonly=True, default=fields.Datetime.now)
    changed_by_id = fields.Many2one("res.users", "Changed By", readonly=True)
    history_ids = fields.One2many("crm.whatsapp.consent.history", "consent_id", "History", readonly=True)
    blacklisted = fields.Boolean(
        "Blacklisted", compute="_compute_blacklisted", help="The number is in the phone blacklist (every channel)."
    )

    _sql_constraints = [
        ("number_unique", "unique(company_id, scope, number)", "This number already has a consent for this scope."),
        (
            "wa_user_id_unique",
            "unique(company_id, scope, wa_user_id)",
            "This WhatsApp user already has a consent for this scope.",
        ),
        ("customer_required", "check(number IS NOT NULL OR wa_user_id IS NOT NULL)", "Give a number or a user id."),
    ]

    @api.depends("number", "wa_user_id", "partner_id")
    def _compute_customer(self):
        for consent in self:
            who = consent.number or consent.wa_user_id or ""
            consent.customer = f"{consent.partner_id.name} ({who})" if consent.partner_id else who

    @api.depends("number")
    def _compute_blacklisted(self):
        numbers = [n for n in self.mapped("number") if n]
        # sudo: only administrators read the blacklist; its verdict is what matters here
        listed = set(self.env["phone.blacklist"].sudo().search([("number", "in", numbers)]).mapped("number"))
        for consent in self:
            consent.blacklisted = consent.number in listed

    @api.constrains("number")
    def _check_number(self):
        for consent in self.filtered("number"):
            if not consent.number.startswith("+") or not consent.number[1:].isdigit():
                raise ValidationError(_("%s is not a number in international format (+...).", consent.number))

    # ------------------------------------------------------------------
    # CRUD: the history is written for every change, whatever its way in
    # ------------------------------------------------------------------

    @api.model
    def _default_source(self):
        return "import" if self.env.context.get("import_file") else "manual"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("number"):
                vals["number"] = self._normalize_number(vals["number"], raise_exception=True)
        if self.env.context.get(RECORDING):
            return super().create(vals_list)
        for vals in vals_list:
            vals.setdefault("source", self._default_source())
            self._check_proof(vals)
            vals.update(changed_by_id=self.env.uid, changed_at=fields.Datetime.now())
        consents = super().create(vals_list)
        consents._append_history(dict.fromkeys(consents))
        return consents

    def write(self, vals):
        if self.env.context.get(RECORDING):
            return super().write(vals)
        if {"company_id", "number", "wa_user_id", "scope", "source", "changed_at", "changed_by_id"} & vals.keys():
            raise UserError(_("The customer and scope of a consent cannot be changed: record a new consent."))
        if "state" not in vals:
            return super().write(vals)
        vals = {"source": self._default_source(), **vals}
        self._check_proof({**vals, "proof": vals.get("proof")})
        previous = {consent: consent.state for consent in self}
        result = super().write({**vals, "changed_by_id": self.env.uid, "changed_at": fields.Datetime.now()})
        self._append_history({c: state for c, state in previous.items() if c.state != state})
        return result

    def unlink(self):
        if self:
            raise UserError(_("Consents are kept with their history: they cannot be deleted."))
        return super().unlink()

    @api.model
    def _check_proof(self, vals):
        if vals.get("source", "manual") == "manual" and not (vals.get("proof") or "").strip():
            raise UserError(_("A consent recorded by hand needs its proof."))

    def _append_history(self, previous_states, message=None):
        """One history line per consent of ``previous_states`` ({consent: previous state})."""
        lines = [
            {
                "consent_id": consent.id,
                "state": consent.state,
                "previous_state": previous or False,
                "source": consent.source,
                "proof": consent.proof,
                "user_id": consent.changed_by_id.id,
                "date": consent.changed_at,
                "message_id": message.get(consent) if message else False,
            }
            for consent, previous in previous_states.items()
        ]
        # sudo: the history is written by the system only (nobody may create lines by hand)
        self.env["crm.whatsapp.consent.history"].sudo().create(lines)

    @api.model
    def _normalize_number(self, number, raise_exception=False):
        digits = "".join(c for c in str(number or "") if c.isdigit())
        if not digits:
            if raise_exception:
                raise ValidationError(_("%s is not a phone number.", number))
            return False
        return f"+{digits}"

    # ------------------------------------------------------------------
    # The API of the features that learn a customer's choice
    # ------------------------------------------------------------------

    @api.model
    def _whatsapp_record(self, entries):
        """Record consent changes in batch; return the consents that changed.

        :param entries: dicts ``{company, number, wa_user_id, partner, scope, state, source,
            proof, message}`` (``number`` in E.164 or ``wa_user_id``; ``message`` the inbound
            ``crm.whatsapp.message`` that said it, if any)
        """
        Consent = self.sudo().with_context(**{RECORDING: True})
        entries = [e for e in entries if e.get("number") or e.get("wa_user_id")]
        for entry in entries:
            entry["number"] = self._normalize_number(entry.get("number"))
        current = Consent._whatsapp_find(entries)
        changed, previous, messages = Consent.browse(), {}, {}
        now = fields.Datetime.now()
        for entry in entries:
            key = self._key(entry["company"].id, entry["scope"], entry.get("number"), entry.get("wa_user_id"))
            consent = current.get(key)
            values = {
                "state": entry["state"],
                "source": entry["source"],
                "proof": entry.get("proof") or False,
                "changed_at": now,
                "changed_by_id": self.env.uid if not self.env.su else False,
            }
            partner = entry.get("partner")
            if consent and consent.state == entry["state"]:
                continue
            if consent:
                before = consent.state
                consent.write({**values, **({"partner_id": partner.id} if partner and not consent.partner_id else {})})
            else:
                before = None
                consent = Consent.create(
                    {
                        **values,
                        "company_id": entry["company"].id,
                        "number": entry.get("number") or False,
                        "wa_user_id": entry.get("wa_user_id") or False,
                        "partner_id": partner.id if partner else False,
                        "scope": entry["scope"],
                    }
                )
                for other_key in self._keys_of(consent):
                    current[other_key] = consent
            previous[consent] = before
            if entry.get("message"):
                messages[consent] = entry["message"].id
            changed |= consent
        if previous:
            Consent._append_history(previous, messages)
        return changed.with_env(self.env)

    @api.model
    def _key(self, company_id, scope, number=None, wa_user_id=None):
        return (company_id, scope, number or None, None if number else wa_user_id or None)

    def _keys_of(self, consent):
        keys = []
        if consent.number:
            keys.append(self._key(consent.company_id.id, consent.scope, consent.number))
        if consent.wa_user_id:
            keys.append(self._key(consent.company_id.id, consent.scope, None, consent.wa_user_id))
        return keys

    @api.model
    def _whatsapp_find(self, customers):
        """``{(company id, scope, number, user id): consent}`` of these customers (dicts with
        ``company``, ``number`` and/or ``wa_user_id``), in one query. A customer with a number is
        keyed by the number; one with a user id only, by the user id."""
        numbers = list({c["number"] for c in customers if c.get("number")})
        user_ids = list({c["wa_user_id"] for c in customers if c.get("wa_user_id")})
        companies = list({c["company"].id for c in customers})
        if not (numbers or user_ids):
            return {}
        domain = [("company_id", "in", companies), "|", ("number", "in", numbers), ("wa_user_id", "in", user_ids)]
        found = {}
        for consent in self.sudo().search(domain):
            for key in self._keys_of(consent):
                found[key] = consent
        return found

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_open_history(self):
        return {
            "type": "ir.actions.act_window",
            "name": _("Consent History"),
            "res_model": "crm.whatsapp.consent.history",
            "view_mode": "list",
            "domain": [("consent_id", "in", self.ids)],
        }
