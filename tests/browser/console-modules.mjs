// The console's modules as .ci/run checks them, beyond parsing: every relative
// import names a file that exists (there is no build step to catch a typo),
// no module imports itself through others, none is over 400 lines, no line
// is over 120 characters. `--graph` prints which module imports which.
//
//   node tests/browser/console-modules.mjs [--graph]

import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../crates/web/console');
const MAX_LINES = 400;
const MAX_WIDTH = 120;

function modules(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return modules(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

const problems = [];
const graph = new Map();
for (const file of modules(ROOT).sort()) {
  const name = relative(ROOT, file);
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length > MAX_LINES) problems.push(`${name}: ${lines.length} lines (at most ${MAX_LINES})`);
  lines.forEach((line, i) => {
    if (line.length > MAX_WIDTH) problems.push(`${name}:${i + 1}: ${line.length} characters (at most ${MAX_WIDTH})`);
  });
  const imports = [];
  // Static imports and re-exports (`import … from '…'`, `import '…'`, `export … from '…'`).
  for (const [, spec] of text.matchAll(/^(?:import|export)\s+(?:[\w$*{},\s]+?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
    if (!spec.startsWith('.')) {
      problems.push(`${name}: imports ${spec}, which is not a file of the console`);
      continue;
    }
    const target = resolve(dirname(file), spec);
    if (!existsSync(target)) problems.push(`${name}: imports ${spec}, which does not exist`);
    imports.push(relative(ROOT, target));
  }
  graph.set(name, imports);
}

// A depth-first walk; a module met again while still on the path closes a loop.
const state = new Map();
function visit(name, path) {
  if (state.get(name) === 'done') return;
  if (state.get(name) === 'open') {
    problems.push(`import loop: ${[...path.slice(path.indexOf(name)), name].join(' → ')}`);
    return;
  }
  state.set(name, 'open');
  for (const next of graph.get(name) || []) visit(next, [...path, name]);
  state.set(name, 'done');
}
for (const name of graph.keys()) visit(name, []);

if (process.argv.includes('--graph')) {
  for (const [name, imports] of graph) console.log(`${name} → ${imports.join(', ') || '(nothing)'}`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`${graph.size} console modules: no import loop, none over ${MAX_LINES} lines or ${MAX_WIDTH} columns.`);
