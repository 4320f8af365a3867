// @vitest-environment jsdom
import { cleanup, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../test-support/fake-admin-api";
import { renderConsole } from "../test-support/render-console";
import { signIn } from "../test-support/sign-in";

afterEach(cleanup);

const NAV = ["Overview", "Agents", "Consumers", "Keys", "Credentials", "Users", "Audit", "Alerts"];

describe("sign-in", () => {
  it("exchanges the admin token for a session and shows the navigation, keeping the token out of Web Storage", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/agents");
    await userEvent.type(await screen.findByLabelText("Admin token"), "kwa_owner");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    const nav = await screen.findByRole("navigation", { name: "Main" });
    for (const name of [...NAV, "Admin tokens"]) expect(within(nav).getByRole("link", { name })).toBeTruthy();
    // Still on the page asked for.
    expect(await screen.findByRole("heading", { name: "Agents" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Sign out" })).toBeTruthy();
    // First the app asks whether a session is alive (none: 401), then it signs in.
    expect(server.requests[0]).toMatchObject({ method: "GET", path: "/admin/v1/sessions/current" });
    expect(server.requests[1]).toMatchObject({
      method: "POST",
      path: "/admin/v1/sessions",
      body: { token: "kwa_owner" },
      credentials: "same-origin",
    });
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
    expect(document.body.textContent).not.toContain("kwa_owner");
  });

  it("shows a wrong token's error code and message and stays on the form", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch);
    await userEvent.type(await screen.findByLabelText("Admin token"), "kwa_wrong");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("unauthorized");
    expect(alert.textContent).toContain("invalid admin token");
    expect(screen.queryByRole("navigation", { name: "Main" })).toBeNull();
    expect(screen.getByLabelText<HTMLInputElement>("Admin token").value).toBe("");
  });

  it("returns to sign-in on the same page when the session expires, and signs out with the CSRF token", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await userEvent.type(await screen.findByLabelText("Admin token"), "kwa_owner");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByRole("heading", { name: "Keys" });

    server.expireSession();
    await userEvent.click(screen.getByRole("link", { name: "Agents" }));
    expect(await screen.findByLabelText("Admin token")).toBeTruthy();

    await userEvent.type(screen.getByLabelText("Admin token"), "kwa_owner");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { name: "Agents" })).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("Admin token")).toBeTruthy();
    const signOut = server.requests.find((r) => r.method === "DELETE");
    expect(signOut).toMatchObject({
      path: "/admin/v1/sessions/current",
      headers: { "x-csrf-token": "csrf-test-token" },
    });
  });

  it("shows a banner, not a blank page, when the server cannot be reached", async () => {
    const server = fakeAdminApi();
    server.goDown();
    renderConsole(server.fetch);
    await userEvent.type(await screen.findByLabelText("Admin token"), "kwa_owner");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    const alerts = await screen.findAllByRole("alert");
    expect(alerts.some((a) => a.textContent?.includes("Keyward is not reachable"))).toBe(true);
    expect(screen.getByLabelText("Admin token")).toBeTruthy();
  });

  it("a reload with a live session stays signed in on the same page, with the CSRF token back in memory", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");
    await screen.findByRole("heading", { name: "Keys" });

    // A reload: the page and its memory are gone; the server's session and the URL are not.
    cleanup();
    server.requests.length = 0;
    renderConsole(server.fetch, "/keys");
    expect(await screen.findByRole("heading", { name: "Keys" })).toBeTruthy();
    expect(screen.getByRole("navigation", { name: "Main" })).toBeTruthy();
    expect(screen.queryByLabelText("Admin token")).toBeNull();
    expect(server.requests[0]).toMatchObject({
      method: "GET",
      path: "/admin/v1/sessions/current",
      credentials: "same-origin",
    });
    expect(server.requests.some((r) => r.path === "/admin/v1/sessions" && r.method === "POST")).toBe(false);
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);

    // The restored CSRF token is the one a change needs: sign-out (a DELETE) carries it.
    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("Admin token")).toBeTruthy();
    expect(server.requests.find((r) => r.method === "DELETE")).toMatchObject({
      path: "/admin/v1/sessions/current",
      headers: { "x-csrf-token": "csrf-test-token" },
    });
  });

  it("a reload without a live session shows sign-in, and signing in lands on the same page", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/agents");
    await signIn("kwa_owner");
    await screen.findByRole("heading", { name: "Agents" });
    server.expireSession();

    cleanup();
    renderConsole(server.fetch, "/agents");
    expect(await screen.findByLabelText("Admin token")).toBeTruthy();
    expect(screen.queryByRole("navigation", { name: "Main" })).toBeNull();
    expect(screen.queryByRole("heading", { name: "Agents" })).toBeNull();
    await signIn("kwa_owner");
    expect(await screen.findByRole("heading", { name: "Agents" })).toBeTruthy();
  });
});
