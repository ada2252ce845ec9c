import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { randomSecret } from '../shared/ids.ts';
import { importMembers } from '../legacy-trello/legacy-import.ts';
import type { Registry } from '../registry.ts';

/** The demo relying parties: our four products as first-party web clients, and Trello's mobile app. */
export const DEMO_WEB_CLIENTS = [
  { clientId: 'trello', name: 'Trello', port: 4001 },
  { clientId: 'jira', name: 'Jira', port: 4002 },
  { clientId: 'confluence', name: 'Confluence', port: 4003 },
  { clientId: 'bitbucket', name: 'Bitbucket', port: 4004 },
] as const;

export const DEMO_EMAIL = 'demo@lanyard.test';

/**
 * Seeds the demo clients and account on a database that has none of them (first start in
 * development) and returns what to print, once: the secrets are not stored in clear anywhere.
 * Returns undefined when the demo data is already there.
 */
export async function seedDemo(registry: Registry): Promise<string | undefined> {
  const { clients, accounts, config } = registry;
  if ((await clients.list()).some((c) => c.client_id === 'trello')) return undefined;

  const lines = [
    '',
    'Demo data created (shown once; secrets are not stored in clear):',
    `  issuer:    ${config.issuer}`,
    `  discovery: ${config.issuer}/.well-known/openid-configuration`,
    '',
  ];
  for (const demo of DEMO_WEB_CLIENTS) {
    const origin = `http://localhost:${demo.port}`;
    const { clientSecret } = await clients.create({
      clientId: demo.clientId,
      kind: 'web',
      name: demo.name,
      firstParty: true,
      redirectUris: [`${origin}/callback`],
      postLogoutRedirectUris: [`${origin}/`],
    });
    lines.push(`  client ${demo.clientId.padEnd(14)} secret ${clientSecret}  redirect ${origin}/callback`);
  }
  await clients.create({
    clientId: 'trello-mobile',
    kind: 'native',
    name: 'Trello for mobile',
    firstParty: true,
    // RFC 8252 §7.1 private-use scheme and §7.3 loopback redirect for native apps.
    redirectUris: ['com.lanyard.trello:/oauth/callback', 'http://127.0.0.1/callback'],
    postLogoutRedirectUris: ['com.lanyard.trello:/oauth/logout'],
  });
  lines.push('  client trello-mobile  public (PKCE S256)  redirect com.lanyard.trello:/oauth/callback, http://127.0.0.1/callback');

  if (!(await accounts.findByEmail(DEMO_EMAIL))) {
    const password = randomSecret(12);
    await accounts.create({ email: DEMO_EMAIL, password, name: 'Demo User', nickname: 'demo', emailVerified: true });
    lines.push('', `  demo account: ${DEMO_EMAIL} / ${password}`);
  }
  // A legacy Trello account with two addresses, to try the migration at login.
  const trelloPassword = randomSecret(12);
  const legacy = {
    id: 'demo-trello-member',
    username: 'trellodemo',
    fullName: 'Trello Demo',
    passwordHash: bcrypt.hashSync(trelloPassword, 10),
    emails: [
      { address: 'trello-demo@lanyard.test', verified: true, primary: true, lastUsedAt: new Date().toISOString() },
      { address: 'trello-demo.old@lanyard.test', verified: true },
    ],
  };
  await importMembers({ db: registry.db, trelloMembers: registry.trello.members, clock: registry.clock }, Readable.from([JSON.stringify(legacy)]));
  lines.push(`  legacy Trello account (log in with its Trello password to migrate it): trello-demo@lanyard.test / ${trelloPassword}`);
  lines.push('');
  return lines.join('\n');
}
