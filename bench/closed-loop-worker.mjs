// A worker thread's entry: registers tsx's loader, then runs the TypeScript clients (closed-loop-clients.ts).
import { register } from 'tsx/esm/api';

register();
await import('./closed-loop-clients.ts');
