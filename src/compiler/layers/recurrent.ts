/**
 * nn.RNN, nn.LSTM, nn.GRU lowered to ONNX's RNN/LSTM/GRU ops, one per layer. The state_dict
 * weights stay initializers under their own keys; the gate reordering ONNX needs is done by
 * Gather nodes on them, which ONNX Runtime folds when the session is created (and which a
 * backward graph can differentiate through).
 *
 * Gate orders: PyTorch LSTM (i, f, g, o) vs ONNX (i, o, f, c); PyTorch GRU (r, z, n) vs ONNX
 * (z, r, h). PyTorch's GRU applies the reset gate after the hidden matmul: linear_before_reset=1.
 *
 * In a training graph the forward is a Scan over time instead and the backward a reverse Scan
 * (recurrent-train.ts).
 */
import { dimEq, showShape } from '../dims.js';
import type { Tensor } from '../graph-builder.js';
import { type ModuleCtx, type ParamSpec, defineLayer, weight } from '../layer.js';
import { type Mode, type RecurrentArgs, recurrentBackward, recurrentTrainForward } from './recurrent-train.js';
import { bool, float, oneOf, positiveInt, int } from '../signature.js';
import { type Value, isTensor } from '../values.js';

const GATES: Record<Mode, number> = { RNN: 1, LSTM: 4, GRU: 3 };
/** ONNX gate block i is PyTorch gate block ORDER[i]. */
const ORDER: Record<Mode, number[]> = { RNN: [0], LSTM: [0, 3, 1, 2], GRU: [1, 0, 2] };

function suffixes(a: RecurrentArgs): string[] {
  return a.bidirectional ? ['', '_reverse'] : [''];
}

function recurrentParams(mode: Mode, a: RecurrentArgs): ParamSpec[] {
  const gh = GATES[mode] * a.hidden_size;
  const init = { uniform: 1 / Math.sqrt(a.hidden_size) };
  const nd = a.bidirectional ? 2 : 1;
  const out: ParamSpec[] = [];
  for (let l = 0; l < a.num_layers; l++) {
    const inSize = l === 0 ? a.input_size : a.hidden_size * nd;
    for (const s of suffixes(a)) {
      out.push(weight(`weight_ih_l${l}${s}`, [gh, inSize], init), weight(`weight_hh_l${l}${s}`, [gh, a.hidden_size], init));
      if (a.bias) out.push(weight(`bias_ih_l${l}${s}`, [gh], init), weight(`bias_hh_l${l}${s}`, [gh], init));
    }
  }
  return out;
}

/** Stacks one layer's per-direction weights in ONNX's gate order: [num_directions, rows, cols]. */
function stacked(m: ModuleCtx<RecurrentArgs>, mode: Mode, names: string[]): Tensor {
  const { g } = m;
  const h = m.args.hidden_size;
  const rows = ORDER[mode].flatMap((b) => Array.from({ length: h }, (_, j) => b * h + j));
  const perDir = names.map((n) => {
    const p = m.param(n);
    const reordered = mode === 'RNN' ? p : g.op('Gather', [p, g.constInt64(rows)], { axis: 0 }, { shape: p.shape });
    return g.unsqueeze(reordered, [0]);
  });
  return g.concat(perDir, 0);
}

function checkState(m: ModuleCtx<RecurrentArgs>, state: Tensor, what: string, batch: Tensor['shape'][number]): void {
  const a = m.args;
  const expected = [a.num_layers * (a.bidirectional ? 2 : 1), batch, a.hidden_size];
  if (state.shape.length !== 3 || !state.shape.every((d, i) => dimEq(d, expected[i]!))) {
    m.fail('ARCH_SHAPE_MISMATCH', `expects ${what} of shape ${showShape(expected)}, got ${showShape(state.shape)}`);
  }
}

function forward(mode: Mode, m: ModuleCtx<RecurrentArgs>, input: Value | undefined, hx: Value | undefined): Value {
  const { g, args: a } = m;
  const x = m.tensor(input, 'input', [3]);
  const seqFirst = a.batch_first ? g.transpose(x, [1, 0, 2]) : x;
  const [seqLen, batch, features] = seqFirst.shape as [Tensor['shape'][number], Tensor['shape'][number], Tensor['shape'][number]];
  if (features !== a.input_size) {
    m.fail('ARCH_SHAPE_MISMATCH', `input_size=${a.input_size} but its input has ${features} features (shape ${showShape(x.shape)}, batch_first=${a.batch_first})`);
  }
  let h0: Tensor | null = null;
  let c0: Tensor | null = null;
  if (hx !== undefined && hx !== null) {
    if (mode === 'LSTM') {
      if (!Array.isArray(hx) || hx.length !== 2 || !isTensor(hx[0]) || !isTensor(hx[1])) m.fail('ARCH_SHAPE_MISMATCH', 'hx must be a tuple (h_0, c_0)');
      [h0, c0] = hx as [Tensor, Tensor];
      checkState(m, c0, 'c_0', batch);
    } else {
      h0 = m.tensor(hx, 'hx');
    }
    checkState(m, h0, 'h_0', batch);
  }
  if (g.differentiable) return recurrentTrainForward(mode, m, seqFirst, h0, c0);
  const nd = a.bidirectional ? 2 : 1;
  const h = a.hidden_size;
  const direction = a.bidirectional ? 'bidirectional' : 'forward';
  let layerInput = seqFirst;
  const hn: Tensor[] = [];
  const cn: Tensor[] = [];
  for (let l = 0; l < a.num_layers; l++) {
    const sfx = suffixes(a);
    const W = stacked(m, mode, sfx.map((s) => `weight_ih_l${l}${s}`));
    const R = stacked(m, mode, sfx.map((s) => `weight_hh_l${l}${s}`));
    let B: Tensor | null = null;
    if (a.bias) {
      const wb = stacked(m, mode, sfx.map((s) => `bias_ih_l${l}${s}`));
      const rb = stacked(m, mode, sfx.map((s) => `bias_hh_l${l}${s}`));
      B = g.concat([wb, rb], 1);
    }
    const layerH0 = h0 && g.slice(h0, 0, l * nd, (l + 1) * nd);
    const layerC0 = c0 && g.slice(c0, 0, l * nd, (l + 1) * nd);
    const attrs: Record<string, number | string | string[]> = { hidden_size: h, direction };
    if (mode === 'RNN') attrs.activations = Array(nd).fill(a.nonlinearity === 'relu' ? 'Relu' : 'Tanh') as string[];
    if (mode === 'GRU') attrs.linear_before_reset = 1;
    const outs = [{ shape: [seqLen, nd, batch, h] }, { shape: [nd, batch, h] }];
    const inputs: (Tensor | null)[] = [layerInput, W, R, B, null, layerH0];
    if (mode === 'LSTM') {
      outs.push({ shape: [nd, batch, h] });
      inputs.push(layerC0);
    }
    const [Y, Yh, Yc] = g.opN(mode, inputs, attrs, outs);
    hn.push(Yh!);
    if (Yc) cn.push(Yc);
    layerInput = nd === 1 ? g.squeeze(Y!, [1]) : g.reshape(g.transpose(Y!, [0, 2, 1, 3]), [seqLen, batch, nd * h]);
  }
  const output = a.batch_first ? g.transpose(layerInput, [1, 0, 2]) : layerInput;
  const hN = g.concat(hn, 0);
  return mode === 'LSTM' ? [output, [hN, g.concat(cn, 0)]] : [output, hN];
}

function recurrent(mode: Mode) {
  const args = {
    input_size: positiveInt(), hidden_size: positiveInt(), num_layers: positiveInt(1), bias: bool(true),
    batch_first: bool(false), dropout: float(0), bidirectional: bool(false),
    ...(mode === 'LSTM' ? { proj_size: int(0) } : {}),
    ...(mode === 'RNN' ? { nonlinearity: oneOf(['tanh', 'relu'] as const, 'tanh') } : {}),
  };
  return defineLayer<RecurrentArgs>({
    type: mode,
    args: args as never,
    inputs: ['input', 'hx?'],
    validate(a, fail) {
      if (a.dropout < 0 || a.dropout > 1) fail(`dropout should be a number in range [0, 1], got ${a.dropout}`);
      if (a.proj_size) fail('proj_size is not supported');
    },
    params: (a) => recurrentParams(mode, a),
    forward: (m, [input, hx]) => forward(mode, m, input, hx),
    backward: (m, saved) => recurrentBackward(mode, m, saved),
  });
}

export const RNN = recurrent('RNN');
export const LSTM = recurrent('LSTM');
export const GRU = recurrent('GRU');
