// @vitest-environment jsdom
import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { fakeAdminApi } from "../../test-support/fake-admin-api";
import { NOW } from "../../test-support/fixtures";
import { renderConsole } from "../../test-support/render-console";
import { signIn } from "../../test-support/sign-in";
import type { CredentialDetail } from "../types";

afterEach(cleanup);

const put = (server: ReturnType<typeof fakeAdminApi>) => server.requests.filter((r) => r.method === "PUT").at(-1);

describe("credentials", () => {
  it("sets a token provider with egress; its client secret is sent once and never shown", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/credentials");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "Set credential" }));
    const form = screen.getByRole("dialog", { name: "Set credential" });
    await userEvent.type(within(form).getByLabelText("Name"), "crm");
    await userEvent.selectOptions(within(form).getByLabelText("Type"), "oauth2_client_credentials");
    expect(within(form).queryByLabelText("Value")).toBeNull();
    await userEvent.type(within(form).getByLabelText("Token URL"), "http://auth.example.com/token");
    await userEvent.type(within(form).getByLabelText("Client ID"), "keyward-prod");
    await userEvent.type(within(form).getByLabelText("Client secret"), " s3cret-canary ");
    await userEvent.type(within(form).getByLabelText("Scope"), "crm.read crm.write");
    await userEvent.type(within(form).getByLabelText("Egress base URL"), "https://crm.example.com/api");
    await userEvent.type(within(form).getByLabelText("Format"), "Bearer");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));

    // Checked here first: the token endpoint must be https, the format must hold the value.
    expect(within(form).getByText(/Must be https/)).toBeTruthy();
    expect(within(form).getByText("Must contain {value}.")).toBeTruthy();
    expect(put(server)).toBeUndefined();
    await userEvent.clear(within(form).getByLabelText("Token URL"));
    await userEvent.type(within(form).getByLabelText("Token URL"), "https://auth.example.com/token");
    await userEvent.type(within(form).getByLabelText("Format"), " {{value}");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(put(server)).toMatchObject({
      path: "/admin/v1/credentials/crm",
      body: {
        type: "oauth2_client_credentials",
        token_url: "https://auth.example.com/token",
        client_id: "keyward-prod",
        client_secret: " s3cret-canary ",
        scope: "crm.read crm.write",
        egress: { base_url: "https://crm.example.com/api", format: "Bearer {value}" },
      },
    });
    await userEvent.click(await screen.findByRole("link", { name: "crm" }));
    expect(await screen.findByText("keyward-prod")).toBeTruthy();
    expect(screen.getByText("Authorization: Bearer {value}")).toBeTruthy();
    expect(document.body.innerHTML).not.toContain("s3cret-canary");
  });

  it("shows the server's refusal with its code when the form passed the console's checks", async () => {
    const server = fakeAdminApi();
    renderConsole(server.fetch, "/credentials");
    await signIn("kwa_owner");
    await userEvent.click(await screen.findByRole("button", { name: "Set credential" }));
    const form = screen.getByRole("dialog", { name: "Set credential" });
    await userEvent.type(within(form).getByLabelText("Name"), "openai");
    await userEvent.type(within(form).getByLabelText("Value"), "sk-canary");
    await userEvent.type(within(form).getByLabelText("Egress base URL"), "https://api.openai.com");
    await userEvent.type(within(form).getByLabelText("Header"), "Host");
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));
    const alert = await within(form).findByRole("alert");
    expect(alert.textContent).toContain("invalid_request");
    expect(alert.textContent).toContain("Host cannot carry a credential");
    expect(screen.getByRole("dialog", { name: "Set credential" })).toBeTruthy();
  });

  it("rolls back after a confirmation naming the version, and a new version can remove the egress", async () => {
    const server = fakeAdminApi();
    const cred: CredentialDetail = {
      name: "openai",
      type: "static",
      version: 2,
      status: "ok",
      status_message: null,
      updated_at: NOW,
      egress: { base_url: "https://api.openai.com/", header: "Authorization", format: "Bearer {value}" },
      provider: null,
      versions: [2, 1].map((version) => ({
        version,
        source: "admin",
        rolled_back_from: null,
        created_at: NOW,
        created_by: "admin:adm_owner",
      })),
    };
    server.state.credentials.push(cred);
    renderConsole(server.fetch, "/credentials/openai");
    await signIn("kwa_owner");

    await userEvent.click(await screen.findByRole("button", { name: "Roll back to 1" }));
    const ask = screen.getByRole("dialog", { name: "Roll openai back to version 1?" });
    await userEvent.click(within(ask).getByRole("button", { name: "Roll back to 1" }));
    expect(await screen.findByText("(a copy of version 1)")).toBeTruthy();
    expect(server.requests.find((r) => r.path.endsWith("/rollback"))?.body).toEqual({ version: 1 });

    await userEvent.click(screen.getByRole("button", { name: "New version" }));
    const form = screen.getByRole("dialog", { name: "New version of openai" });
    expect(within(form).getByLabelText<HTMLInputElement>("Egress base URL").value).toBe("https://api.openai.com/");
    expect(within(form).getByLabelText<HTMLInputElement>("Value").value).toBe("");
    await userEvent.type(within(form).getByLabelText("Value"), "sk-new");
    await userEvent.clear(within(form).getByLabelText("Egress base URL"));
    await userEvent.click(within(form).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(put(server)?.body).toEqual({ type: "static", value: "sk-new", egress: null });
  });
});
