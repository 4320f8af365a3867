import type { z } from "zod";
import type { SigningKeyRotationSchema, SigningKeysSchema } from "../../tokens/tokens-schemas.js";
import type { Command, Group } from "../command.js";
import { formatTable } from "../table.js";

type SigningKeys = z.infer<typeof SigningKeysSchema>;
type SigningKeyRotation = z.infer<typeof SigningKeyRotationSchema>;
/** The list, or a rotation (which also names the key it retired). */
type SigningKeysView = SigningKeys & Partial<Omit<SigningKeyRotation, keyof SigningKeys>>;

function keysTable(view: SigningKeysView): string {
  return formatTable(
    ["KID", "ALG", "STATE"],
    view.keys.map((k) => [k.kid, k.alg, k.active ? "active" : "retired (verifies old tokens)"]),
  );
}

const list: Command = {
  usage: "list",
  args: [],
  options: {},
  async run(ctx) {
    const view = await ctx.client().request<SigningKeysView>("GET", "/signing-keys");
    ctx.print(view, () => keysTable(view));
  },
};

const rotate: Command = {
  usage: "rotate",
  args: [],
  options: {},
  async run(ctx) {
    const view = await ctx.client().request<SigningKeysView>("POST", "/signing-keys/rotate");
    ctx.print(
      view,
      () =>
        `new signing key ${view.active_kid}; ${view.previous_kid} stays in JWKS for ` +
        `${view.previous_removed_after_s} s, until every token it signed has expired\n`,
    );
  },
};

export const signingKeys: Group = {
  name: "signing-keys",
  summary: "list and rotate the keys tokens are signed with",
  commands: { list, rotate },
};
