/** Who made an admin change and from where; passed from routes to services for the audit trail. */
export interface Actor {
  principal: string;
  /** For an admin identity (`principal` = `admin:<id>`): its role, as admin-roles.ts checked it. */
  role?: import("./admin-roles.js").Role;
  ip?: string;
  requestId?: string;
  /**
   * Told when a change committed but telling the other replicas failed (they still apply it at
   * their next reconciliation): the admin API then answers with `Keyward-Propagation: pending`.
   */
  propagationPending?: () => void;
}
