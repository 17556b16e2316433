/**
 * One training step on ONNX Runtime: the compiler's training graph (docs/training-graphs.md)
 * fed with the current weights, a batch, its target and freshly drawn dropout masks; returns
 * the loss, the model output and the gradients, and writes updated buffers (BatchNorm running
 * statistics) back into the state_dict.
 *
 * The weights are fed as TensorData over the same Float32Arrays the optimizer updates in place,
 * so nothing is copied between steps. The batch dim is symbolic in the graph, so the partial
 * last batch runs on the same session.
 */
import { compileTraining, type LossSpec, type TrainingGraph } from '../compiler/index.js';
import { nnsError } from '../errors.js';
import { createSession, type IoSpec, type Session, type TensorData } from '../runtime/ort.js';
import type { StateDict } from '../weights/index.js';
import { Rng, type SampleSpec } from './datasets/index.js';

export interface StepResult {
  loss: number;
  /** The model output the loss read. */
  output: TensorData;
  grads: Map<string, Float32Array>;
}

const tensorOf = (t: { dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array }): TensorData => ({ dtype: t.dtype, dims: t.shape, data: t.data });

/** Per-sample dims a graph input takes (dim 0 is the batch), with symbols left as they are. */
export function perSample(spec: IoSpec): (number | string)[] {
  return spec.shape.slice(1);
}

/** Checks a dataset's per-sample x or y against a graph input; the message names both shapes. */
export function checkSampleSpec(what: string, data: SampleSpec, input: IoSpec, model: string, hint = ''): void {
  const want = perSample(input);
  const fits = data.dtype === input.dtype && data.dims.length === want.length && want.every((d, i) => typeof d === 'string' || d === data.dims[i]);
  if (!fits) {
    throw nnsError(
      'TRAIN_DATASET_INVALID',
      `the dataset's ${what} samples are ${data.dtype} [${data.dims.join(', ')}] but model "${model}" takes ${input.name === 'target' ? 'a target' : `input "${input.name}"`} of ${input.dtype} [${input.shape.join(', ')}], i.e. ${input.dtype} [${want.join(', ')}] per sample${hint}`,
    );
  }
}

export class TrainGraph {
  private constructor(
    readonly graph: TrainingGraph,
    private readonly session: Session,
    /** The one data input (the architecture's). */
    readonly input: IoSpec,
    readonly target: IoSpec,
    private readonly weightFeeds: Record<string, TensorData>,
    private readonly state: StateDict,
    private readonly outputName: string,
    private readonly maskRng: Rng,
  ) {}

  static async create(
    arch: unknown,
    state: StateDict,
    o: { loss: LossSpec; frozen: readonly string[]; output?: string; threads: number; seed: number; model: string },
  ): Promise<TrainGraph> {
    const graph = compileTraining(arch, { loss: o.loss, frozen: [...o.frozen], output: o.output, train: true });
    const dataInputs = graph.inputs.filter((i) => i.name !== 'target' && !graph.masks.some((m) => m.name === i.name));
    if (dataInputs.length !== 1) {
      throw nnsError('TRAIN_OPTIONS_INVALID', `model "${o.model}" has ${dataInputs.length} inputs (${dataInputs.map((i) => i.name).join(', ')}); the training loop feeds one input from the dataset's x`);
    }
    const weightFeeds: Record<string, TensorData> = {};
    for (const { name } of [...graph.params, ...graph.constants]) {
      const t = state.get(name);
      if (!t) throw nnsError('INTERNAL', `the training graph reads "${name}", which the state_dict lacks`);
      weightFeeds[name] = tensorOf(t);
    }
    const session = await createSession(graph.onnx, { engine: 'native', intraOpThreads: o.threads });
    const outputName = o.output ?? graph.outputs.predictions[0]!;
    const target = graph.inputs.find((i) => i.name === 'target')!;
    // Masks get their own stream so that they do not depend on how the data was shuffled.
    return new TrainGraph(graph, session, dataInputs[0]!, target, weightFeeds, state, outputName, new Rng(o.seed * 2 + 1));
  }

  /** One forward + backward pass; buffers (BatchNorm statistics) are updated in the state_dict. */
  async step(x: TensorData, y: TensorData): Promise<StepResult> {
    const feeds: Record<string, TensorData> = { ...this.weightFeeds, [this.input.name]: x, target: y };
    for (const m of this.graph.masks) feeds[m.name] = this.drawMask(m, x);
    const out = await this.session.run(feeds);
    for (const [key, name] of Object.entries(this.graph.outputs.updates)) {
      const buf = this.state.get(key)!;
      (buf.data as Float32Array).set(out[name]!.data as Float32Array);
    }
    const grads = new Map<string, Float32Array>();
    for (const [key, name] of Object.entries(this.graph.outputs.grads)) grads.set(key, out[name]!.data as Float32Array);
    return { loss: Number(out[this.graph.outputs.loss]!.data[0]), output: out[this.outputName]!, grads };
  }

  /**
   * A dropout mask: 0 with probability p, else 1/(1-p) (torch's x * bernoulli(1-p) / (1-p)).
   * Symbolic dims take their size from the data input ("batch" = the batch size).
   */
  private drawMask(m: TrainingGraph['masks'][number], x: TensorData): TensorData {
    const dims = m.shape.map((d) => {
      if (typeof d === 'number') return d;
      const at = this.input.shape.indexOf(d);
      if (at < 0) throw nnsError('INTERNAL', `dropout mask "${m.name}" has the dim "${d}", which input "${this.input.name}" does not have`);
      return x.dims[at]!;
    });
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const keep = Math.fround(1 / (1 - m.p));
    const threshold = m.p * 2 ** 32;
    if (m.p < 1) for (let i = 0; i < n; i++) data[i] = this.maskRng.nextUint32() < threshold ? 0 : keep;
    return { dtype: 'float32', dims, data };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
