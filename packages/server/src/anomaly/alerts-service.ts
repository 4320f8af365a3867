export type { Alert, AlertRaiser, AlertSeverity, AlertStatus, RaiseInput } from "./alert-types.js";
export { DEFAULT_COOLDOWN_S } from "./alert-types.js";
