import Router from '@koa/router';
import type { DevMailbox } from '../mail/transport.ts';
import type { Views } from '../http/views.ts';

/**
 * /dev/mailbox: the messages the development mailbox "delivered" (no SMTP_URL), newest first,
 * with their links clickable. Only mounted when DEV_MAILBOX is on, which production refuses.
 */
export function devMailboxRoutes(mailbox: DevMailbox, views: Views) {
  const router = new Router();
  router.get('/dev/mailbox', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = views.render('dev/mailbox', {
      title: 'Development mailbox',
      messages: mailbox.messages().map((m) => ({
        to: m.to,
        subject: m.subject,
        deliveredAt: m.deliveredAt.toISOString(),
        text: m.text,
        // A link written in parentheses or ending a sentence does not take the punctuation with it.
        links: [...new Set((m.text.match(/https?:\/\/\S+/g) ?? []).map((l) => l.replace(/[).,;:!?'"]+$/, '')))],
      })),
    });
  });
  return router;
}
