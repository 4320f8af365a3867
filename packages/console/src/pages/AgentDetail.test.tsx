// @vitest-environment jsdom
import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { NOW } from "../../test-support/fixtures";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";

afterEach(cleanup);

describe("agent grants", () => {
  it("edits credentials and their modes, user credentials and agents it may call", async () => {
    const server = fakeAdminApi();
    server.state.agents.push({
      name: "billing-bot",
      upstream: "https://a.example",
      description: null,
      created_at: NOW,
    });
    server.state.grants.push({
      agent: "billing-bot",
      credentials: [{ name: "openai", mode: "inject" }],
      user_credentials: [],
      may_call: [],
    });
    renderConsole(server.fetch, "/agents/billing-bot");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "Edit grants" }));
    const form = screen.getByRole("dialog", { name: "Grants of billing-bot" });
    expect(within(form).getByLabelText<HTMLInputElement>("Credential 1 name").value).toBe("openai");
    await userEvent.click(within(form).getByRole("button", { name: "Add credential" }));
    await userEvent.type(within(form).getByLabelText("Credential 2 name"), "openai");
    await userEvent.type(within(form).getByLabelText("May call agents"), "Search Bot");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));
    const problems = within(form).getByRole("alert");
    expect(problems.textContent).toContain("Credential 2: openai is listed twice.");
    expect(problems.textContent).toContain('"Search Bot" is not an agent name');
    expect(server.requests.some((r) => r.method === "PUT")).toBe(false);

    await userEvent.clear(within(form).getByLabelText("Credential 2 name"));
    await userEvent.type(within(form).getByLabelText("Credential 2 name"), "github");
    await userEvent.selectOptions(within(form).getByLabelText("Credential 2 mode"), "read");
    await userEvent.type(within(form).getByLabelText("User credentials"), "gmail, calendar");
    await userEvent.clear(within(form).getByLabelText("May call agents"));
    await userEvent.type(within(form).getByLabelText("May call agents"), "search-bot");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(server.requests.find((r) => r.method === "PUT")).toMatchObject({
      path: "/admin/v1/agents/billing-bot/grants",
      body: {
        credentials: [
          { name: "openai", mode: "inject" },
          { name: "github", mode: "read" },
        ],
        user_credentials: ["gmail", "calendar"],
        may_call: ["search-bot"],
      },
    });
    expect(await screen.findByRole("link", { name: "github" })).toBeTruthy();
    expect(screen.getByText("gmail, calendar")).toBeTruthy();
  });

  it("shows a viewer the grants without an Edit button", async () => {
    const server = fakeAdminApi({ tokens: { kwa_viewer: "viewer" } });
    server.state.agents.push({
      name: "billing-bot",
      upstream: "https://a.example",
      description: null,
      created_at: NOW,
    });
    renderConsole(server.fetch, "/agents/billing-bot");
    await signIn("kwa_viewer");
    expect(await screen.findByText("No credentials granted.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Edit grants" })).toBeNull();
  });
});
