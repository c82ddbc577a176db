/**
 * Who is in the room now: a list that follows joins and leaves. Clicking a member follows
 * them. Members who are not connected are only counted (the room keeps every member it ever
 * admitted, so listing them all would bury the ones present).
 */

import type { CodeSphereClient, Member } from "../core/index.js";
import { baseName, el, safeColor } from "./dom.js";
import type { Follower } from "./follow.js";

export class MemberList {
  private readonly client: CodeSphereClient;
  private readonly follower: Follower;
  private readonly list: HTMLElement;
  private readonly offline: HTMLElement;
  /** The file each member was last shown in: cursor moves alone need no new list. */
  private readonly shownPaths = new Map<string, string | null>();

  constructor(section: HTMLElement, client: CodeSphereClient, follower: Follower) {
    this.client = client;
    this.follower = follower;
    this.list = el("ul", { testid: "member-list", className: "member-list" });
    this.offline = el("p", { className: "members-offline" });
    section.append(el("h2", { text: "People" }), this.list, this.offline);
    client.on("memberJoined", () => this.render());
    client.on("memberLeft", () => this.render());
    client.on("presence", ({ memberId, path }) => {
      if (this.shownPaths.get(memberId) !== path) this.render();
    });
    follower.on("changed", () => this.render());
  }

  render(): void {
    const me = this.client.me?.memberId;
    const members = [...this.client.members.values()];
    const online = members
      .filter((m) => m.online || m.memberId === me)
      .sort((a, b) => Number(b.memberId === me) - Number(a.memberId === me) || a.name.localeCompare(b.name));
    this.list.replaceChildren(...online.map((m) => this.item(m, m.memberId === me)));
    const away = members.length - online.length;
    this.offline.textContent = away > 0 ? `${away} more not connected` : "";
  }

  private item(member: Member, isMe: boolean): HTMLElement {
    const presence = this.client.presence.get(member.memberId);
    const following = this.follower.following === member.memberId;
    const where = presence?.path ?? null;
    this.shownPaths.set(member.memberId, where);
    const item = el("li", {
      testid: "member-item",
      className: `member${isMe ? " me" : ""}${following ? " following" : ""}`,
      attrs: {
        "data-member-id": member.memberId,
        "data-role": member.role,
        title: isMe ? "You" : following ? "Click to stop following" : "Click to follow",
        role: isMe ? undefined : "button",
        tabindex: isMe ? undefined : "0",
        "aria-pressed": isMe ? undefined : String(following),
      },
      children: [
        el("span", { className: "member-dot" }),
        el("span", { className: "member-name", text: member.name }),
        isMe && el("span", { className: "member-you", text: "(you)" }),
        el("span", { className: "member-role", text: member.role }),
        where !== null && el("span", { className: "member-file", text: baseName(where), attrs: { title: where } }),
      ],
    });
    const dot = item.querySelector<HTMLElement>(".member-dot");
    if (dot !== null) dot.style.backgroundColor = safeColor(member.color);
    if (!isMe) {
      const follow = (): void => this.follower.toggle(member.memberId);
      item.addEventListener("click", follow);
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          follow();
        }
      });
    }
    return item;
  }
}
