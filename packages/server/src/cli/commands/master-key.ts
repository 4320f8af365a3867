import type {
  MasterKeyInventory as Inventory,
  KeyCount,
  MasterKeyRotation as RotateReport,
} from "../../crypto/master-key-schemas.js";
import type { Command, Group } from "../command.js";
import { formatTable } from "../table.js";

function keysTable(keys: readonly KeyCount[]): string {
  return formatTable(
    ["MASTER KEY ID", "STATE", "SEALED VALUES"],
    keys.map((k) => [k.id, k.active ? "active" : k.loaded ? "retired (loaded)" : "NOT LOADED", String(k.values)]),
  );
}

const status: Command = {
  usage: "status",
  args: [],
  options: {},
  async run(ctx) {
    const inv = await ctx.client().request<Inventory>("GET", "/master-key");
    ctx.print(inv, () => {
      const unreadable = inv.unreadable > 0 ? `${inv.unreadable} sealed values are too damaged to read\n` : "";
      return `${keysTable(inv.keys)}${unreadable}`;
    });
  },
};

const rotate: Command = {
  usage: "rotate",
  args: [],
  options: {},
  async run(ctx) {
    const r = await ctx.client().request<RotateReport>("POST", "/master-key/rotate", {});
    ctx.print(r, () => {
      let text = `rewrapped ${r.rewrapped} data keys under ${r.active_key_id} (${r.current} already were)\n`;
      if (r.raced > 0) text += `${r.raced} values changed while being rewrapped: run rotate again\n`;
      for (const f of r.failed) text += `cannot rewrap ${f.record}: ${f.reason}\n`;
      text += keysTable(r.keys);
      text +=
        r.remaining === 0 && r.failed.length === 0
          ? "done: no value needs a retired master key; remove KEYWARD_MASTER_KEY_PREVIOUS and restart\n"
          : `${r.remaining} values still need a retired master key: keep KEYWARD_MASTER_KEY_PREVIOUS\n`;
      return text;
    });
  },
};

export const masterKey: Group = {
  name: "master-key",
  summary: "re-wrap every stored secret under a new master key (online)",
  commands: { status, rotate },
  notes: [
    "Rotation: start every replica with KEYWARD_MASTER_KEY=<new key> and",
    "KEYWARD_MASTER_KEY_PREVIOUS=<old key>, run 'keyward master-key rotate' (safe to run again),",
    "then drop KEYWARD_MASTER_KEY_PREVIOUS once it reports done. Values are not re-encrypted:",
    "only the data keys are re-wrapped. See packages/server/src/crypto/README.md.",
  ].join("\n"),
};
