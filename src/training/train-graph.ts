/**
 * One training step on ONNX Runtime: the compiler's training graph (docs/training-graphs.md)
 * fed with the current weights, a batch, its target and freshly drawn dropout masks; returns
 * the loss, the model output and the gradients, and writes updated buffers (BatchNorm running
 * statistics) back into the state_dict.
 *
 * The weights are fed as TensorData over the state_dict's arrays as they are at each step (the
 * optimizer updates them in place, and may have moved them: Optimizer.adoptParameters), so
 * nothing is copied between steps. The batch dim is symbolic in the graph, so the partial last
 * batch runs on the same session.
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

/**
 * Session options of training and evaluation. A training run owns its cores (`threads` defaults
 * to all of them), so intra-op threads spin between the ops of a run instead of sleeping: the
 * MLP's and the LSTM's forward + backward took ~20% less at 2 threads (ONNX Runtime 1.30, 2-core
 * VM; with 1 thread there is nothing to spin). They stop spinning when the run returns, leaving
 * the core to the optimizer step and to other processes; on cores other busy work shares, a
 * spinning pool still slows down badly, so give such a run fewer threads. 'extended' skips the
 * NCHWc layout pass, whose reorders around the training graphs' Conv/MaxPool cost 3-6% of a CNN
 * step; graphs without convolutions come out the same.
 */
export const TRAINING_SESSION = { spinning: true, graphOptimizationLevel: 'extended' } as const;

export class TrainGraph {
  private constructor(
    readonly graph: TrainingGraph,
    private readonly session: Session,
    /** The one data input (the architecture's). */
    readonly input: IoSpec,
    readonly target: IoSpec,
    /** The state_dict keys fed as inputs: parameters and constant buffers. */
    private readonly weights: readonly string[],
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
    const weights = [...graph.params, ...graph.constants].map(({ name }) => name);
    for (const name of weights) {
      if (!state.has(name)) throw nnsError('INTERNAL', `the training graph reads "${name}", which the state_dict lacks`);
    }
    const session = await createSession(graph.onnx, { engine: 'native', intraOpThreads: o.threads, ...TRAINING_SESSION });
    const outputName = o.output ?? graph.outputs.predictions[0]!;
    const target = graph.inputs.find((i) => i.name === 'target')!;
    // Masks get their own stream so that they do not depend on how the data was shuffled.
    return new TrainGraph(graph, session, dataInputs[0]!, target, weights, state, outputName, new Rng(o.seed * 2 + 1));
  }

  /**
   * One forward + backward pass; buffers (BatchNorm statistics) are updated in the state_dict.
   * `gradsInto`: arrays (by parameter name) that ONNX Runtime writes those gradients into, and
   * that come back in `grads`, instead of new ones each step.
   */
  async step(x: TensorData, y: TensorData, gradsInto?: ReadonlyMap<string, Float32Array>): Promise<StepResult> {
    const feeds: Record<string, TensorData> = { [this.input.name]: x, target: y };
    for (const name of this.weights) {
      const t = this.state.get(name)!;
      feeds[name] = { dtype: t.dtype, dims: t.shape, data: t.data };
    }
    for (const m of this.graph.masks) feeds[m.name] = this.drawMask(m, x);
    let into: Record<string, TensorData> | undefined;
    if (gradsInto) {
      into = {};
      for (const [key, name] of Object.entries(this.graph.outputs.grads)) {
        const data = gradsInto.get(key);
        if (data) into[name] = { dtype: 'float32', dims: this.state.get(key)!.shape, data };
      }
    }
    const out = await this.session.run(feeds, into);
    for (const [key, name] of Object.entries(this.graph.outputs.updates)) {
      const buf = this.state.get(key)!;
      (buf.data as Float32Array).set(out[name]!.data as Float32Array);
    }
    const grads = new Map<string, Float32Array>();
    for (const [key, name] of Object.entries(this.graph.outputs.grads)) grads.set(key, (into?.[name] ?? out[name]!).data as Float32Array);
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
