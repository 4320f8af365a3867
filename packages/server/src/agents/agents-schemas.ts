import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

/** The public shape of an agent (agents-routes.ts builds it field by field). */
export const AgentSchema = z
  .object({
    name: z.string(),
    upstream: z.string(),
    description: z.string().nullable(),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: "Agent" });
export const AgentPageSchema = pageOf(AgentSchema);

export type Agent = z.infer<typeof AgentSchema>;
