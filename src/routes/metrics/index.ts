/** The metrics port: GET /metrics in Prometheus text format, with TorchServe's ?name[]= filter. */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics.js';

type Query = Record<string, string | string[] | undefined>;

export async function metricsRoutes(app: FastifyInstance, { metrics }: { metrics: Metrics }): Promise<void> {
  app.get<{ Querystring: Query }>('/metrics', async (req, reply) => {
    // TorchServe: /metrics?name[]=a&name[]=b; a bare ?name=a works too.
    const q = req.query['name[]'] ?? req.query.name;
    const names = q === undefined ? undefined : Array.isArray(q) ? q : [q];
    return reply.type(metrics.contentType).send(await metrics.text(names));
  });
}
