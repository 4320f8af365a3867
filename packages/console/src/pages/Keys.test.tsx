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
