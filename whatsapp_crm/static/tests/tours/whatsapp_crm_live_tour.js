import { rpc } from "@web/core/network/rpc";
import { registry } from "@web/core/registry";

/**
 * A salesperson has a lead open; the Cloud API emulator delivers the customer's message: it shows
 * in the chat and the chatter without reload, and the systray counter rises. The salesperson
 * answers with a canned response; the ticks move to "read" without reload.
 * Then they log an internal note beside the reply. Fixtures and final assertions:
 * whatsapp_crm/tests/test_inbox_ui.py.
 */
const QUESTION = "Can I get a price for the blue one?";
const ANSWER = "Our sofas start at 499 EUR.";

async function customerWrites(body) {
    // the emulator plays the customer's phone: its control API delivers a signed webhook to Odoo
    const [account] = await rpc("/web/dataset/call_kw/crm.whatsapp.account/search_read", {
        model: "crm.whatsapp.account",
        method: "search_read",
        args: [[], ["api_base_url"]],
        kwargs: { limit: 1, order: "sequence, id" },
    });
    await fetch(`${account.api_base_url}/_emulator/inbound`, {
        method: "POST",
        mode: "no-cors",
        body: JSON.stringify({ type: "text", from: "32470123456", name: "Ines Tour", body }),
    });
}

const NOTE = "Call her back about the delivery date";

function noWhatsappIds() {
    // a user never reads Meta's message ids, on a phone's screen neither
    const shown = document.body.innerText;
    if (shown.includes("wamid.")) {
        throw new Error(`A WhatsApp message id is visible: ${shown.slice(shown.indexOf("wamid."), 60)}`);
    }
}

function liveSteps({ mobile = false } = {}) {
    const layout = mobile
        ? [
              {
                  content: "Odoo's mobile layout: the burger menu shows (only below the md breakpoint)",
                  trigger: ".o_main_navbar .o_mobile_menu_toggle",
              },
          ]
        : [];
    return [
        ...layout,
        {
            content: "The lead's chatter has a WhatsApp button",
            trigger: ".o-mail-Chatter .o_whatsapp_crm_chatter_button",
        },
        {
            content: "Open the lead's WhatsApp tab",
            trigger: ".o_form_view .o_notebook a[name=whatsapp]",
            run: "click",
        },
        {
            content: "The chat shows the earlier message",
            trigger: ".o_whatsapp_crm_chat .o_whatsapp_crm_bubble_in:contains('Do you have the sofa in blue?')",
            ...(mobile ? { run: noWhatsappIds } : {}),
        },
        {
            content: "Nothing unread yet",
            trigger: ".o_whatsapp_crm_systray:not(:has(.o_whatsapp_crm_systray_counter))",
        },
        {
            content: "The window is open",
            trigger: ".o_whatsapp_crm_window:contains('Window closes in')",
            run: () => customerWrites(QUESTION),
        },
        {
            content: "The customer's message appears in the chat without reload",
            trigger: `.o_whatsapp_crm_chat .o_whatsapp_crm_bubble_in:contains('${QUESTION}')`,
        },
        {
            content: "... and in the lead's chatter",
            trigger: `.o-mail-Chatter .o-mail-Message:contains('${QUESTION}')`,
        },
        {
            content: "The unread counter rose",
            trigger: ".o_whatsapp_crm_systray .o_whatsapp_crm_systray_counter:contains('1')",
        },
        {
            content: "Type the canned response's shortcut",
            trigger: ".o_whatsapp_crm_chat textarea.o_whatsapp_crm_input",
            run: "edit /pri",
        },
        {
            content: "Pick the canned response",
            trigger: ".o_whatsapp_crm_canned button:contains('/price')",
            run: "click",
        },
        {
            content: "The reply box holds the response; send it",
            trigger: `.o_whatsapp_crm_chat textarea.o_whatsapp_crm_input:value('${ANSWER}')`,
            run: () => document.querySelector(".o_whatsapp_crm_chat button.o_whatsapp_crm_send").click(),
        },
        {
            content: "Read: the counter is gone",
            trigger: ".o_whatsapp_crm_systray:not(:has(.o_whatsapp_crm_systray_counter))",
        },
        {
            content: "The answer's ticks move to read without reload",
            trigger: `.o_whatsapp_crm_bubble_out:contains('${ANSWER}') .o_whatsapp_crm_tick[data-state=read]`,
            timeout: 20000,
            ...(mobile ? { run: noWhatsappIds } : {}),
        },
        {
            content: "Beside Send, log an internal note",
            trigger: ".o_whatsapp_crm_chat button.o_whatsapp_crm_note_toggle",
            run: "click",
        },
        {
            content: "Write the note",
            trigger: ".o_whatsapp_crm_chat .o_whatsapp_crm_reply_note textarea.o_whatsapp_crm_note_input",
            run: `edit ${NOTE}`,
        },
        {
            content: "Log it",
            trigger: ".o_whatsapp_crm_chat button.o_whatsapp_crm_log_note",
            run: "click",
        },
        {
            content: "The note shows in the chat as a note, not as a message to the customer",
            trigger: `.o_whatsapp_crm_chat .o_whatsapp_crm_note:contains('${NOTE}')`,
            ...(mobile ? { run: noWhatsappIds } : {}),
        },
        {
            content: "The reply box is back to WhatsApp",
            trigger: ".o_whatsapp_crm_chat textarea.o_whatsapp_crm_input:not(.o_whatsapp_crm_note_input)",
        },
    ];
}

registry.category("web_tour.tours").add("whatsapp_crm_live_tour", { steps: () => liveSteps() });

/** The same, in the mobile layout (a phone's screen), where no WhatsApp id may be seen. */
registry.category("web_tour.tours").add("whatsapp_crm_live_mobile_tour", {
    steps: () => liveSteps({ mobile: true }),
});
