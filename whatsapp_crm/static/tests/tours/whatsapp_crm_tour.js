import { registry } from "@web/core/registry";

/**
 * A salesperson reads a customer's WhatsApp message on the lead and answers it from the composer.
 * Fixtures and final assertions: whatsapp_crm/tests/test_ui.py.
 */
const INBOUND = "Do you have the sofa in blue?";
const REPLY = "Yes we have it in navy blue";

registry.category("web_tour.tours").add("whatsapp_crm_tour", {
    steps: () => [
        {
            content: "The lead form shows a WhatsApp tab",
            trigger: ".o_form_view .o_notebook a[name=whatsapp]",
            run: "click",
        },
        {
            content: "The customer's message is in the WhatsApp tab",
            trigger: `.o_whatsapp_crm_chat .o_whatsapp_crm_bubble_in:contains('${INBOUND}')`,
        },
        {
            content: "... and in the chatter, posted by the customer",
            trigger: `.o-mail-Message:has(.o-mail-Message-author:contains('Ines Tour')):contains('${INBOUND}')`,
        },
        {
            content: "Open the WhatsApp composer",
            trigger: ".o_form_view .o_statusbar_buttons button:contains('WhatsApp')",
            run: "click",
        },
        {
            content: "The 24-hour window is open: free text is allowed",
            trigger: ".modal .o_form_view .alert-success",
        },
        {
            content: "The composer writes to the customer's conversation",
            trigger: ".modal .o_field_widget[name=recipient]:contains('Ines Tour')",
        },
        {
            content: "Write the reply",
            trigger: ".modal .o_field_widget[name=body] textarea",
            run: `edit ${REPLY} && press Tab`,
        },
        {
            content: "The preview shows the reply",
            trigger: `.modal .o_field_widget[name=preview]:contains('${REPLY}')`,
        },
        {
            content: "Send it",
            trigger: ".modal .modal-footer button[name=action_send]",
            run: "click",
        },
        {
            content: "WhatsApp accepted the message",
            trigger: ".o_notification:contains('WhatsApp message sent')",
        },
        {
            content: "The composer is closed",
            trigger: "body:not(:has(.modal .o_form_view))",
        },
        {
            content: "The reply is logged in the chatter with its WhatsApp status",
            trigger: `.o-mail-Message:contains('${REPLY}'):contains('WhatsApp')`,
        },
    ],
});
