/*
 * The calls `stx-elevate learn` records: what a program asked for that
 * needs privilege, in the kernel's numbers, with one key per distinct call
 * (the same call seen again is counted, and asked about once).
 */
import { AF_INET, AF_PACKET, domainName, htons16, protocolName, typeName } from '../../broker/rules/names.js';

/** socket(domain, type, protocol): `protocol` as socket(2) takes it (a packet socket's ethertype in network order). */
export interface SocketCall { kind: 'socket'; domain: number; type: number; protocol: number }

/** bind() of an inet/inet6 socket to a privileged port; `address` in canonical text. */
export interface BindCall { kind: 'bind'; family: number; type: number; address: string; port: number; reusePort: boolean }

export type OptionValue = { int: number } | { interface: string };

/** setsockopt() of an option that needed privilege, with the value the program passed. */
export interface SetsockoptCall { kind: 'setsockopt'; level: number; option: number; optionName: string; value: OptionValue }

/** A header-including option (IP_HDRINCL, ...) on a raw socket of a learned kind: `header-included = allow`. */
export interface HeaderCall { kind: 'header'; option: string; socket: SocketCall }

export type LearnedCall = SocketCall | BindCall | SetsockoptCall | HeaderCall;

const num = (name: string | undefined, n: number): string => name ?? String(n);

/** A packet socket's protocol in host order, as rules write it. */
export function ruleProtocol(c: SocketCall): number {
  return c.domain === AF_PACKET ? htons16(c.protocol) : c.protocol;
}

function socketWords(c: SocketCall): string {
  return [num(domainName(c.domain), c.domain), num(typeName(c.type), c.type), num(protocolName(c.domain, c.protocol), ruleProtocol(c))].join(', ');
}

function endpoint(c: BindCall): string {
  return c.family === AF_INET ? `${c.address}:${c.port}` : `[${c.address}]:${c.port}`;
}

const valueText = (v: OptionValue): string => ('int' in v ? String(v.int) : JSON.stringify(v.interface));

/** The call decoded for people: `socket(inet, raw, icmp)`, `bind(inet stream 127.0.0.1:80)`. */
export function describeCall(c: LearnedCall): string {
  switch (c.kind) {
    case 'socket': return `socket(${socketWords(c)})`;
    case 'bind': return `bind(${num(domainName(c.family), c.family)} ${num(typeName(c.type), c.type)} ${endpoint(c)}${c.reusePort ? ', SO_REUSEPORT set' : ''})`;
    case 'setsockopt': return `setsockopt(${c.optionName}, ${valueText(c.value)})`;
    case 'header': return `setsockopt(${c.option}) on socket(${socketWords(c.socket)})`;
  }
}

/** One key per distinct call: the decoded text says everything that tells two calls apart. */
export function callKey(c: LearnedCall): string {
  return describeCall(c);
}

/** The key of the socket kind a header option widens. */
export function socketKey(c: SocketCall): string {
  return callKey(c);
}
