import { registry } from "@web/core/registry";

/**
 * Outside the 24-hour window a salesperson can only send an approved template, filled from the lead.
 * Fixtures and final assertions: whatsapp_crm/tests/test_ui.py.
 */
registry.category("web_tour.tours").add("whatsapp_crm_template_tour", {
    steps: () => [
        {
            content: "Open the WhatsApp composer from the lead",
            trigger: ".o_form_view .o_statusbar_buttons button:contains('WhatsApp')",
            run: "click",
        },
        {
            content: "The composer says the window is closed",
            trigger: ".modal .o_form_view .alert-warning",
        },
        {
            content: "Only templates can be sent: the free text is gone",
            trigger: ".modal .o_form_view:not(:has(.o_field_widget[name=body]))",
        },
        {
            content: "Look for the template",
            trigger: ".modal .o_field_widget[name=template_id] input",
            run: "edit quote",
        },
        {
            content: "Choose it",
            trigger: ".modal .o-autocomplete--dropdown-item a:contains('quote_ready')",
            run: "click",
        },
        {
            content: "The preview shows the template filled from the lead",
            trigger: ".modal .o_field_widget[name=preview]:contains('Hello Ines Tour')",
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
            content: "The template is logged in the chatter",
            trigger: "body:not(:has(.modal .o_form_view)) .o-mail-Message:contains('quote_ready')",
        },
    ],
});
