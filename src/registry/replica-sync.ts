/**
 * Replicas that agree: several nnserve processes sharing one model store (a Kubernetes volume)
 * and one Redis. The registry state lives in Redis under a revision number; every management
 * change on any replica writes the new state and publishes its revision; the others reconcile
 * to it (loading archives from the shared store). A replica that starts later, or whose Redis
 * connection comes back, reads the state and catches up.
 *
 * Changes are last-writer-wins on the whole state: two management calls on two replicas in the
 * same few milliseconds can overwrite each other. Every replica still converges to one state.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { nnsError } from '../errors.js';
import type { Registry, RegistryState } from './registry.js';
import { validateState } from './snapshot.js';

const STATE_KEY = 'nnserve:registry:state';
const REV_KEY = 'nnserve:registry:rev';
const CHANNEL = 'nnserve:registry:changes';

interface Log {
  info: (o: object, m: string) => void;
  error: (o: object, m: string) => void;
}

export class ReplicaSync {
  readonly replicaId = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private readonly client: Redis;
  private readonly sub: Redis;
  private appliedRev = 0;
  private applying: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(url: string, private readonly registry: Registry, private readonly log?: Log, private readonly onApplied?: (s: RegistryState) => void) {
    const opts = { lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(2000, 100 * n) };
    this.client = new Redis(url, opts);
    this.sub = new Redis(url, opts);
    this.client.on('error', (e) => this.log?.error({ err: e.message }, 'redis error'));
    this.sub.on('error', () => undefined);
  }

  /** Connect; returns the shared state if Redis already holds one. */
  async connect(): Promise<RegistryState | undefined> {
    try {
      await Promise.all([this.client.connect(), this.sub.connect()]);
    } catch (e) {
      throw nnsError('CONFIG_INVALID', `cannot connect to Redis for replica sync: ${(e as Error).message}`);
    }
    await this.sub.subscribe(CHANNEL);
    this.sub.on('message', (_ch, msg) => this.onMessage(msg));
    // After a reconnect, catch up on whatever changed while we were away.
    this.sub.on('ready', () => void this.catchUp());
    const remote = await this.read();
    if (remote) this.appliedRev = remote.rev;
    return remote?.state;
  }

  /** Write the local state as the newest revision and tell the other replicas. */
  async publish(state: RegistryState): Promise<void> {
    const rev = await this.client.incr(REV_KEY);
    await this.client.set(STATE_KEY, JSON.stringify({ rev, from: this.replicaId, state }));
    this.appliedRev = rev;
    await this.client.publish(CHANNEL, JSON.stringify({ rev, from: this.replicaId }));
  }

  private onMessage(msg: string): void {
    let m: { rev?: number; from?: string };
    try {
      m = JSON.parse(msg) as typeof m;
    } catch {
      return;
    }
    if (m.from === this.replicaId || (m.rev ?? 0) <= this.appliedRev) return;
    void this.catchUp();
  }

  private catchUp(): Promise<void> {
    // One reconcile at a time; each reads the newest state, so bursts collapse.
    this.applying = this.applying.then(async () => {
      if (this.closed) return;
      const remote = await this.read().catch((e: Error) => {
        this.log?.error({ err: e.message }, 'cannot read replica state');
        return undefined;
      });
      if (!remote || remote.rev <= this.appliedRev) return;
      this.appliedRev = remote.rev;
      const failures = await this.registry.reconcile(remote.state);
      this.log?.info({ rev: remote.rev, from: remote.from, failed: failures.map((f) => f.archive) }, 'applied replica state');
      this.onApplied?.(remote.state);
    });
    return this.applying;
  }

  private async read(): Promise<{ rev: number; from: string; state: RegistryState } | undefined> {
    const raw = await this.client.get(STATE_KEY);
    if (!raw) return undefined;
    const parsed = JSON.parse(raw) as { rev: number; from: string; state: unknown };
    return { rev: parsed.rev, from: parsed.from, state: validateState(parsed.state, `Redis key ${STATE_KEY}`) };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.applying;
    this.client.disconnect();
    this.sub.disconnect();
  }
}
