import ipaddress
import json
import secrets
from urllib.parse import urlsplit

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools.whatsapp_cloud_api import DEFAULT_BASE_URL, DEFAULT_VERSION, WhatsAppApiError, WhatsAppCloudApi

WEBHOOK_ROUTE = "/whatsapp_crm/webhook"
TOKEN_ERROR_CODES = (0, 190)
API_CONNECT_TIMEOUT = 5
API_READ_TIMEOUT = 30


def _new_verify_token(*_args):
    return secrets.token_urlsafe(24)


class CrmWhatsappAccount(models.Model):
    _name = "crm.whatsapp.account"
    _description = "WhatsApp Business Account"
    _inherit = ["mail.thread"]
    _order = "sequence, id"

    name = fields.Char(required=True, tracking=True, help="How Odoo users call this number, e.g. Sales line.")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    waba_id = fields.Char(
        "WhatsApp Business Account ID",
        required=True,
        tracking=True,
        help='In Meta\'s app dashboard: WhatsApp > API Setup, "WhatsApp Business Account ID".',
    )
    phone_number_id = fields.Char(
        "Phone Number ID",
        required=True,
        tracking=True,
        help='In Meta\'s app dashboard: WhatsApp > API Setup, "Phone number ID" under the number '
        "(an identifier of 15 or more digits, not the phone number itself).",
    )
    display_phone_number = fields.Char(
        help="The business number as customers see it; Test Connection reads it from Meta."
    )
    verified_name = fields.Char(
        readonly=True, help="The display name Meta approved for this number; Test Connection reads it."
    )
    quality_rating = fields.Char(readonly=True, help="Meta's code: GREEN, YELLOW, RED or UNKNOWN.")
    quality_label = fields.Char(
        "Quality",
        compute="_compute_meta_labels",
        help="Meta's rating of the messages sent from this number over the last 7 days, from customers' "
        "blocks and reports. A low quality lowers the messaging limit.",
    )
    messaging_limit_tier = fields.Char(readonly=True, help="Meta's code, e.g. TIER_1K.")
    messaging_limit_label = fields.Char(
        "Messaging Limit",
        compute="_compute_meta_labels",
        help="How many different customers this business may start conversations with (templates) in "
        "24 hours. Replies to customers who wrote do not count.",
    )
    access_token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="A permanent token of a system user: Meta Business Settings > Users > System users > Generate "
        "new token, with the permissions whatsapp_business_messaging and whatsapp_business_management. "
        "The token shown on API Setup expires after 24 hours.",
    )
    app_secret = fields.Char(
        groups="base.group_system",
        copy=False,
        help="In Meta's app dashboard: App settings > Basic > App secret. Odoo checks the signature of "
        "every webhook with it.",
    )
    verify_token = fields.Char(
        default=_new_verify_token,
        copy=False,
        groups="base.group_system",
        help="Paste it in Meta's app dashboard: WhatsApp > Configuration > Webhook > Verify token. Meta "
        "sends it back once, to check that the callback URL is yours.",
    )
    token_invalid = fields.Boolean(
        readonly=True, copy=False, help="Set when WhatsApp refused the access token (error 190)."
    )
    api_base_url = fields.Char(
        "API Base URL",
        required=True,
        default=DEFAULT_BASE_URL,
        help="https://graph.facebook.com for Meta; a local address only for the development emulator.",
    )
    api_version = fields.Char(
        "API Version",
        required=True,
        default=DEFAULT_VERSION,
        help="Version of Meta's Graph API, e.g. v25.0. Meta supports each version for about two years.",
    )
    throughput_limit = fields.Integer(
        "Throughput (messages/s)", default=80, help="Never send faster than this from this number."
    )
    team_id = fields.Many2one("crm.team", "Sales Team", help="Sales team of the leads created from chats.")
    user_ids = fields.Many2many("res.users", string="Agents", help="Salespeople who receive new conversations in turn.")
    lead_policy = fields.Selection(
        [
            ("new_conversation", "For every new conversation"),
            ("no_open_lead", "When the contact has no open lead"),
            ("never", "Never"),
        ],
        string="Create Leads",
        default="no_open_lead",
        required=True,
    )
    webhook_url = fields.Char(
        "Webhook URL",
        compute="_compute_webhook_url",
        help="Paste it in Meta's app dashboard: WhatsApp > Configuration > Webhook > Callback URL, then "
        "subscribe to the messages and message_template_status_update fields.",
    )
    webhook_url_warning = fields.Char("Webhook URL Warning", compute="_compute_webhook_url_warning")
    # Consent (see crm.whatsapp.consent)
    consent_window_replies = fields.Boolean(
        "Answer Opted-out Customers in Their Window",
        default=True,
        help="A customer who opted out may still be answered within 24 hours of their own message.",
    )
    marketing_cap_count = fields.Integer(
        "Marketing Templates per Customer", default=0, help="At most this many in the period below; 0: no cap."
    )
    marketing_cap_days = fields.Integer("Period (days)", default=7)
    consent_stop_reply = fields.Text(
        "Reply to a Stop Keyword",
        translate=True,
        default=lambda self: self.env._(
            "You will not receive our messages any more. Send START to receive them again."
        ),
        help="Sent once when a customer's keyword stops our messages; empty: no reply.",
    )
    consent_start_reply = fields.Text(
        "Reply to a Start Keyword",
        translate=True,
        default=lambda self: self.env._("Welcome back! You will receive our messages again."),
        help="Sent once when a customer's keyword resumes our messages; empty: no reply.",
    )

    _sql_constraints = [
        ("phone_number_id_unique", "unique(phone_number_id)", "This phone number ID is already configured."),
        ("throughput_limit_positive", "check(throughput_limit > 0)", "The throughput must be positive."),
    ]

    @api.depends("company_id")
    def _compute_webhook_url(self):
        for account in self:
            account.webhook_url = f"{account.get_base_url()}{WEBHOOK_ROUTE}"

    @api.depends("webhook_url", "api_base_url")
    def _compute_webhook_url_warning(self):
        for account in self:
            parts = urlsplit(account.webhook_url or "")
            warning = False
            if parts.scheme != "https":
                warning = self.env._(
                    "Meta only delivers webhooks to public HTTPS addresses, and this URL is not HTTPS. Serve "
                    "Odoo over HTTPS (a reverse proxy) and set the system parameter web.base.url to its address."
                )
            elif _is_local_host(parts.hostname):
                warning = self.env._(
                    "%s cannot be reached from the internet: Meta cannot deliver webhooks to it.", parts.hostname
                )
            if warning and _is_local_host(urlsplit(account.api_base_url or "").hostname):
                warning = self.env._("%s This account talks to a local emulator, which delivers here anyway.", warning)
            account.webhook_url_warning = warning

    @api.depends("quality_rating", "messaging_limit_tier")
    def _compute_meta_labels(self):
        quality_labels = {
            "GREEN": self.env._("High quality"),
            "YELLOW": self.env._("Medium quality"),
            "RED": self.env._("Low quality"),
            "UNKNOWN": self.env._("Not rated yet"),
        }
        limit_labels = {
            "TIER_50": self.env._("50 customers a day"),
            "TIER_250": self.env._("250 customers a day"),
            "TIER_1K": self.env._("1,000 customers a day"),
            "TIER_2K": self.env._("2,000 customers a day"),
            "TIER_10K": self.env._("10,000 customers a day"),
            "TIER_100K": self.env._("100,000 customers a day"),
            "TIER_UNLIMITED": self.env._("Unlimited"),
        }
        for account in self:
            quality, tier = (account.quality_rating or "").upper(), (account.messaging_limit_tier or "").upper()
            account.quality_label = quality_labels.get(quality, account.quality_rating or False)
            account.messaging_limit_label = limit_labels.get(tier, account.messaging_limit_tier or False)

    def write(self, vals):
        if vals.get("access_token"):  # a new token deserves a new chance
            vals = {"token_invalid": False, **vals}
        return super().write(vals)

    def unlink(self):
        # its conversations and messages go with it, deleted by the database
        self.env["crm.whatsapp.conversation"]._whatsapp_live_unlinked()
        return super().unlink()

    def _get_api(self):
        """The API client of this account."""
        self.ensure_one()
        account = self.sudo()
        if not account.access_token:
            raise UserError(_("The WhatsApp account %s has no access token.", self.name))
        return WhatsAppCloudApi(
            account.access_token,
            phone_number_id=account.phone_number_id,
            waba_id=account.waba_id,
            base_url=account.api_base_url,
            version=account.api_version,
            timeout=(API_CONNECT_TIMEOUT, self._api_read_timeout()),
        )

    def _api_read_timeout(self):
        """Seconds to wait for Graph's answer (``whatsapp_crm.api_read_timeout``, default 30). A send
        whose answer does not come in time is not sent again blindly (see the send queue)."""
        value = self.env["ir.config_parameter"].sudo().get_param("whatsapp_crm.api_read_timeout")
        try:
            return max(float(value), 0.1) if value else API_READ_TIMEOUT
        except ValueError:
            return API_READ_TIMEOUT

    def _handle_api_error(self, error):
        """Record what an API error says about the accounts themselves.

        An invalid or expired token (codes 0 and 190) flags ``token_invalid`` and tells the
        chatter once. Return True when the error concerns the accounts (not a message).
        """
        if error.code not in TOKEN_ERROR_CODES:
            return False
        for account in self.sudo().filtered(lambda a: not a.token_invalid):
            account.token_invalid = True
            account.message_post(body=_("WhatsApp refused the access token: %s", error.get_message(self.env.lang)))
        return True

    def _keep_token_invalid_after_rollback(self):
        """Flag ``token_invalid`` again in a new transaction once the current one is rolled back
        (as it is when a button raises a UserError)."""
        accounts = self.sudo()

        def flag():
            with accounts.env.registry.cursor() as cr:
                accounts.with_env(accounts.env(cr=cr)).exists().write({"token_invalid": True})

        self.env.cr.postrollback.add(flag)

    def action_test_connection(self):
        """Read the phone number's details from WhatsApp and show them, or tell why it failed."""
        self.ensure_one()
        try:
            with self._get_api() as api:
                url = api._url(self.phone_number_id)
                details = api.get_phone_number()
        except WhatsAppApiError as error:
            if self._handle_api_error(error):
                self._keep_token_invalid_after_rollback()
            raise UserError(
                _("Test connection to %(url)s failed: %(reason)s", url=url, reason=self._connection_failure(error))
            ) from error
        self.write(
            {
                "display_phone_number": details.get("display_phone_number") or self.display_phone_number,
                "verified_name": details.get("verified_name"),
                "quality_rating": details.get("quality_rating"),
                "messaging_limit_tier": details.get("messaging_limit_tier") or self.messaging_limit_tier,
                "token_invalid": False,
            }
        )
        return self._success_notification(
            _("Connection successful"),
            _(
                "%(url)s answered: %(number)s (%(name)s), %(quality)s, messaging limit: %(limit)s",
                url=url,
                number=self.display_phone_number,
                name=self.verified_name or "-",
                quality=self.quality_label or "-",
                limit=self.messaging_limit_label or "-",
            ),
        )

    def action_sync_templates(self):
        """Read the message templates of these accounts from WhatsApp and say what changed."""
        totals = {"created": 0, "updated": 0, "archived": 0}
        for account in self:
            for key, count in self.env["crm.whatsapp.template"]._sync_account(account).items():
                totals[key] += count
        return self._success_notification(
            _("Templates synchronized"),
            _(
                "%(accounts)s account(s): %(created)s templates created, %(updated)s updated, %(archived)s archived.",
                accounts=len(self),
                **totals,
            ),
        )

    def _success_notification(self, title, message):
        """A success notification, then the form reloaded with what the action changed."""
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": title,
                "message": message,
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _connection_failure(self, error):
        """Why a connection test failed, in words: a test is never retried, so no error says it will be."""
        if error.code is None and error.http_status is None:
            if error.timeout:
                return _("nothing answered in time. Check the API Base URL and this server's internet access.")
            return _("nothing answers at this address. Check the API Base URL and this server's internet access.")
        if error.code is None and error.http_status >= 500:
            return _("the server answered with an error (HTTP %s). Try again in a few minutes.", error.http_status)
        if error.retryable:
            return _("WhatsApp is busy (%s). Try again in a few minutes.", error.details or error.title or error.code)
        return error.get_message(self.env.lang)

    def action_regenerate_verify_token(self):
        """A new verify token (managers only): Meta's webhook subscription must be set up again."""
        if not self.env.su and not self.env.user.has_group("whatsapp_crm.group_whatsapp_crm_manager"):
            raise AccessError(_("Only WhatsApp managers can regenerate the verify token."))
        self.check_access("read")
        for account in self:
            account.sudo().verify_token = _new_verify_token()

    @api.model
    def _find_by_verify_token(self, token):
        if not token:
            return self.browse()
        return self.sudo().search([("verify_token", "=", token)], limit=1)

    # ------------------------------------------------------------
    # Webhooks: what Meta says about the number and the account
    # (``_whatsapp_webhook_<field>(account, value)``, see crm.whatsapp.webhook.event)
    # ------------------------------------------------------------

    @api.model
    def _whatsapp_webhook_phone_number_quality_update(self, account, value):
        values = {}
        if value.get("current_limit"):
            values["messaging_limit_tier"] = str(value["current_limit"])
        if value.get("quality_rating") or value.get("new_quality_score"):
            values["quality_rating"] = str(value.get("quality_rating") or value.get("new_quality_score"))
        if values:
            account.write(values)
        account.message_post(
            body=_(
                "Phone number quality update: %(event)s, messaging limit %(limit)s",
                event=value.get("event"),
                limit=value.get("current_limit") or "-",
            )
        )
        return [], False

    @api.model
    def _whatsapp_webhook_account_update(self, account, value):
        details = {k: v for k, v in value.items() if k not in ("event", "messaging_product")}
        account.message_post(
            body=_(
                "WhatsApp account update: %(event)s %(details)s", event=value.get("event"), details=json.dumps(details)
            )
        )
        return [], False


def _is_local_host(host):
    """Whether ``host`` (a name or an IP address) cannot be reached from the internet."""
    host = (host or "").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".lan", ".internal", ".home")):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return "." not in host  # a bare machine name
