import { Component, onWillStart, onWillUpdateProps, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { deserializeDate, deserializeDateTime, formatDate, formatDateTime } from "@web/core/l10n/dates";
import { formatMonetary } from "@web/views/fields/formatters";
import { registry } from "@web/core/registry";
import { useBus, useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

/**
 * The customer beside the chat: contact, company, tags, salesperson, consent, leads with stage
 * and revenue, planned activities, the last e-mails and notes, and quotations where Sales is
 * installed. One click opens the lead, or creates it.
 */
export class WhatsappCustomerCard extends Component {
    static template = "whatsapp_crm.WhatsappCustomerCard";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ card: false });
        onWillStart(() => this.load(this.props.record.resId));
        onWillUpdateProps((next) => {
            if (next.record.resId !== this.props.record.resId) {
                return this.load(next.record.resId);
            }
        });
        useBus(this.env.bus, "WHATSAPP_CRM:UPDATE", ({ detail }) => {
            if ((detail.conversation_ids || []).includes(this.props.record.resId)) {
                this.load(this.props.record.resId);
            }
        });
    }

    async load(conversationId) {
        this.state.card = conversationId
            ? await this.orm.call("crm.whatsapp.conversation", "whatsapp_customer_card", [[conversationId]])
            : false;
    }

    date(value) {
        return value ? formatDate(deserializeDate(value)) : "";
    }
    datetime(value) {
        return value ? formatDateTime(deserializeDateTime(value)) : "";
    }
    amount(value, currency) {
        return `${formatMonetary(value, { digits: [false, 0] })} ${currency}`.trim();
    }

    open(model, id) {
        this.action.doAction({ type: "ir.actions.act_window", res_model: model, res_id: id, views: [[false, "form"]] });
    }

    async createLead() {
        const action = await this.orm.call("crm.whatsapp.conversation", "whatsapp_action_create_lead", [
            [this.props.record.resId],
        ]);
        await this.props.record.load();
        this.action.doAction(action);
    }

    get createLeadLabel() {
        return _t("Create a lead");
    }
}

registry.category("view_widgets").add("whatsapp_customer_card", { component: WhatsappCustomerCard });
