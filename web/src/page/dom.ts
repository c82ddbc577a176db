/**
 * The one way the page makes elements. Text goes in through `textContent` only: names, chat
 * messages and file names come from other people, and must never be parsed as markup.
 */

export interface ElOptions {
  /** Set as `textContent` (never as HTML). */
  text?: string;
  /** Shorthand for `attrs["data-testid"]`: the tests find the page by these. */
  testid?: string;
  className?: string;
  /** Attributes; `undefined` or `false` leaves one out, `true` sets it empty. */
  attrs?: Readonly<Record<string, string | boolean | undefined>>;
  children?: readonly (Node | string | null | undefined | false)[];
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, options: ElOptions = {}): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className !== undefined) node.className = options.className;
  if (options.testid !== undefined) node.setAttribute("data-testid", options.testid);
  for (const [name, value] of Object.entries(options.attrs ?? {})) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : value);
  }
  if (options.text !== undefined) node.textContent = options.text;
  for (const child of options.children ?? []) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** A `<button type="button">` (so that one inside a form never submits it by accident). */
export function button(text: string, onClick: (event: MouseEvent) => void, options: ElOptions = {}): HTMLButtonElement {
  const node = el("button", { ...options, text, attrs: { type: "button", ...options.attrs } });
  node.addEventListener("click", onClick);
  return node;
}

/** Show or hide an element without removing it (tests and screen readers see `hidden`). */
export function show(node: HTMLElement, visible: boolean): void {
  node.hidden = !visible;
}

/** The last segment of a `/`-separated path. */
export function baseName(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? path : path.slice(slash + 1);
}

/** A member colour fit to put in a style: the server's `#rrggbb`, anything else a grey. */
export function safeColor(color: string): string {
  if (/^#[0-9a-fA-F]{6}$/.test(color)) return color.toLowerCase();
  if (/^#[0-9a-fA-F]{3}$/.test(color)) {
    const [r, g, b] = color.slice(1);
    return `#${r}${r}${g}${g}${b}${b}`.toLowerCase();
  }
  return "#8a8a8a";
}

/** A message for people from anything thrown. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
