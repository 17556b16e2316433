/** Listen on the three addresses and close gracefully: the only place that listens or exits. */
import { buildApp, type App } from './app.js';
import { parseAddress, type Config } from './config.js';

export async function startServer(config: Config): Promise<App> {
  // Listen first and load the models after: liveness answers at once, readiness (and /ping)
  // only once every start-up model has a ready worker.
  const app = await buildApp(config, { logger: { level: config.log_level }, loadModels: false });
  const listen = async (which: 'inference' | 'management' | 'metricsApp', address: string) => {
    const { host, port } = parseAddress(address);
    await app[which].listen({ host, port });
  };
  await listen('inference', config.inference_address);
  await listen('management', config.management_address);
  await listen('metricsApp', config.metrics_address);
  const log = app.inference.log;
  log.info({ inference: config.inference_address, management: config.management_address, metrics: config.metrics_address }, 'nnserve listening');
  app.loadModels().then(
    (failed) => log.info({ models: app.registry.names(), failed: failed.map((f) => f.archive) }, 'nnserve started'),
    (e: Error) => {
      // A snapshot or replica state that cannot be read: stop rather than serve a wrong set.
      log.fatal({ err: e.message }, `cannot restore models: ${e.message}`);
      void app.close().finally(() => process.exit(1));
    },
  );

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return app;
}
