/**
 * The room's chat (protocol §8): its history on join (and again after a reconnect, to fill in
 * what was said meanwhile), new messages as they come, and a send box. Messages are keyed by
 * id, so the history, the live notifications and our own send's answer never show one twice.
 */

import type { ChatMessage, CodeSphereClient } from "../core/index.js";
import { describeError, el } from "./dom.js";

const PAGE = 50;
const MAX_CHAT = 8192; // protocol §8

export class ChatPanel {
  private readonly client: CodeSphereClient;
  private readonly messages = new Map<string, ChatMessage>();
  private readonly list: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly send: HTMLButtonElement;
  private readonly error: HTMLElement;
  private readonly older: HTMLButtonElement;
  private hasMore = false;

  constructor(section: HTMLElement, client: CodeSphereClient) {
    this.client = client;
    this.list = el("ol", { testid: "chat-messages", className: "chat-messages", attrs: { "aria-live": "polite" } });
    this.older = el("button", { className: "chat-older", text: "Earlier messages", attrs: { type: "button", hidden: true } });
    this.older.addEventListener("click", () => void this.loadOlder());
    this.input = el("input", {
      testid: "chat-input",
      className: "chat-input",
      attrs: { type: "text", maxlength: String(MAX_CHAT), placeholder: "Message the room", "aria-label": "Chat message", autocomplete: "off" },
    });
    this.send = el("button", { testid: "chat-send", className: "chat-send", text: "Send", attrs: { type: "submit" } });
    this.error = el("p", { className: "form-error", attrs: { hidden: true, role: "alert" } });
    const form = el("form", { className: "chat-form", children: [this.input, this.send] });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    section.append(el("h2", { text: "Chat" }), this.older, this.list, this.error, form);
    client.on("chat", (message) => this.add([message]));
  }

  /** Fetch the newest messages (on join, and after a reconnect). */
  async refresh(): Promise<void> {
    try {
      const page = await this.client.chatHistory({ limit: PAGE });
      if (this.messages.size === 0) this.hasMore = page.hasMore;
      this.add(page.messages);
    } catch (error) {
      console.debug("codesphere: chat/history failed:", error);
    }
  }

  private async loadOlder(): Promise<void> {
    const first = this.sorted()[0];
    if (first === undefined) return;
    try {
      const page = await this.client.chatHistory({ before: first.seq, limit: PAGE });
      this.hasMore = page.hasMore;
      const atTop = this.list.scrollTop;
      this.add(page.messages, false);
      this.list.scrollTop = atTop;
    } catch (error) {
      this.showError(`Could not load earlier messages: ${describeError(error)}`);
    }
  }

  private async submit(): Promise<void> {
    const text = this.input.value;
    if (text.trim().length === 0) return;
    this.send.disabled = true;
    try {
      const message = await this.client.sendChat(text);
      this.input.value = "";
      this.showError(null);
      this.add([message]);
    } catch (error) {
      // Kept in the box, to send again.
      this.showError(`Not sent: ${describeError(error)}`);
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  private showError(message: string | null): void {
    this.error.textContent = message ?? "";
    this.error.hidden = message === null;
  }

  private sorted(): ChatMessage[] {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  private add(messages: readonly ChatMessage[], scroll = true): void {
    const fresh = messages.filter((m) => !this.messages.has(m.id));
    if (fresh.length === 0) return;
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const last = this.sorted().at(-1);
    for (const m of fresh) this.messages.set(m.id, m);
    if (last !== undefined && fresh.every((m) => m.seq > last.seq)) {
      // The usual case: new messages at the end.
      this.list.append(...fresh.sort((a, b) => a.seq - b.seq).map((m) => this.item(m)));
    } else {
      this.list.replaceChildren(...this.sorted().map((m) => this.item(m)));
    }
    this.older.hidden = !this.hasMore;
    if (scroll && (nearBottom || fresh.some((m) => m.memberId === this.client.me?.memberId))) {
      this.list.scrollTop = this.list.scrollHeight;
    }
  }

  private item(message: ChatMessage): HTMLElement {
    const when = new Date(message.timestamp);
    const mine = message.memberId === this.client.me?.memberId;
    return el("li", {
      testid: "chat-message",
      className: `chat-message${mine ? " mine" : ""}`,
      attrs: { "data-seq": String(message.seq), "data-member-id": message.memberId },
      children: [
        el("span", { testid: "chat-name", className: "chat-name", text: message.name }),
        el("time", {
          testid: "chat-time",
          className: "chat-time",
          text: when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
          attrs: { datetime: when.toISOString(), title: when.toLocaleString() },
        }),
        el("span", { testid: "chat-text", className: "chat-text", text: message.text }),
      ],
    });
  }
}
