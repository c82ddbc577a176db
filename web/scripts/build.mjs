// Builds the browser page into dist/: index.html plus content-hashed files under dist/assets/,
// which the CodeSphere server serves at / and /assets/ (server/codesphere/app/webapp.py).
//
// Two esbuild passes: Monaco's workers first (each a standalone ES module, since Monaco starts
// them as module workers), then the page, which learns the workers' hashed URLs through a
// `define` so that MonacoEnvironment.getWorkerUrl can hand them out. Last, .br and .gz copies
// of every asset over 1 KB, which the server sends to browsers that accept them.
//
// Nothing is fetched at run time from anywhere but the CodeSphere server: no CDN.

import { build } from "esbuild";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { brotliCompress, constants as zlibConstants, gzip } from "node:zlib";

const started = performance.now();
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const assets = join(dist, "assets");
const ASSET_URL = "/assets/";
const COMPRESS_OVER = 1024;
/**
 * Brotli's best quality (11), except for large files the first visit does not load: on the
 * 7 MB TypeScript worker quality 11 takes 11 s for 1.5% less than quality 10 in half the time.
 */
const brotliQuality = (name, size) => (size > 2 * 1024 * 1024 && !firstLoad.has(name) ? 10 : 11);

/** Worker label group → module. The labels Monaco asks for are mapped in page/monaco-env.ts. */
const WORKERS = {
  "editor.worker": "monaco-editor/editor/editor.worker.js",
  "json.worker": "monaco-editor/language/json/json.worker.js",
  "css.worker": "monaco-editor/language/css/css.worker.js",
  "html.worker": "monaco-editor/language/html/html.worker.js",
  "ts.worker": "monaco-editor/language/typescript/ts.worker.js",
};

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  outdir: assets,
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
};

await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

// -- 1. Monaco's workers ----------------------------------------------------------------------

const workerBuild = await build({
  ...common,
  entryPoints: Object.entries(WORKERS).map(([out, input]) => ({ in: input, out })),
});
/** @type {Record<string, string>} worker name → URL of its hashed file */
const workerUrls = {};
for (const [output, info] of Object.entries(workerBuild.metafile.outputs)) {
  if (!output.endsWith(".js") || info.entryPoint === undefined) continue;
  const name = Object.keys(WORKERS).find((w) => basename(output).startsWith(`${w}-`));
  if (name !== undefined) workerUrls[name] = ASSET_URL + basename(output);
}
for (const name of Object.keys(WORKERS)) {
  if (workerUrls[name] === undefined) throw new Error(`no output for the ${name}`);
}

// -- 2. The page ------------------------------------------------------------------------------

const pageBuild = await build({
  ...common,
  entryPoints: { main: "src/page/main.ts" },
  // Monaco loads most language grammars with import(): separate chunks keep them off the
  // first load.
  splitting: true,
  loader: { ".ttf": "file", ".woff": "file", ".woff2": "file", ".svg": "file", ".png": "file" },
  define: { __CODESPHERE_WORKERS__: JSON.stringify(workerUrls) },
});
let mainJs = null;
let mainCss = null;
for (const [output, info] of Object.entries(pageBuild.metafile.outputs)) {
  if (info.entryPoint !== "src/page/main.ts" || !output.endsWith(".js")) continue;
  mainJs = basename(output);
  // The CSS that the page's modules import (Monaco's and ours) lands in one bundle beside it.
  if (info.cssBundle !== undefined) mainCss = basename(info.cssBundle);
}
if (mainJs === null || mainCss === null) throw new Error("the page build made no main .js/.css");

/** What the first visit loads: the entry, the chunks it imports statically, its CSS and font. */
const firstLoad = new Set([mainCss]);
const visit = (output) => {
  const name = basename(output);
  if (firstLoad.has(name)) return;
  firstLoad.add(name);
  for (const dep of pageBuild.metafile.outputs[output]?.imports ?? []) {
    if (dep.kind === "import-statement" && !dep.external) visit(dep.path);
  }
};
visit(`dist/assets/${mainJs}`);
for (const input of Object.values(pageBuild.metafile.outputs)) {
  for (const dep of input.imports ?? []) {
    if (dep.kind === "url-token" && /\.(ttf|woff2?)$/.test(dep.path)) firstLoad.add(basename(dep.path));
  }
}

const template = await readFile(join(root, "src/page/index.html"), "utf8");
const html = template
  .replace("%MAIN_CSS%", ASSET_URL + mainCss)
  .replace("%MAIN_JS%", ASSET_URL + mainJs);
if (html.includes("%MAIN_")) throw new Error("index.html: a placeholder was not replaced");
await writeFile(join(dist, "index.html"), html);

// -- 3. Compressed copies ---------------------------------------------------------------------

const brotli = promisify(brotliCompress);
const gz = promisify(gzip);
const rows = [];
const files = (await readdir(assets)).sort();
// The async zlib calls run on libuv's thread pool: the large files compress in parallel.
await Promise.all(
  files.map(async (name) => {
    const path = join(assets, name);
    const raw = await readFile(path);
    const row = { name, raw: raw.length, br: null, gz: null };
    rows.push(row);
    if (raw.length <= COMPRESS_OVER) return;
    const [br, gzipped] = await Promise.all([
      brotli(raw, {
        params: {
          [zlibConstants.BROTLI_PARAM_QUALITY]: brotliQuality(name, raw.length),
          [zlibConstants.BROTLI_PARAM_SIZE_HINT]: raw.length,
          [zlibConstants.BROTLI_PARAM_MODE]: name.endsWith(".ttf")
            ? zlibConstants.BROTLI_MODE_GENERIC
            : zlibConstants.BROTLI_MODE_TEXT,
        },
      }),
      gz(raw, { level: 9 }),
    ]);
    // A copy no smaller than the file would only cost the server a lookup.
    if (br.length < raw.length) {
      await writeFile(`${path}.br`, br);
      row.br = br.length;
    }
    if (gzipped.length < raw.length) {
      await writeFile(`${path}.gz`, gzipped);
      row.gz = gzipped.length;
    }
  }),
);

// -- report -----------------------------------------------------------------------------------

const kb = (n) => (n === null ? "-" : `${(n / 1024).toFixed(1)} KB`);
const sum = (list, key) => list.reduce((total, r) => total + (r[key] ?? r.raw), 0);
rows.sort((a, b) => b.raw - a.raw);
const width = 32;
const line = (label, list) =>
  console.log(`${label.padEnd(width)}  ${kb(sum(list, "raw")).padStart(10)}  ${kb(sum(list, "br")).padStart(10)}  ${kb(sum(list, "gz")).padStart(10)}`);
console.log(`${"file".padEnd(width)}  ${"raw".padStart(10)}  ${"br".padStart(10)}  ${"gz".padStart(10)}`);
for (const r of rows.filter((r) => !r.name.startsWith("chunk-"))) line(r.name, [r]);
const initial = rows.filter((r) => firstLoad.has(r.name));
const sharedChunks = initial.filter((r) => r.name.startsWith("chunk-"));
const lazyChunks = rows.filter((r) => r.name.startsWith("chunk-") && !firstLoad.has(r.name));
line(`${sharedChunks.length} chunks main imports`, sharedChunks);
line(`${lazyChunks.length} lazy chunks (languages)`, lazyChunks);
line("total", rows);
line(`first load (${initial.length} files, no worker)`, initial);
const indexSize = (await stat(join(dist, "index.html"))).size;
console.log(`dist/index.html (${indexSize} B) → ${mainJs}, ${mainCss}`);
console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
