/**
 * The reference for the tiny-model benchmark: a bare Fastify server with one JSON echo route,
 * `POST /echo` answering the parsed body. Run as its own process by bench/run.ts:
 *
 *   node dist/bench/echo-server.js PORT
 *
 * Prints `LISTENING <port>` once it accepts connections; stops on SIGINT/SIGTERM.
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? process.env.ECHO_PORT ?? 8090);
const app = Fastify({ logger: false });
app.post('/echo', async (req) => req.body);

await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`LISTENING ${port}\n`);

const stop = () => {
  app.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
