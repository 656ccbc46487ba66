// Every failure a vf-mcp tool can answer, through the official TypeScript SDK (v1, pinned in
// package.json): the client behind Claude Code, Cursor and the MCP Inspector. One Node process
// runs the whole plan and prints one JSON object on stdout for tests/test_client_errors.py.
//
//   node ts_errors.mjs PLAN.json
//
// PLAN.json: {"servers": [{"name", "command", "args", "env", "cwd", "calls": [{"id", "tool",
// "arguments"}]}]}. Each server is started over stdio and its tools listed first: the SDK caches
// each tool's output schema then, and checks structuredContent against it on every later call
// (error results included), throwing when it does not match.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [planFile] = process.argv.slice(2);
if (!planFile) {
  console.error("usage: node ts_errors.mjs PLAN.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planFile, "utf-8"));

async function call(client, { id, tool, arguments: args }) {
  try {
    const result = await client.callTool({ name: tool, arguments: args });
    return {
      id,
      threw: null,
      isError: result.isError ?? false,
      text: result.content.filter((c) => c.type === "text").map((c) => c.text),
      structuredContent: result.structuredContent ?? null,
      error: result._meta?.["io.vf-mcp/error"] ?? null,
    };
  } catch (error) {
    // What the person would read instead of the server's message.
    return { id, threw: String(error?.message ?? error) };
  }
}

// The servers start at once (a Python start is most of the time this takes); each one's calls
// run in order, so its setup calls come before the cases that need them.
async function run(server) {
  const transport = new StdioClientTransport({
    command: server.command,
    args: server.args,
    env: server.env,
    cwd: server.cwd,
    stderr: "inherit",
  });
  const client = new Client({ name: "vf-mcp-ts-errors-test", version: "0.0.1" });
  await client.connect(transport);
  try {
    const tools = (await client.listTools()).tools;
    const withSchema = tools.filter((t) => t.outputSchema).length;
    const results = [{ id: `${server.name}:tools`, listed: tools.length, withSchema }];
    for (const planned of server.calls) {
      results.push(await call(client, planned));
    }
    return results;
  } finally {
    await client.close();
  }
}

const results = (await Promise.all(plan.servers.map(run))).flat();
console.log(JSON.stringify({ results }));
