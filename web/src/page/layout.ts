/**
 * The page's skeleton: a top bar with the room and its status, a sidebar (files, members,
 * invites), tabs over the editor, and the chat. The modules fill in their own parts.
 */

import { el } from "./dom.js";

export interface Layout {
  readonly roomName: HTMLElement;
  readonly me: HTMLElement;
  readonly statusBar: HTMLElement;
  readonly errorBanner: HTMLElement;
  readonly notice: HTMLElement;
  readonly sidebar: HTMLElement;
  readonly filesSection: HTMLElement;
  readonly membersSection: HTMLElement;
  readonly invitesSection: HTMLElement;
  readonly tabs: HTMLElement;
  readonly editorHost: HTMLElement;
  readonly editorEmpty: HTMLElement;
  readonly chatSection: HTMLElement;
  readonly landing: HTMLElement;
}

export function buildLayout(root: HTMLElement): Layout {
  const roomName = el("span", { className: "room-name", text: "" });
  const me = el("span", { className: "my-name", attrs: { title: "Your display name" } });
  const statusBar = el("div", { className: "status-bar" });
  const errorBanner = el("div", { testid: "error-banner", className: "error-banner", attrs: { role: "alert", hidden: true } });
  const notice = el("div", { testid: "notice", className: "notice", attrs: { role: "status", hidden: true } });

  const filesSection = el("section", { className: "panel files-panel", attrs: { "aria-label": "Files" } });
  const membersSection = el("section", { className: "panel members-panel", attrs: { "aria-label": "Members" } });
  const invitesSection = el("section", { className: "panel invites-panel", attrs: { "aria-label": "Invites", hidden: true } });
  const sidebar = el("aside", { className: "sidebar", children: [filesSection, membersSection, invitesSection] });

  const tabs = el("div", { className: "tabs", attrs: { role: "tablist", "aria-label": "Open files" } });
  // Monaco takes over `editorHost` entirely: the hint for "no file open" lies over it instead.
  const editorHost = el("div", { testid: "editor", className: "editor-host" });
  const editorEmpty = el("div", { className: "editor-empty", text: "Open a file from the list to start editing." });
  const center = el("section", {
    className: "center",
    children: [tabs, el("div", { className: "editor-frame", children: [editorHost, editorEmpty] })],
  });

  const chatSection = el("aside", { testid: "chat-panel", className: "chat-panel", attrs: { "aria-label": "Chat" } });

  const landing = el("div", {
    className: "landing",
    attrs: { hidden: true },
    children: [
      el("h1", { text: "CodeSphere" }),
      el("p", { text: "Open the link you were given (it looks like http://host/#token=…) to join a room." }),
    ],
  });

  const header = el("header", {
    className: "topbar",
    children: [el("span", { className: "brand", text: "CodeSphere" }), roomName, statusBar, me],
  });
  const body = el("main", { className: "workspace", children: [sidebar, center, chatSection] });
  root.replaceChildren(el("div", { className: "app", children: [header, errorBanner, notice, body, landing] }));

  return {
    roomName,
    me,
    statusBar,
    errorBanner,
    notice,
    sidebar,
    filesSection,
    membersSection,
    invitesSection,
    tabs,
    editorHost,
    editorEmpty,
    chatSection,
    landing,
  };
}
