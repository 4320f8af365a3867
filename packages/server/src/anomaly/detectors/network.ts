import { isIPv4, isIPv6 } from "node:net";

/**
 * The network an address belongs to, as the new_network detector counts them: /24 for IPv4 and
 * /48 for IPv6 (a site's usual allocation), `1.2.3.0/24` / `2001:db8:1::/48`. IPv4-mapped IPv6
 * is IPv4. Undefined for anything that is not an address.
 */
export function networkOf(ip: string): string | undefined {
  const v4 = ip.startsWith("::ffff:") && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(v4)) {
    const [a, b, c] = v4.split(".");
    return `${a}.${b}.${c}.0/24`;
  }
  if (!isIPv6(ip)) return undefined;
  const groups = expand(ip.split("%")[0] as string);
  return `${groups
    .slice(0, 3)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/48`;
}

/** The eight groups of an IPv6 address (`::` expanded; a trailing dotted IPv4 part counts as two). */
function expand(ip: string): string[] {
  const [head, tail] = ip.includes("::") ? (ip.split("::") as [string, string]) : [ip, undefined];
  const part = (s: string | undefined): string[] => {
    if (!s) return [];
    return s.split(":").flatMap((g) => {
      if (!isIPv4(g)) return [g];
      const [a, b, c, d] = g.split(".").map(Number) as [number, number, number, number];
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  };
  const h = part(head);
  const t = part(tail);
  return [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
}
