/**
 * The JSON Schema of architecture JSON, generated from the layer table so that it cannot drift
 * from what the compiler accepts. src/compiler/architecture.schema.json is this function's output
 * (a test compares them); regenerate with
 *   node -e "import('./dist/src/compiler/schema.js').then(m => console.log(JSON.stringify(m.architectureSchema(), null, 2)))" > src/compiler/architecture.schema.json
 */
import { functionTargets } from './functions/index.js';
import { LAYERS } from './layers/index.js';
import { FACTORY_KWARGS, type JsonSchema } from './signature.js';

const IDENT = '^[A-Za-z_][A-Za-z0-9_]*$';
const MODULE_NAME = '^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$';

function layerSchemas(): JsonSchema[] {
  return [...LAYERS.values()].map((layer) => {
    const properties: Record<string, JsonSchema> = {
      type: { const: layer.type },
      args: { type: 'array', description: `positional arguments: ${Object.keys(layer.args).join(', ')}` },
    };
    for (const [name, a] of Object.entries({ ...layer.args, ...FACTORY_KWARGS })) properties[name] = (a as { schema: JsonSchema }).schema;
    return { if: { properties: { type: { const: layer.type } } }, then: { properties, additionalProperties: false } };
  });
}

export function architectureSchema(): JsonSchema {
  const types = [...LAYERS.keys(), 'Sequential'].sort();
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'nnserve.architecture/1',
    title: 'nnserve architecture',
    description: 'A PyTorch model architecture in torch.nn terms: a Sequential list, or torch.fx graph nodes over named modules. See docs/architecture.md.',
    type: 'object',
    required: ['inputs'],
    additionalProperties: false,
    properties: {
      $schema: { type: 'string' },
      format: { const: 'nnserve.architecture/1' },
      name: { type: 'string', description: 'the model class name, used in messages' },
      inputs: { type: 'array', minItems: 1, items: { $ref: '#/$defs/input' } },
      sequential: { $ref: '#/$defs/moduleList' },
      modules: {
        type: 'object',
        description: 'modules by qualified name, equal to their state_dict prefix ("layer1.0.conv1")',
        propertyNames: { pattern: MODULE_NAME },
        additionalProperties: { $ref: '#/$defs/module' },
      },
      graph: { type: 'array', minItems: 2, items: { $ref: '#/$defs/node' } },
    },
    oneOf: [
      { required: ['sequential'], not: { anyOf: [{ required: ['graph'] }, { required: ['modules'] }] } },
      { required: ['graph'], not: { required: ['sequential'] } },
    ],
    $defs: {
      input: {
        type: 'object',
        required: ['name', 'shape'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.]*$' },
          dtype: { enum: ['float32', 'int64'], default: 'float32' },
          shape: { type: 'array', items: { oneOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: IDENT }] }, description: 'a string is a dynamic dim, e.g. "batch"' },
        },
      },
      moduleList: {
        oneOf: [
          { type: 'array', items: { $ref: '#/$defs/module' } },
          { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9_]+$' }, additionalProperties: { $ref: '#/$defs/module' } },
        ],
      },
      module: {
        type: 'object',
        required: ['type'],
        properties: {
          type: { enum: types, description: 'a torch.nn class name' },
          args: { type: 'array', description: 'positional constructor arguments' },
          modules: { $ref: '#/$defs/moduleList' },
        },
        allOf: [
          { if: { properties: { type: { const: 'Sequential' } } }, then: { required: ['modules'], properties: { type: true, modules: true }, additionalProperties: false } },
          ...layerSchemas(),
        ],
      },
      value: {
        description: 'a node name, a number, a bool, null, a list, a slice or "..." (Ellipsis)',
        oneOf: [
          { type: ['string', 'number', 'boolean', 'null'] },
          { type: 'array', items: { $ref: '#/$defs/value' } },
          { type: 'object', required: ['slice'], additionalProperties: false, properties: { slice: { type: 'array', maxItems: 3, items: { type: ['integer', 'null'] } } } },
        ],
      },
      node: {
        type: 'object',
        required: ['op'],
        additionalProperties: false,
        properties: {
          op: { enum: ['placeholder', 'call_module', 'call_function', 'call_method', 'output'] },
          name: { type: 'string' },
          target: { type: 'string', description: 'call_module: a module name; call_function: a qualified name; call_method: a Tensor method' },
          args: { type: 'array', items: { $ref: '#/$defs/value' } },
          kwargs: { type: 'object', additionalProperties: { $ref: '#/$defs/value' } },
          names: { type: 'array', items: { type: 'string' }, description: 'output only: graph output names' },
        },
        allOf: [
          {
            if: { properties: { op: { const: 'call_function' } } },
            then: { required: ['target'], properties: { target: { enum: functionTargets().filter((t) => !t.startsWith('Tensor.')) } } },
          },
          {
            if: { properties: { op: { const: 'call_method' } } },
            then: { required: ['target'], properties: { target: { enum: functionTargets().filter((t) => t.startsWith('Tensor.')).map((t) => t.slice(7)) } } },
          },
        ],
      },
    },
  };
}
