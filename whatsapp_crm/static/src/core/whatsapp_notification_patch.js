import { Failure } from "@mail/core/common/failure_model";
import { Message } from "@mail/core/common/message";
import { Notification } from "@mail/core/common/notification_model";
import { MessagingMenu } from "@mail/core/public_web/messaging_menu";
import { _t } from "@web/core/l10n/translation";
import { patch } from "@web/core/utils/patch";

// Delivery statuses of WhatsApp messages are mail.notification rows of type "whatsapp_crm".
const TYPE = "whatsapp_crm";

patch(Notification.prototype, {
    get icon() {
        return this.notification_type === TYPE ? "fa fa-whatsapp" : super.icon;
    },
    get label() {
        return this.notification_type === TYPE ? _t("WhatsApp") : super.label;
    },
});

patch(Failure.prototype, {
    get iconSrc() {
        return this.type === TYPE ? "/whatsapp_crm/static/description/icon.png" : super.iconSrc;
    },
    get body() {
        return this.type === TYPE ? _t("A WhatsApp message was not sent") : super.body;
    },
});

patch(Message.prototype, {
    async onClickFailure() {
        if (this.message.message_type === TYPE) {
            const action = await this.env.services.orm.call("mail.message", "whatsapp_failure_action", [
                this.message.id,
            ]);
            this.env.services.action.doAction(action);
        } else {
            super.onClickFailure(...arguments);
        }
    },
});

patch(MessagingMenu.prototype, {
    openFailureView(failure) {
        if (failure.type !== TYPE) {
            return super.openFailureView(failure);
        }
        this.env.services.action.doAction({
            name: _t("WhatsApp Failures"),
            type: "ir.actions.act_window",
            view_mode: "list,form",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            target: "current",
            res_model: "crm.whatsapp.message",
            domain: [
                ["mail_message_id.model", "=", failure.resModel],
                ["state", "in", ["failed", "refused"]],
                ["author_id", "=", this.store.self.userId],
            ],
            context: { create: false },
        });
        this.dropdown.close();
    },
});
