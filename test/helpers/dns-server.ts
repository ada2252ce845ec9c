import dns2 from 'dns2';
import type { AddressInfo } from 'node:net';

const { Packet } = dns2;

/**
 * A real authoritative DNS server on 127.0.0.1 (UDP, an ephemeral port), answering from a zone
 * the test edits: TXT and A records per name, names that do not exist (NXDOMAIN), and names
 * whose lookup fails (SERVFAIL). Point DNS_SERVERS at `server` to make Lanyard ask it.
 */
export interface TestDns {
  /** `127.0.0.1:<port>`, as DNS_SERVERS takes it. */
  server: string;
  txt: Map<string, string[][]>;
  a: Map<string, string[]>;
  servfail: Set<string>;
  /** Names asked for, with their type (the test can check the resolver was used). */
  queries: { name: string; type: number }[];
  close(): Promise<void>;
}

export async function startDns(): Promise<TestDns> {
  const txt = new Map<string, string[][]>();
  const a = new Map<string, string[]>();
  const servfail = new Set<string>();
  const queries: { name: string; type: number }[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      response.header.aa = 1;
      const [question] = request.questions;
      const name = (question?.name ?? '').toLowerCase().replace(/\.$/, '');
      queries.push({ name, type: question?.type ?? 0 });
      if (servfail.has(name)) {
        response.header.rcode = 2;
      } else if (!txt.has(name) && !a.has(name)) {
        response.header.rcode = 3;
      } else if (question?.type === Packet.TYPE.TXT) {
        for (const data of txt.get(name) ?? []) response.answers.push(Packet.createResourceFromQuestion(question, { type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 1, data }));
      } else if (question?.type === Packet.TYPE.A) {
        for (const address of a.get(name) ?? []) response.answers.push(Packet.createResourceFromQuestion(question, { type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 1, address }));
      }
      void send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const { port } = addresses.udp as AddressInfo;
  return {
    server: `127.0.0.1:${port}`,
    txt,
    a,
    servfail,
    queries,
    close: () => server.close(),
  };
}
