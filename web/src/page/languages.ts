/** Monaco's language for a file, from its name: extensions and exact names Monaco registers. */

import * as monaco from "monaco-editor";

let byExtension: Map<string, string> | null = null;
let byFilename: Map<string, string> | null = null;

function tables(): [Map<string, string>, Map<string, string>] {
  if (byExtension === null || byFilename === null) {
    byExtension = new Map();
    byFilename = new Map();
    for (const language of monaco.languages.getLanguages()) {
      // The first language to claim an extension wins, as in Monaco's own lookup.
      for (const ext of language.extensions ?? []) {
        const key = ext.toLowerCase();
        if (!byExtension.has(key)) byExtension.set(key, language.id);
      }
      for (const name of language.filenames ?? []) {
        const key = name.toLowerCase();
        if (!byFilename.has(key)) byFilename.set(key, language.id);
      }
    }
  }
  return [byExtension, byFilename];
}

export function languageOf(path: string): string {
  const [extensions, filenames] = tables();
  const name = (path.split("/").pop() ?? path).toLowerCase();
  const exact = filenames.get(name);
  if (exact !== undefined) return exact;
  // Longest extension first: ".d.ts" before ".ts".
  for (let dot = name.indexOf("."); dot >= 0; dot = name.indexOf(".", dot + 1)) {
    const language = extensions.get(name.slice(dot));
    if (language !== undefined) return language;
  }
  return "plaintext";
}
