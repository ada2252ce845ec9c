import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { requestContext } from '../../../src/http/request-context.ts';
import { captureLogs } from '../../helpers/log-capture.ts';

/** An app with the request context in front of `handler`. */
function appWith(level: string, handler: Koa.Middleware) {
  const logs = captureLogs(level);
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(logs.logger));
  app.use(handler);
  return { app, logs, parsed: () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('requestContext (request id, request logger, access log)', () => {
  it('logs one access line with the request id it answers in X-Request-Id, without making a request logger', async () => {
    const { app, parsed } = appWith('info', (ctx) => { ctx.body = { ok: true }; });
    const res = await request(app.callback()).get('/me?code=secret').expect(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).to.match(/^[0-9a-f-]{36}$/);
    const lines = parsed();
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ msg: 'request', reqId: id, method: 'GET', path: '/me', status: 200, level: 30, service: 'lanyard' });
    expect(JSON.stringify(lines[0])).not.to.include('secret');
  });

  it('gives the handlers a logger bound to the request id, and ends with the same access line', async () => {
    const { app, parsed } = appWith('info', (ctx) => {
      (ctx.state.log as { info(o: object, m: string): void }).info({ step: 1 }, 'working');
      expect(ctx.state.log).to.equal(ctx.state.log); // made once
      ctx.status = 204;
    });
    const res = await request(app.callback()).get('/x').set('X-Request-Id', 'proxy-id-12345').expect(204);
    expect(res.headers['x-request-id']).to.equal('proxy-id-12345');
    const lines = parsed();
    expect(lines.map((l) => [l.msg, l.reqId])).to.deep.equal([['working', 'proxy-id-12345'], ['request', 'proxy-id-12345']]);
    expect(lines[1]).to.include({ status: 204, level: 30 });
    // The same fields in the same order as a request that made no child logger.
    expect(Object.keys(lines[1]!).filter((k) => k !== 'time')).to.deep.equal(['level', 'service', 'reqId', 'method', 'path', 'status', 'ms', 'msg']);
  });

  it('replaces a malformed incoming id, and logs a server error at error level and an outside problem (501–504) at warn', async () => {
    const statuses: Record<string, number> = { '/down': 503, '/upstream': 502, '/upstream-slow': 504, '/propfind': 501 };
    const { app, parsed } = appWith('info', (ctx) => { ctx.status = statuses[ctx.path] ?? 500; ctx.body = 'x'; });
    const res = await request(app.callback()).get('/broken').set('X-Request-Id', 'bad id with spaces').expect(500);
    expect(res.headers['x-request-id']).to.not.equal('bad id with spaces');
    for (const [path, status] of Object.entries(statuses)) await request(app.callback()).get(path).expect(status);
    expect(parsed().map((l) => [l.path, l.level, l.reqId !== undefined])).to.deep.equal([['/broken', 50, true], ['/down', 40, true], ['/upstream', 40, true], ['/upstream-slow', 40, true], ['/propfind', 40, true]]);
  });

  it('writes nothing below the configured level', async () => {
    const { app, logs } = appWith('warn', (ctx) => { ctx.body = 'ok'; });
    await request(app.callback()).get('/').expect(200);
    expect(logs.lines).to.deep.equal([]);
  });

  it('keeps what earlier middleware put in ctx.state', async () => {
    const logs = captureLogs('silent');
    const app = new Koa();
    app.use((ctx, next) => { ctx.state.earlier = 'kept'; return next(); });
    app.use(requestContext(logs.logger));
    app.use((ctx) => { ctx.body = { earlier: ctx.state.earlier, requestId: ctx.state.requestId }; });
    const res = await request(app.callback()).get('/').expect(200);
    expect(res.body).to.deep.equal({ earlier: 'kept', requestId: res.headers['x-request-id'] });
  });
});
