// Types for the one Monaco module the page uses that ships without them (see monaco-errors.ts).
declare module "monaco-editor/base/common/errors.js" {
  export const errorHandler: { unexpectedErrorHandler: (error: unknown) => void };
}
