import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { startKeymint, type KeymintServer } from "./support.js";

// build/test/drift.test.js → the package root
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = join(root, "scripts", "openapi.mjs");

let server: KeymintServer;
let work: string;
let documentText: string;

before(async () => {
  server = await startKeymint();
  work = mkdtempSync(join(tmpdir(), "keymint-drift-test-"));
  // Read once: the tests below block the event loop in spawnSync for seconds.
  documentText = await (await fetch(`${server.baseUrl}/openapi.json`)).text();
});

after(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: "utf8", env: { ...process.env, ...env } });
}

/** The server's document with `ApiKey.usage_24h` renamed, as a server change would. */
function driftedDocument(): string {
  const document = JSON.parse(documentText);
  const apiKey = document.components.schemas.ApiKey;
  apiKey.properties.usage_last_day = apiKey.properties.usage_24h;
  delete apiKey.properties.usage_24h;
  apiKey.required = apiKey.required.map((name: string) => (name === "usage_24h" ? "usage_last_day" : name));
  const path = join(work, "drifted.json");
  writeFileSync(path, JSON.stringify(document));
  return path;
}

describe("OpenAPI drift", () => {
  test("the committed types match the running server's /openapi.json (by URL and by KEYMINT_URL)", () => {
    const byArg = run(["check", `${server.baseUrl}/openapi.json`]);
    assert.equal(byArg.status, 0, byArg.stderr + byArg.stdout);
    assert.match(byArg.stdout, /matches/);
    const byEnv = run(["check"], { KEYMINT_URL: server.baseUrl });
    assert.equal(byEnv.status, 0, byEnv.stderr);
  });

  test("a changed document fails the check with a diff", () => {
    const drifted = driftedDocument();
    const result = run(["check", drifted]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /DRIFT/);
    assert.match(result.stderr, /^-\s+usage_24h: number;$/m);
    assert.match(result.stderr, /^\+\s+usage_last_day: number;$/m);
  });

  test("types regenerated from a changed document fail tsc where the public types use them", () => {
    const drifted = driftedDocument();
    const copy = join(work, "project");
    cpSync(join(root, "src"), join(copy, "src"), { recursive: true });
    cpSync(join(root, "package.json"), join(copy, "package.json"));
    cpSync(join(root, "tsconfig.json"), join(copy, "tsconfig.json"));
    cpSync(join(root, "tsconfig.build.json"), join(copy, "tsconfig.build.json"));
    symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const typecheck = () => spawnSync(process.execPath, [tsc, "-p", join(copy, "tsconfig.build.json"), "--noEmit"], { encoding: "utf8" });

    const clean = typecheck();
    assert.equal(clean.status, 0, `the untouched copy typechecks: ${clean.stdout}`);

    const generated = run(["generate", drifted], { KEYMINT_GENERATED_FILE: join(copy, "src", "generated", "openapi.ts") });
    assert.equal(generated.status, 0, generated.stderr);
    const broken = typecheck();
    assert.notEqual(broken.status, 0, "tsc must fail on the drift");
    assert.match(broken.stdout, /src\/types\.ts\(\d+,\d+\): error TS2344/);
  });
});
