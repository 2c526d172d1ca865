/**
 * The chaos suite from the command line:
 *
 * ```sh
 * npm run test:chaos -- --runs 200 [--seed 7] [--restarts 2] [--concurrency 30] [--reaper-interval 1000] [--verbose]
 * ```
 *
 * `--verbose` shows the engine's error logs, and the stored state of each lost run.
 *
 * Prints the report; exits with 1 when a run was lost, ended wrong, or had
 * an output committed twice.
 */
import { parseArgs } from 'node:util';
import { formatReport, runChaos } from './chaos.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '100' },
    seed: { type: 'string' },
    restarts: { type: 'string' },
    concurrency: { type: 'string' },
    'reaper-interval': { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

const int = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name}: expected a non-negative integer, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
};

const runs = int('runs', values.runs, 100);
const seed = int('seed', values.seed, Date.now() % 1_000_000);
const restarts = int('restarts', values.restarts, Math.max(1, Math.floor(runs / 100)));
const concurrency = int('concurrency', values.concurrency, 30);
const reaperIntervalMs = int('reaper-interval', values['reaper-interval'], 1_000);
const started = Date.now();
// The engine logs every redelivery and every 5xx: count those lines, show them with --verbose.
let engineLines = 0;
const consoleError = console.error;
if (!values.verbose) console.error = () => void engineLines++;
console.log(`chaos: ${runs} runs, seed ${seed}, ${restarts} restart(s) (rerun with --seed ${seed})`);
const report = await runChaos({
  runs,
  seed,
  restarts,
  concurrency,
  reaperIntervalMs,
  dumpLost: values.verbose,
  log: (line) => {
    if (values.verbose || !line.startsWith('  stack:'))
      console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`);
  },
});
console.error = consoleError;
console.log(formatReport(report));
if (engineLines > 0) console.log(`  (${engineLines} error log lines of the engine hidden; --verbose shows them)`);
process.exitCode = report.ok ? 0 : 1;
