import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { WorkflowView } from '../../shared/client/index.ts';
import { Message } from './components.tsx';
import { DeadLettersPage, WorkflowPage, WorkflowsPage } from './pages.tsx';
import { RunPage } from './run.tsx';
import { type RunFilters, RunsPage } from './runs.tsx';
import { clientFor, describeError, forgetKey, isUnauthorized, storedKey, storeKey } from './session.ts';
import './styles.css';

/**
 * The web UI: a key gate, then hash-routed pages (`#/workflows`,
 * `#/workflows/{name}`, `#/runs?…`, `#/runs/{id}`, `#/dead-letters`), so
 * the server serves one page for all of them.
 */

interface Route {
  readonly page: 'workflows' | 'workflow' | 'runs' | 'run' | 'dead-letters';
  readonly arg: string;
  readonly query: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path = '', q = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const [head = '', ...rest] = path.split('/');
  const arg = decodeURIComponent(rest.join('/'));
  const query = new URLSearchParams(q);
  if (head === 'workflows') return { page: arg ? 'workflow' : 'workflows', arg, query };
  if (head === 'dead-letters') return { page: 'dead-letters', arg, query };
  if (head === 'runs' && arg) return { page: 'run', arg, query };
  return { page: 'runs', arg: '', query };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function KeyGate(props: { message: string | undefined; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(props.message);
  const submit = async () => {
    setBusy(true);
    try {
      await clientFor(key.trim()).workflows();
      storeKey(key.trim());
      props.onKey(key.trim());
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="gate">
      <h1>Sayiir</h1>
      <form
        aria-label="Sign in with an API key"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          API key
          <input
            type="password"
            name="api-key"
            autoComplete="off"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            required
          />
        </label>
        <p class="hint">Kept in this tab's session storage only, and sent as x-api-key to this API.</p>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Open
        </button>
        <Message error={error} />
      </form>
    </main>
  );
}

function filtersOf(query: URLSearchParams): RunFilters {
  return {
    workflow: query.get('workflow') ?? '',
    status: query.get('status') ?? '',
    from: query.get('from') ?? '',
    to: query.get('to') ?? '',
    instanceId: query.get('id') ?? '',
  };
}

function hashOf(f: RunFilters): string {
  const q = new URLSearchParams();
  if (f.workflow) q.set('workflow', f.workflow);
  if (f.status) q.set('status', f.status);
  if (f.from) q.set('from', f.from);
  if (f.to) q.set('to', f.to);
  if (f.instanceId) q.set('id', f.instanceId);
  const s = q.toString();
  return `#/runs${s ? `?${s}` : ''}`;
}

function App() {
  const [key, setKey] = useState(storedKey());
  const [gateMessage, setGateMessage] = useState<string>();
  const [workflows, setWorkflows] = useState<WorkflowView[]>();
  const [error, setError] = useState<string>();
  const hash = useHash();
  const route = parseRoute(hash);
  const client = useMemo(() => (key ? clientFor(key) : undefined), [key]);

  /** A 401 anywhere: forget the key, show nothing but the gate. */
  const onUnauthorized = (e: unknown): boolean => {
    if (!isUnauthorized(e)) return false;
    forgetKey();
    setWorkflows(undefined);
    setGateMessage(describeError(e));
    setKey(undefined);
    return true;
  };

  useEffect(() => {
    if (!client) return;
    client.workflows().then(
      (w) => setWorkflows([...w]),
      (e) => {
        if (!onUnauthorized(e)) setError(describeError(e));
      },
    );
  }, [client]);

  if (!key || !client) {
    return (
      <KeyGate
        message={gateMessage}
        onKey={(k) => {
          setGateMessage(undefined);
          setKey(k);
        }}
      />
    );
  }
  const nav = (page: Route['page'][], href: string, label: string) => (
    <a href={href} aria-current={page.includes(route.page) ? 'page' : undefined}>
      {label}
    </a>
  );
  let content = <Message error={error} info={error ? undefined : 'Loading…'} />;
  if (workflows) {
    if (route.page === 'workflows') content = <WorkflowsPage workflows={workflows} />;
    else if (route.page === 'workflow')
      content = (
        <WorkflowPage
          client={client}
          name={route.arg}
          workflow={workflows.find((w) => w.name === route.arg)}
          onUnauthorized={onUnauthorized}
        />
      );
    else if (route.page === 'run')
      content = (
        <RunPage client={client} instanceId={route.arg} workflows={workflows} onUnauthorized={onUnauthorized} />
      );
    else if (route.page === 'dead-letters')
      content = <DeadLettersPage client={client} workflows={workflows} onUnauthorized={onUnauthorized} />;
    else
      content = (
        <RunsPage
          client={client}
          workflows={workflows}
          filters={filtersOf(route.query)}
          onFilters={(f) => {
            location.hash = hashOf(f);
          }}
          onUnauthorized={onUnauthorized}
        />
      );
  }
  return (
    <>
      <header class="top">
        <span class="brand">Sayiir</span>
        <nav aria-label="Main">
          {nav(['runs', 'run'], '#/runs', 'Runs')}
          {nav(['workflows', 'workflow'], '#/workflows', 'Workflows')}
          {nav(['dead-letters'], '#/dead-letters', 'Dead letters')}
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            forgetKey();
            setKey(undefined);
          }}
        >
          Forget key
        </button>
      </header>
      <main>{content}</main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
