/** The metrics port: GET /metrics in Prometheus text format, with TorchServe's ?name[]= filter. */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics.js';

export async function metricsRoutes(app: FastifyInstance, { metrics }: { metrics: Metrics }): Promise<void> {
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/metrics', async (req, reply) => {
    const q = req.query['name[]'] ?? req.query.name;
    const names = q === undefined ? undefined : Array.isArray(q) ? q : [q];
    return reply.type(metrics.registry.contentType).send(await metrics.text(names));
  });
}
