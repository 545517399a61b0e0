// Express and Hono apps for the middleware overhead benchmark
// (run-middleware.sh), from the built client in clients/typescript/dist:
// /bare answers at once; /guarded verifies the caller's key first (one
// verification per request, answered from Keymint's own cache); /cached with
// a local cache of valid verdicts.
// Usage: node node_bench.mjs express|hono PORT   (KEYMINT_URL: Keymint)
import { createServer } from "node:http";

const dist = new URL("../../clients/typescript/dist/", import.meta.url);
const { Keymint } = await import(new URL("index.js", dist));
const [framework, port] = process.argv.slice(2);
const km = new Keymint({ baseUrl: process.env.KEYMINT_URL, maxRetries: 0 });

if (framework === "express") {
  const { default: express } = await import(new URL("../node_modules/express/index.js", dist));
  const { requireApiKey } = await import(new URL("express.js", dist));
  const app = express();
  app.get("/bare", (req, res) => res.json({ ok: true }));
  app.get("/guarded", requireApiKey(km), (req, res) => res.json({ ok: true, org: req.keymint.orgId }));
  app.get("/cached", requireApiKey(km, { cache: true }), (req, res) => res.json({ ok: true, org: req.keymint.orgId }));
  app.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
} else {
  const { Hono } = await import(new URL("../node_modules/hono/dist/index.js", dist));
  const { requireApiKey } = await import(new URL("hono.js", dist));
  const app = new Hono();
  app.get("/bare", (c) => c.json({ ok: true }));
  app.get("/guarded", requireApiKey(km), (c) => c.json({ ok: true, org: c.get("keymint").orgId }));
  app.get("/cached", requireApiKey(km, { cache: true }), (c) => c.json({ ok: true, org: c.get("keymint").orgId }));
  // Node's own server in front of Hono's fetch handler: what @hono/node-server
  // does, without another dependency.
  createServer(async (req, res) => {
    const response = await app.fetch(
      new Request(`http://127.0.0.1:${port}${req.url}`, { method: req.method, headers: req.headers }),
    );
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  }).listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
}
