import { z } from "zod";

const KeyCountSchema = z.object({ id: z.string(), active: z.boolean(), loaded: z.boolean(), values: z.number().int() });

/** Sealed values per master key id (master-key-rotation.ts `sealedInventory`). */
export const MasterKeyInventorySchema = z.object({
  active_key_id: z.string(),
  keys: z.array(KeyCountSchema),
  unreadable: z.number().int(),
});
export const MasterKeyRotationSchema = MasterKeyInventorySchema.extend({
  rewrapped: z.number().int(),
  current: z.number().int(),
  raced: z.number().int(),
  remaining: z.number().int(),
  failed: z.array(z.object({ record: z.string(), reason: z.string() })),
});

export type KeyCount = z.infer<typeof KeyCountSchema>;
export type MasterKeyInventory = z.infer<typeof MasterKeyInventorySchema>;
export type MasterKeyRotation = z.infer<typeof MasterKeyRotationSchema>;
