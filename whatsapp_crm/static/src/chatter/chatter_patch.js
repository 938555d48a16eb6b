import { Chatter } from "@mail/chatter/web_portal/chatter";
import { patch } from "@web/core/utils/patch";

export const WHATSAPP_THREAD_MODELS = ["crm.lead", "res.partner"];

/** A "WhatsApp" button beside "Send message" in the chatter of leads and contacts. */
patch(Chatter.prototype, {
    get hasWhatsappButton() {
        return WHATSAPP_THREAD_MODELS.includes(this.props.threadModel) && Boolean(this.props.threadId);
    },

    openWhatsapp() {
        const thread = this.state.thread;
        this.env.services.action.doAction("whatsapp_crm.crm_whatsapp_composer_action", {
            additionalContext: { default_res_model: thread.model, default_res_id: thread.id },
            onClose: () => this.load(thread, ["messages"]),
        });
    },
});
