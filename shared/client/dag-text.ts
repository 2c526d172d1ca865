import type { BodyJson, FlowJson, StepJson, TaskJson } from '../engine/describe.ts';

/**
 * A workflow's DAG as indented text, one step a line, for terminals:
 *
 * ```
 * fulfil
 * ├─ charge             task  pool default · priority high · 5 attempts · timeout 30s
 * ├─ ship               fork
 * │  ├─ email           task  …
 * │  └─ parcel          task  …
 * ├─ done               join
 * └─ approve            signal 'manager-approval' · timeout 48h
 * ```
 *
 * @example
 * ```ts
 * console.log(dagText((await sayiir.describe('fulfil')).dag));
 * ```
 */
export function dagText(flow: FlowJson): string {
  const lines = [flow.name];
  steps(flow.steps, '', lines);
  return lines.join('\n');
}

function steps(list: readonly StepJson[], indent: string, out: string[]): void {
  list.forEach((step, i) => {
    const last = i === list.length - 1;
    const rows = stepRows(step);
    rows.forEach((row, r) => {
      const isLast = last && r === rows.length - 1;
      out.push(`${indent}${isLast ? '└─ ' : '├─ '}${row.text}`);
      const below = `${indent}${isLast ? '   ' : '│  '}`;
      row.children?.(below, out);
    });
  });
}

interface Row {
  readonly text: string;
  readonly children?: (indent: string, out: string[]) => void;
}

function stepRows(step: StepJson): Row[] {
  switch (step.kind) {
    case 'task':
      return [{ text: line(step.id, 'task', taskText(step.task)) }];
    case 'delay':
      return [{ text: line(step.id, 'delay', duration(step.ms)) }];
    case 'signal': {
      const timeout = step.timeoutMs === null ? '' : ` · timeout ${duration(step.timeoutMs)} then ${step.onTimeout}`;
      return [{ text: line(step.id, 'signal', `'${step.signal}'${timeout}`) }];
    }
    case 'fork':
      return [
        {
          text: line(step.id, 'fork', `${step.branches.length} branches`),
          children: (indent, out) =>
            bodies(
              step.branches.map((b, i) => [`branch ${i + 1}`, b] as const),
              indent,
              out,
            ),
        },
        { text: line(step.join.id, 'join', taskText(step.join)) },
      ];
    case 'route':
      return [
        {
          text: line(step.id, 'route', `by ${step.keyTask.id}`),
          children: (indent, out) =>
            bodies(
              [
                ...step.branches.map((b) => [`'${b.key}'`, b.body] as const),
                ...(step.fallback ? [['default', step.fallback] as const] : []),
              ],
              indent,
              out,
            ),
        },
      ];
    case 'loop':
      return [
        {
          text: line(step.id, 'loop', `at most ${step.maxIterations} iterations, then ${step.onMax}`),
          children: (indent, out) => out.push(`${indent}└─ ${line(step.body.id, 'task', taskText(step.body))}`),
        },
      ];
    case 'child':
      return [
        {
          text: line(step.id, 'child', step.flow.name),
          children: (indent, out) => steps(step.flow.steps, indent, out),
        },
      ];
    case 'map':
      return [
        {
          text: line(step.id, 'map', `over ${step.items.id} · ${step.maxConcurrency} at a time`),
          children: (indent, out) => bodies([['each item', step.body]], indent, out),
        },
      ];
  }
}

function bodies(list: readonly (readonly [string, BodyJson])[], indent: string, out: string[]): void {
  list.forEach(([label, body], i) => {
    const last = i === list.length - 1;
    const below = `${indent}${last ? '   ' : '│  '}`;
    if ('task' in body) {
      out.push(`${indent}${last ? '└─ ' : '├─ '}${label}: ${line(body.task.id, 'task', taskText(body.task))}`);
      return;
    }
    out.push(`${indent}${last ? '└─ ' : '├─ '}${label}: ${body.flow.name}`);
    steps(body.flow.steps, below, out);
  });
}

const line = (id: string, kind: string, detail: string): string =>
  `${id.padEnd(18)} ${kind.padEnd(6)}${detail ? ` ${detail}` : ''}`;

function taskText(t: TaskJson): string {
  const attempts = `${t.retry.maxAttempts} attempt${t.retry.maxAttempts === 1 ? '' : 's'}`;
  return `pool ${t.pool} · priority ${t.priority} · ${attempts} · timeout ${duration(t.timeoutMs)}`;
}

function duration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
