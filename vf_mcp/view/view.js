// The conversation view: talks to the host only through the official ext-apps `App` (vendored
// as McpExtApps). It learns which conversation to show from the tool call the host forwards
// (interact or handoff), reads it with the app-only view_conversation tool, and sends the
// person's button presses and replies with view_reply, telling the model about each turn
// (ui/update-model-context). Links open through the host (ui/open-link). Every piece of markup it
// shows was escaped by the server (vf_mcp.chat); nothing the agent sent is ever run.
(() => {
  "use strict";
  const { App, PostMessageTransport } = McpExtApps;
  const READ_TOOL = "view_conversation";
  const REPLY_TOOL = "view_reply";
  const byId = (id) => document.getElementById(id);
  const main = document.querySelector("main");
  const form = byId("vf-reply"); // no <form>: hosts' sandboxes may forbid form submission
  const input = byId("vf-message");
  const send = byId("vf-send");
  const app = new App({ name: "vf-mcp conversation view", version: "1" }, {});
  let conversation = null; // { user_id, agent }
  let toolArguments = {};
  let busy = false;

  function problem(error) {
    const line = byId("vf-problem");
    line.textContent = error instanceof Error ? error.message : String(error);
    line.hidden = false;
    main.setAttribute("aria-busy", "false");
  }

  function show(state) {
    conversation = { user_id: state.user_id, agent: state.agent };
    byId("vf-conversation").innerHTML = state.html; // server-escaped chat markup
    byId("vf-title").textContent = state.title;
    byId("vf-state").textContent = state.status_label;
    form.hidden = !state.interactive;
    byId("vf-problem").hidden = true;
    main.setAttribute("aria-busy", "false");
  }

  async function call(name, args) {
    const result = await app.callServerTool({ name, arguments: args });
    const text = (result.content || []).map((c) => c.text || "").join(" ");
    if (result.isError) throw new Error(text || `${name} failed`);
    return result.structuredContent;
  }

  function setBusy(value) {
    busy = value;
    send.disabled = value;
    input.disabled = value;
    main.setAttribute("aria-busy", String(value));
    for (const button of document.querySelectorAll("button.vf-choice")) {
      if (value) button.disabled = true;
    }
  }

  async function reply(args) {
    if (busy || conversation === null) return;
    setBusy(true);
    try {
      const state = await call(REPLY_TOOL, { ...conversation, ...args });
      show(state);
      await app.updateModelContext({ content: [{ type: "text", text: state.context }] });
    } catch (error) {
      problem(error);
    } finally {
      setBusy(false);
      focusNext();
    }
  }

  function focusNext() {
    // Keyboard users continue where the conversation continues: its first button, else the box.
    const choice = document.querySelector("button.vf-choice:not([disabled])");
    if (choice) choice.focus();
    else if (!form.hidden) input.focus();
  }

  app.ontoolinput = (params) => {
    toolArguments = params.arguments || {};
  };

  app.ontoolresult = (result) => {
    const turn = result.structuredContent;
    if (!turn || typeof turn.user_id !== "string" || result.isError) {
      problem("This tool call started no conversation to show.");
      return;
    }
    // interact names its agent in its arguments; handoff's result names the agent it moved to.
    const agent = turn.to_agent || toolArguments.agent || "";
    call(READ_TOOL, { user_id: turn.user_id, agent }).then(show, problem);
  };

  async function openLink(url) {
    const result = await app.openLink({ url });
    if (result && result.isError) {
      const why = "its policy may forbid links";
      throw new Error(`The host did not open ${url} (${why}); copy the link into a browser.`);
    }
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a.vf-link[href]");
    if (link) {
      // Hosts sandbox the frame without popups, so target=_blank would do nothing: the host
      // opens links on request (ui/open-link) instead.
      event.preventDefault();
      openLink(link.href).catch(problem);
      return;
    }
    const button = event.target.closest("button.vf-choice[data-choice]");
    if (button && !button.disabled) reply({ choice: Number(button.dataset.choice) });
  });

  function sendTyped() {
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    reply({ message });
  }
  send.addEventListener("click", sendTyped);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      sendTyped();
    }
  });

  app.connect(new PostMessageTransport(window.parent, window.parent)).catch(problem);
})();
