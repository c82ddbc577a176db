/**
 * Where Monaco finds its workers. Imported first by main.ts, before Monaco itself, so the
 * environment is in place whatever Monaco does when it loads.
 *
 * The build (scripts/build.mjs) makes each worker a separate hashed file and passes their URLs
 * in `__CODESPHERE_WORKERS__`. Monaco asks by label: the language id for the language services,
 * anything else for the generic editor worker (diffs, links, word completion).
 */

declare const __CODESPHERE_WORKERS__: Readonly<Record<string, string>>;

const WORKER_OF_LABEL: Readonly<Record<string, string>> = {
  json: "json.worker",
  css: "css.worker",
  scss: "css.worker",
  less: "css.worker",
  html: "html.worker",
  handlebars: "html.worker",
  razor: "html.worker",
  typescript: "ts.worker",
  javascript: "ts.worker",
};

function workerUrl(label: string): string {
  const name = WORKER_OF_LABEL[label] ?? "editor.worker";
  const url = __CODESPHERE_WORKERS__[name] ?? __CODESPHERE_WORKERS__["editor.worker"];
  if (url === undefined) throw new Error(`no worker was built for ${label}`);
  // Absolute: Monaco may start the worker from a blob: bootstrap, which has no base URL.
  return new URL(url, window.location.href).toString();
}

(globalThis as unknown as { MonacoEnvironment: unknown }).MonacoEnvironment = {
  getWorkerUrl: (_moduleId: string, label: string): string => workerUrl(label),
};
