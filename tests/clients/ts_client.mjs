// An independent MCP client: the official TypeScript SDK (v1, pinned in package.json) drives a
// server over stdio and prints one JSON object on stdout for tests/test_clients.py to check.
//
//   node ts_client.mjs COMMAND [ARGS...]
//
// The server child gets PATH, HOME and every VOICEFLOW_* / VF_MCP_* variable of this process.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node ts_client.mjs COMMAND [ARGS...]");
  process.exit(2);
}

const env = {};
for (const [name, value] of Object.entries(process.env)) {
  if (name === "PATH" || name === "HOME" || name.startsWith("VOICEFLOW_") || name.startsWith("VF_MCP_")) {
    env[name] = value;
  }
}

const transport = new StdioClientTransport({ command, args, env, stderr: "inherit" });
let protocolVersion = null;
// The client calls this once the handshake has negotiated a version; record it.
transport.setProtocolVersion = (version) => {
  protocolVersion = version;
};

const client = new Client({ name: "vf-mcp-ts-sdk-test", version: "0.0.1" });
await client.connect(transport);
try {
  const tools = (await client.listTools()).tools;
  const launch = await client.callTool({ name: "interact", arguments: { launch: true } });
  const userId = launch.structuredContent?.user_id;
  const second = await client.callTool({
    name: "interact",
    arguments: { user_id: userId, choice: 1 },
  });
  const turn = (result) => ({
    isError: result.isError ?? false,
    text: result.content.filter((c) => c.type === "text").map((c) => c.text),
    structuredContent: result.structuredContent ?? null,
  });
  console.log(
    JSON.stringify({
      server: client.getServerVersion(),
      protocolVersion,
      tools: tools.map((t) => ({ name: t.name, hasOutputSchema: Boolean(t.outputSchema) })),
      launch: turn(launch),
      second: turn(second),
    }),
  );
} finally {
  await client.close();
}
