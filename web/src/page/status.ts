/**
 * What is always visible: the connection state and sync health (from the core's `state` and
 * `health` events), our role, the error banner for refusals, and short notices.
 */

import type { ConnectionStateEvent, Role, SyncHealth } from "../core/index.js";
import { el, show } from "./dom.js";
import type { Layout } from "./layout.js";

export class StatusView {
  private readonly connection: HTMLElement;
  private readonly health: HTMLElement;
  private readonly role: HTMLElement;
  private readonly banner: HTMLElement;
  private readonly notice: HTMLElement;
  private noticeTimer: number | undefined;
  private retryTimer: number | undefined;

  constructor(layout: Layout) {
    this.connection = el("span", { testid: "connection-state", className: "connection-state", text: "connecting", attrs: { "data-state": "connecting" } });
    this.health = el("span", { testid: "sync-health", className: "sync-health", text: "" });
    this.role = el("span", { testid: "role-badge", className: "role-badge", attrs: { hidden: true } });
    layout.statusBar.append(this.connection, this.health, this.role);
    this.banner = layout.errorBanner;
    this.notice = layout.notice;
  }

  showState(event: ConnectionStateEvent): void {
    this.connection.textContent = event.state;
    this.connection.dataset["state"] = event.state;
    window.clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    if (event.state === "offline" && event.retryInMs !== null) {
      // Say when the next attempt comes, counting down (the core retries by itself).
      const at = Date.now() + event.retryInMs;
      const tick = (): void => {
        const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
        this.connection.title = `reconnecting in ${seconds} s`;
      };
      tick();
      this.retryTimer = window.setInterval(tick, 1000);
    } else {
      this.connection.title = event.state === "offline" ? "not reconnecting" : "";
    }
  }

  showHealth(health: SyncHealth): void {
    const waiting = health.unacked + health.unsent;
    let text: string;
    switch (health.state) {
      case "offline":
        // Edits typed now are kept by the core and sent after the reconnect.
        text = `offline — ${waiting} unsent`;
        break;
      case "connecting":
      case "resyncing":
        text = waiting > 0 ? `${health.state} — ${waiting} unsent` : health.state;
        break;
      case "online":
        text = waiting > 0 ? `saving ${waiting}` : "synced";
        break;
    }
    if (health.lostEdits > 0) text += ` · ${health.lostEdits} lost`;
    this.health.textContent = text;
    this.health.dataset["unsent"] = String(waiting);
    this.health.dataset["lost"] = String(health.lostEdits);
    this.health.title = health.lastError !== null ? `last error: ${health.lastError.message}` : "";
  }

  showRole(role: Role): void {
    this.role.replaceChildren(role);
    this.role.dataset["role"] = role;
    if (role === "viewer") {
      this.role.append(" ", el("span", { className: "read-only", text: "read-only" }));
    }
    show(this.role, true);
  }

  /** A refusal or the end of the session (bad or revoked token, room deleted): stays shown. */
  showError(message: string): void {
    this.banner.textContent = message;
    show(this.banner, true);
  }

  clearError(): void {
    this.banner.textContent = "";
    show(this.banner, false);
  }

  /** Something worth knowing that needs nothing done (a file deleted by someone else…). */
  showNotice(message: string, ms = 8000): void {
    this.notice.textContent = message;
    show(this.notice, true);
    window.clearTimeout(this.noticeTimer);
    this.noticeTimer = window.setTimeout(() => show(this.notice, false), ms);
  }
}
