import { BlockList, isIP } from "node:net";

/** Parses one CIDR (or a bare address, meaning a single host); throws with a readable message. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } {
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) throw new Error(`"${text}" is not an IP address or CIDR`);
  const max = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new Error(`"${text}" has an invalid prefix length (0-${max})`);
  }
  return { address, prefix: Number(prefixText), family: version === 4 ? "ipv4" : "ipv6" };
}

/** A matcher over a list of CIDRs; an address matches when any entry contains it. */
export function parseCidrList(list: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const entry of list) {
    const c = parseCidr(entry);
    bl.addSubnet(c.address, c.prefix, c.family);
  }
  return bl;
}

export function ipMatches(list: BlockList, ip: string): boolean {
  const v = isIP(ip);
  if (v === 0) return false;
  return list.check(ip, v === 4 ? "ipv4" : "ipv6");
}

/**
 * The caller's address. `X-Forwarded-For` counts only when the TCP peer is a trusted proxy; then
 * the rightmost address that is not itself a trusted proxy is the client (entries to its left
 * were written by the client and prove nothing).
 */
export function clientIp(
  peerIp: string,
  forwardedFor: string | string[] | undefined,
  trusted: BlockList | null,
): string {
  if (!trusted || forwardedFor === undefined || !ipMatches(trusted, peerIp)) return peerIp;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalize(hops[i] as string);
    if (isIP(hop) === 0) return peerIp;
    if (!ipMatches(trusted, hop)) return hop;
  }
  return hops.length > 0 ? normalize(hops[0] as string) : peerIp;
}

function normalize(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * Whether the client reached us over HTTPS: our own TLS socket, or a trusted proxy's
 * `X-Forwarded-Proto: https` (from anyone else the header proves nothing, like X-Forwarded-For).
 */
export function requestIsHttps(
  req: { socket: unknown; headers: Record<string, string | string[] | undefined> },
  peerIp: string,
  trusted: BlockList | null,
): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  if (!trusted || !ipMatches(trusted, peerIp)) return false;
  const proto = req.headers["x-forwarded-proto"];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(",")[0]?.trim().toLowerCase();
  return first === "https";
}
