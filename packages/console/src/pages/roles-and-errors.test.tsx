// @vitest-environment jsdom
import { cleanup, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { aKey } from "../../test-support/fixtures";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";

afterEach(cleanup);

describe("what a role sees", () => {
  it("a viewer sees the lists but no change buttons and no Admin tokens link", async () => {
    const server = fakeAdminApi({ tokens: { kwa_viewer: "viewer" } });
    server.state.agents.push({
      name: "billing-bot",
      upstream: "https://api.example.com",
      description: null,
      created_at: "2026-12-01T12:00:00.000Z",
    });
    server.state.keys.push(aKey({ id: "key_9", owner: "agent:billing-bot" }));
    renderConsole(server.fetch, "/agents");
    await signIn("kwa_viewer");

    expect(await screen.findByRole("cell", { name: "billing-bot" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New agent" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete" })).toBeNull();
    expect(screen.queryByRole("link", { name: "Admin tokens" })).toBeNull();

    await userEvent.click(screen.getByRole("link", { name: "Keys" }));
    expect(await screen.findByRole("cell", { name: "key_9" })).toBeTruthy();
    for (const name of ["New key", "Revoke", "Freeze", "Rotate"]) {
      expect(screen.queryByRole("button", { name })).toBeNull();
    }
  });
});

describe("errors", () => {
  it("shows the server's code and message when a create is refused, and keeps the form open", async () => {
    const server = fakeAdminApi();
    server.state.agents.push({
      name: "billing-bot",
      upstream: "https://a.example",
      description: null,
      created_at: "2026-12-01T12:00:00.000Z",
    });
    renderConsole(server.fetch, "/agents");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "New agent" }));
    const form = screen.getByRole("dialog", { name: "New agent" });
    await userEvent.type(within(form).getByLabelText("Name"), "billing-bot");
    await userEvent.type(within(form).getByLabelText("Upstream URL"), "https://b.example");
    await userEvent.click(within(form).getByRole("button", { name: "Create" }));

    const alert = await within(form).findByRole("alert");
    expect(alert.textContent).toContain("conflict");
    expect(alert.textContent).toContain("agent already exists");
    expect(screen.getByRole("dialog", { name: "New agent" })).toBeTruthy();
  });

  it("shows a 403 as not allowed, with its code and message", async () => {
    const server = fakeAdminApi({ tokens: { kwa_auditor: "auditor" } });
    renderConsole(server.fetch, "/agents");
    await signIn("kwa_auditor");
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Not allowed");
    expect(alert.textContent).toContain("forbidden");
    expect(alert.textContent).toContain("the auditor role may not do this");
  });
});
