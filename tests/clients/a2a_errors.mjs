// Every failure an A2A client can meet at vf-mcp, through the official JavaScript SDK
// (@a2a-js/sdk, pinned in package.json, client side only): what a person's code gets back or
// has thrown at it. One Node process walks the whole plan against one running server and prints
// one JSON object on stdout for tests/test_a2a_js_errors.py.
//
//   node a2a_errors.mjs PLAN.json
//
// PLAN.json: {"base": URL, "token": one of the server's VF_MCP_AUTH_TOKENS, "contexts": {name:
// context id}, "tooLarge": characters of a text over the server's request size limit}. The
// server's runtime answers some contexts with faults the test set up before (by context id), so
// the script only has to talk to the right context.
//
// Each case is {"id", "threw": String(error.message) or null, "error": the error's class name,
// "state": the task state's name, "texts": the status message's text parts, "metadata": its
// metadata, "events": what a stream carried}: what a person's code can show.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Role, TaskState } from "@a2a-js/sdk";
import { ClientFactory } from "@a2a-js/sdk/client";

const [planFile] = process.argv.slice(2);
if (!planFile) {
  console.error("usage: node a2a_errors.mjs PLAN.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planFile, "utf-8"));
const ctx = plan.contexts;

// The card is public: the client is made without a token, and each call carries its own
// Authorization header (per-call serviceParameters, as the SDK's own CLI sample passes --auth).
const client = await new ClientFactory().createFromUrl(plan.base);
const as = (token) => (token ? { serviceParameters: { Authorization: `Bearer ${token}` } } : {});
const me = as(plan.token);

function message({ contextId = "", taskId = "" }, ...parts) {
  return {
    messageId: randomUUID(),
    contextId,
    taskId,
    role: Role.ROLE_USER,
    parts: parts.map((content) => ({ content, metadata: undefined, filename: "", mediaType: "" })),
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}
const text = (value) => ({ $case: "text", value });
const data = (value) => ({ $case: "data", value });
const url = (value) => ({ $case: "url", value });

function shown(status, events) {
  const parts = status?.message?.parts ?? [];
  return {
    threw: null,
    state: status ? TaskState[status.state] : null,
    texts: parts.filter((p) => p.content?.$case === "text").map((p) => p.content.value),
    metadata: status?.message?.metadata ?? null,
    events,
  };
}

function thrown(error) {
  // What a person's code shows: the message, and the class it could branch on.
  return { threw: String(error?.message ?? error), error: error?.name ?? null };
}

async function send(ids, parts, options = me) {
  try {
    const params = { message: message(ids, ...parts), tenant: "" };
    const result = await client.sendMessage(params, options);
    return { task: result, ...shown(result.status, ["task"]) };
  } catch (error) {
    return thrown(error);
  }
}

// A streamed send, each event handed to `onEvent` as it comes (the turn-running case acts on one).
async function stream(ids, parts, options = me, onEvent = async () => {}) {
  let status = null;
  let task = null;
  const events = [];
  try {
    const params = { message: message(ids, ...parts), tenant: "" };
    for await (const event of client.sendMessageStream(params, options)) {
      const { $case, value } = event.payload;
      events.push($case);
      if ($case === "task") task = value;
      if ($case === "task" || $case === "statusUpdate") status = value.status;
      await onEvent($case, value);
    }
  } catch (error) {
    return { ...thrown(error), events };
  }
  return { task, ...shown(status, events) };
}

async function task(call) {
  try {
    const result = await call();
    return { task: result, ...shown(result.status, ["task"]) };
  } catch (error) {
    return thrown(error);
  }
}

const results = {};
const card = await client.getAgentCard();
results.card = { name: card.name, schemes: Object.keys(card.securitySchemes ?? {}) };

// Without a token, or with a wrong one: the server refuses with 401 before anything runs.
const hello = [text("hi")];
results["no-token"] = await send({ contextId: ctx.auth }, hello, {});
results["no-token-stream"] = await stream({ contextId: ctx.auth }, hello, {});
results["wrong-token"] = await send({ contextId: ctx.auth }, hello, as("not-a-token"));
results["wrong-token-get"] = await task(() =>
  client.getTask({ id: "no-such-task", tenant: "" }, as("not-a-token")),
);

// Messages that cannot run: refused before any task is made.
results["empty-message"] = await send({ contextId: ctx.refused }, []);
results["empty-part"] = await send({ contextId: ctx.refused }, [undefined]);
results["file-part"] = await send({ contextId: ctx.refused }, [url("https://x.example/a.pdf")]);
results["not-an-object"] = await send({ contextId: ctx.refused }, [data([1, 2])]);
results["unknown-key"] = await send({ contextId: ctx.refused }, [data({ launch: true })]);
results["two-turns"] = await send({ contextId: ctx.refused }, [text("hi"), data({ choice: 1 })]);
// Over the server's request size limit (4 MiB): refused before the body is read.
results["too-large"] = await send({ contextId: ctx.refused }, [text("x".repeat(plan.tooLarge))]);
results["unknown-task"] = await send({ taskId: "no-such-task" }, hello);
results["unknown-task-stream"] = await stream({ taskId: "no-such-task" }, hello);

// The runtime failing (the emulator answers these contexts with faults): the task fails.
results["runtime-fails"] = await send({ contextId: ctx.failing }, hello);
results["runtime-fails-stream"] = await stream({ contextId: ctx.failingStream }, hello);
results["runtime-refuses-key"] = await send({ contextId: ctx.refusedKey }, hello);

// A button the last turn did not offer: nothing is sent, the task asks again.
const menu = await send({ contextId: ctx.menu }, [data({})]);
results["menu"] = menu;
const onMenu = { contextId: menu.task?.contextId, taskId: menu.task?.id };
results["wrong-button"] = await send(onMenu, [data({ choice: "Order pizza" })]);
results["wrong-button-stream"] = await stream(onMenu, [data({ choice: "Order pizza" })]);

// Tasks: an unknown one; one cancelled, then cancelled again and written to.
results["get-unknown"] = await task(() => client.getTask({ id: "no-such-task", tenant: "" }, me));
results["cancel-unknown"] = await task(() =>
  client.cancelTask({ id: "no-such-task", tenant: "" }, me),
);
const started = await send({ contextId: ctx.cancelled }, hello);
const cancelled = { contextId: started.task?.contextId, taskId: started.task?.id };
results["cancel"] = await task(() => client.cancelTask({ id: cancelled.taskId, tenant: "" }, me));
results["cancel-again"] = await task(() =>
  client.cancelTask({ id: cancelled.taskId, tenant: "" }, me),
);
results["after-cancel"] = await send(cancelled, [text("1001")]);
results["after-cancel-stream"] = await stream(cancelled, [text("1001")]);

// A second message to a conversation whose turn is still running upstream (the runtime streams
// this context's first answer slowly): sent when the first agent message of the first turn has
// arrived, an event that shows the turn is in flight, not after a timer.
let second = null;
results["turn-running-first"] = await stream(
  { contextId: ctx.busy },
  [text("track my order")],
  me,
  async ($case, value) => {
    const working = $case === "statusUpdate" && value.status.state === TaskState.TASK_STATE_WORKING;
    if (second === null && working && value.status.message?.parts?.length) {
      second = await send({ contextId: ctx.busy }, [text("1001")]);
    }
  },
);
results["turn-running"] = second ?? { threw: "the first turn never reported progress" };

for (const seen of Object.values(results)) delete seen.task;
console.log(JSON.stringify({ results }));
