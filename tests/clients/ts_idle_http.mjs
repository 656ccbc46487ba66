// TypeScript-SDK clients that connect over streamable HTTP and then sit idle, as an IDE's client
// does between calls. After `initialize` the SDK opens its standalone GET /mcp event stream; a
// server offering none answers 405 and the client goes on without it.
//
//   node ts_idle_http.mjs URL CLIENTS
//
// Prints one JSON line ({"connected": N}) once every client made a call, then holds the clients
// open until stdin closes, so a test can stop the server while they are connected.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, count = "3"] = process.argv.slice(2);
const clients = [];
for (let n = 0; n < Number(count); n++) {
  const client = new Client({ name: `vf-mcp-idle-${n}`, version: "0.0.1" });
  client.onerror = () => {}; // the server stopping under an idle client is what is tested
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  await client.listTools();
  clients.push(client);
}
console.log(JSON.stringify({ connected: clients.length }));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
