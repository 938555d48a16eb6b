/* The customer phone page of the Cloud API emulator: plain JavaScript, no build step.
 *
 * It plays customers talking to the business. Each customer action is a control of the
 * emulator (POST /_emulator/inbound), which delivers it to Odoo as a signed webhook. The chat
 * (customer and business messages, with the business messages' last status) is read from
 * POST /_emulator/chat every POLL_MS. Payload text is always inserted as text, never as HTML.
 */
(function () {
    "use strict";

    const POLL_MS = 700;
    const REACTIONS = ["👍", "❤️", "😂", "😮", "🙏"];
    const TICKS = { accepted: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠ not delivered" };
    const STORE_KEY = "whatsapp_crm_emulator_customers";

    const $ = (id) => document.getElementById(id);
    const state = { customer: null, items: [], rendered: "", replyTo: null, timer: null };

    function el(tag, attrs, ...children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(attrs || {})) {
            if (key === "class") node.className = value;
            else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
            else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
        }
        for (const child of children.flat()) {
            if (child !== null && child !== undefined && child !== false) {
                node.append(child instanceof Node ? child : String(child));
            }
        }
        return node;
    }

    async function control(action, data) {
        const response = await fetch(`/_emulator/${action}`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(data),
        });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
        return answer;
    }

    function showError(message) {
        const box = $("error");
        box.textContent = message;
        box.hidden = !message;
        if (message) setTimeout(() => (box.hidden = true), 6000);
    }

    // Customers: kept in this browser, shared by its tabs; the URL says which one this tab plays
    const normalize = (number) => String(number || "").replace(/\D/g, "");
    const loadCustomers = () => JSON.parse(localStorage.getItem(STORE_KEY) || "[]");

    function rememberCustomer(customer) {
        const customers = loadCustomers().filter((c) => c.wa_id !== customer.wa_id);
        customers.unshift(customer);
        localStorage.setItem(STORE_KEY, JSON.stringify(customers.slice(0, 20)));
    }

    function forgetCustomer(waId) {
        localStorage.setItem(STORE_KEY, JSON.stringify(loadCustomers().filter((c) => c.wa_id !== waId)));
        renderCustomers();
    }

    function customerUrl(customer) {
        return `?wa_id=${encodeURIComponent(customer.wa_id)}&name=${encodeURIComponent(customer.name)}`;
    }

    function renderCustomers() {
        const list = $("customer-list");
        list.replaceChildren(
            ...loadCustomers().map((customer) =>
                el(
                    "li",
                    {},
                    el(
                        "a",
                        {
                            href: customerUrl(customer),
                            class: state.customer && state.customer.wa_id === customer.wa_id ? "active" : "",
                            onclick: (event) => {
                                if (event.ctrlKey || event.metaKey || event.shiftKey) return; // a new tab
                                event.preventDefault();
                                openCustomer(customer);
                            },
                        },
                        customer.name,
                        el("small", {}, `+${customer.wa_id}`)
                    ),
                    el("button", { class: "forget", title: "Forget", onclick: () => forgetCustomer(customer.wa_id) }, "✕")
                )
            )
        );
    }

    function openCustomer(customer) {
        state.customer = customer;
        state.items = [];
        state.rendered = "";
        state.replyTo = null;
        rememberCustomer(customer);
        history.replaceState(null, "", customerUrl(customer));
        document.title = `${customer.name} · customer phone`;
        $("phone").hidden = false;
        $("customer-label").textContent = `You are ${customer.name} (+${customer.wa_id})`;
        $("messages").replaceChildren();
        renderReplyBar();
        renderCustomers();
        refresh();
        $("text").focus();
    }

    // Sending: every action is one inbound webhook
    async function send(type, fields) {
        const customer = state.customer;
        const data = { type, from: customer.wa_id, name: customer.name, ...fields };
        if (state.replyTo && !data.reply_to && type !== "reaction") data.reply_to = state.replyTo.wamid;
        try {
            const answer = await control("inbound", data);
            if (answer.webhook_status !== 200) {
                showError(`Odoo answered the webhook with ${answer.webhook_status || "no answer"}: is it running?`);
            }
        } catch (error) {
            showError(`The emulator refused: ${error.message}`);
        }
        state.replyTo = null;
        renderReplyBar();
        refresh();
    }

    async function fileToBase64(blob) {
        const buffer = new Uint8Array(await blob.arrayBuffer());
        let binary = "";
        for (let i = 0; i < buffer.length; i += 0x8000) {
            binary += String.fromCharCode(...buffer.subarray(i, i + 0x8000));
        }
        return btoa(binary);
    }

    async function sendSample(path, type, mimeType, extra) {
        const blob = await (await fetch(path)).blob();
        await send(type, { content_b64: await fileToBase64(blob), mime_type: mimeType, ...extra });
    }

    const attachActions = {
        photo: () => sendSample("photo.jpg", "image", "image/jpeg", { caption: prompt("Caption (optional)", "") || "" }),
        voice: () => sendSample("voice_note.ogg", "audio", "audio/ogg; codecs=opus", { voice: true }),
        file: () => $("file-input").click(),
        location: () => {
            const place = prompt("Place name", "Ban Jelačić Square");
            if (place === null) return;
            send("location", {
                latitude: 45.8131,
                longitude: 15.977,
                location_name: place,
                address: prompt("Address", "Trg bana Josipa Jelačića, 10000 Zagreb") || "",
            });
        },
        contact: () => {
            const name = prompt("Contact's name", "Marko Kovačević");
            if (!name) return;
            const phone = prompt("Contact's phone number", "+385 98 765 4321") || "";
            const [first, ...last] = name.split(" ");
            send("contacts", {
                contacts: [
                    {
                        name: { formatted_name: name, first_name: first, last_name: last.join(" ") },
                        phones: [{ phone, wa_id: normalize(phone), type: "CELL" }],
                    },
                ],
            });
        },
    };

    async function sendChosenFile(file) {
        const isImage = /^image\/(jpeg|png)$/.test(file.type);
        await send(isImage ? "image" : "document", {
            content_b64: await fileToBase64(file),
            mime_type: file.type || "application/octet-stream",
            filename: file.name,
        });
    }

    // Reading: the chat as the emulator knows it
    async function refresh() {
        clearTimeout(state.timer);
        const customer = state.customer;
        try {
            const chat = await control("chat", { wa_id: customer.wa_id });
            if (customer === state.customer) {
                $("business-name").textContent = chat.business || "Business";
                const json = JSON.stringify(chat.messages);
                if (json !== state.rendered) {
                    state.rendered = json;
                    state.items = chat.messages;
                    renderMessages();
                }
            }
        } catch (error) {
            showError(`The emulator does not answer: ${error.message}`);
        }
        state.timer = setTimeout(refresh, POLL_MS);
    }

    function preview(item) {
        const m = item.message || {};
        if (!item.message) return item.type;
        if (item.type === "text") return m.body;
        if (item.type === "template") return `Template ${m.name}`;
        if (item.type === "interactive") return (m.body && m.body.text) || titleOf(m) || "Buttons";
        if (item.type === "button") return m.text;
        return m.caption || m.filename || item.type;
    }

    function titleOf(interactive) {
        const reply = interactive.button_reply || interactive.list_reply;
        return reply && reply.title;
    }

    function formatText(text) {
        // WhatsApp's *bold*, _italic_ and ~strike~, built as nodes
        const parts = [];
        const pattern = /([*_~])([^*_~\n]+)\1/g;
        let last = 0;
        for (const match of String(text || "").matchAll(pattern)) {
            parts.push(text.slice(last, match.index));
            parts.push(el({ "*": "b", _: "i", "~": "s" }[match[1]], {}, match[2]));
            last = match.index + match[0].length;
        }
        parts.push(String(text || "").slice(last));
        return parts;
    }

    function mediaNode(type, media) {
        const src = media.id ? `media/${encodeURIComponent(media.id)}` : media.link;
        if (!src) return el("div", {}, `[${type}]`);
        if (type === "image" || type === "sticker") return el("img", { src, alt: media.caption || type });
        if (type === "audio") return el("audio", { src, controls: true, preload: "none" });
        if (type === "video") return el("video", { src, controls: true, preload: "none" });
        return el("a", { href: src, target: "_blank" }, `📄 ${media.filename || "Document"}`);
    }

    function replyButton(label, fields, item) {
        return el("button", { type: "button", onclick: () => send(fields.type, { ...fields.data, reply_to: item.wamid }) }, label);
    }

    function templateParams(sent, kind) {
        const component = (sent.components || []).find((c) => (c.type || "").toLowerCase() === kind);
        return (component && component.parameters) || [];
    }

    function fill(text, params) {
        let position = 0;
        return String(text || "").replace(/{{\s*([\w]+)\s*}}/g, (whole, key) => {
            const named = params.find((p) => p.parameter_name === key);
            const param = named || params[/^\d+$/.test(key) ? Number(key) - 1 : position];
            position++;
            return param ? param.text ?? param[param.type] ?? whole : whole;
        });
    }

    function renderTemplate(item) {
        const sent = item.message || {};
        const components = item.template;
        if (!components) return [el("div", { class: "footer" }, `Template ${sent.name} (unknown to this emulator)`)];
        const nodes = [];
        let buttons = [];
        for (const component of components) {
            const kind = (component.type || "").toUpperCase();
            if (kind === "HEADER") {
                const format = (component.format || "TEXT").toUpperCase();
                if (format === "TEXT") {
                    nodes.push(el("div", { class: "header" }, fill(component.text, templateParams(sent, "header"))));
                } else {
                    const param = templateParams(sent, "header")[0] || {};
                    const media = param[format.toLowerCase()] || {};
                    nodes.push(mediaNode(format.toLowerCase(), media));
                }
            } else if (kind === "BODY") {
                nodes.push(el("div", {}, formatText(fill(component.text, templateParams(sent, "body")))));
            } else if (kind === "FOOTER") {
                nodes.push(el("div", { class: "footer" }, component.text));
            } else if (kind === "BUTTONS") {
                buttons = component.buttons || [];
            }
        }
        if (buttons.length) {
            const payloads = (sent.components || []).filter((c) => (c.type || "").toLowerCase() === "button");
            nodes.push(
                el(
                    "div",
                    { class: "buttons" },
                    buttons.map((button, index) => {
                        const type = (button.type || "").toUpperCase();
                        if (type === "URL") return el("a", { href: button.url, target: "_blank" }, `🔗 ${button.text}`);
                        if (type === "PHONE_NUMBER") return el("a", { href: `tel:${button.phone_number}` }, `📞 ${button.text}`);
                        if (type !== "QUICK_REPLY") return el("button", { type: "button", disabled: true }, button.text);
                        const given = payloads.find((c) => Number(c.index) === index);
                        const payload = (given && given.parameters && given.parameters[0] && given.parameters[0].payload) || button.text;
                        return replyButton(button.text, { type: "button", data: { payload, text: button.text } }, item);
                    })
                )
            );
        }
        return nodes;
    }

    function renderInteractive(item) {
        const m = item.message || {};
        const nodes = [];
        if (m.header) {
            nodes.push(m.header.type === "text" ? el("div", { class: "header" }, m.header.text) : mediaNode(m.header.type, m.header[m.header.type] || {}));
        }
        if (m.body) nodes.push(el("div", {}, formatText(m.body.text)));
        if (m.footer) nodes.push(el("div", { class: "footer" }, m.footer.text));
        const action = m.action || {};
        if (m.type === "button") {
            nodes.push(
                el(
                    "div",
                    { class: "buttons" },
                    (action.buttons || []).map((b) =>
                        replyButton(b.reply.title, { type: "button_reply", data: { reply_id: b.reply.id, title: b.reply.title } }, item)
                    )
                )
            );
        } else if (m.type === "list") {
            nodes.push(el("div", { class: "buttons" }, el("button", { type: "button", onclick: () => openList(item) }, `☰ ${action.button}`)));
        } else if (m.type === "cta_url") {
            const params = action.parameters || {};
            nodes.push(el("div", { class: "buttons" }, el("a", { href: params.url, target: "_blank" }, `🔗 ${params.display_text}`)));
        }
        return nodes;
    }

    function openList(item) {
        const m = item.message;
        const sheet = $("list-sheet");
        sheet.replaceChildren(
            el("h2", {}, m.action.button),
            ...(m.action.sections || []).map((section) => [
                section.title ? el("h3", {}, section.title) : null,
                ...(section.rows || []).map((row) =>
                    el(
                        "button",
                        {
                            type: "button",
                            class: "row",
                            onclick: () => {
                                sheet.hidden = true;
                                send("list_reply", { reply_id: row.id, title: row.title, description: row.description || "", reply_to: item.wamid });
                            },
                        },
                        row.title,
                        row.description ? el("small", {}, row.description) : null
                    )
                ),
            ]),
            el("button", { type: "button", onclick: () => (sheet.hidden = true) }, "Close")
        );
        sheet.hidden = false;
    }

    function renderBody(item) {
        const m = item.message || {};
        switch (item.type) {
            case "text":
                return formatText(m.body);
            case "image":
            case "video":
            case "audio":
            case "document":
            case "sticker":
                return [mediaNode(item.type, m), m.caption ? el("div", {}, formatText(m.caption)) : null];
            case "location":
                return el(
                    "a",
                    { href: `https://www.openstreetmap.org/?mlat=${m.latitude}&mlon=${m.longitude}`, target: "_blank" },
                    `📍 ${[m.name, m.address].filter(Boolean).join(", ") || `${m.latitude}, ${m.longitude}`}`
                );
            case "contacts":
                return (Array.isArray(m) ? m : []).map((c) =>
                    el("div", {}, `👤 ${c.name.formatted_name} ${(c.phones || []).map((p) => p.phone).join(", ")}`)
                );
            case "template":
                return renderTemplate(item);
            case "interactive":
                return item.direction === "in" ? `↩ ${titleOf(m)}` : renderInteractive(item);
            case "button":
                return `↩ ${m.text}`;
            default:
                return `[${item.type}]`;
        }
    }

    function renderMessages() {
        const box = $("messages");
        const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        const byId = Object.fromEntries(state.items.map((item) => [item.wamid, item]));
        const reactions = {};
        for (const item of state.items) {
            if (item.type === "reaction" && item.message) {
                const target = item.message.message_id;
                reactions[target] = reactions[target] || {};
                reactions[target][item.direction] = item.message.emoji || "";
            }
        }
        const nodes = state.items
            .filter((item) => item.type !== "reaction")
            .map((item) => {
                const context = item.context;
                const quoted = context && byId[context.message_id || context.id];
                const emojis = Object.values(reactions[item.wamid] || {}).filter(Boolean);
                const time = new Date(item.at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
                let mark;
                if (item.direction === "out") {
                    mark = el("span", { class: `ticks ${item.status}`, title: item.status }, TICKS[item.status] || item.status);
                } else {
                    const ok = item.webhook_status === 200;
                    mark = el(
                        "span",
                        { class: `ticks ${ok ? "" : "failed"}`, title: ok ? "Odoo accepted the webhook" : `Odoo answered ${item.webhook_status}` },
                        ok ? "✓" : "⚠"
                    );
                }
                return el(
                    "div",
                    { class: `bubble ${item.direction}${emojis.length ? " has-reaction" : ""}`, "data-wamid": item.wamid, tabindex: 0 },
                    quoted ? el("div", { class: "quote" }, preview(quoted)) : null,
                    renderBody(item),
                    el("span", { class: "meta" }, time, mark),
                    emojis.length ? el("span", { class: "reactions" }, emojis.join("")) : null,
                    el(
                        "span",
                        { class: "tools" },
                        item.direction === "out"
                            ? REACTIONS.map((emoji) =>
                                  el("button", { type: "button", title: `React ${emoji}`, onclick: () => send("reaction", { message_id: item.wamid, emoji }) }, emoji)
                              )
                            : null,
                        item.direction === "out" && (reactions[item.wamid] || {}).in
                            ? el("button", { type: "button", title: "Remove my reaction", onclick: () => send("reaction", { message_id: item.wamid, emoji: "" }) }, "⌫")
                            : null,
                        el("button", { type: "button", title: "Reply", onclick: () => setReplyTo(item) }, "↩")
                    )
                );
            });
        box.replaceChildren(
            ...(nodes.length ? nodes : [el("div", { class: "empty" }, "No message yet. Write to the business below: your message reaches Odoo as a webhook.")])
        );
        if (atBottom || nodes.length <= 1) box.scrollTop = box.scrollHeight;
    }

    function setReplyTo(item) {
        state.replyTo = item;
        renderReplyBar();
        $("text").focus();
    }

    function renderReplyBar() {
        $("reply-bar").hidden = !state.replyTo;
        $("reply-text").textContent = state.replyTo ? preview(state.replyTo) : "";
    }

    // Wiring
    $("new-customer").addEventListener("submit", (event) => {
        event.preventDefault();
        const form = new FormData(event.target);
        const waId = normalize(form.get("wa_id"));
        openCustomer({ wa_id: waId, name: String(form.get("name") || "").trim() || `Customer ${waId.slice(-4)}` });
        event.target.reset();
    });
    $("composer").addEventListener("submit", (event) => {
        event.preventDefault();
        const text = $("text").value.trim();
        if (!text) return;
        $("text").value = "";
        send("text", { body: text });
    });
    $("attach").addEventListener("click", () => ($("attach-menu").hidden = !$("attach-menu").hidden));
    $("attach-menu").addEventListener("click", (event) => {
        const action = event.target.dataset && event.target.dataset.send;
        if (!action) return;
        $("attach-menu").hidden = true;
        attachActions[action]();
    });
    $("file-input").addEventListener("change", (event) => {
        const file = event.target.files[0];
        event.target.value = "";
        if (file) sendChosenFile(file);
    });
    $("reply-cancel").addEventListener("click", () => {
        state.replyTo = null;
        renderReplyBar();
    });

    // The customers Odoo already knows (given to the emulator by `make run`)
    fetch("/_emulator/customers")
        .then((response) => response.json())
        .then(({ customers }) => {
            $("known").hidden = !customers.length;
            $("known-list").replaceChildren(
                ...customers.map((customer) =>
                    el("button", { type: "button", title: `+${customer.wa_id}`, onclick: () => openCustomer(customer) }, customer.name)
                )
            );
        })
        .catch(() => null);

    const params = new URLSearchParams(location.search);
    const known = loadCustomers();
    if (params.get("wa_id")) {
        const waId = normalize(params.get("wa_id"));
        const previous = known.find((c) => c.wa_id === waId);
        openCustomer({ wa_id: waId, name: params.get("name") || (previous && previous.name) || `Customer ${waId.slice(-4)}` });
    } else if (known.length) {
        openCustomer(known[0]);
    } else {
        renderCustomers();
    }
})();
