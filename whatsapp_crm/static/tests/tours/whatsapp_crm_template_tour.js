import { registry } from "@web/core/registry";
import { sendTemplateSteps } from "./whatsapp_crm_tour_steps";

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
        ...sendTemplateSteps("quote", "quote_ready", "Hello Ines Tour"),
        {
            content: "The template is logged in the chatter",
            trigger: "body:not(:has(.modal .o_form_view)) .o-mail-Message:contains('quote_ready')",
        },
    ],
});
