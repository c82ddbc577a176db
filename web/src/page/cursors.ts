/**
 * Other members' cursors and selections in the file on screen: decorations in each member's
 * colour, and a name label (a Monaco content widget) at each cursor.
 *
 * Presence positions are at the server's head revision (protocol §7); we may be a little behind
 * or ahead, so they are clamped to the model and shown approximately. Once placed, Monaco moves
 * the decorations with later edits, and the labels follow their decorations.
 */

import * as monaco from "monaco-editor";

import type { CodeSphereClient, Presence } from "../core/index.js";
import { el, safeColor } from "./dom.js";
import type { Workspace } from "./workspace.js";

interface Shown {
  model: monaco.editor.ITextModel;
  decorations: string[];
  /** The decoration of the primary selection, and which of its ends is the cursor. */
  primary: { id: string; activeAtEnd: boolean } | null;
  label: NameLabel;
}

class NameLabel implements monaco.editor.IContentWidget {
  readonly node: HTMLElement;
  position: monaco.IPosition | null = null;
  private readonly id: string;

  constructor(memberId: string, index: number) {
    this.id = `codesphere.cursor.${index}`;
    this.node = el("div", {
      testid: "remote-cursor-label",
      className: "remote-cursor-label",
      attrs: { "data-member-id": memberId },
    });
  }

  getId(): string {
    return this.id;
  }

  getDomNode(): HTMLElement {
    return this.node;
  }

  getPosition(): monaco.editor.IContentWidgetPosition | null {
    if (this.position === null) return null;
    return {
      position: this.position,
      preference: [monaco.editor.ContentWidgetPositionPreference.ABOVE, monaco.editor.ContentWidgetPositionPreference.BELOW],
    };
  }
}

export class RemoteCursors {
  private readonly editor: monaco.editor.IStandaloneCodeEditor;
  private readonly client: CodeSphereClient;
  private readonly workspace: Workspace;
  private readonly shown = new Map<string, Shown>();
  /** A small number per member and colour, for its CSS classes. */
  private readonly classes = new Map<string, number>();
  private readonly sheet: CSSStyleSheet;

  constructor(editor: monaco.editor.IStandaloneCodeEditor, client: CodeSphereClient, workspace: Workspace) {
    this.editor = editor;
    this.client = client;
    this.workspace = workspace;
    const style = el("style");
    document.head.append(style);
    if (style.sheet === null) throw new Error("no stylesheet for the cursor colours");
    this.sheet = style.sheet;
    client.on("presence", (presence) => this.update(presence));
    client.on("memberLeft", ({ memberId }) => this.remove(memberId));
    workspace.on("active", () => this.renderAll());
    editor.onDidChangeModelContent(() => this.placeLabels());
  }

  /** Draw everyone again from the client's presence map (after a tab switch or reconnect). */
  renderAll(): void {
    for (const memberId of [...this.shown.keys()]) {
      if (!this.client.presence.has(memberId)) this.remove(memberId);
    }
    for (const presence of this.client.presence.values()) this.update(presence);
  }

  private update(presence: Presence): void {
    const model = this.editor.getModel();
    const me = this.client.me?.memberId;
    const here =
      model !== null &&
      presence.memberId !== me &&
      presence.path !== null &&
      presence.path === this.workspace.activePath &&
      presence.selections.length > 0;
    if (!here) {
      this.remove(presence.memberId);
      return;
    }
    const member = this.client.members.get(presence.memberId);
    const name = member?.name ?? presence.name;
    const color = safeColor(member?.color ?? presence.color);
    const cls = `cs-m-${this.classFor(presence.memberId, color)}`;

    let shown = this.shown.get(presence.memberId);
    if (shown !== undefined && shown.model !== model) {
      this.remove(presence.memberId);
      shown = undefined;
    }
    if (shown === undefined) {
      const label = new NameLabel(presence.memberId, this.classFor(presence.memberId, color));
      shown = { model, decorations: [], primary: null, label };
      this.shown.set(presence.memberId, shown);
      this.editor.addContentWidget(label);
    }
    shown.label.node.textContent = name;
    shown.label.node.style.backgroundColor = color;
    shown.label.node.style.color = textColorOn(color);

    const decorations: monaco.editor.IModelDeltaDecoration[] = presence.selections.map((selection) => {
      const anchor = model.validatePosition({ lineNumber: selection.anchor.line + 1, column: selection.anchor.character + 1 });
      const active = model.validatePosition({ lineNumber: selection.active.line + 1, column: selection.active.character + 1 });
      const range = monaco.Range.fromPositions(anchor, active);
      const activeAtEnd = !monaco.Position.isBefore(active, anchor);
      const caret = `cs-remote-caret ${cls}`;
      return {
        range,
        options: {
          description: "codesphere-remote-selection",
          className: range.isEmpty() ? null : `cs-remote-selection ${cls}`,
          // The caret is an empty inline element drawn at the cursor's end of the range.
          ...(activeAtEnd ? { afterContentClassName: caret } : { beforeContentClassName: caret }),
          stickiness: monaco.editor.TrackedRangeStickiness.NeverGrowsWhenTypingAtEdges,
        },
      };
    });
    shown.decorations = model.deltaDecorations(shown.decorations, decorations);
    const first = shown.decorations[0];
    const firstSelection = presence.selections[0];
    shown.primary =
      first !== undefined && firstSelection !== undefined
        ? { id: first, activeAtEnd: !isBefore(firstSelection.active, firstSelection.anchor) }
        : null;
    this.placeLabel(shown);
  }

  private remove(memberId: string): void {
    const shown = this.shown.get(memberId);
    if (shown === undefined) return;
    this.shown.delete(memberId);
    if (!shown.model.isDisposed()) shown.model.deltaDecorations(shown.decorations, []);
    this.editor.removeContentWidget(shown.label);
  }

  /** Labels sit at their cursors, which Monaco's decorations carry along through edits. */
  private placeLabels(): void {
    for (const shown of this.shown.values()) this.placeLabel(shown);
  }

  private placeLabel(shown: Shown): void {
    const range = shown.primary !== null && !shown.model.isDisposed() ? shown.model.getDecorationRange(shown.primary.id) : null;
    shown.label.position =
      range === null || shown.primary === null ? null : shown.primary.activeAtEnd ? range.getEndPosition() : range.getStartPosition();
    this.editor.layoutContentWidget(shown.label);
  }

  private classFor(memberId: string, color: string): number {
    const key = `${memberId} ${color}`;
    let index = this.classes.get(key);
    if (index === undefined) {
      index = this.classes.size + 1;
      this.classes.set(key, index);
      // `color` went through safeColor: nothing but #rrggbb reaches the stylesheet.
      this.sheet.insertRule(`.cs-remote-selection.cs-m-${index} { background-color: ${color}47; }`);
      this.sheet.insertRule(`.cs-remote-caret.cs-m-${index} { border-left-color: ${color}; }`);
    }
    return index;
  }
}

function isBefore(a: { line: number; character: number }, b: { line: number; character: number }): boolean {
  return a.line < b.line || (a.line === b.line && a.character < b.character);
}

/** Black or white, whichever reads better on `color` (#rrggbb). */
function textColorOn(color: string): string {
  const r = parseInt(color.slice(1, 3), 16);
  const g = parseInt(color.slice(3, 5), 16);
  const b = parseInt(color.slice(5, 7), 16);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
}
