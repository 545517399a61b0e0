// Creating, listing and revoking keys from code (README: "Managing keys from
// code"); test/examples.test.ts runs it.
import { Keymint } from "@keymint/client";

const km = new Keymint({ baseUrl: process.env.KEYMINT_URL ?? "http://127.0.0.1:8080", token: process.env.KEYMINT_TOKEN! });
const key = await km.keys.create({ name: "acme-billing", environment: "live", permissions: ["billing.read"] });
console.log(key.id, key.privateKey); // the private key: shown once, store it now
for await (const listed of km.keys.list({ environment: "live" })) console.log(listed.name, listed.usage24h);
await km.keys.revoke(key.id);
