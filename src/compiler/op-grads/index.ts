/**
 * The gradient table: one rule per ONNX op the forward lowerings emit. A layer or function
 * whose backward is THROUGH_OPS is differentiated node by node with these rules, in reverse
 * order (src/compiler/backward.ts). Each rule follows PyTorch's derivative for the torch op that
 * the ONNX op stands for (tools/autograd/derivatives.yaml), so the gradients match PyTorch's.
 */
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import type { NodeProto } from '../onnx-proto.js';
import * as conv from './conv.js';
import * as elementwise from './elementwise.js';
import * as matmul from './matmul.js';
import * as norm from './norm.js';
import * as pool from './pool.js';
import * as shape from './shape.js';

export interface OpGradCtx {
  readonly g: GraphBuilder;
  readonly node: NodeProto;
  /** The node's inputs (null for an omitted optional input) and outputs. */
  readonly inputs: (Tensor | null)[];
  readonly outputs: Tensor[];
  /** Whether input i needs a gradient; a rule skips the work for the others. */
  needs(i: number): boolean;
  /** The forward node that computed a value (undefined for graph inputs and constants). */
  producer(name: string): NodeProto | undefined;
  /**
   * Gradients already multiplied by ReLU's mask: grad name -> the ReLU output it was masked
   * for. MaxPool after ReLU masks its 4x smaller output instead; the ReLU rule then passes it on.
   */
  readonly reluMasked: Map<string, string>;
}

/** dL/d(outputs) (null where none flows) -> dL/d(inputs) (null where none is computed). */
export type OpGradRule = (c: OpGradCtx, dys: (Tensor | null)[]) => (Tensor | null)[];

/** Ops whose outputs carry no gradient (shapes, comparisons, index math). */
const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Equal', 'Not', 'And', 'Or', 'Sign',
  'ConstantOfShape', 'OneHot', 'ArgMax', 'ArgMin', 'Range', 'Floor', 'Ceil', 'Round',
]);

export const OP_GRADS: ReadonlyMap<string, OpGradRule> = new Map(
  Object.entries({ ...elementwise.rules, ...shape.rules, ...matmul.rules, ...conv.rules, ...pool.rules, ...norm.rules }),
);

export function isNonDifferentiable(opType: string): boolean {
  return NON_DIFFERENTIABLE.has(opType);
}
