import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

/** The public shape of a consumer (consumers-routes.ts builds it field by field). */
export const ConsumerSchema = z
  .object({
    name: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: "Consumer" });
export const ConsumerPageSchema = pageOf(ConsumerSchema);

export type Consumer = z.infer<typeof ConsumerSchema>;
