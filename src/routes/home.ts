import Router from '@koa/router';
import type { Views } from '../http/views.ts';

export interface HomeClient {
  clientId: string;
  name: string;
  kind: string;
  redirectUris: string[];
}

/**
 * `/`: what this service is, and the way to account settings. Mails and end pages link here
 * ("You already have an account", the brand on every page). In development it also lists the
 * registered clients and links to the development mailbox and the discovery document.
 */
export function homeRoutes(deps: {
  views: Views;
  issuer: string;
  /** Development only (refused in production): the tools worth a link. */
  development?: { mailbox: boolean; clients: () => Promise<HomeClient[]> } | undefined;
}) {
  const router = new Router();
  router.get('/', async (ctx) => {
    const dev = deps.development;
    ctx.set('Cache-Control', dev ? 'no-store' : 'public, max-age=300');
    ctx.type = 'html';
    ctx.body = deps.views.render('home', {
      title: 'One account for Jira, Confluence, Bitbucket and Trello',
      issuer: deps.issuer,
      development: dev ? { mailbox: dev.mailbox, clients: await dev.clients() } : undefined,
    });
  });
  return router;
}
