/**
 * Reverse-mode differentiation of a lowered forward graph. The tape (lower.ts) lists the
 * forward's steps; walking it backwards, each layer with a rule of its own gets dL/d(output)
 * and emits dL/d(inputs) and dL/d(parameters), and every other node is differentiated with the
 * op table (op-grads/). Only values that depend on a trainable parameter are differentiated,
 * as PyTorch's autograd does with requires_grad: the first layer's input gradient is never built.
 */
import { nnsError } from '../errors.js';
import type { GraphBuilder, Tensor } from './graph-builder.js';
import type { NodeProto } from './onnx-proto.js';
import type { Grad, Saved } from './layer.js';
import type { TapeEntry } from './lower.js';
import { OP_GRADS, type OpGradCtx, isNonDifferentiable } from './op-grads/index.js';
import { add } from './op-grads/util.js';
import { type Value, isTensor } from './values.js';

function tensorsOf(v: Value): Tensor[] {
  if (isTensor(v)) return [v];
  if (Array.isArray(v)) return v.flatMap(tensorsOf);
  return [];
}

/** Which values depend on a value that requires a gradient, walking the tape forward. */
function propagateRequiresGrad(g: GraphBuilder, tape: TapeEntry[], requires: Set<string>): void {
  for (const e of tape) {
    if (e.kind === 'module') {
      const ins = e.inputs.flatMap(tensorsOf).some((t) => requires.has(t.name)) || [...e.params.values()].some((t) => requires.has(t.name));
      if (ins) for (const t of tensorsOf(e.output)) if (t.dtype === 'float32') requires.add(t.name);
      continue;
    }
    for (let i = e.start; i < e.end; i++) {
      const node = g.node(i);
      if (isNonDifferentiable(node.opType)) continue;
      if (!node.inputs.some((n) => n !== '' && requires.has(n))) continue;
      for (const o of node.outputs) if (o !== '' && g.value(o).dtype === 'float32') requires.add(o);
    }
  }
}

/**
 * Emits the backward pass. `seeds` holds dL/d(value) for the values the loss reads (the model
 * output); returns dL/d(value) for every value that requires a gradient and got one.
 */
export function emitBackward(g: GraphBuilder, tape: TapeEntry[], seeds: Map<string, Tensor>, requires: Set<string>): Map<string, Tensor> {
  propagateRequiresGrad(g, tape, requires);
  const grads = new Map(seeds);
  const accumulate = (name: string, grad: Tensor | null) => {
    if (!grad || !requires.has(name)) return;
    const prev = grads.get(name);
    grads.set(name, prev ? add(g, prev, grad) : grad);
  };
  const gradOf = (v: Value): Grad => {
    if (isTensor(v)) return grads.get(v.name) ?? null;
    if (Array.isArray(v)) return v.map(gradOf);
    return null;
  };
  const accumulateValue = (v: Value, grad: Grad) => {
    if (isTensor(v)) {
      if (grad !== null && !Array.isArray(grad)) accumulate(v.name, grad);
      return;
    }
    if (Array.isArray(v) && Array.isArray(grad)) v.forEach((x, i) => accumulateValue(x, grad[i] ?? null));
  };

  const producers = new Map<string, NodeProto>();
  for (const e of tape) for (let i = e.start; i < e.end; i++) for (const o of g.node(i).outputs) producers.set(o, g.node(i));
  const reluMasked = new Map<string, string>();
  const savedScope = g.scope;
  for (let t = tape.length - 1; t >= 0; t--) {
    const e = tape[t]!;
    if (e.kind === 'module') {
      const outputGrads = gradOf(e.output);
      const flat = flatGrads(outputGrads);
      if (flat.length === 0) continue;
      const needsInput = (i: number) => tensorsOf(e.inputs[i] ?? null).some((x) => requires.has(x.name));
      const needsParam = (p: string) => { const x = e.params.get(p); return x !== undefined && requires.has(x.name); };
      if (!e.inputs.some((_, i) => needsInput(i)) && ![...e.params.keys()].some(needsParam)) continue;
      const saved: Saved = { inputs: e.inputs, output: e.output, outputGrads, needsInput, needsParam };
      g.scope = `grad/${e.ctx.name}`;
      const dy = isTensor(e.output) ? (outputGrads as Tensor) : flat[0]!;
      const res = e.rule(e.ctx, saved, dy);
      e.inputs.forEach((v, i) => { if (needsInput(i)) accumulateValue(v, res.inputs[i] ?? null); });
      for (const [p, grad] of Object.entries(res.params)) {
        const x = e.params.get(p);
        if (x && needsParam(p)) accumulate(x.name, grad);
      }
      continue;
    }
    for (let i = e.end - 1; i >= e.start; i--) {
      const node = g.node(i);
      const dys = node.outputs.map((o) => (o === '' ? null : grads.get(o) ?? null));
      if (dys.every((d) => d === null)) continue;
      const needs = node.inputs.map((n) => n !== '' && requires.has(n));
      if (!needs.some(Boolean) || isNonDifferentiable(node.opType)) continue;
      if (e.kind === 'none') throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${e.where} has no gradient rule`);
      const rule = OP_GRADS.get(node.opType);
      if (!rule) throw nnsError('TRAIN_NOT_DIFFERENTIABLE', `${node.name.split('/')[0]}: the ONNX op ${node.opType} (node "${node.name}") has no gradient rule`);
      g.scope = `grad/${node.name}`;
      const ctx: OpGradCtx = {
        g, node,
        inputs: node.inputs.map((n) => (n === '' ? null : g.value(n))),
        outputs: node.outputs.map((n) => g.value(n)),
        needs: (k) => needs[k] ?? false,
        producer: (name) => producers.get(name),
        reluMasked,
      };
      const dxs = rule(ctx, dys);
      node.inputs.forEach((n, k) => { if (n !== '' && needs[k]) accumulate(n, dxs[k] ?? null); });
    }
  }
  g.scope = savedScope;
  return grads;
}

function flatGrads(g: Grad): Tensor[] {
  if (g === null) return [];
  if (Array.isArray(g)) return g.flatMap(flatGrads);
  return [g];
}
