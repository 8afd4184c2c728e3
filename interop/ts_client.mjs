// Drive a Keel server with the official TypeScript MCP SDK (@modelcontextprotocol/sdk, pinned in interop/package.json).
//
//   node ts_client.mjs --modules DIR -- COMMAND [ARGS...]   Keel's stdio_server example over stdio (StdioClientTransport)
//   node ts_client.mjs --modules DIR --url URL              Keel's http_server example over streamable HTTP
//                                                           (StreamableHTTPClientTransport)
//
// DIR is the node_modules folder interop/run installed the pins into (outside the repository, so this file cannot
// import the SDK by bare name); the SDK's own `exports` map is used to find its ESM entry points there.
//
// Checks, after the SDK's initialize handshake (the TypeScript SDK only speaks the initialize era):
//   * both: tools/list has add; tools/call add {a:2,b:3} -> not an error, structuredContent {"sum": 5};
//   * stdio: tools/list also has echo and countdown;
//   * HTTP: tools/list also has now; resources/list has docs://readme; resources/read docs://readme ->
//     text/markdown "# Hello\nServed by Keel."; resources/templates/list has notes://{name}; resources/read
//     notes://kitchen mentions kitchen; prompts/list has essay; prompts/get essay {topic:"ships"} mentions ships.
// Prints `  ok: ...` per check, then `ts_client: all checks passed`; on the first mismatch prints
// `ts_client: FAILED: <why>` and exits 1.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const TIMEOUT_MS = 30_000;

class Mismatch extends Error {}

function ok(text) {
  console.log(`  ok: ${text}`);
}

function check(condition, message) {
  if (!condition) throw new Mismatch(message);
}

const show = (value) => JSON.stringify(value);

function parseArgs(argv) {
  const args = { modules: null, url: null, command: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      args.command = argv.slice(i + 1);
      break;
    } else if (arg === "--modules") {
      args.modules = argv[++i];
    } else if (arg === "--url") {
      args.url = argv[++i];
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  if (!args.modules || Boolean(args.url) === args.command.length > 0) {
    throw new Error("usage: ts_client.mjs --modules DIR (--url URL | -- COMMAND [ARGS...])");
  }
  return args;
}

// Imports `@modelcontextprotocol/sdk/<subpath>` from DIR through the package's "./*" export (its ESM build).
async function sdk(modules, subpath) {
  const root = join(modules, "@modelcontextprotocol", "sdk");
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const pattern = manifest.exports?.["./*"]?.import;
  if (typeof pattern !== "string") throw new Error(`${root}/package.json has no "./*" import export`);
  return import(pathToFileURL(join(root, pattern.replace("*", subpath))).href);
}

function texts(result) {
  return (result.content ?? []).filter((block) => block.type === "text").map((block) => block.text);
}

async function checkTools(client, expected) {
  const { tools } = await client.listTools(undefined, { timeout: TIMEOUT_MS });
  const names = tools.map((tool) => tool.name);
  const missing = expected.filter((name) => !names.includes(name));
  check(missing.length === 0, `tools/list lacks ${missing.join(", ")}; got ${names.join(", ")}`);
  const add = tools.find((tool) => tool.name === "add");
  check(add.inputSchema?.type === "object" && "a" in (add.inputSchema.properties ?? {}) && "b" in (add.inputSchema.properties ?? {}),
    `tool add: inputSchema is not an object schema with a and b: ${show(add.inputSchema)}`);
  ok(`tools/list -> ${names.join(", ")}`);

  const result = await client.callTool({ name: "add", arguments: { a: 2, b: 3 } }, undefined, { timeout: TIMEOUT_MS });
  check(!result.isError, `add {a:2,b:3} returned isError: ${show(result)}`);
  check(result.structuredContent?.sum === 5, `add {a:2,b:3}: structuredContent is not {"sum": 5}: ${show(result)}`);
  ok(`add {a:2,b:3} -> structuredContent ${show(result.structuredContent)}, text ${show(texts(result))}`);
}

async function checkHttpExtras(client) {
  const { resources } = await client.listResources(undefined, { timeout: TIMEOUT_MS });
  const uris = resources.map((resource) => resource.uri);
  check(uris.includes("docs://readme"), `resources/list lacks docs://readme; got ${show(uris)}`);
  ok(`resources/list -> ${uris.join(", ")}`);

  let read = await client.readResource({ uri: "docs://readme" }, { timeout: TIMEOUT_MS });
  check(read.contents.length === 1 && read.contents[0].uri === "docs://readme" && read.contents[0].mimeType === "text/markdown" &&
    read.contents[0].text === "# Hello\nServed by Keel.",
    `resources/read docs://readme: expected one text/markdown text "# Hello\\nServed by Keel.": ${show(read)}`);
  ok(`resources/read docs://readme -> ${read.contents[0].mimeType} ${show(read.contents[0].text)}`);

  const { resourceTemplates } = await client.listResourceTemplates(undefined, { timeout: TIMEOUT_MS });
  const patterns = resourceTemplates.map((template) => template.uriTemplate);
  check(patterns.includes("notes://{name}"), `resources/templates/list lacks notes://{name}; got ${show(patterns)}`);
  read = await client.readResource({ uri: "notes://kitchen" }, { timeout: TIMEOUT_MS });
  check(read.contents.length === 1 && read.contents[0].uri === "notes://kitchen" && /kitchen/.test(read.contents[0].text ?? ""),
    `resources/read notes://kitchen: expected one text for notes://kitchen mentioning kitchen: ${show(read)}`);
  ok(`resources/templates/list -> ${patterns.join(", ")}; resources/read notes://kitchen -> ${show(read.contents[0].text)}`);

  const { prompts } = await client.listPrompts(undefined, { timeout: TIMEOUT_MS });
  const names = prompts.map((prompt) => prompt.name);
  check(names.includes("essay"), `prompts/list lacks essay; got ${show(names)}`);
  const prompt = await client.getPrompt({ name: "essay", arguments: { topic: "ships" } }, { timeout: TIMEOUT_MS });
  const said = prompt.messages.filter((m) => m.content?.type === "text").map((m) => m.content.text);
  check(said.some((text) => text.includes("ships")), `prompts/get essay {topic:"ships"}: no text message mentions ships: ${show(prompt)}`);
  ok(`prompts/list -> ${names.join(", ")}; prompts/get essay {topic:"ships"} -> ${show(said)}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { Client } = await sdk(args.modules, "client/index.js");
  let transport;
  if (args.url) {
    const { StreamableHTTPClientTransport } = await sdk(args.modules, "client/streamableHttp.js");
    transport = new StreamableHTTPClientTransport(new URL(args.url));
  } else {
    const { StdioClientTransport } = await sdk(args.modules, "client/stdio.js");
    transport = new StdioClientTransport({ command: args.command[0], args: args.command.slice(1), stderr: "inherit" });
  }
  const client = new Client({ name: "keel-interop-ts-client", version: "1" });
  await client.connect(transport, { timeout: TIMEOUT_MS });
  const info = client.getServerVersion();
  const version = transport.protocolVersion; // set by the HTTP transport once initialize agreed on one
  ok(`initialize -> server ${info?.name} ${info?.version}${version ? `, protocol ${version}` : ""}`);
  try {
    if (args.url) {
      await checkTools(client, ["add", "now"]);
      await checkHttpExtras(client);
    } else {
      await checkTools(client, ["add", "echo", "countdown"]);
    }
  } finally {
    if (args.url && transport.sessionId) {
      await transport.terminateSession().catch((error) => console.error(`terminateSession: ${error}`));
    }
    await client.close();
  }
}

try {
  await main();
  console.log("ts_client: all checks passed");
  process.exit(0);
} catch (error) {
  console.log(`ts_client: FAILED: ${error instanceof Mismatch ? error.message : `${error?.name}: ${error?.message}`}`);
  if (!(error instanceof Mismatch)) console.error(error);
  process.exit(1);
}
