import json

from odoo import api, fields, models


class CrmWhatsappWebhookEvent(models.Model):
    """How a webhook event reads in the log: a real title, the payload pretty-printed, the
    messages it made or updated, and "Process again" only where processing can change the outcome."""

    _inherit = "crm.whatsapp.webhook.event"

    payload_pretty = fields.Text("Payload (formatted)", compute="_compute_payload_details")
    message_ids = fields.Many2many(
        "crm.whatsapp.message", string="Messages", compute="_compute_payload_details",
        help="The WhatsApp messages this delivery brought or gave a status to.",
    )  # fmt: skip
    message_count = fields.Integer(compute="_compute_payload_details")
    can_process_again = fields.Boolean(compute="_compute_can_process_again")

    def _payload_values(self):
        """The ``value`` of every change of the payload, with its field: ``[(field, value)]``."""
        self.ensure_one()
        try:
            payload = json.loads(self.payload or "{}")
        except ValueError:
            return []
        return [
            (change.get("field"), change.get("value") or {})
            for entry in (payload.get("entry") or [] if isinstance(payload, dict) else [])
            for change in entry.get("changes") or []
            if isinstance(change, dict)
        ]

    @api.depends("payload")
    def _compute_payload_details(self):
        wamids = {}
        for event in self:
            ids = set()
            for _field, value in event._payload_values():
                ids |= {item.get("id") for item in (value.get("messages") or []) + (value.get("statuses") or [])}
            wamids[event] = ids - {None}
        all_wamids = set().union(*wamids.values()) if wamids else set()
        Message = self.env["crm.whatsapp.message"]
        messages = Message.search([("wamid", "in", list(all_wamids))]) if all_wamids else Message
        for event in self:
            try:
                event.payload_pretty = json.dumps(json.loads(event.payload or "{}"), indent=2, ensure_ascii=False)
            except ValueError:
                event.payload_pretty = event.payload
            event.message_ids = messages.filtered(lambda m, ids=wamids[event]: m.wamid in ids)
            event.message_count = len(event.message_ids)

    @api.depends("fields_summary", "payload")
    def _compute_display_name(self):
        for event in self:
            event.display_name = event._title()

    def _title(self):
        """ "Message from Ivana Horvat (+385911234567)", "Status read of a message to 385...", ..."""
        self.ensure_one()
        for field, value in self._payload_values():
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in value.get("contacts") or []}
            messages, statuses = value.get("messages") or [], value.get("statuses") or []
            if messages:
                sender = messages[0].get("from") or messages[0].get("from_user_id") or "?"
                who = f"{names[sender]} (+{sender})" if names.get(sender) else f"+{sender}"
                if len(messages) > 1:
                    return self.env._("%(count)s messages from %(who)s", count=len(messages), who=who)
                return self.env._("Message from %s", who)
            if statuses:
                return self.env._(
                    "Status %(status)s of a message to +%(to)s",
                    status=statuses[0].get("status"),
                    to=statuses[0].get("recipient_id") or "?",
                )
            if field == "message_template_status_update":
                return self.env._(
                    "Template %(template)s: %(event)s",
                    template=value.get("message_template_name"),
                    event=value.get("event"),
                )
            if field:
                return self.env._("%(field)s from WhatsApp", field=field)
        return self.env._("WhatsApp delivery #%s", self.id)

    @api.depends("state", "account_id.active")
    def _compute_can_process_again(self):
        for event in self:
            # failed: a later attempt may succeed; ignored for want of an (active) account: it may
            # exist now. Done, pending and otherwise ignored events would not change.
            event.can_process_again = event.state == "failed" or (
                event.state == "ignored" and not (event.account_id and event.account_id.active)
            )

    def action_open_messages(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Messages"),
            "res_model": "crm.whatsapp.message",
            "view_mode": "list,form",
            "domain": [("id", "in", self.message_ids.ids)],
        }
