/**
 * Every start of riakfs (`--version` too) evaluates program.ts and every command's
 * definition; what a command does is loaded with `import()` when it runs (`*_action.ts`).
 * These tests walk the static import graph from program.ts, which is what esbuild's bundle
 * evaluates at start, and keep it that way.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(CLI, "..");

/**
 * Built-in modules whose loading start-up must not pay for: each costs milliseconds (crypto,
 * tls) or drags in a server (net, http). Commands that need them load them in their action.
 */
const HEAVY_BUILTINS = [
  "node:child_process",
  "node:crypto",
  "node:http",
  "node:net",
  "node:tls",
  "node:worker_threads",
];

/** The relative modules `file` imports for their values (what esbuild keeps and evaluates). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  const statement = /^(import|export)\s+([^;]*?)\s*from\s+"(\.[^"]+)";|^import\s+"(\.[^"]+)";/gms;
  for (const match of text.matchAll(statement)) {
    const [, keyword, clause, from, bare] = match;
    if (bare !== undefined) {
      found.push(bare);
      continue;
    }
    if (keyword === "export" && !/^(\*|\{)/.test(clause)) continue;
    if (/^type\s/.test(clause)) continue;
    const named = clause.match(/\{([^}]*)\}/)?.[1];
    const defaultOrStar = clause.replace(/\{[^}]*\}/, "").replace(/[\s,]/g, "") !== "";
    const names = named?.split(",").map((n) => n.trim()).filter((n) => n !== "") ?? [];
    if (!defaultOrStar && names.length > 0 && names.every((n) => n.startsWith("type "))) continue;
    if (from.endsWith(".json")) continue;
    found.push(from);
  }
  return found.map((path) => resolve(dirname(file), path));
}

/** The built-in and npm modules `file` imports for their values. */
function packageImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(/^import\s+(?!type\s)([^;]*?)\s*from\s+"([^".][^"]*)";/gms)) {
    const named = match[1].match(/\{([^}]*)\}/)?.[1];
    const other = match[1].replace(/\{[^}]*\}/, "").replace(/[\s,]/g, "") !== "";
    const names = named?.split(",").map((n) => n.trim()).filter((n) => n !== "") ?? [];
    if (!other && names.length > 0 && names.every((n) => n.startsWith("type "))) continue;
    found.push(match[2]);
  }
  return found;
}

/** Every module evaluated at start: program.ts and its static value imports, in any folder. */
function modulesAtStart(): string[] {
  const seen = new Set<string>();
  const pending = [join(CLI, "program.ts")];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    pending.push(...valueImports(file));
  }
  return [...seen];
}

Deno.test("the import scanner sees value imports and skips type-only ones", () => {
  const atStart = modulesAtStart().map((m) => relative(SRC, m));
  assert.ok(atStart.includes("cli/mount.ts") && atStart.includes("cli/riak-options.ts"));
  assert.ok(atStart.includes("overlay/modes.ts"));
  // gc.ts imports `type Store` only.
  assert.ok(!atStart.includes("store/store.ts"));
  assert.ok(packageImports(join(CLI, "program.ts")).includes("commander"));
});

Deno.test("no command's action module is evaluated at start", () => {
  const eager = modulesAtStart().map((m) => relative(SRC, m)).filter((m) =>
    /^cli\/(.*_action\.ts|riak-session\.ts|migration-settings\.ts)$/.test(m)
  );
  assert.deepEqual(eager, []);
});

Deno.test("start-up loads no heavy built-in module, in any layer", () => {
  const heavy = modulesAtStart().flatMap((file) =>
    packageImports(file).filter((name) => HEAVY_BUILTINS.includes(name)).map((name) =>
      `${relative(SRC, file)} imports ${name}`
    )
  );
  assert.deepEqual(
    heavy,
    [],
    "keep what a command's help shows in a module without heavy imports (see */defaults.ts)",
  );
});
