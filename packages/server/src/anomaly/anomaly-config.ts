import { z } from "zod";

/**
 * The `anomalies:` section (SPEC §10; every rule and its tuning in docs/operations.md, "Anomaly
 * rules"). A wrong rule stops the start with one line naming the rule and the setting.
 */

export const DETECTORS = [
  "denial_spike",
  "new_network",
  "volume_spike",
  "scope_probe",
  "credential_misuse",
  "canary",
] as const;
export type DetectorName = (typeof DETECTORS)[number];

const RULE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const positive = (max: number) => z.number().positive("must be greater than 0").max(max);
const seconds = z
  .number()
  .int("must be a whole number of seconds")
  .positive("must be greater than 0")
  .max(30 * 86_400);

const ruleSchema = z
  .object({
    name: z.string().regex(RULE_NAME, "name must be a slug [a-z0-9][a-z0-9_-]{0,62}"),
    detector: z.enum(DETECTORS, { error: `must be one of ${DETECTORS.join(", ")}` }),
    /** The detector's main number (see DEFAULTS below for its meaning per detector). */
    threshold: positive(1e9).optional(),
    window_s: seconds.optional(),
    action: z.enum(["alert", "freeze"]).default("alert"),
    /** With `action: freeze`: record the alert with `would_freeze` and freeze nothing. */
    dry_run: z.boolean().default(false),
    severity: z.enum(["info", "warning", "critical"]).optional(),
    /** One incident is one alert for this long (per key). */
    cooldown_s: seconds.optional(),
    /** denial_spike: the share of the key's requests in the window that must be denials. */
    min_ratio: z.number().min(0).max(1).optional(),
    /** new_network: how long after a key's first request its networks are learned, not alerted. */
    learning_s: seconds.optional(),
    /** volume_spike, credential_misuse: deviations above the EWMA mean. */
    deviations: positive(1000).optional(),
    /** volume_spike, credential_misuse: smoothing of the per-minute EWMA (0 < alpha ≤ 1). */
    alpha: z.number().positive("must be greater than 0").max(1).optional(),
  })
  .strict();

/** A rule with every default filled in. */
export interface AnomalyRule {
  name: string;
  detector: DetectorName;
  threshold: number;
  windowS: number;
  action: "alert" | "freeze";
  dryRun: boolean;
  severity: "info" | "warning" | "critical";
  cooldownS: number;
  minRatio: number;
  learningS: number;
  deviations: number;
  alpha: number;
}

type Defaults = Pick<AnomalyRule, "threshold" | "windowS" | "severity" | "cooldownS">;

/**
 * threshold means: denial_spike, denials by one key in window_s; new_network, unused (the first
 * request from a new network alerts, once learning_s is over); volume_spike and credential_misuse, the per-minute floor a
 * spike must also pass; scope_probe, distinct agents a key was refused on in window_s; canary, unused.
 */
const DEFAULTS: Record<DetectorName, Defaults> = {
  denial_spike: { threshold: 50, windowS: 60, severity: "warning", cooldownS: 3600 },
  new_network: { threshold: 1, windowS: 60, severity: "warning", cooldownS: 86_400 },
  volume_spike: { threshold: 100, windowS: 60, severity: "warning", cooldownS: 3600 },
  scope_probe: { threshold: 5, windowS: 300, severity: "warning", cooldownS: 3600 },
  credential_misuse: { threshold: 50, windowS: 60, severity: "critical", cooldownS: 3600 },
  canary: { threshold: 1, windowS: 60, severity: "critical", cooldownS: 3600 },
};

export const DEFAULT_RULES: readonly z.input<typeof ruleSchema>[] = [
  { name: "denial-spike", detector: "denial_spike", action: "alert" },
  { name: "canary", detector: "canary", action: "alert" },
];

function complete(r: z.output<typeof ruleSchema>): AnomalyRule {
  const d = DEFAULTS[r.detector];
  return {
    name: r.name,
    detector: r.detector,
    threshold: r.threshold ?? d.threshold,
    windowS: r.window_s ?? d.windowS,
    action: r.action,
    dryRun: r.dry_run,
    // A canary's use is never less than critical (SPEC §10).
    severity: r.detector === "canary" ? "critical" : (r.severity ?? d.severity),
    cooldownS: r.cooldown_s ?? d.cooldownS,
    minRatio: r.min_ratio ?? 0.5,
    learningS: r.learning_s ?? 86_400,
    deviations: r.deviations ?? 4,
    alpha: r.alpha ?? 0.1,
  };
}

/** `rules[i]` named by its name when it has a readable one, else by its place. */
function ruleLabel(raw: unknown, i: number): string {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === "string" && RULE_NAME.test(name) ? `rule "${name}"` : `rule #${i + 1}`;
}

const rulesSchema = z.array(z.unknown()).transform((raw, ctx) => {
  const rules: AnomalyRule[] = [];
  const names = new Set<string>();
  for (const [i, entry] of raw.entries()) {
    const parsed = ruleSchema.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join(".") ?? "";
      const message = issue?.code === "unrecognized_keys" ? `unknown setting ${issue.keys.join(", ")}` : issue?.message;
      ctx.addIssue({ code: "custom", message: `${ruleLabel(entry, i)}: ${field ? `${field}: ` : ""}${message}` });
      return z.NEVER;
    }
    if (names.has(parsed.data.name)) {
      ctx.addIssue({ code: "custom", message: `${ruleLabel(entry, i)}: duplicate rule name` });
      return z.NEVER;
    }
    names.add(parsed.data.name);
    rules.push(complete(parsed.data));
  }
  return rules;
});

export const anomaliesSchema = z
  .object({
    /** false turns every detector off (usage counting goes on). */
    enabled: z.boolean().default(true),
    rules: rulesSchema.prefault([...DEFAULT_RULES]),
  })
  .strict()
  .transform((a) => {
    // Canary keys are a tripwire: one that alerts no one is worse than none, so the built-in
    // canary rule stays when the configured rules name no canary detector.
    if (a.enabled && !a.rules.some((r) => r.detector === "canary")) {
      return {
        ...a,
        rules: [...a.rules, complete({ name: "canary", detector: "canary", action: "alert", dry_run: false })],
      };
    }
    return a;
  });

export type AnomaliesConfig = z.output<typeof anomaliesSchema>;
