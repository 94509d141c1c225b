// Client address lists given as CIDRs (ADMP_LMTP_ALLOW, ADMP_SMTP_PROXY). An IPv4
// client of a dual-stack listener shows as ::ffff:a.b.c.d and is checked as IPv4.
import { BlockList, isIPv6 } from 'node:net';

export function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split('/');
    const type = isIPv6(net!) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(net!, type);
    else list.addSubnet(net!, Number(bits), type);
  }
  return list;
}

export const isAllowed = (list: BlockList, ip: string): boolean => {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  return v4 ? list.check(v4, 'ipv4') : list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
};
