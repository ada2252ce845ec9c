import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LOG_BATCH, createLineBatch } from '../../../src/shared/logger.ts';

const moduleUrl = new URL('../../../src/shared/logger.ts', import.meta.url).href;

/**
 * Runs `body` in a process of its own with `log`, a logger made as `npm start` makes it (no
 * destination: standard output, batched), and collects what reached its standard output: each
 * JSON line, and how many had arrived when the process printed `MARK` to standard error.
 */
async function logsOf(body: string): Promise<{ lines: Array<{ msg: string; level: number }>; beforeMark: number; signal: string | null; code: number | null }> {
  const script = `
    const { createLogger } = await import(${JSON.stringify(moduleUrl)});
    const log = createLogger('info');
    const spin = (ms) => { const until = Date.now() + ms; while (Date.now() < until); };
    const mark = () => process.stderr.write('MARK\\n');
    ${body}
  `;
  const child = spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
  let out = '';
  let beforeMark = -1;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (chunk.includes('MARK') && beforeMark < 0) beforeMark = out.split('\n').filter(Boolean).length;
  });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: number });
  return { lines, beforeMark, signal, code };
}

describe('the log destination of npm start (decision 0069)', function () {
  this.timeout(20_000);

  it('writes a lone info line within the batch delay, while the process goes on', async () => {
    // The process stays alive well past the delay; the line must come before it says so.
    const { lines, beforeMark } = await logsOf(`
      log.info('alone');
      setTimeout(() => { mark(); process.exit(0); }, ${LOG_BATCH.delayMs * 20});
    `);
    expect(lines.map((l) => l.msg)).to.deep.equal(['alone']);
    expect(beforeMark).to.equal(1);
  });

  it('writes a warn line at once, with the info lines held before it', async () => {
    // The event loop is blocked right after the warn line (no timer can fire), then the process
    // is killed: only what was handed to the write at once can have arrived.
    const { lines, signal } = await logsOf(`
      log.info('first');
      log.warn('trouble');
      spin(${LOG_BATCH.delayMs * 10});
      process.kill(process.pid, 'SIGKILL');
    `);
    expect(signal).to.equal('SIGKILL');
    expect(lines.map((l) => l.msg)).to.deep.equal(['first', 'trouble']);
    expect(lines[1]!.level).to.equal(40);
  });

  it('loses the held info lines of the last delay on SIGKILL, and no more (the price, decision 0069)', async () => {
    const { lines, signal } = await logsOf(`
      log.info('written');
      setTimeout(() => {
        log.info('held');
        spin(${LOG_BATCH.delayMs * 3});
        process.kill(process.pid, 'SIGKILL');
      }, ${LOG_BATCH.delayMs * 5});
    `);
    expect(signal).to.equal('SIGKILL');
    expect(lines.map((l) => l.msg)).to.deep.equal(['written']);
  });

  it('writes every held line, in order, on any exit Node runs', async () => {
    // More than one batch's bytes, then an exit at once: some lines were written by size, the
    // rest only by the exit handler.
    const count = Math.ceil((LOG_BATCH.bytes * 3) / 80);
    const { lines, code } = await logsOf(`
      for (let i = 0; i < ${count}; i += 1) log.info({ i }, 'line ' + i);
      process.exit(3);
    `);
    expect(code).to.equal(3);
    expect(lines.map((l) => l.msg)).to.deep.equal(Array.from({ length: count }, (_, i) => `line ${i}`));
  });

  it('writes the held lines when the event loop empties (beforeExit)', async () => {
    const { lines, code } = await logsOf(`log.info('last words');`);
    expect(code).to.equal(0);
    expect(lines.map((l) => l.msg)).to.deep.equal(['last words']);
  });

  describe('the batch itself', () => {
    const line = (n: number, size = 60) => `${JSON.stringify({ n, pad: 'x'.repeat(size) })}\n`;

    it('holds small lines and hands them on as one write after the delay', async () => {
      const writes: string[] = [];
      const batch = createLineBatch((lines) => writes.push(lines));
      for (let i = 0; i < 5; i += 1) batch.write(line(i));
      expect(writes).to.deep.equal([]);
      await new Promise((resolve) => setTimeout(resolve, LOG_BATCH.delayMs * 3));
      expect(writes).to.deep.equal([[0, 1, 2, 3, 4].map((i) => line(i)).join('')]);
    });

    it("writes at once when a batch's bytes are held, and keeps the rest for the next", () => {
      const writes: string[] = [];
      const batch = createLineBatch((lines) => writes.push(lines));
      const big = line(0, LOG_BATCH.bytes);
      batch.write(line(1));
      batch.write(big);
      batch.write(line(2));
      expect(writes).to.deep.equal([line(1) + big]);
      batch.flush();
      expect(writes).to.deep.equal([line(1) + big, line(2)]);
    });

    it("calls back from flush (pino's logger.flush(cb)), with or without lines held", () => {
      const writes: string[] = [];
      const batch = createLineBatch((lines) => writes.push(lines));
      let called = 0;
      batch.flush(() => { called += 1; });
      batch.write(line(1));
      batch.flush(() => { called += 1; });
      expect(called).to.equal(2);
      expect(writes).to.deep.equal([line(1)]);
    });
  });
});
