// A test MCP Apps host: the official host side of ext-apps (AppBridge) in headless Chromium shows
// vf-mcp's conversation view, and this Node process relays the view's MCP traffic to a real
// vf-mcp HTTP server with the MCP TypeScript SDK client (no CORS needed on the server: the page
// never talks to it). Then a person's session: read the launch, press "Track an order", type
// 1001, read the answer and its variables; press "Track another order" and type markup that must
// stay text; then the host sends a later interact result (the agent's images, shown as links) and
// the person follows a link, which the host must be asked to open (ui/open-link); last the host
// shows the transcript of a conversation seeded with markup from the agent (cards, buttons).
// Prints what it saw as JSON; saves screenshots.
//
//   node view_host.mjs <http://127.0.0.1:PORT/mcp> <screenshot dir> <seeded user_id>
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import * as esbuild from "esbuild";
import puppeteer from "puppeteer-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const APPS = "io.modelcontextprotocol/ui";
const APP_MIME = "text/html;profile=mcp-app";
const [url, shots, seeded] = process.argv.slice(2);
const HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
// A hidden event of the example agent: one trace of every type, images among them.
const ALL_TRACES = { type: "event", payload: { event: { name: "all_traces" } } };
// The browser and its flags come from tests/browser.py, as every browser test's do.
const CHROMIUM = process.env.VF_MCP_CHROMIUM;
const CHROMIUM_ARGS = JSON.parse(process.env.VF_MCP_CHROMIUM_ARGS ?? "null");
if (!CHROMIUM || !Array.isArray(CHROMIUM_ARGS)) {
  throw new Error("VF_MCP_CHROMIUM and VF_MCP_CHROMIUM_ARGS are unset: run it from tests/test_view_browser.py");
}

// The host's half of ext-apps, bundled for the page (the view carries its own half).
async function hostBundle() {
  const built = await esbuild.build({
    stdin: {
      contents: 'export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";',
      resolveDir: HERE,
      loader: "js",
    },
    bundle: true,
    format: "iife",
    globalName: "McpHost",
    platform: "browser",
    write: false,
  });
  return built.outputFiles[0].text;
}

// What a host does with the resource's _meta.ui.csp: the frame may load nothing else.
function withCsp(html, csp) {
  const images = (csp?.resourceDomains ?? []).join(" ");
  const policy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
    `img-src ${images || "'none'"}; connect-src 'none'`;
  return html.replace("<head>", `<head><meta http-equiv="Content-Security-Policy" content="${policy}">`);
}

// Runs in the page: connect the bridge to an empty frame first, then load the view into it, so
// the view's ui/initialize finds the host listening.
function startHost(viewHtml, toolInput, toolResult) {
  const { AppBridge, PostMessageTransport } = window.McpHost;
  window.modelContext = [];
  window.openedLinks = [];
  const frame = document.createElement("iframe");
  frame.id = "view";
  frame.title = "Conversation view";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.style.cssText = "width:640px;height:640px;border:0;display:block";
  document.body.append(frame);
  const bridge = new AppBridge(
    null,
    { name: "vf-mcp test host", version: "1.0.0" },
    { serverTools: {}, updateModelContext: { text: {} }, openLinks: {} },
  );
  window.bridge = bridge; // the host sends later tool results through it
  bridge.oncalltool = (params) => window.relayCallTool(params);
  bridge.onopenlink = async (params) => {
    window.openedLinks.push(params);
    return {};
  };
  bridge.onupdatemodelcontext = async (params) => {
    window.modelContext.push(params);
    return {};
  };
  bridge.oninitialized = async () => {
    await bridge.sendToolInput({ arguments: toolInput });
    await bridge.sendToolResult(toolResult);
  };
  const transport = new PostMessageTransport(frame.contentWindow, frame.contentWindow);
  return bridge.connect(transport).then(() => {
    frame.srcdoc = viewHtml;
  });
}

async function connectClient() {
  const client = new Client(
    { name: "vf-mcp-view-test-host", version: "1.0.0" },
    { capabilities: { extensions: { [APPS]: { mimeTypes: [APP_MIME] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

// The view may not call a tool listed for the model only. Over stateless HTTP a 2025-11-25
// client's listing leaves out the app-only tools (the server cannot tell it speaks Apps), so the
// host forwards unlisted ones and the server answers them.
function relay(client, tools, calls) {
  return async (params) => {
    const tool = tools.find((t) => t.name === params.name);
    const visibility = tool?._meta?.ui?.visibility ?? ["model", "app"];
    if (!visibility.includes("app")) throw new Error(`${params.name} is not for the view`);
    calls.push({ name: params.name, arguments: params.arguments });
    return client.callTool(params);
  };
}

function chatState() {
  const focusedName = (el) => (el && el !== document.body ? el.id || el.textContent : "");
  const chat = document.querySelector(".vf-chat");
  const buttons = [...document.querySelectorAll("button.vf-choice")];
  return {
    text: chat ? chat.innerText : "",
    status: document.getElementById("vf-state").textContent,
    buttons: buttons.map((b) => ({ label: b.textContent, disabled: b.disabled })),
    replyBox: !document.getElementById("vf-reply").hidden,
    focused: focusedName(document.activeElement),
    scripts: document.querySelectorAll(".vf-chat script").length,
  };
}

// The person's session in the view; returns what the page showed at each step.
async function personSession(page, frame, shots) {
  const element = await page.$("iframe#view");
  await frame.waitForFunction(() => document.querySelectorAll("button.vf-choice:not([disabled])").length === 3);
  const launched = await frame.evaluate(chatState);
  await element.screenshot({ path: path.join(shots, "view-launch.png") });

  // Each turn the view sends ends with its ui/update-model-context: the host waits for that.
  const contextUpdates = (n) => page.waitForFunction((k) => window.modelContext.length === k, {}, n);
  const [track] = await frame.$$("xpath/.//button[contains(., 'Track an order')]");
  await track.click();
  await contextUpdates(1);
  const asked = await frame.evaluate(chatState);

  await frame.type("#vf-message", "1001");
  await page.keyboard.press("Enter"); // keyboard only: the reply box sends on Enter
  await contextUpdates(2);
  const answered = await frame.evaluate(chatState);
  await frame.click(".vf-turn:last-of-type .vf-vars summary");
  const variables = await frame.$eval(".vf-turn:last-of-type .vf-vars", (d) => ({
    open: d.open,
    text: d.innerText,
  }));
  await element.screenshot({ path: path.join(shots, "view-answer.png") });
  const hostile = await hostileReply(frame, contextUpdates);
  const modelContext = await page.evaluate(() => window.modelContext);
  return { launched, asked, answered, variables, hostile, modelContext };
}

// Markup typed by the person goes through the server and back into the view's innerHTML: it
// must stay text there, and nothing in it may run.
async function hostileReply(frame, contextUpdates) {
  const [again] = await frame.$$("xpath/.//button[contains(., 'Track another order')]");
  await again.click();
  await contextUpdates(3);
  await frame.type("#vf-message", HOSTILE);
  await frame.click("#vf-send");
  await contextUpdates(4);
  return frame.evaluate(markupInChat);
}

function markupInChat(markup = "") {
  const chat = document.querySelector(".vf-chat");
  const typed = [...chat.querySelectorAll(".vf-msg.vf-user .vf-text")].map((p) => p.textContent);
  const handlers = [...document.querySelectorAll("#vf-conversation *")].filter((el) =>
    [...el.attributes].some((a) => a.name.toLowerCase().startsWith("on")),
  );
  return {
    typed: typed.at(-1),
    text: chat.innerText,
    pwned: typeof window.__pwned,
    scripts: chat.querySelectorAll("script").length,
    images: chat.querySelectorAll("img").length,
    handlers: handlers.map((el) => el.outerHTML.slice(0, 200)),
    shownAsText: markup ? chat.textContent.split(markup).length - 1 : 0,
  };
}

// The model asks for a transcript (a tool that shows the view too) of a conversation whose agent
// sent markup in cards and buttons: the view must show all of it as text.
async function showSeeded(page, frame, client, markup) {
  const args = { user_id: seeded };
  const found = await client.callTool({ name: "transcript", arguments: args });
  await sendToolCall(page, args, found);
  await frame.waitForFunction(
    (m) => [...document.querySelectorAll(".vf-card-title")].some((h) => h.textContent === m),
    {},
    markup,
  );
  return frame.evaluate(markupInChat, markup);
}

// What a host does when the model's next call of a tool with this view returns.
function sendToolCall(page, input, result) {
  return page.evaluate(
    async (args, answer) => {
      await window.bridge.sendToolInput({ arguments: args });
      await window.bridge.sendToolResult(answer);
    },
    input,
    result,
  );
}

// A later interact the model made in the same conversation reaches the view as a new tool
// result; its images (no origin allowed here) show as links, which the host must open.
async function followLink(page, frame, client, userId) {
  const args = { user_id: userId, action: ALL_TRACES };
  const later = await client.callTool({ name: "interact", arguments: args });
  await sendToolCall(page, args, later);
  await frame.waitForSelector("a.vf-link[href]");
  const href = await frame.$eval("a.vf-link[href]", (a) => a.href);
  await frame.click("a.vf-link[href]");
  await page.waitForFunction(() => window.openedLinks.length === 1);
  const openedLinks = await page.evaluate(() => window.openedLinks);
  const url = await frame.evaluate(() => location.href);
  const after = { url, ...(await frame.evaluate(markupInChat)) };
  return { href, openedLinks, after };
}

async function launchChromium() {
  const profile = mkdtempSync(path.join(tmpdir(), "vf-mcp-view-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--user-data-dir=${profile}`],
  });
  const close = async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { browser, close };
}

// What the page showed and said, so a failing run explains itself.
async function explain(browser, seen) {
  const frames = (await browser.pages()).flatMap((p) => p.frames());
  const dom = await Promise.all(frames.map((f) => f.content().catch((e) => String(e))));
  process.stderr.write(JSON.stringify({ ...seen, dom: dom.map((d) => d.slice(-3000)) }));
}

async function main() {
  const client = await connectClient();
  const { tools } = await client.listTools();
  const uri = getToolUiResourceUri(tools.find((t) => t.name === "interact"));
  const resource = (await client.readResource({ uri })).contents[0];
  const toolInput = { launch: true };
  const launch = await client.callTool({ name: "interact", arguments: toolInput });
  const { browser, close } = await launchChromium();
  const seen = { calls: [], requests: [], consoleErrors: [] };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 640, height: 640 });
    page.on("request", (request) => seen.requests.push(request.url()));
    page.on("console", (m) => m.type() === "error" && seen.consoleErrors.push(m.text()));
    page.on("pageerror", (e) => seen.consoleErrors.push(String(e)));
    await page.exposeFunction("relayCallTool", relay(client, tools, seen.calls));
    await page.setContent("<!doctype html><title>test host</title><body style='margin:0'></body>");
    await page.addScriptTag({ content: await hostBundle() });
    await page.evaluate(startHost, withCsp(resource.text, resource._meta?.ui?.csp), toolInput, launch);
    const frame = await (await page.waitForSelector("iframe#view")).contentFrame();
    const session = await personSession(page, frame, shots);
    const link = await followLink(page, frame, client, launch.structuredContent.user_id);
    const fromAgent = await showSeeded(page, frame, client, HOSTILE);
    const viewRequests = seen.requests.filter((r) => !r.startsWith("about:"));
    const { calls, consoleErrors } = seen;
    const listed = tools.map((t) => t.name);
    const { mimeType } = resource;
    const result = { uri, mimeType, listed, ...session, link, fromAgent, calls, viewRequests };
    result.consoleErrors = consoleErrors;
    process.stdout.write(JSON.stringify(result));
  } catch (error) {
    await explain(browser, seen);
    throw error;
  } finally {
    await close();
    await client.close();
  }
}

await main();
