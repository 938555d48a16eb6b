"""Every list of the module, when empty, says what to do with an empty state Odoo 18 styles."""

import re
from pathlib import Path

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged

NOCONTENT_RE = re.compile(r"o_view_nocontent_\w+")


@tagged("post_install", "-at_install", "whatsapp_crm")
class TestEmptyStates(TransactionCase):
    def test_empty_states_use_odoo_classes(self):
        styles = "".join(
            path.read_text(encoding="utf-8") for path in Path(get_module_path("web"), "static", "src").rglob("*.scss")
        )
        known = set(NOCONTENT_RE.findall(styles))
        self.assertIn("o_view_nocontent_smiling_face", known)
        actions = self.env["ir.model.data"].search(
            [("module", "=", "whatsapp_crm"), ("model", "=", "ir.actions.act_window")]
        )
        for action in self.env["ir.actions.act_window"].browse(actions.mapped("res_id")):
            with self.subTest(action=action.name):
                used = set(NOCONTENT_RE.findall(action.help or ""))
                self.assertLessEqual(used, known, "an empty state class Odoo 18 does not style")
