/**
 * Evaluation in eval mode (model.eval(): Dropout is the identity, BatchNorm uses its running
 * statistics) with the weights as they are now: the compiler's forward graph with parameters
 * as inputs, fed from the state_dict's arrays at each run, over a dataset; the loss and
 * accuracy come from loss-metrics.ts.
 */
import { compileEvalWithParamInputs, type LossSpec } from '../compiler/index.js';
import { nnsError } from '../errors.js';
import { createSession, type IoSpec, type Session, type TensorData } from '../runtime/ort.js';
import type { StateDict } from '../weights/index.js';
import type { IndexedDataset } from './datasets/index.js';
import { LossAccumulator } from './loss-metrics.js';
import { TRAINING_SESSION } from './train-graph.js';
import type { EvalMetrics } from './train-result.js';

export class EvalGraph {
  private constructor(
    private readonly session: Session,
    /** Parameter (not buffer) keys the model reads, in state_dict order. */
    readonly params: readonly string[],
    readonly input: IoSpec,
    /** The state_dict keys fed as inputs: parameters and buffers. */
    private readonly weights: readonly string[],
    private readonly state: StateDict,
    private readonly outputName: string,
  ) {}

  static async create(arch: unknown, state: StateDict, o: { output?: string; threads: number }): Promise<EvalGraph> {
    const g = compileEvalWithParamInputs(arch);
    const weights = [...g.params, ...g.constants];
    for (const name of weights) {
      if (!state.has(name)) throw nnsError('INTERNAL', `the eval graph reads "${name}", which the state_dict lacks`);
    }
    const session = await createSession(g.onnx, { engine: 'native', intraOpThreads: o.threads, ...TRAINING_SESSION });
    return new EvalGraph(session, g.params, g.inputs[0]!, weights, state, o.output ?? g.outputs[0]!.name);
  }

  /** The model's output for a batch, with the weights as they are now. */
  async predict(x: TensorData): Promise<TensorData> {
    const feeds: Record<string, TensorData> = { [this.input.name]: x };
    for (const name of this.weights) {
      const t = this.state.get(name)!;
      feeds[name] = { dtype: t.dtype, dims: t.shape, data: t.data };
    }
    const out = await this.session.run(feeds);
    return out[this.outputName]!;
  }

  /** Loss and accuracy over a whole dataset, in order. */
  async evaluate(data: IndexedDataset, loss: LossSpec, batchSize: number, shouldStop: () => boolean = () => false): Promise<EvalMetrics> {
    const acc = new LossAccumulator(loss);
    for await (const batch of data.batches({ batchSize })) {
      acc.add(await this.predict(batch.x), batch.y);
      if (shouldStop()) break;
    }
    return { ...acc.result(), samples: data.length };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
