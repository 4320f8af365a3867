/** Who made an admin change and from where; passed from routes to services for the audit trail. */
export interface Actor {
  principal: string;
  ip?: string;
  requestId?: string;
}
