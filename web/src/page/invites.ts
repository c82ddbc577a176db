/**
 * For owners: make invite links (protocol §4.2, `invite/create` through the core) and copy
 * them. The link carries the token in its fragment, which browsers never send to the server.
 * The newest usable invite of each role is shown; earlier ones stay valid until revoked.
 */

import type { CodeSphereClient, Invite, Role } from "../core/index.js";
import { button, describeError, el } from "./dom.js";

const ROLES = ["editor", "viewer"] as const;
type InviteRole = (typeof ROLES)[number];

export function inviteLink(token: string, roomId: string): string {
  return `${window.location.origin}/#token=${encodeURIComponent(token)}&room=${encodeURIComponent(roomId)}`;
}

function usable(invite: Invite, now: number): boolean {
  return !invite.revoked && invite.token !== null && invite.expiresAt > now && (invite.maxUses === null || invite.uses < invite.maxUses);
}

export class InvitePanel {
  private readonly client: CodeSphereClient;
  private readonly section: HTMLElement;
  private readonly rows: HTMLElement;
  private readonly message: HTMLElement;
  private readonly latest = new Map<InviteRole, Invite>();

  constructor(section: HTMLElement, client: CodeSphereClient) {
    this.client = client;
    this.section = section;
    this.rows = el("div", { className: "invite-rows" });
    this.message = el("p", { className: "invite-message", attrs: { role: "status" } });
    const buttons = el("div", {
      className: "invite-buttons",
      children: ROLES.map((role) => button(`Invite ${role}`, () => void this.create(role), { testid: `create-invite-${role}` })),
    });
    section.setAttribute("data-testid", "invite-panel");
    section.append(el("h2", { text: "Invite" }), buttons, this.rows, this.message);
  }

  setVisible(visible: boolean): void {
    this.section.hidden = !visible;
  }

  /** Show the newest usable invite of each role (on join, and after a reconnect). */
  async refresh(): Promise<void> {
    try {
      const invites = await this.client.listInvites();
      const now = Date.now();
      this.latest.clear();
      for (const invite of invites) {
        // invite/list is oldest first: later ones replace earlier ones.
        if ((invite.role === "editor" || invite.role === "viewer") && usable(invite, now)) this.latest.set(invite.role, invite);
      }
      this.render();
    } catch (error) {
      console.debug("codesphere: invite/list failed:", error);
    }
  }

  private async create(role: Role & InviteRole): Promise<void> {
    this.say(`Creating an ${role} invite…`);
    try {
      const invite = await this.client.createInvite(role);
      this.latest.set(role, invite);
      this.render();
      this.say(`New ${role} invite: anyone with the link joins as ${role === "viewer" ? "a viewer" : "an editor"}.`);
    } catch (error) {
      this.say(`Could not create an invite: ${describeError(error)}`);
    }
  }

  private render(): void {
    const roomId = this.client.room?.id;
    const rows: HTMLElement[] = [];
    for (const role of ROLES) {
      const invite = this.latest.get(role);
      if (invite === undefined || invite.token === null || roomId === undefined) continue;
      const link = el("code", { testid: "invite-link", className: "invite-link", text: inviteLink(invite.token, roomId), attrs: { "data-role": role } });
      const copy = button("Copy", () => void this.copy(link, role), { testid: "copy-invite", attrs: { "data-role": role } });
      const expires = new Date(invite.expiresAt).toLocaleDateString();
      rows.push(
        el("div", {
          className: "invite-row",
          attrs: { "data-role": role },
          children: [el("span", { className: "invite-role", text: role }), link, copy, el("span", { className: "invite-expiry", text: `until ${expires}` })],
        }),
      );
    }
    this.rows.replaceChildren(...rows);
  }

  /** The clipboard API where the page may use it; otherwise select the link for Ctrl+C. */
  private async copy(link: HTMLElement, role: InviteRole): Promise<void> {
    const text = link.textContent ?? "";
    try {
      if (navigator.clipboard === undefined) throw new Error("no clipboard API");
      await navigator.clipboard.writeText(text);
      this.say(`The ${role} link is copied.`);
      return;
    } catch {
      // Plain http to a LAN address, or permission refused: fall back to a selection.
    }
    const selection = window.getSelection();
    selection?.removeAllRanges();
    selection?.selectAllChildren(link);
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    this.say(copied ? `The ${role} link is copied.` : "The link is selected: press Ctrl+C (⌘C) to copy it.");
  }

  private say(text: string): void {
    this.message.textContent = text;
  }
}
