"""whatsapp_crm installs beside Odoo Enterprise's `whatsapp` and OCA's `mail_gateway_whatsapp`:
none of its technical names may be one of theirs."""

import re
from pathlib import Path

from odoo import http
from odoo.tests import TransactionCase, tagged

from ..models.crm_whatsapp_message_queue import SEND_DEFAULTS

MODULE = "whatsapp_crm"
# Technical names the other WhatsApp add-ons use.
FOREIGN_MODELS = {
    "whatsapp.account",
    "whatsapp.message",
    "whatsapp.template",
    "whatsapp.template.variable",
    "whatsapp.template.button",
    "whatsapp.composer",
    "whatsapp.preview",
    "mail.gateway",
    "mail.gateway.whatsapp",
    "mail.whatsapp.composer",
}
# get_param("key") / set_param(f"key"...): the keys the code uses
PARAM_RE = re.compile(r"""(?:get|set)_param\(\s*f?["']([^"']+)["']""")
FOREIGN_SELECTION_VALUES = {"whatsapp", "whatsapp_message", "gateway", "gateway_notification"}


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestCoexistence(TransactionCase):
    def _own_xmlids(self, model):
        return self.env["ir.model.data"].search([("module", "=", MODULE), ("model", "=", model)])

    def test_models_and_tables(self):
        own_models = self.env["ir.model"].browse(self._own_xmlids("ir.model").mapped("res_id"))
        created = own_models.filtered(lambda m: m.modules == MODULE)
        self.assertIn("crm.whatsapp.account", created.mapped("model"))
        for model in created:
            self.assertTrue(model.model.startswith("crm.whatsapp."), model.model)
            self.assertNotIn(model.model, FOREIGN_MODELS)
            self.assertTrue(self.env[model.model]._table.startswith("crm_whatsapp_"), model.model)

    def test_fields_added_to_shared_models(self):
        fields = self.env["ir.model.fields"].browse(self._own_xmlids("ir.model.fields").mapped("res_id"))
        # Fields only this module defines on models it does not own (not those it extends, like `state`).
        added = fields.filtered(lambda f: not f.model.startswith("crm.whatsapp.") and f.modules == MODULE)
        self.assertTrue(added, "the module extends res.partner and crm.lead")
        for field in added:
            # Odoo Enterprise's whatsapp uses the `wa_` prefix on shared models.
            self.assertTrue(field.name.startswith("whatsapp_"), f"{field.model}.{field.name}")

    def test_selection_values(self):
        values = self.env["ir.model.fields.selection"].browse(
            self._own_xmlids("ir.model.fields.selection").mapped("res_id")
        )
        # Values added to fields of other modules (ir.actions.server.state, mail.message.message_type...).
        foreign = values.filtered(lambda v: v.field_id.modules != MODULE)
        self.assertIn("whatsapp_crm", foreign.mapped("value"))
        for value in foreign:
            self.assertTrue(value.value.startswith(MODULE), f"{value.field_id.model}.{value.field_id.name}")
            self.assertNotIn(value.value, FOREIGN_SELECTION_VALUES)

    def test_routes(self):
        urls = [url for url, _endpoint in http._generate_routing_rules([MODULE], nodb_only=False)]
        self.assertIn(f"/{MODULE}/webhook", urls)
        for url in urls:
            self.assertTrue(url.startswith(f"/{MODULE}/"), url)

    def test_config_parameters(self):
        """Every setting the code reads or writes, and every parameter the install wrote, is
        ``whatsapp_crm.<key>`` (Odoo Enterprise's whatsapp uses ``whatsapp.``)."""
        keys = set(
            self.env["ir.config_parameter"]
            .browse(self._own_xmlids("ir.config_parameter").mapped("res_id"))
            .mapped("key")
        )
        root = Path(__file__).resolve().parent.parent
        for path in root.rglob("*.py"):
            if "tests" in path.relative_to(root).parts:
                continue
            for key in PARAM_RE.findall(path.read_text(encoding="utf-8")):
                # f"whatsapp_crm.{key}": the send settings and their defaults
                keys |= {key.replace("{key}", name) for name in SEND_DEFAULTS} if "{key}" in key else {key}
        self.assertIn("whatsapp_crm.webhook_event_retention_days", keys)
        self.assertIn("whatsapp_crm.api_read_timeout", keys)
        self.assertIn("whatsapp_crm.unconfirmed_wait_seconds", keys)
        for key in keys:
            self.assertTrue(key.startswith(f"{MODULE}."), key)
        stored = self.env["ir.config_parameter"].sudo().search([("key", "=like", "whatsapp%")]).mapped("key")
        for key in stored:
            self.assertTrue(key.startswith(f"{MODULE}."), key)
