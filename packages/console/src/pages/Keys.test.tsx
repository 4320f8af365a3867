// @vitest-environment jsdom
import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";

afterEach(cleanup);

describe("keys page", () => {
  it("creates a key, shows its secret once with a warning, and forgets it on Done", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "New key" }));
    const form = screen.getByRole("dialog", { name: "New key" });
    await userEvent.type(within(form).getByLabelText("Owner"), "consumer:acme");
    await userEvent.type(within(form).getByLabelText("Scopes"), "read, write");
    await userEvent.type(within(form).getByLabelText("Rate limit per minute"), "30");
    await userEvent.click(within(form).getByRole("button", { name: "Create" }));

    const shown = await screen.findByRole("dialog", { name: "Key key_1" });
    expect(shown.textContent).toContain("kw_live_secret1");
    expect(shown.textContent).toContain("shown once");
    expect(within(shown).getByRole("button", { name: "Copy" })).toBeTruthy();
    const create = server.requests.find((r) => r.method === "POST" && r.path === "/admin/v1/keys");
    expect(create?.body).toEqual({
      owner: "consumer:acme",
      scopes: ["read", "write"],
      rate_limit: { limit: 30, window_s: 60 },
    });
    expect(create?.headers["x-csrf-token"]).toBe("csrf-test-token");

    await userEvent.click(within(shown).getByRole("button", { name: "Done" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.body.textContent).not.toContain("kw_live_secret1");
    // The new key is listed by id, without its secret.
    const row = (await screen.findByRole("cell", { name: "key_1" })).closest("tr") as HTMLElement;
    expect(within(row).getByText("consumer:acme")).toBeTruthy();
  });

  it("revokes a key from its row and shows the new status", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "New key" }));
    await userEvent.type(screen.getByLabelText("Owner"), "agent:bot");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    await userEvent.click(await screen.findByRole("button", { name: "Done" }));

    const row = (await screen.findByRole("cell", { name: "key_1" })).closest("tr") as HTMLElement;
    expect(within(row).getByRole("button", { name: "Freeze" })).toBeTruthy();
    expect(within(row).getByRole("button", { name: "Rotate" })).toBeTruthy();
    await userEvent.click(within(row).getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(within(row).getByText("revoked")).toBeTruthy());
    expect(within(row).queryByRole("button", { name: "Revoke" })).toBeNull();
    expect(server.state.keys[0]?.status).toBe("revoked");
  });
});

describe("key detail", () => {
  it("edits scopes, limit and addresses, leaving an untouched per-hour limit as it was", async () => {
    const server = fakeAdminApi();
    server.state.keys.push({
      id: "key_7",
      prefix: "kwk_ab",
      owner: "consumer:acme",
      name: null,
      scopes: ["read"],
      status: "active",
      expires_at: null,
      rate_limit: { limit: 600, window_s: 3600 },
      ip_allow: null,
      rotated_to: null,
      last_used_at: null,
      created_at: "2026-12-01T12:00:00.000Z",
    });
    renderConsole(server.fetch, "/keys/key_7");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = screen.getByRole("dialog", { name: "Edit key_7" });
    expect(within(form).getByLabelText<HTMLInputElement>("Rate limit per minute").value).toBe("10");
    await userEvent.clear(within(form).getByLabelText("Scopes"));
    await userEvent.type(within(form).getByLabelText("Scopes"), "read, write");
    await userEvent.type(within(form).getByLabelText("Allowed addresses"), "10.0.0.0/8, 192.0.2.1");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const patch = server.requests.find((r) => r.method === "PATCH");
    expect(patch?.body).toEqual({
      name: null,
      scopes: ["read", "write"],
      rate_limit: { limit: 600, window_s: 3600 },
      ip_allow: ["10.0.0.0/8", "192.0.2.1"],
      expires_at: null,
    });
    expect(await screen.findByText("10.0.0.0/8, 192.0.2.1")).toBeTruthy();
  });
});
