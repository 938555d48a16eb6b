import { Component, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";

/** The systray's WhatsApp icon: unread customer messages of my chats and my teams' unassigned ones. */
export class WhatsappSystray extends Component {
    static template = "whatsapp_crm.WhatsappSystray";
    static props = {};

    setup() {
        this.live = useState(useService("whatsapp_crm.live").state);
        this.action = useService("action");
        this.title = _t("WhatsApp conversations");
    }

    onClick() {
        this.action.doAction("whatsapp_crm.crm_whatsapp_conversation_action_my");
    }
}

export const systrayItem = { Component: WhatsappSystray };

registry.category("systray").add("whatsapp_crm.systray", systrayItem, { sequence: 26 });
