/** OpenAPI 3.0.1 description of the inference port, as TorchServe answers OPTIONS /. */
const VERSION = '0.1.0';

const error = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const predict = (withVersion: boolean) => ({
  post: {
    summary: withVersion ? 'Predict with a specific version of a model' : 'Predict with the default version of a model',
    operationId: withVersion ? 'version_predictions' : 'predictions',
    parameters: [
      { in: 'path', name: 'model_name', required: true, schema: { type: 'string' } },
      ...(withVersion ? [{ in: 'path', name: 'model_version', required: true, schema: { type: 'string' } }] : []),
    ],
    requestBody: { description: 'Input for the model\'s handler: JSON tensors ({"data": [[...]]}), or raw bytes', required: true, content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    responses: { 200: { description: 'Model output', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } }, 400: error, 404: error, 408: error, 500: error, 503: error },
  },
});

const v2Infer = {
  post: {
    summary: 'KServe Open Inference Protocol v2 inference (JSON tensors or the binary tensor extension)',
    parameters: [{ in: 'path', name: 'model_name', required: true, schema: { type: 'string' } }],
    requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } }, 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
    responses: { 200: { description: 'Inference response' }, 400: { description: '{"error": msg}' }, 404: { description: '{"error": msg}' } },
  },
};

export function openApi(): object {
  return {
    openapi: '3.0.1',
    info: { title: 'nnserve inference API', description: 'TorchServe-compatible inference API and KServe v2 protocol', version: VERSION },
    paths: {
      '/': { options: { summary: 'This API description', operationId: 'apiDescription', responses: { 200: { description: 'OpenAPI 3.0.1 JSON' } } } },
      '/api-description': { get: { summary: 'This API description', responses: { 200: { description: 'OpenAPI 3.0.1 JSON' } } } },
      '/ping': { get: { summary: 'Health: Healthy when every model with minWorkers > 0 has a ready worker', operationId: 'ping', responses: { 200: { description: '{"status":"Healthy"}' }, 500: { description: '{"status":"Unhealthy"}' } } } },
      '/predictions/{model_name}': predict(false),
      '/predictions/{model_name}/{model_version}': predict(true),
      '/v2': { get: { summary: 'Server metadata', responses: { 200: { description: '{name, version, extensions}' } } } },
      '/v2/health/live': { get: { summary: 'Liveness', responses: { 200: { description: '{"live":true}' } } } },
      '/v2/health/ready': { get: { summary: 'Readiness', responses: { 200: { description: '{"ready":true}' }, 503: { description: '{"ready":false}' } } } },
      '/v2/models/{model_name}': { get: { summary: 'Model metadata', responses: { 200: { description: 'inputs and outputs' }, 404: { description: '{"error": msg}' } } } },
      '/v2/models/{model_name}/ready': { get: { summary: 'Model readiness', responses: { 200: { description: '{"name","ready"}' } } } },
      '/v2/models/{model_name}/infer': v2Infer,
      '/v2/models/{model_name}/versions/{model_version}/infer': v2Infer,
    },
    components: {
      schemas: {
        Error: { type: 'object', required: ['code', 'type', 'message'], properties: { code: { type: 'integer' }, type: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  };
}
