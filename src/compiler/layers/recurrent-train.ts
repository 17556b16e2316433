/**
 * RNN, LSTM and GRU in a training graph. The forward is an ONNX Scan over time per layer and
 * direction, in PyTorch's own gate order (LSTM i, f, g, o; GRU r, z, n), whose body keeps the
 * gate activations; the backward is a second Scan running the other way through time that
 * turns dL/dh into dL/d(gate pre-activations), so the sequence length can stay symbolic. The
 * input projections and all weight gradients are single MatMul/Gemm over every time step at
 * once, outside the loops: dW_ih = sum_t dgates_t^T x_t, dW_hh = sum_t dgates_t^T h_(t-1).
 */
import { type Dim } from '../dims.js';
import type { GraphBuilder, Tensor } from '../graph-builder.js';
import type { Grad, ModuleCtx, Saved } from '../layer.js';
import { binary, matmul } from '../ops.js';
import { scalarF, sum, zerosLike } from '../op-grads/util.js';
import { type Value, isTensor } from '../values.js';

export type Mode = 'RNN' | 'LSTM' | 'GRU';

export interface RecurrentArgs {
  input_size: number;
  hidden_size: number;
  num_layers: number;
  bias: boolean;
  batch_first: boolean;
  dropout: number;
  bidirectional: boolean;
  proj_size?: number;
  nonlinearity?: 'tanh' | 'relu';
}

const GATES: Record<Mode, number> = { RNN: 1, LSTM: 4, GRU: 3 };

/** What one layer and direction's forward keeps for the backward. */
interface Direction {
  layer: number;
  suffix: string;
  reverse: boolean;
  /** The layer's input [T, B, I], initial states [B, H], outputs [T, B, H]. */
  x: Tensor;
  h0: Tensor;
  c0: Tensor | null;
  y: Tensor;
  /** LSTM: the cell states [T, B, H]; LSTM and GRU: the gate activations [T, B, 4H]. */
  cells: Tensor | null;
  acts: Tensor | null;
}

const add = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Add', a, b);
const sub = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Sub', a, b);
const mul = (g: GraphBuilder, a: Tensor, b: Tensor) => binary(g, 'Mul', a, b);
const oneMinus = (g: GraphBuilder, a: Tensor) => sub(g, scalarF(g, 1), a);

function split(g: GraphBuilder, t: Tensor, parts: number, h: number): Tensor[] {
  const shape = [...t.shape.slice(0, -1), h];
  return g.opN('Split', [t, g.constInt64(Array(parts).fill(h))], { axis: t.shape.length - 1 }, Array.from({ length: parts }, () => ({ shape })));
}

/** Runs `body` as a Scan over axis 0 of `scans` (reversed in time when `reverse`). */
function scan(g: GraphBuilder, body: GraphBuilder, states: Tensor[], scans: Tensor[], reverse: boolean, scanOuts: Dim[][]): Tensor[] {
  const dir = reverse ? 1 : 0;
  const steps = scans[0]!.shape[0]!;
  return g.opN('Scan', [...states, ...scans], {
    body: { type: 'graph', value: body.toGraph(`${g.scope}/scan`) },
    num_scan_inputs: scans.length,
    scan_input_directions: scans.map(() => dir),
    scan_output_directions: scanOuts.map(() => dir),
  }, [...states.map((s) => ({ shape: s.shape })), ...scanOuts.map((s) => ({ shape: [steps, ...s] }))]);
}

/** Zeros [B, H] with the run-time batch of x [T, B, *]. */
function zeroState(g: GraphBuilder, x: Tensor, h: number): Tensor {
  const batch = g.op('Shape', [x], { start: 1, end: 2 }, { shape: [1], dtype: 'int64' });
  const value = { type: 'tensor' as const, value: { name: '', dtype: 'float32' as const, dims: [1], raw: new Uint8Array(4) } };
  return g.op('ConstantOfShape', [g.concat([batch, g.constInt64([h])], 0)], { value }, { shape: [x.shape[1]!, h] });
}

function transposed(g: GraphBuilder, w: Tensor): Tensor {
  return g.transpose(w, [1, 0]);
}

/** One layer, one direction: the forward Scan. */
function forwardDirection(m: ModuleCtx<RecurrentArgs>, mode: Mode, x: Tensor, h0: Tensor, c0: Tensor | null, layer: number, suffix: string, reverse: boolean): { d: Direction; hN: Tensor; cN: Tensor | null } {
  const { g, args: a } = m;
  const h = a.hidden_size;
  const gh = GATES[mode] * h;
  const B = x.shape[1]!;
  const wih = m.param(`weight_ih_l${layer}${suffix}`);
  const whhT = transposed(g, m.param(`weight_hh_l${layer}${suffix}`));
  let xw = matmul(g, x, transposed(g, wih));
  let bhh: Tensor | null = null;
  if (a.bias) {
    const bih = m.param(`bias_ih_l${layer}${suffix}`);
    bhh = m.param(`bias_hh_l${layer}${suffix}`);
    // The GRU's hidden bias sits inside r * (W_hn h + b_hn); the others add both biases up front.
    xw = add(g, xw, mode === 'GRU' ? bih : add(g, bih, bhh));
  }
  const b = g.subgraph();
  const hIn = b.freshInput(`${g.scope}/h`, 'float32', [B, h]);
  const cIn = mode === 'LSTM' ? b.freshInput(`${g.scope}/c`, 'float32', [B, h]) : null;
  const xt = b.freshInput(`${g.scope}/xw_t`, 'float32', [B, gh]);
  let hw = matmul(b, hIn, whhT);
  let hOut: Tensor;
  let cOut: Tensor | null = null;
  let acts: Tensor | null = null;
  if (mode === 'LSTM') {
    const [i, f, gg, o] = split(b, add(b, xt, hw), 4, h).map((t, k) => b.unary(k === 2 ? 'Tanh' : 'Sigmoid', t)) as [Tensor, Tensor, Tensor, Tensor];
    cOut = add(b, mul(b, f, cIn!), mul(b, i, gg));
    hOut = mul(b, o, b.unary('Tanh', cOut));
    acts = b.concat([i, f, gg, o], 1);
  } else if (mode === 'GRU') {
    if (bhh) hw = add(b, hw, bhh);
    const [xr, xz, xn] = split(b, xt, 3, h) as [Tensor, Tensor, Tensor];
    const [hr, hz, hn] = split(b, hw, 3, h) as [Tensor, Tensor, Tensor];
    const r = b.unary('Sigmoid', add(b, xr, hr));
    const z = b.unary('Sigmoid', add(b, xz, hz));
    const n = b.unary('Tanh', add(b, xn, mul(b, r, hn)));
    hOut = add(b, n, mul(b, z, sub(b, hIn, n)));
    acts = b.concat([r, z, n, hn], 1);
  } else {
    hOut = b.unary(a.nonlinearity === 'relu' ? 'Relu' : 'Tanh', add(b, xt, hw));
  }
  b.freshOutput(hOut, `${g.scope}/h_next`);
  if (cOut) b.freshOutput(cOut, `${g.scope}/c_next`);
  b.freshOutput(hOut, `${g.scope}/y_t`);
  const scanOuts: Dim[][] = [[B, h]];
  if (cOut) {
    b.freshOutput(cOut, `${g.scope}/c_t`);
    scanOuts.push([B, h]);
  }
  if (acts) {
    b.freshOutput(acts, `${g.scope}/acts_t`);
    scanOuts.push([B, 4 * h]);
  }
  const states = c0 ? [h0, c0] : [h0];
  const outs = scan(g, b, states, [xw], reverse, scanOuts);
  const hN = outs[0]!;
  const cN = mode === 'LSTM' ? outs[1]! : null;
  const rest = outs.slice(states.length);
  const y = rest[0]!;
  const cells = mode === 'LSTM' ? rest[1]! : null;
  const actsAll = mode === 'RNN' ? null : rest[mode === 'LSTM' ? 2 : 1]!;
  return { d: { layer, suffix, reverse, x, h0, c0, y, cells, acts: actsAll }, hN, cN };
}

/** The states before each step, aligned with the steps: h_(t-1) forward, h_(t+1) reversed. */
function previous(g: GraphBuilder, seq: Tensor, first: Tensor, reverse: boolean): Tensor {
  const init = g.unsqueeze(first, [0]);
  if (reverse) return g.concat([g.slice(seq, 0, 1, Number.MAX_SAFE_INTEGER), init], 0);
  return g.concat([init, g.slice(seq, 0, 0, -1)], 0);
}

/**
 * The training forward: returns the module's output value ([output, h_n] or [output, (h_n,
 * c_n)]) and stashes what the backward needs.
 */
export function recurrentTrainForward(mode: Mode, m: ModuleCtx<RecurrentArgs>, seqFirst: Tensor, h0: Tensor | null, c0: Tensor | null): Value {
  const { g, args: a } = m;
  if (m.training && a.dropout > 0 && a.num_layers > 1) m.fail('TRAIN_NOT_DIFFERENTIABLE', `dropout=${a.dropout} between layers is not supported in train mode`);
  const nd = a.bidirectional ? 2 : 1;
  const h = a.hidden_size;
  const directions: Direction[] = [];
  const hn: Tensor[] = [];
  const cn: Tensor[] = [];
  let x = seqFirst;
  for (let l = 0; l < a.num_layers; l++) {
    const ys: Tensor[] = [];
    for (let d = 0; d < nd; d++) {
      const k = l * nd + d;
      const hInit = h0 ? g.squeeze(g.slice(h0, 0, k, k + 1), [0]) : zeroState(g, seqFirst, h);
      const cInit = mode !== 'LSTM' ? null : c0 ? g.squeeze(g.slice(c0, 0, k, k + 1), [0]) : zeroState(g, seqFirst, h);
      const r = forwardDirection(m, mode, x, hInit, cInit, l, d === 1 ? '_reverse' : '', d === 1);
      directions.push(r.d);
      ys.push(r.d.y);
      hn.push(g.unsqueeze(r.hN, [0]));
      if (r.cN) cn.push(g.unsqueeze(r.cN, [0]));
    }
    x = g.concat(ys, 2);
  }
  m.stash.directions = directions;
  const output = a.batch_first ? g.transpose(x, [1, 0, 2]) : x;
  const hN = g.concat(hn, 0);
  return mode === 'LSTM' ? [output, [hN, g.concat(cn, 0)]] : [output, hN];
}

function tensorOrNull(gr: Grad | undefined): Tensor | null {
  return gr && !Array.isArray(gr) ? gr : null;
}

/** Rows [k] of a [L*D, B, H] state gradient, or null. */
function stateRow(g: GraphBuilder, t: Tensor | null, k: number): Tensor | null {
  return t ? g.squeeze(g.slice(t, 0, k, k + 1), [0]) : null;
}

/** The backward Scan of one layer and direction: dL/d(gate pre-activations) per step, dL/dh_0, dL/dc_0. */
function backwardDirection(m: ModuleCtx<RecurrentArgs>, mode: Mode, d: Direction, dy: Tensor | null, dhN: Tensor | null, dcN: Tensor | null) {
  const { g, args: a } = m;
  const h = a.hidden_size;
  const B = d.x.shape[1]!;
  const whh = m.param(`weight_hh_l${d.layer}${d.suffix}`);
  const dyAll = dy ?? zerosLike(g, d.y);
  const b = g.subgraph();
  const dhIn = b.freshInput(`${g.scope}/dh`, 'float32', [B, h]);
  const dcIn = mode === 'LSTM' ? b.freshInput(`${g.scope}/dc`, 'float32', [B, h]) : null;
  const dyt = b.freshInput(`${g.scope}/dy_t`, 'float32', [B, h]);
  const dh = add(b, dhIn, dyt);
  const scans: Tensor[] = [dyAll];
  const outs: Tensor[] = [];
  let dhPrev: Tensor;
  let dcPrev: Tensor | null = null;
  let gruInputFactors: Tensor | null = null;
  if (mode === 'LSTM') {
    // Whatever does not depend on dh or dc is computed for every step at once, outside the loop,
    // so each step runs 7 ops instead of 27 (a Scan step costs per op, not per element):
    //   dc      = dc_next + dh * o (1 - tanh(c)^2)
    //   d(i, f, g, o pre-activations) = [dc, dc, dc, dh] * [g i (1 - i), c_prev f (1 - f), i (1 - g^2), tanh(c) o (1 - o)]
    //   dc_prev = dc * f,   dh_prev = dgates W_hh
    const [iA, fA, gA, oA] = split(g, d.acts!, 4, h) as [Tensor, Tensor, Tensor, Tensor];
    const tc = g.unary('Tanh', d.cells!);
    const cPrev = previous(g, d.cells!, d.c0!, d.reverse);
    const dcPerDh = mul(g, oA, oneMinus(g, mul(g, tc, tc)));
    const factors = g.concat([
      mul(g, gA, mul(g, iA, oneMinus(g, iA))), mul(g, cPrev, mul(g, fA, oneMinus(g, fA))),
      mul(g, iA, oneMinus(g, mul(g, gA, gA))), mul(g, tc, mul(g, oA, oneMinus(g, oA))),
    ], 2);
    const dcPerDhT = b.freshInput(`${g.scope}/dc_per_dh_t`, 'float32', [B, h]);
    const factorsT = b.freshInput(`${g.scope}/gate_factors_t`, 'float32', [B, 4 * h]);
    const fT = b.freshInput(`${g.scope}/f_t`, 'float32', [B, h]);
    scans.push(dcPerDh, factors, fA);
    const dc = add(b, dcIn!, mul(b, dh, dcPerDhT));
    const dgates = mul(b, b.concat([dc, dc, dc, dh], 1), factorsT);
    dcPrev = mul(b, dc, fT);
    dhPrev = matmul(b, dgates, whh);
    outs.push(dgates);
  } else if (mode === 'GRU') {
    // As for the LSTM, the factors that do not depend on dh are computed for every step at once,
    // and the input part, which the loop does not read back, after it from the dh of each step:
    //   d(r, z, n pre-activations) of the input part   = [dh, dh, dh] * [a c, (h_prev - n) z (1 - z), a]
    //   d(r, z, n pre-activations) of the hidden part  = [dh, dh, dh] * [a c, (h_prev - n) z (1 - z), a r]
    //   with a = (1 - z)(1 - n^2), c = hn r (1 - r);   dh_prev = dh z + dhw W_hh
    const [rA, zA, nA, hnA] = split(g, d.acts!, 4, h) as [Tensor, Tensor, Tensor, Tensor];
    const hPrev = previous(g, d.y, d.h0, d.reverse);
    const aF = mul(g, oneMinus(g, zA), oneMinus(g, mul(g, nA, nA)));
    const rF = mul(g, aF, mul(g, hnA, mul(g, rA, oneMinus(g, rA))));
    const zF = mul(g, sub(g, hPrev, nA), mul(g, zA, oneMinus(g, zA)));
    const xFactors = g.concat([rF, zF, aF], 2);
    const hFactors = g.concat([rF, zF, mul(g, aF, rA)], 2);
    gruInputFactors = xFactors;
    const hFactorsT = b.freshInput(`${g.scope}/h_factors_t`, 'float32', [B, 3 * h]);
    const zT = b.freshInput(`${g.scope}/z_t`, 'float32', [B, h]);
    scans.push(hFactors, zA);
    const dhw = mul(b, b.concat([dh, dh, dh], 1), hFactorsT);
    dhPrev = add(b, mul(b, dh, zT), matmul(b, dhw, whh));
    outs.push(dhw, dh);
  } else {
    const yT = b.freshInput(`${g.scope}/y_t`, 'float32', [B, h]);
    scans.push(d.y);
    const slope = a.nonlinearity === 'relu' ? b.unary('Sign', yT) : oneMinus(b, mul(b, yT, yT));
    const dpre = mul(b, dh, slope);
    dhPrev = matmul(b, dpre, whh);
    outs.push(dpre);
  }
  b.freshOutput(dhPrev, `${g.scope}/dh_prev`);
  if (dcPrev) b.freshOutput(dcPrev, `${g.scope}/dc_prev`);
  for (const o of outs) b.freshOutput(o, `${g.scope}/dgates_t`);
  const states = [dhN ?? zerosLike(g, d.h0), ...(mode === 'LSTM' ? [dcN ?? zerosLike(g, d.c0!)] : [])];
  const res = scan(g, b, states, scans, !d.reverse, outs.map((o) => o.shape));
  const dh0 = res[0]!;
  const dc0 = mode === 'LSTM' ? res[1]! : null;
  const seqOuts = res.slice(states.length);
  const dhw = seqOuts[0]!;
  // GRU: d(input pre-activations) = [dh, dh, dh] * the input factors, for all steps at once.
  const dxw = gruInputFactors ? mul(g, g.concat([seqOuts[1]!, seqOuts[1]!, seqOuts[1]!], 2), gruInputFactors) : dhw;
  return { dxw, dhw, dh0, dc0 };
}

/** [T, B, K] -> [T*B, K] for the weight-gradient Gemms. */
function rows(g: GraphBuilder, t: Tensor): Tensor {
  const k = t.shape[2] as number;
  return g.op('Reshape', [t, g.constInt64([-1, k])], {}, { shape: ['steps*batch', k] });
}

function gemmT(g: GraphBuilder, a: Tensor, b: Tensor): Tensor {
  return g.op('Gemm', [rows(g, a), rows(g, b)], { transA: 1 }, { shape: [a.shape[2]!, b.shape[2]!] });
}

/** The backward rule of RNN, LSTM and GRU (module forward in recurrent.ts). */
export function recurrentBackward(mode: Mode, m: ModuleCtx<RecurrentArgs>, saved: Saved): { inputs: Grad[]; params: Record<string, Tensor> } {
  const { g, args: a } = m;
  const directions = m.stash.directions as Direction[];
  const nd = a.bidirectional ? 2 : 1;
  const h = a.hidden_size;
  const [gOut, gState] = saved.outputGrads as Grad[];
  let dOut = tensorOrNull(gOut);
  if (dOut && a.batch_first) dOut = g.transpose(dOut, [1, 0, 2]);
  const dhN = mode === 'LSTM' ? tensorOrNull((gState as Grad[] | null)?.[0]) : tensorOrNull(gState);
  const dcN = mode === 'LSTM' ? tensorOrNull((gState as Grad[] | null)?.[1]) : null;
  const params: Record<string, Tensor> = {};
  const dh0s: Tensor[] = new Array(a.num_layers * nd);
  const dc0s: Tensor[] = new Array(a.num_layers * nd);
  let dLayerOut = dOut;
  let dInput: Tensor | null = null;
  for (let l = a.num_layers - 1; l >= 0; l--) {
    let dLayerIn: Tensor | null = null;
    for (let dIdx = 0; dIdx < nd; dIdx++) {
      const d = directions[l * nd + dIdx]!;
      const k = l * nd + dIdx;
      const dy = dLayerOut ? (nd === 1 ? dLayerOut : g.slice(dLayerOut, 2, dIdx * h, (dIdx + 1) * h)) : null;
      const r = backwardDirection(m, mode, d, dy, stateRow(g, dhN, k), stateRow(g, dcN, k));
      dh0s[k] = g.unsqueeze(r.dh0, [0]);
      if (r.dc0) dc0s[k] = g.unsqueeze(r.dc0, [0]);
      const wih = m.param(`weight_ih_l${l}${d.suffix}`);
      const name = (p: string) => `${p}_l${l}${d.suffix}`;
      if (saved.needsParam(name('weight_ih'))) params[name('weight_ih')] = gemmT(g, r.dxw, d.x);
      if (saved.needsParam(name('weight_hh'))) params[name('weight_hh')] = gemmT(g, r.dhw, previous(g, d.y, d.h0, d.reverse));
      if (a.bias && saved.needsParam(name('bias_ih'))) params[name('bias_ih')] = sum(g, r.dxw, [0, 1], false);
      if (a.bias && saved.needsParam(name('bias_hh'))) params[name('bias_hh')] = sum(g, r.dhw, [0, 1], false);
      if (l > 0 || saved.needsInput(0)) {
        const dx = matmul(g, r.dxw, wih);
        dLayerIn = dLayerIn ? add(g, dLayerIn, dx) : dx;
      }
    }
    dLayerOut = dLayerIn;
    if (l === 0) dInput = dLayerIn;
  }
  if (dInput && a.batch_first) dInput = g.transpose(dInput, [1, 0, 2]);
  const hx = saved.inputs[1];
  let dhx: Grad = null;
  if (hx !== undefined && hx !== null && saved.needsInput(1)) {
    const dh0 = g.concat(dh0s, 0);
    dhx = mode === 'LSTM' ? [dh0, g.concat(dc0s, 0)] : dh0;
    if (mode === 'LSTM' && isTensor(hx)) dhx = dh0;
  }
  return { inputs: [dInput, dhx], params };
}
