// Mocha's spec reporter plus, at the end, the slowest tests (where CI time goes) and one plain
// closing line, "N passed, N failed, N skipped", that CI and people can read without knowing
// mocha's wording.
const Mocha = require('mocha');

const SLOWEST = 12;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const timings = [];
    const files = new Map();
    const add = (runnable) => {
      const path = runnable.file ?? runnable.parent?.file;
      const file = path ? path.replace(process.cwd() + '/', '') : '(root hooks)';
      files.set(file, (files.get(file) ?? 0) + (runnable.duration ?? 0));
    };
    runner.on('test end', (test) => {
      if (typeof test.duration !== 'number') return;
      timings.push({ title: test.fullTitle(), ms: test.duration });
      add(test);
    });
    // Hooks (servers started, databases created) count towards their file's time.
    runner.on('hook end', add);
    runner.once('end', () => {
      const { passes, failures, pending } = this.stats;
      const top = (entries) => entries.sort((a, b) => b[1] - a[1]).slice(0, SLOWEST);
      process.stdout.write('\nslowest files (tests and hooks, s):\n');
      for (const [file, ms] of top([...files.entries()])) process.stdout.write(`  ${(ms / 1000).toFixed(1).padStart(6)}  ${file}\n`);
      process.stdout.write('slowest tests (s):\n');
      for (const [title, ms] of top(timings.map((t) => [t.title, t.ms]))) process.stdout.write(`  ${(ms / 1000).toFixed(1).padStart(6)}  ${title}\n`);
      process.stdout.write(`${passes} passed, ${failures} failed, ${pending} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
