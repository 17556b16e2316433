/**
 * What a starting server loads, in order of authority: the shared state in Redis (replicas),
 * else the last snapshot, else `load_models`. Afterwards every change is written to the
 * snapshot and, with Redis, published to the other replicas.
 */
import type { Config } from '../config.js';
import type { LoadFailure, Registry, RegistryState } from './registry.js';
import { ReplicaSync } from './replica-sync.js';
import { readSnapshot, writeSnapshot } from './snapshot.js';

interface Log {
  info: (o: object, m: string) => void;
  error: (o: object, m: string) => void;
}

export async function startRegistry(registry: Registry, config: Config, log?: Log): Promise<{ failures: LoadFailure[]; sync?: ReplicaSync }> {
  let sync: ReplicaSync | undefined;
  const snapshot = (s: RegistryState) => {
    if (!config.enable_snapshots) return;
    try {
      writeSnapshot(config.snapshot_file, s);
    } catch (e) {
      log?.error({ err: (e as Error).message, file: config.snapshot_file }, 'cannot write snapshot');
    }
  };
  const failures = await registry.startingUp('start-up', async () => {
    let state: RegistryState | undefined;
    let from = 'load_models';
    if (config.redis_url) {
      sync = new ReplicaSync(config.redis_url, registry, log, snapshot);
      state = await sync.connect();
      if (state) from = 'redis';
    }
    if (!state && config.enable_snapshots) {
      state = readSnapshot(config.snapshot_file);
      if (state) from = `snapshot ${config.snapshot_file}`;
    }
    log?.info({ from }, 'restoring models');
    const failed = state ? await registry.reconcile(state) : await registry.loadStartupModels();
    if (sync && from !== 'redis') await sync.publish(registry.state());
    return failed;
  });
  snapshot(registry.state());
  registry.onChange(snapshot);
  if (sync) {
    const s = sync;
    registry.onChange((state) => s.publish(state));
  }
  return { failures, sync };
}
