// An independent A2A client: the official JavaScript SDK (@a2a-js/sdk, pinned in package.json,
// client side only) holds a whole conversation with vf-mcp's A2A agent and prints one JSON object
// on stdout for tests/test_a2a_js.py to check.
//
//   node a2a_client.mjs BASE_URL
//
// The conversation: a first message (text), a button by label, a custom action's result, more
// turns, the end; every turn streamed except the first and the last, which are plain sends.
import { randomUUID } from "node:crypto";
import { Role } from "@a2a-js/sdk";
import { ClientFactory } from "@a2a-js/sdk/client";

const [base] = process.argv.slice(2);
if (!base) {
  console.error("usage: node a2a_client.mjs BASE_URL");
  process.exit(2);
}

const client = await new ClientFactory().createFromUrl(base);

function message(ids, part) {
  return {
    messageId: randomUUID(),
    contextId: ids.contextId ?? "",
    taskId: ids.taskId ?? "",
    role: Role.ROLE_USER,
    parts: [{ content: part, metadata: undefined, filename: "", mediaType: "" }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}
const text = (value) => ({ $case: "text", value });
const data = (value) => ({ $case: "data", value });

// What a turn left: the state, the reply's text and data parts, and what the stream carried.
function summary(status, events) {
  const parts = status.message?.parts ?? [];
  return {
    state: status.state,
    texts: parts.filter((p) => p.content?.$case === "text").map((p) => p.content.value),
    data: parts.filter((p) => p.content?.$case === "data").map((p) => p.content.value),
    metadata: status.message?.metadata ?? null,
    events,
  };
}

async function send(ids, part) {
  const result = await client.sendMessage({ message: message(ids, part), tenant: "" });
  return { task: result, turn: summary(result.status, ["task"]) };
}

async function stream(ids, part) {
  let status = null;
  const events = [];
  for await (const event of client.sendMessageStream({ message: message(ids, part), tenant: "" })) {
    const { $case, value } = event.payload;
    events.push($case);
    if ($case === "task" || $case === "statusUpdate") status = value.status;
  }
  return summary(status, events);
}

const first = await send({}, text("track my order"));
const ids = { contextId: first.task.contextId, taskId: first.task.id };
const turns = [first.turn];
turns.push(await stream(ids, text("1001")));
turns.push(await stream(ids, data({ choice: "Talk to a person" })));
turns.push(await stream(ids, data({ action: { type: "done" } })));
turns.push(await stream(ids, data({ choice: 1 })));
turns.push(await stream(ids, text("1002")));
const end = await send(ids, data({ choice: "That's all" }));
turns.push(end.turn);
const stored = await client.getTask({ id: first.task.id, tenant: "" });
console.log(
  JSON.stringify({
    card: (await client.getAgentCard()).name,
    turns,
    stored: { state: stored.status.state, artifacts: stored.artifacts.map((a) => a.name) },
  }),
);
