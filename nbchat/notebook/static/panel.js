// nbchat chat panel: the view of nbchat.notebook.widget.ChatWidget.
//
// Everything shown comes from the model's traits, except the answer that is streaming,
// which arrives as custom messages {d: "new text"}. `nbchatMarkdown` (marked + DOMPurify,
// bundled in markdown.bundle.js and placed before this file by the widget) renders
// Markdown with raw HTML escaped. User text and errors are only ever set as textContent.

const { renderMarkdown } = nbchatMarkdown;

const ICONS = {
  send: "M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z",
  stop: "M7 7h10v10H7z",
  clip: "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z",
  table: "M3 4h18v16H3zm2 2v3h6V6zm8 0v3h6V6zM5 11v3h6v-3zm8 0v3h6v-3zM5 16v2h6v-2zm8 0v2h6v-2z",
  close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
  plus: "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z",
  fork: "M7 3a2.5 2.5 0 0 0-1 4.8v8.4A2.5 2.5 0 1 0 8 16.2V14c0-1 .6-1.6 1.6-1.6h4.8A3.6 3.6 0 0 0 18 8.8V7.8a2.5 2.5 0 1 0-2 0v1c0 1-.6 1.6-1.6 1.6H9.6c-.6 0-1.1.1-1.6.3V7.8A2.5 2.5 0 0 0 7 3z",
  copy: "M8 3h11v13h-2V5H8zM5 7h10v14H5zm2 2v10h6V9z",
  bug: "M12 3a4 4 0 0 0-4 4h8a4 4 0 0 0-4-4zM7 9v5a5 5 0 0 0 10 0V9zm-4 1h3v2H3zm15 0h3v2h-3zM3 15h3v2H3zm15 0h3v2h-3z",
};

const SVG = "http://www.w3.org/2000/svg";

function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("nbchat-icon");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.appendChild(path);
  return svg;
}

/** A DOM element: attributes (aria-*, role, data-*...) or properties, then children. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function iconButton(name, label, attrs = {}) {
  const { className = "", ...rest } = attrs;
  return h("button", { type: "button", className: `nbchat-icon-button ${className}`.trim(), title: label, "aria-label": label, ...rest }, icon(name));
}

function formatTokens(n) {
  if (n === undefined || n === null) return "–";
  if (n >= 10000) return `${(n / 1000).toFixed(0)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  return String(n);
}

/**
 * Once per model (not per view): collect the streamed answer and, when the kernel says
 * the turn is done, append the turn to the model's messages with that text, so the
 * kernel does not send the answer a second time. A model that missed part of the
 * stream (the page reloaded mid-answer) asks for the whole state instead.
 */
function initialize({ model }) {
  let streamed = "";
  const onPending = () => {
    if ((model.get("pending") || {}).question !== undefined) streamed = "";
  };
  const onMessage = (msg) => {
    if (!msg) return;
    if (typeof msg.d === "string") {
      streamed += msg.d;
    } else if (msg.done) {
      const { drop, add, count, length, state } = msg.done;
      const old = model.get("messages") || [];
      const question = (model.get("pending") || {}).question;
      if (streamed.length !== length || question === undefined || old.length - drop + add.length !== count) {
        model.send({ type: "resync" });
        return;
      }
      const added = add.map((m) => (m.text !== undefined ? m : { ...m, text: m.role === "user" ? question : streamed }));
      streamed = "";
      model.set({ ...state, messages: old.slice(drop).concat(added) });
    }
  };
  model.on("change:pending", onPending);
  model.on("msg:custom", onMessage);
  return () => {
    model.off("change:pending", onPending);
    model.off("msg:custom", onMessage);
  };
}

function render({ model, el }) {
  const off = [];
  const listen = (event, callback) => {
    model.on(event, callback);
    off.push(() => model.off(event, callback));
  };

  // -- header: conversation picker, new, fork, model --------------------------------
  const sessionSelect = h("select", { className: "nbchat-session", "aria-label": "Conversation" });
  const newButton = h("button", { type: "button", className: "nbchat-button", title: "Start a new conversation" }, icon("plus"), "New");
  const forkButton = h("button", { type: "button", className: "nbchat-button", title: "Copy this conversation into a new one and continue there" }, icon("fork"), "Fork");
  const modelLabel = h("span", { className: "nbchat-model" });
  const header = h("div", { className: "nbchat-header", role: "toolbar", "aria-label": "Conversation" },
    sessionSelect, newButton, forkButton, h("span", { className: "nbchat-spacer" }), modelLabel);

  // -- message log ------------------------------------------------------------------
  const log = h("div", { className: "nbchat-log", role: "log", "aria-live": "polite", "aria-label": "Messages", tabIndex: 0 });
  const errorBox = h("div", { className: "nbchat-error nbchat-panel-error", role: "alert", hidden: true });

  // -- composer ---------------------------------------------------------------------
  const chips = h("ul", { className: "nbchat-chips", "aria-label": "Attachments", hidden: true });
  const inputId = `nbchat-input-${Math.random().toString(36).slice(2)}`;
  const input = h("textarea", {
    id: inputId,
    className: "nbchat-input",
    rows: 1,
    placeholder: "Ask about your notebook…",
    "aria-describedby": `${inputId}-hint`,
  });
  const inputLabel = h("label", { className: "nbchat-sr-only", htmlFor: inputId }, "Message");
  const sendButton = h("button", { type: "button", className: "nbchat-send", "aria-label": "Send" }, icon("send"), h("span", { className: "nbchat-send-label" }, "Send"));
  const fileInput = h("input", { type: "file", multiple: true, className: "nbchat-sr-only", tabIndex: -1, "aria-hidden": "true" });
  const attachButton = h("button", { type: "button", className: "nbchat-button", title: "Attach files from this computer" }, icon("clip"), "File");
  const frameSelect = h("select", { className: "nbchat-frames", "aria-label": "Attach a DataFrame from the notebook" });
  const meter = h("div", { className: "nbchat-meter", role: "group", "aria-label": "Token use of this message" });
  const hint = h("span", { id: `${inputId}-hint`, className: "nbchat-hint" }, "Enter to send · Shift+Enter for a new line");
  const explainButton = h("button", { type: "button", className: "nbchat-button nbchat-explain", hidden: true }, icon("bug"), "Explain last error");
  const composer = h("div", { className: "nbchat-composer" },
    chips,
    h("div", { className: "nbchat-inputrow" }, inputLabel, input, sendButton),
    h("div", { className: "nbchat-tools" }, attachButton, fileInput, h("span", { className: "nbchat-frame-wrap" }, icon("table"), frameSelect), explainButton, hint, h("span", { className: "nbchat-spacer" }), meter));

  const root = h("div", { className: "nbchat-panel", "data-lm-suppress-shortcuts": "true" }, header, log, errorBox, composer);
  el.appendChild(root);

  // -- the log ----------------------------------------------------------------------
  let streamText = "";
  let streamBody = null;
  let progressLine = null;
  let renderQueued = false;

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  }

  function keepScrolled(wasNearBottom) {
    if (wasNearBottom) log.scrollTop = log.scrollHeight;
  }

  function fileList(files) {
    if (!files || !files.length) return null;
    return h("ul", { className: "nbchat-msg-files", "aria-label": "Attached" },
      files.map((name) => h("li", { className: "nbchat-chip nbchat-chip-small" }, icon("clip"), h("span", { text: name }))));
  }

  function userMessage(text, files) {
    return h("div", { className: "nbchat-msg nbchat-user", role: "group", "aria-label": "You" },
      h("div", { className: "nbchat-bubble", text }), fileList(files));
  }

  function copyButton(getText, label = "Copy the answer's Markdown", className = "") {
    const button = iconButton("copy", label, { className });
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(getText());
        button.classList.add("nbchat-done");
        setTimeout(() => button.classList.remove("nbchat-done"), 1200);
      } catch (_) {
        /* the clipboard may be unavailable (insecure context): nothing to do */
      }
    });
    return button;
  }

  /** A Copy button on each code block: it copies the block's text as written. */
  function addCodeCopyButtons(body) {
    body.querySelectorAll("pre").forEach((pre, index) => {
      const code = pre.querySelector("code") || pre;
      const text = () => code.textContent.replace(/\n$/, "");
      const holder = h("div", { className: "nbchat-code" });
      pre.replaceWith(holder);
      holder.append(pre, copyButton(text, `Copy code block ${index + 1}`, "nbchat-code-copy"));
    });
  }

  function assistantMessage(message) {
    const body = h("div", { className: "nbchat-md" });
    body.innerHTML = renderMarkdown(message.text || "");
    addCodeCopyButtons(body);
    const interrupted = message.status === "partial" && message.error_kind === "interrupted";
    const failed = message.error && !interrupted;
    const badge = message.status === "partial"
      ? h("span", { className: "nbchat-badge" }, interrupted ? "Stopped · partial answer" : "Partial answer")
      : null;
    const actions = h("span", { className: "nbchat-actions" },
      copyButton(() => message.text || ""),
      iconButton("fork", "Fork the conversation from this answer", {
        onclick: () => model.send({ type: "fork", upto_turn: Math.floor(message.seq / 2) + 1 }),
      }));
    return h("div", { className: `nbchat-msg nbchat-assistant nbchat-status-${message.status}`, role: "group", "aria-label": "Assistant" },
      message.text ? body : null,
      failed ? h("div", { className: "nbchat-error", text: message.error }) : null,
      h("div", { className: "nbchat-footer" }, badge, h("span", { className: "nbchat-footer-text", text: message.footer || "" }), actions));
  }

  function streamingMessage() {
    streamBody = h("div", { className: "nbchat-md" });
    streamBody.innerHTML = renderMarkdown(streamText);
    progressLine = h("div", { className: "nbchat-progress", role: "status" });
    drawProgress();
    const dots = h("span", { className: "nbchat-typing", "aria-hidden": "true" }, h("i"), h("i"), h("i"));
    return h("div", { className: "nbchat-msg nbchat-assistant nbchat-streaming", role: "group", "aria-label": "Assistant (answering)" },
      progressLine, streamBody, dots);
  }

  // "reading the prompt: N / M tokens" while a long prompt is read; gone at the first text.
  function drawProgress() {
    if (!progressLine) return;
    const progress = streamText ? "" : model.get("progress") || "";
    progressLine.textContent = progress ? `${progress}…` : "";
    progressLine.hidden = !progress;
  }

  function emptyState() {
    return h("div", { className: "nbchat-empty" },
      h("strong", {}, "Ask anything about your work."),
      h("span", {}, "Attach files or DataFrames below; they stay in this conversation's context."));
  }

  function drawLog() {
    const wasNearBottom = nearBottom() || !log.childElementCount;
    const messages = model.get("messages") || [];
    const pending = model.get("pending") || {};
    const nodes = [];
    const earlier = model.get("earlier_messages") || 0;
    if (earlier) nodes.push(h("div", { className: "nbchat-earlier" }, `${earlier} earlier messages are not shown (see %chat history).`));
    for (const message of messages) {
      nodes.push(message.role === "user" ? userMessage(message.text, message.files) : assistantMessage(message));
    }
    streamBody = null;
    progressLine = null;
    if (pending.question !== undefined) {
      nodes.push(userMessage(pending.question, pending.files));
      nodes.push(streamingMessage());
    } else if (model.get("phase") === "preparing") {
      nodes.push(h("div", { className: "nbchat-status-line" }, "Reading attachments and counting tokens…"));
    }
    if (!nodes.length) nodes.push(emptyState());
    log.replaceChildren(...nodes);
    log.setAttribute("aria-busy", model.get("streaming") ? "true" : "false");
    keepScrolled(wasNearBottom);
  }

  function drawStream() {
    renderQueued = false;
    if (!streamBody) return;
    const wasNearBottom = nearBottom();
    streamBody.innerHTML = renderMarkdown(streamText);
    keepScrolled(wasNearBottom);
  }

  listen("msg:custom", (msg) => {
    if (msg && typeof msg.d === "string") {
      streamText += msg.d;
      drawProgress();
      if (!renderQueued) {
        renderQueued = true;
        requestAnimationFrame(drawStream);
      }
    } else if (msg && typeof msg.restore === "string") {
      if (!input.value.trim()) {
        input.value = msg.restore;
        autosize();
      }
      input.focus();
    }
  });

  // -- header -----------------------------------------------------------------------
  function drawSessions() {
    const current = model.get("session_id");
    const sessions = model.get("sessions") || [];
    const options = [];
    if (!current) options.push(h("option", { value: "", selected: true }, "New conversation"));
    const here = sessions.filter((s) => s.here);
    const other = sessions.filter((s) => !s.here);
    const option = (s) => h("option", { value: s.id, selected: s.id === current }, s.title);
    if (here.length && other.length) {
      options.push(h("optgroup", { label: "This notebook" }, here.map(option)));
      options.push(h("optgroup", { label: "Other notebooks" }, other.map(option)));
    } else {
      options.push(...sessions.map(option));
    }
    sessionSelect.replaceChildren(...options);
    sessionSelect.value = current || "";
    forkButton.disabled = !current || model.get("streaming");
  }

  sessionSelect.addEventListener("change", () => {
    const id = sessionSelect.value;
    model.send(id ? { type: "select_session", id } : { type: "new_session" });
  });
  newButton.addEventListener("click", () => {
    model.send({ type: "new_session" });
    input.focus();
  });
  forkButton.addEventListener("click", () => model.send({ type: "fork" }));

  // -- attachments ------------------------------------------------------------------
  function drawChips() {
    const attachments = model.get("attachments") || [];
    chips.hidden = !attachments.length;
    chips.replaceChildren(...attachments.map((a) => {
      const remove = iconButton("close", `Remove ${a.name}`, { className: "nbchat-chip-remove" });
      remove.addEventListener("click", () => {
        model.send({ type: "remove", key: a.key });
        input.focus();
      });
      return h("li", { className: `nbchat-chip nbchat-chip-${a.kind}` },
        icon(a.kind === "dataframe" ? "table" : "clip"),
        h("span", { className: "nbchat-chip-name", text: a.name }),
        a.detail ? h("span", { className: "nbchat-chip-detail", text: a.detail }) : null,
        remove);
    }));
  }

  function drawFrames() {
    const frames = model.get("dataframes") || [];
    const placeholder = frames.length ? "DataFrame…" : "No DataFrames";
    frameSelect.replaceChildren(
      h("option", { value: "", selected: true }, placeholder),
      ...frames.map((f) => h("option", { value: f.name }, `${f.name}  (${f.detail})`)));
    frameSelect.value = "";
  }

  frameSelect.addEventListener("focus", () => model.send({ type: "list_dataframes" }));
  frameSelect.addEventListener("mousedown", () => model.send({ type: "list_dataframes" }));
  frameSelect.addEventListener("change", () => {
    if (frameSelect.value) model.send({ type: "attach_dataframe", name: frameSelect.value });
    frameSelect.value = "";
  });

  function showLocalError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  async function upload(files) {
    const limit = model.get("max_upload_bytes") || Infinity;
    for (const file of files) {
      if (file.size > limit) {
        showLocalError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB, over the ${(limit / 1048576).toFixed(0)} MB limit for attachments: attach a smaller file.`);
        continue;
      }
      const buffer = await file.arrayBuffer();
      model.send({ type: "upload", name: file.name, mime: file.type || "" }, undefined, [buffer]);
    }
  }

  attachButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    upload(Array.from(fileInput.files || []));
    fileInput.value = "";
  });
  root.addEventListener("dragover", (event) => {
    if (event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files")) {
      event.preventDefault();
      root.classList.add("nbchat-dropping");
    }
  });
  root.addEventListener("dragleave", () => root.classList.remove("nbchat-dropping"));
  root.addEventListener("drop", (event) => {
    root.classList.remove("nbchat-dropping");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      event.preventDefault();
      upload(Array.from(event.dataTransfer.files));
    }
  });

  // -- token meter ------------------------------------------------------------------
  function bar(label, used, limit, title) {
    const ratio = limit ? Math.min(1, used / limit) : 0;
    const level = !limit ? "" : used > limit ? "over" : ratio > 0.85 ? "high" : "";
    const fill = h("span", { className: "nbchat-bar-fill" });
    fill.style.width = `${(ratio * 100).toFixed(1)}%`;
    return h("span", {
      className: `nbchat-gauge ${level ? `nbchat-gauge-${level}` : ""}`,
      role: "meter",
      "aria-label": label,
      "aria-valuemin": 0,
      "aria-valuemax": limit || 0,
      "aria-valuenow": Math.min(used || 0, limit || used || 0),
      "aria-valuetext": `${used} of ${limit} tokens`,
      title,
    }, h("span", { className: "nbchat-gauge-label" }, label), h("span", { className: "nbchat-bar" }, fill),
      h("span", { className: "nbchat-gauge-value" }, `${formatTokens(used)} / ${formatTokens(limit)}`));
  }

  function drawMeter() {
    const m = model.get("meter") || {};
    if (m.error) {
      meter.replaceChildren(h("span", { className: "nbchat-meter-error", title: m.error, text: m.error.split("\n")[0] }));
      return;
    }
    if (m.window_tokens === undefined) {
      meter.replaceChildren();
      return;
    }
    // The total is exact when the server counted the whole templated prompt; files are
    // counted one by one (with the model's tokenizer, or estimated).
    const counted = m.exact ? "exact count of the whole prompt" : "estimate";
    const perFile = m.parts_exact ? "each file counted alone" : "estimated, each file alone";
    // A file sent in part lists its passages and why each was chosen (head, matched words).
    const passages = (list) => (list || []).map((line) => `\n  ${line}`).join("");
    const parts = (m.parts || []).map((p) => `${p.name}: ${p.kept_tokens} of ${p.total_tokens}${passages(p.passages)}`).join("\n");
    const brought = (m.brought_in || []).map((p) => `Passages of ${p.name} brought in (${p.tokens} tokens):${passages(p.passages)}`);
    const gauges = [];
    if ((m.parts || []).length) {
      gauges.push(bar("Files", m.attachment_tokens, m.attachment_budget,
        `Attachments use ${m.attachment_tokens} of their ${m.attachment_budget}-token budget (${perFile})${parts ? `\n${parts}` : ""}`));
    }
    gauges.push(bar("Context", m.total_tokens, m.window_tokens - m.max_tokens,
      `The prompt needs ${m.exact ? "" : "about "}${m.total_tokens} tokens of the ${m.window_tokens}-token window; ${m.max_tokens} are kept for the answer (${counted}).` +
      (brought.length ? `\n${brought.join("\n")}` : "") +
      ((m.notices || []).length ? `\n${m.notices.join("\n")}` : "")));
    meter.replaceChildren(...gauges);
  }

  // -- composer ---------------------------------------------------------------------
  let lastSent = "";
  let draftTimer = null;

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  function sendDraft() {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(() => model.send({ type: "draft", text: input.value }), 350);
  }

  function drawComposer() {
    const streaming = model.get("streaming");
    const phase = model.get("phase");
    root.classList.toggle("nbchat-is-streaming", !!streaming);
    sendButton.replaceChildren(icon(streaming ? "stop" : "send"),
      h("span", { className: "nbchat-send-label" }, streaming ? (phase === "stopping" ? "Stopping…" : "Stop") : "Send"));
    sendButton.setAttribute("aria-label", streaming ? "Stop the answer" : "Send");
    sendButton.classList.toggle("nbchat-stop", !!streaming);
    sendButton.disabled = streaming ? phase === "stopping" : !input.value.trim();
    newButton.disabled = !!streaming;
    explainButton.disabled = !!streaming;
    sessionSelect.disabled = !!streaming;
    forkButton.disabled = !model.get("session_id") || !!streaming;
  }

  function send() {
    if (model.get("streaming")) return;
    const text = input.value;
    if (!text.trim()) return;
    lastSent = text;
    errorBox.hidden = true;
    model.send({ type: "send", text });
  }

  function stop() {
    if (model.get("streaming")) model.send({ type: "stop" });
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && model.get("streaming")) {
      event.preventDefault();
      stop();
    }
    event.stopPropagation(); // typing here must not reach the notebook's shortcuts
  });
  input.addEventListener("input", () => {
    autosize();
    drawComposer();
    sendDraft();
  });
  sendButton.addEventListener("click", () => {
    if (model.get("streaming")) stop();
    else send();
    input.focus();
  });

  function drawExplain() {
    const last = model.get("last_error") || {};
    explainButton.hidden = !last.summary;
    const where = last.cell ? ` (In [${last.cell}])` : "";
    explainButton.title = last.summary ? `Ask the model to explain ${last.summary}${where} and how to fix it` : "";
  }

  explainButton.addEventListener("click", () => {
    if (model.get("streaming")) return;
    errorBox.hidden = true;
    model.send({ type: "explain_error" });
  });

  function drawError() {
    const error = model.get("error");
    errorBox.textContent = error || "";
    errorBox.hidden = !error;
  }

  listen("change:messages", drawLog);
  listen("change:earlier_messages", drawLog);
  listen("change:pending", () => {
    const pending = model.get("pending") || {};
    if (pending.question !== undefined) {
      streamText = "";
      if (input.value === pending.question || input.value === lastSent) {
        input.value = "";
        autosize();
        sendDraft();
      }
    }
    drawLog();
    drawComposer();
  });
  listen("change:phase", () => {
    drawComposer();
    if (model.get("phase") === "preparing" || !model.get("streaming")) drawLog();
  });
  listen("change:streaming", () => {
    drawComposer();
    drawSessions();
    log.setAttribute("aria-busy", model.get("streaming") ? "true" : "false");
  });
  listen("change:sessions", drawSessions);
  listen("change:session_id", drawSessions);
  listen("change:attachments", drawChips);
  listen("change:dataframes", drawFrames);
  listen("change:meter", drawMeter);
  listen("change:error", drawError);
  listen("change:last_error", drawExplain);
  listen("change:progress", drawProgress);
  listen("change:model_label", () => { modelLabel.textContent = model.get("model_label"); });

  modelLabel.textContent = model.get("model_label");
  drawSessions();
  drawLog();
  drawChips();
  drawFrames();
  drawMeter();
  drawError();
  drawExplain();
  drawComposer();
  requestAnimationFrame(() => {
    log.scrollTop = log.scrollHeight;
  });

  return () => {
    clearTimeout(draftTimer);
    for (const undo of off) undo();
  };
}

export default { initialize, render };
export { renderMarkdown };
