// An OAuth authorization server and the MCP server it protects, both from the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in interop/package.json), for interop/oauth/driver.py to log Keel's OAuth client
// into.
//
//   node ts_auth_server.mjs --modules DIR [--no-offline-access] [--access-ttl SECONDS]
//
// DIR is the node_modules folder interop/run installed the pins into. Binds two ephemeral ports on 127.0.0.1 and
// prints `ready AS_URL MCP_URL` once both listen.
//
// * The authorization server is the SDK's `mcpAuthRouter` (metadata, /authorize, /token, dynamic registration at
//   /register, /revoke) over the SDK's demo provider, `DemoInMemoryAuthProvider` (shipped in dist/esm/examples): it
//   approves every authorization at once and redirects straight back to the client, to a redirect URI registered
//   exactly (the router's own check lets any loopback port through, RFC 8252; the demo's does not, and sends the
//   browser back with error=invalid_request otherwise). The demo issues one-hour access
//   tokens and no refresh tokens, so `InteropProvider` extends it with what real servers do: short-lived access
//   tokens (--access-ttl, default 60 s), rotating refresh tokens (issued, when `offline_access` is advertised, only to
//   an authorization that asked for it), and revocation of both tokens of a grant. Tokens are bound to MCP_URL (the
//   demo's strict resource check). `scopes_supported` is `mcp:tools offline_access` (`mcp:tools` with
//   --no-offline-access).
// * The MCP server is the SDK's `McpServer` over its streamable HTTP transport (stateless) at MCP_URL, with one tool,
//   `add` {a, b}, behind `requireBearerAuth` (`mcp:tools` required, resource MCP_URL) and `mcpAuthMetadataRouter`
//   (protected resource metadata naming the authorization server).
//
// Test-only control endpoints on the authorization server (no authentication: never do this in a real server), the
// same as interop/oauth/py_auth_server.py's: GET /_test/events, POST /_test/expire {"advertise_ttl": N},
// POST /_test/revoke.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const REQUIRED_SCOPE = "mcp:tools";
const OFFLINE_ACCESS = "offline_access";

function parseArgs(argv) {
  const args = { modules: null, offlineAccess: true, accessTtl: 60 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--modules") args.modules = argv[++i];
    else if (arg === "--no-offline-access") args.offlineAccess = false;
    else if (arg === "--access-ttl") args.accessTtl = Number(argv[++i]);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!args.modules || !(args.accessTtl > 0)) {
    throw new Error("usage: ts_auth_server.mjs --modules DIR [--no-offline-access] [--access-ttl SECONDS]");
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));

// `@modelcontextprotocol/sdk/<subpath>` from DIR through the package's "./*" export (its ESM build).
async function sdk(subpath) {
  const root = join(args.modules, "@modelcontextprotocol", "sdk");
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const pattern = manifest.exports?.["./*"]?.import;
  if (typeof pattern !== "string") throw new Error(`${root}/package.json has no "./*" import export`);
  return import(pathToFileURL(join(root, pattern.replace("*", subpath))).href);
}

const require = createRequire(join(args.modules, "package.json"));
const express = require("express");
const z = await import(pathToFileURL(require.resolve("zod/v4").replace(/\.cjs$/, ".js")).href);
const { DemoInMemoryAuthProvider } = await sdk("examples/server/demoInMemoryOAuthProvider.js");
const { createOAuthMetadata, mcpAuthRouter, mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } =
  await sdk("server/auth/router.js");
const { requireBearerAuth } = await sdk("server/auth/middleware/bearerAuth.js");
const { InvalidGrantError, InvalidTokenError } = await sdk("server/auth/errors.js");
const { resourceUrlFromServerUrl } = await sdk("shared/auth-utils.js");
const { createMcpExpressApp } = await sdk("server/express.js");
const { McpServer } = await sdk("server/mcp.js");
const { StreamableHTTPServerTransport } = await sdk("server/streamableHttp.js");

class InteropProvider extends DemoInMemoryAuthProvider {
  constructor(validateResource, advertiseOfflineAccess, accessTtl) {
    super(validateResource);
    this.advertiseOfflineAccess = advertiseOfflineAccess;
    this.accessTtl = accessTtl;
    this.refreshTokens = new Map(); // refresh token -> { clientId, scopes, resource, access }
  }

  async exchangeAuthorizationCode(client, code, codeVerifier, redirectUri, resource) {
    const params = this.codes.get(code)?.params;
    const tokens = await super.exchangeAuthorizationCode(client, code, codeVerifier, redirectUri, resource);
    return this.#shorten(client, tokens, params?.scopes ?? [], params?.resource);
  }

  async exchangeRefreshToken(client, refreshToken, scopes, _resource) {
    const grant = this.refreshTokens.get(refreshToken);
    if (!grant || grant.clientId !== client.client_id) throw new InvalidGrantError("refresh token revoked or unknown");
    this.refreshTokens.delete(refreshToken);
    this.tokens.delete(grant.access);
    const granted = scopes?.length ? scopes : grant.scopes;
    const token = randomUUID();
    this.tokens.set(token, {
      token, clientId: client.client_id, scopes: granted, expiresAt: 0, resource: grant.resource, type: "access",
    });
    const tokens = { access_token: token, token_type: "bearer", scope: granted.join(" ") };
    return this.#shorten(client, tokens, granted, grant.resource);
  }

  async revokeToken(_client, { token }) {
    const grant = this.refreshTokens.get(token);
    if (grant) {
      this.refreshTokens.delete(token);
      this.tokens.delete(grant.access);
      return;
    }
    this.tokens.delete(token);
    for (const [refresh, other] of this.refreshTokens) {
      if (other.access === token) this.refreshTokens.delete(refresh);
    }
  }

  // The access token just issued lives `accessTtl` seconds, and gets a refresh token when the grant may have one.
  #shorten(client, tokens, scopes, resource) {
    const data = this.tokens.get(tokens.access_token);
    data.expiresAt = Date.now() + this.accessTtl * 1000;
    const out = { ...tokens, expires_in: this.accessTtl };
    const wantsRefresh = (client.grant_types ?? []).includes("refresh_token") &&
      (!this.advertiseOfflineAccess || scopes.includes(OFFLINE_ACCESS));
    if (wantsRefresh) {
      out.refresh_token = randomUUID();
      this.refreshTokens.set(out.refresh_token, {
        clientId: client.client_id, scopes, resource, access: tokens.access_token,
      });
    }
    return out;
  }
}

// One event per HTTP exchange, for /_test/events (the request's query, form and credentials; the authorization
// server's status, Location and JSON body).
const events = [];
function recorder(side) {
  return (req, res, next) => {
    if (req.path.startsWith("/_test/")) return next();
    const event = { side, time: Date.now() / 1000, method: req.method, path: req.path, query: { ...req.query } };
    if (req.is("application/x-www-form-urlencoded") && req.body) event.form = { ...req.body };
    else if (side === "as" && req.body && Object.keys(req.body).length) event.json_body = req.body;
    const [scheme, credentials = ""] = (req.headers.authorization ?? "").split(" ", 2);
    if (scheme.toLowerCase() === "bearer") event.bearer = credentials;
    else if (scheme.toLowerCase() === "basic") {
      event.basic_client_id = Buffer.from(credentials, "base64").toString().split(":")[0];
    }
    events.push(event);
    const writeHead = res.writeHead;
    res.writeHead = function (status, ...rest) {
      event.status = status;
      const location = res.getHeader("location");
      if (location !== undefined) event.location = String(location);
      return writeHead.call(this, status, ...rest);
    };
    res.on("finish", () => {
      event.status ??= res.statusCode;
      const location = res.getHeader("location");
      if (location !== undefined) event.location = String(location);
    });
    if (side === "as") {
      const send = res.send;
      res.send = function (body) {
        try {
          event.response = JSON.parse(typeof body === "string" ? body : String(body));
        } catch {
          event.response_text = String(body).slice(0, 2000);
        }
        return send.call(this, body);
      };
    }
    next();
  };
}

function listen(app) {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

const asApp = express();
const mcpApp = createMcpExpressApp({ host: "127.0.0.1" });
const asServer = await listen(asApp);
const mcpServer = await listen(mcpApp);
const asUrl = new URL(`http://127.0.0.1:${asServer.address().port}`);
const mcpUrl = new URL(`http://127.0.0.1:${mcpServer.address().port}/mcp`);
const scopesSupported = args.offlineAccess ? [REQUIRED_SCOPE, OFFLINE_ACCESS] : [REQUIRED_SCOPE];
const expectedResource = resourceUrlFromServerUrl(mcpUrl).href;
const validateResource = (resource) => resource?.href === expectedResource;
const provider = new InteropProvider(validateResource, args.offlineAccess, args.accessTtl);

asApp.use(express.urlencoded({ extended: false }));
asApp.use(express.json());
asApp.get("/_test/events", (_req, res) => res.json(events));
asApp.post("/_test/expire", (req, res) => {
  for (const data of provider.tokens.values()) data.expiresAt = Date.now() - 1000;
  provider.accessTtl = Number(req.body.advertise_ttl);
  res.json({ expired: provider.tokens.size });
});
asApp.post("/_test/revoke", async (_req, res) => {
  const grants = [...provider.refreshTokens.keys(), ...provider.tokens.keys()];
  for (const token of grants) await provider.revokeToken(undefined, { token });
  res.json({ revoked: grants.length });
});
asApp.use(recorder("as"));
asApp.use(mcpAuthRouter({ provider, issuerUrl: asUrl, scopesSupported, resourceServerUrl: mcpUrl }));

mcpApp.use(recorder("rs"));
mcpApp.use(mcpAuthMetadataRouter({
  oauthMetadata: createOAuthMetadata({ provider, issuerUrl: asUrl, scopesSupported }),
  resourceServerUrl: mcpUrl,
  scopesSupported: [REQUIRED_SCOPE],
}));
const bearer = requireBearerAuth({
  verifier: {
    async verifyAccessToken(token) {
      try {
        return await provider.verifyAccessToken(token);
      } catch (error) {
        throw new InvalidTokenError(error.message); // the demo throws a plain Error, which would be a 500
      }
    },
  },
  requiredScopes: [REQUIRED_SCOPE],
  resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl),
  expectedResource: mcpUrl,
});
mcpApp.post("/mcp", bearer, async (req, res) => {
  const server = new McpServer({ name: "keel-oauth-interop-typescript", version: "1.0.0" });
  server.registerTool("add", {
    description: "Adds two numbers",
    inputSchema: { a: z.number(), b: z.number() },
  }, async ({ a, b }) => ({
    content: [{ type: "text", text: String(a + b) }],
    structuredContent: { sum: a + b },
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
const notAllowed = (_req, res) => {
  res.writeHead(405, { "content-type": "application/json" })
    .end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null }));
};
mcpApp.get("/mcp", bearer, notAllowed);
mcpApp.delete("/mcp", bearer, notAllowed);

console.log(`ready ${asUrl.href.replace(/\/$/, "")} ${mcpUrl.href}`);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    asServer.close();
    mcpServer.close();
    process.exit(0);
  });
}
