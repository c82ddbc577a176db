/**
 * Asks for the display name once (the answer is remembered). An in-page form, not
 * `window.prompt`: the page never opens a browser dialog.
 */

import { el } from "./dom.js";

const MAX_NAME = 64; // protocol §2: displayName is 1–64 characters

export function askName(root: HTMLElement, suggestion = ""): Promise<string> {
  return new Promise((resolve) => {
    const input = el("input", {
      testid: "name-input",
      attrs: { type: "text", maxlength: String(MAX_NAME), required: true, autocomplete: "nickname", "aria-label": "Your name", placeholder: "Your name" },
    });
    input.value = suggestion;
    const submit = el("button", { testid: "name-submit", text: "Join", attrs: { type: "submit" } });
    const error = el("p", { className: "form-error", attrs: { hidden: true } });
    const form = el("form", {
      className: "name-form",
      children: [el("h2", { text: "What name should the others see?" }), input, error, submit],
    });
    const overlay = el("div", {
      testid: "name-dialog",
      className: "overlay",
      attrs: { role: "dialog", "aria-modal": "true", "aria-label": "Your name" },
      children: [form],
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (name.length === 0 || name.length > MAX_NAME) {
        error.textContent = `A name has 1 to ${MAX_NAME} characters.`;
        error.hidden = false;
        input.focus();
        return;
      }
      overlay.remove();
      resolve(name);
    });
    root.append(overlay);
    input.focus();
  });
}
