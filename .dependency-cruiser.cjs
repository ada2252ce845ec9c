/**
 * The import direction of docs/architecture.md, checked by `npm run lint:imports` (part of
 * `npm test`). Rules are forbidden edges; each exception names its reason.
 * docs/decisions/0023-layout-and-import-rules.md explains the rules and the exceptions.
 * @type {import('dependency-cruiser').IConfiguration}
 */
const DOMAIN = '^src/(identity|legacy-trello|federation|policy|organizations)/';
const HTTP_LAYER = '^src/(flows|http|routes)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and hides which module owns what.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'shared-is-a-leaf',
      severity: 'error',
      comment: 'src/shared holds leaf utilities: it imports nothing else from src.',
      from: { path: '^src/shared/' },
      to: { path: '^src/', pathNot: '^src/shared/' },
    },
    {
      name: 'domain-without-http-or-engine',
      severity: 'error',
      comment: 'identity, legacy-trello, federation, policy and organizations never see Koa, the engine or the HTTP layer.',
      from: { path: DOMAIN },
      to: { path: ['^node_modules/(@types/)?(koa|koa-[^/]+|@koa/[^/]+|koa__[^/]+|oidc-provider)/', '^src/(flows|http|routes|oidc)/', '^src/(app|registry|main)\\.[jt]s$'] },
    },
    {
      name: 'only-oidc-imports-the-engine',
      severity: 'error',
      comment: 'oidc-provider is customised only through its hooks, all wired in src/oidc; the registry holds the Provider type.',
      from: { path: '^src/', pathNot: ['^src/oidc/', '^src/registry\\.[jt]s$'] },
      to: { path: '^node_modules/(@types/)?oidc-provider/' },
    },
    {
      name: 'http-layer-not-persistence',
      severity: 'error',
      comment: 'flows, http and routes get services, never query objects or the database.',
      from: {
        path: HTTP_LAYER,
        // Exception: the readiness probe asks the database itself whether it answers and is
        // migrated (GET /readyz); a service in between would only forward the call.
        pathNot: '^src/routes/health\\.[jt]s$',
      },
      to: { path: '^src/persistence/' },
    },
    {
      name: 'http-layer-reaches-the-engine-through-facades',
      severity: 'error',
      comment: 'flows and routes reach oidc-provider only through src/oidc/interactions.ts (interactions), browser-session.ts (who is signed in) and account-sessions.ts (ending sessions); login-flows.ts is the login interaction\'s own state (no engine).',
      from: {
        path: HTTP_LAYER,
        // Exception: the logout pages implement the ProviderPages type that provider.ts declares
        // for its logout hooks (a type import only; the registry passes the pages in).
        pathNot: '^src/flows/logout/pages\\.[jt]s$',
      },
      to: {
        path: '^src/oidc/',
        pathNot: ['^src/oidc/(interactions|browser-session|account-sessions|login-flows)\\.[jt]s$'],
      },
    },
    {
      name: 'only-entry-points-import-the-registry',
      severity: 'error',
      comment: 'The composition root is imported by the entry points only: main.ts, app.ts, the CLI (tests and bench are not cruised).',
      from: { path: '^src/', pathNot: ['^src/(main|app|registry)\\.[jt]s$', '^src/cli/'] },
      to: { path: '^src/registry\\.[jt]s$' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve would make every rule above pass silently.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Cruised as JavaScript stripped of its types by scripts/lint-imports.mjs (see there why).
    // node_modules is a symbolic link in some checkouts: keep paths as `node_modules/…` so the rules match.
    preserveSymlinks: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.js', '.mjs', '.cjs', '.json'],
    },
  },
};
