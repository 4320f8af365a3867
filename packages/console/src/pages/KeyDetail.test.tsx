// @vitest-environment jsdom
import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { aKey } from "../../test-support/fixtures";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";

afterEach(cleanup);

describe("key detail", () => {
  it("edits scopes, quota and addresses, sending only what changed (an untouched per-hour limit and expiry stay exact)", async () => {
    const server = fakeAdminApi();
    server.state.keys.push(
      aKey({
        id: "key_7",
        scopes: ["read"],
        rate_limit: { limit: 600, window_s: 3600 },
        expires_at: "2099-05-06T07:08:09.123Z",
      }),
    );
    renderConsole(server.fetch, "/keys/key_7");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = screen.getByRole("dialog", { name: "Edit key_7" });
    expect(within(form).getByLabelText<HTMLInputElement>("Rate limit").value).toBe("600");
    expect(within(form).getByLabelText<HTMLSelectElement>("Rate limit window").value).toBe("3600");
    await userEvent.clear(within(form).getByLabelText("Scopes"));
    await userEvent.type(within(form).getByLabelText("Scopes"), "read, write");
    await userEvent.type(within(form).getByLabelText("Quota"), "5000");
    await userEvent.type(within(form).getByLabelText("Allowed addresses"), "10.0.0.0/8, 192.0.2.1");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const patch = server.requests.find((r) => r.method === "PATCH");
    expect(patch?.body).toEqual({
      scopes: ["read", "write"],
      quota: { limit: 5000, period: "month" },
      ip_allow: ["10.0.0.0/8", "192.0.2.1"],
    });
    expect(await screen.findByText("10.0.0.0/8, 192.0.2.1")).toBeTruthy();
    expect(screen.getByText("5000 per month")).toBeTruthy();
  });

  it("clears a setting whose field is emptied", async () => {
    const server = fakeAdminApi();
    server.state.keys.push(aKey({ id: "key_7", rate_limit: { limit: 5, window_s: 60 }, ip_allow: ["192.0.2.1"] }));
    renderConsole(server.fetch, "/keys/key_7");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = screen.getByRole("dialog", { name: "Edit key_7" });
    await userEvent.clear(within(form).getByLabelText("Rate limit"));
    await userEvent.clear(within(form).getByLabelText("Allowed addresses"));
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(server.requests.find((r) => r.method === "PATCH")?.body).toEqual({ rate_limit: null, ip_allow: null });
  });

  it("revokes from the key's own page after confirmation", async () => {
    const server = fakeAdminApi();
    server.state.keys.push(aKey({ id: "key_7" }));
    renderConsole(server.fetch, "/keys/key_7");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "Revoke" }));
    await userEvent.click(
      within(screen.getByRole("dialog", { name: "Revoke key key_7?" })).getByRole("button", { name: "Revoke" }),
    );
    expect(await screen.findByText("revoked")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Edit" })).toBeNull();
  });
});
