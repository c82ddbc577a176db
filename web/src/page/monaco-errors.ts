/**
 * Monaco 0.57's tokenizer sometimes keeps tokens of the wrong length for a line after an edit
 * that inserts a line break through the model API (what applying other members' edits does),
 * and reports it with `onUnexpectedError("Token length and text length do not match!")`,
 * which Monaco rethrows asynchronously as an uncaught error. A bare Monaco page applying random
 * edits to a Python model does the same, with no CodeSphere code involved. The text is not
 * affected, only the line's colours until it is tokenized again, so that one message is logged
 * at debug level; every other unexpected error goes to Monaco's own handler as before.
 */

import { errorHandler } from "monaco-editor/base/common/errors.js";

const KNOWN_HARMLESS = ["Token length and text length do not match!"];

const monacoDefault = errorHandler.unexpectedErrorHandler;
errorHandler.unexpectedErrorHandler = (error: unknown): void => {
  const message = error instanceof Error ? error.message : String(error);
  if (KNOWN_HARMLESS.includes(message)) {
    console.debug(`codesphere: Monaco reported (harmless): ${message}`);
    return;
  }
  monacoDefault(error);
};
