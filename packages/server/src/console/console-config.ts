import { z } from "zod";

/**
 * `console:` in the configuration. `dir` (or KEYWARD_CONSOLE_DIR) points at another build of the
 * web console than the one beside the server package; relative paths resolve against the config
 * file's folder, or the working directory without one.
 */
export const consoleSchema = z
  .object({
    dir: z.string().min(1).optional(),
  })
  .strict();

export type ConsoleConfig = z.infer<typeof consoleSchema>;
