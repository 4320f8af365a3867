// @vitest-environment jsdom
import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { aKey } from "../../test-support/fixtures";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";

afterEach(cleanup);

const rowOf = async (id: string) => (await screen.findByRole("cell", { name: id })).closest("tr") as HTMLElement;

describe("keys page", () => {
  it("creates a key with its limits, quota, addresses and expiry, shows its secret once, and forgets it on Done", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "New key" }));
    const form = screen.getByRole("dialog", { name: "New key" });
    await userEvent.type(within(form).getByLabelText("Owner"), "consumer:acme");
    await userEvent.type(within(form).getByLabelText("Name"), "nightly sync");
    await userEvent.type(within(form).getByLabelText("Scopes"), "read, write");
    await userEvent.type(within(form).getByLabelText("Rate limit"), "30");
    await userEvent.selectOptions(within(form).getByLabelText("Rate limit window"), "second");
    await userEvent.type(within(form).getByLabelText("Quota"), "1000");
    await userEvent.selectOptions(within(form).getByLabelText("Quota period"), "day");
    await userEvent.type(within(form).getByLabelText("Allowed addresses"), "10.0.0.0/8, 2001:db8::/32");
    await userEvent.type(within(form).getByLabelText("Expires"), "2099-01-02T03:04");
    await userEvent.click(within(form).getByRole("button", { name: "Create" }));

    const shown = await screen.findByRole("dialog", { name: "Key key_1" });
    expect(shown.textContent).toContain("kw_live_secret1");
    expect(shown.textContent).toContain("shown once");
    expect(within(shown).getByRole("button", { name: "Copy" })).toBeTruthy();
    const create = server.requests.find((r) => r.method === "POST" && r.path === "/admin/v1/keys");
    expect(create?.body).toEqual({
      owner: "consumer:acme",
      name: "nightly sync",
      scopes: ["read", "write"],
      rate_limit: { limit: 30, window_s: 1 },
      quota: { limit: 1000, period: "day" },
      ip_allow: ["10.0.0.0/8", "2001:db8::/32"],
      expires_at: new Date("2099-01-02T03:04").toISOString(),
    });
    expect(create?.headers["x-csrf-token"]).toBe("csrf-test-token");

    await userEvent.click(within(shown).getByRole("button", { name: "Done" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.body.textContent).not.toContain("kw_live_secret1");
    // The new key is listed by id, without its secret.
    const row = await rowOf("key_1");
    expect(within(row).getByText("consumer:acme")).toBeTruthy();
    expect(within(row).getByText("1000 per day")).toBeTruthy();
  });

  it("checks the form before sending: each problem beside its field, nothing sent until fixed", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "New key" }));
    const form = screen.getByRole("dialog", { name: "New key" });
    await userEvent.type(within(form).getByLabelText("Owner"), "acme");
    await userEvent.type(within(form).getByLabelText("Rate limit"), "0");
    await userEvent.type(within(form).getByLabelText("Allowed addresses"), "10.0.0.0/8, 10.0.0.300");
    await userEvent.type(within(form).getByLabelText("Expires"), "2001-01-01T00:00");
    await userEvent.click(within(form).getByRole("button", { name: "Create" }));

    const owner = within(form).getByLabelText("Owner");
    expect(owner.getAttribute("aria-invalid")).toBe("true");
    expect(document.activeElement).toBe(owner);
    expect(within(form).getByText(/Must be consumer:<name>/)).toBeTruthy();
    expect(within(form).getByText("Must be at least 1.")).toBeTruthy();
    expect(within(form).getByText('"10.0.0.300" is not an IP address or CIDR.')).toBeTruthy();
    expect(within(form).getByText("Must be in the future.")).toBeTruthy();
    expect(server.requests.some((r) => r.method === "POST" && r.path === "/admin/v1/keys")).toBe(false);

    await userEvent.clear(owner);
    await userEvent.type(owner, "consumer:acme");
    await userEvent.clear(within(form).getByLabelText("Rate limit"));
    await userEvent.clear(within(form).getByLabelText("Allowed addresses"));
    await userEvent.clear(within(form).getByLabelText("Expires"));
    await userEvent.click(within(form).getByRole("button", { name: "Create" }));
    expect(await screen.findByRole("dialog", { name: "Key key_1" })).toBeTruthy();
  });

  it("revokes only after a dialog naming the key, and Cancel leaves it alone", async () => {
    const server = fakeAdminApi();
    server.state.keys.push(aKey({ id: "key_7", name: "ci" }));
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");

    const row = await rowOf("key_7");
    await userEvent.click(within(row).getByRole("button", { name: "Revoke" }));
    const ask = screen.getByRole("dialog", { name: "Revoke key key_7?" });
    expect(ask.textContent).toContain("ci, consumer:acme");
    // Cancel has the focus: Enter on an accidental click does nothing harmful.
    expect(document.activeElement).toBe(within(ask).getByRole("button", { name: "Cancel" }));
    await userEvent.click(within(ask).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(server.requests.some((r) => r.path.endsWith("/revoke"))).toBe(false);

    await userEvent.click(within(row).getByRole("button", { name: "Revoke" }));
    await userEvent.click(
      within(screen.getByRole("dialog", { name: "Revoke key key_7?" })).getByRole("button", { name: "Revoke" }),
    );
    await waitFor(() => expect(within(row).getByText("revoked")).toBeTruthy());
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(within(row).queryByRole("button", { name: "Revoke" })).toBeNull();
    expect(server.state.keys[0]?.status).toBe("revoked");
  });

  it("freezes after confirmation, unfreezes, and rotates with a grace period into a new secret shown once", async () => {
    const server = fakeAdminApi();
    server.state.keys.push(aKey({ id: "key_7" }));
    renderConsole(server.fetch, "/keys");
    await signIn("kwa_owner");

    const row = await rowOf("key_7");
    await userEvent.click(within(row).getByRole("button", { name: "Freeze" }));
    await userEvent.click(
      within(screen.getByRole("dialog", { name: "Freeze key key_7?" })).getByRole("button", { name: "Freeze" }),
    );
    await waitFor(() => expect(within(row).getByText("frozen")).toBeTruthy());
    await userEvent.click(within(row).getByRole("button", { name: "Unfreeze" }));
    await waitFor(() => expect(within(row).getByText("active")).toBeTruthy());

    await userEvent.click(within(row).getByRole("button", { name: "Rotate" }));
    const rotate = screen.getByRole("dialog", { name: "Rotate key key_7" });
    const grace = within(rotate).getByLabelText("Grace period in seconds");
    await userEvent.clear(grace);
    await userEvent.type(grace, "9999999");
    await userEvent.click(within(rotate).getByRole("button", { name: "Rotate" }));
    expect(within(rotate).getByText("Must be at most 2592000.")).toBeTruthy();
    await userEvent.clear(grace);
    await userEvent.type(grace, "600");
    await userEvent.click(within(rotate).getByRole("button", { name: "Rotate" }));

    const shown = await screen.findByRole("dialog", { name: "Key key_1" });
    expect(shown.textContent).toContain("kw_live_secret1");
    expect(server.requests.find((r) => r.path.endsWith("/rotate"))?.body).toEqual({ grace_s: 600 });
    await userEvent.click(within(shown).getByRole("button", { name: "Done" }));
    await waitFor(() => expect(within(row).getByText("rotated")).toBeTruthy());
    expect(document.body.textContent).not.toContain("kw_live_secret1");
  });
});
