/**
 * Text -> token ids with a vocabulary shipped in the archive, for Embedding/RNN models such as
 * the seed tutorial's character-level Embedding -> RNN -> Linear (8.11). Configured by the
 * `text:` section of model-config.yaml:
 *
 *   text: {vocab: vocab.json, level: char, lowercase: true, maxLength: 64, padding: left}
 *
 * vocab.json maps token -> id ({"<pad>": 0, "<unk>": 1, "a": 2, ...}) or is a list of tokens
 * (index = id). Every text is padded with the pad id to maxLength (left padding keeps the last
 * token at the RNN's last step), so requests of any length batch together; a longer text is
 * refused rather than silently cut.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { nnsError } from '../errors.js';
import type { IoSpec } from '../runtime/ort.js';

export interface TextConfig {
  /** Vocabulary file in the archive. @defaultValue vocab.json */
  vocab: string;
  /** "char" (Unicode code points) or "word" (runs of letters, digits and apostrophes). @defaultValue char */
  level: 'char' | 'word';
  /** Lower-case before lookup. @defaultValue true */
  lowercase: boolean;
  /** Most tokens a text may have; the id tensor's length. @defaultValue the model's sequence axis, else 128 */
  maxLength: number;
  /** Where pad ids go. @defaultValue left */
  padding: 'left' | 'right';
  /** Token of unknown characters/words. @defaultValue <unk> */
  unknownToken: string;
  /** Token used for padding. @defaultValue <pad> */
  padToken: string;
}

export interface Tokenizer {
  readonly config: TextConfig;
  /** Ids of one text, padded to maxLength. */
  encode(text: string, what: string): number[];
}

const KEYS = new Set(['vocab', 'level', 'lowercase', 'maxLength', 'padding', 'unknownToken', 'padToken']);

export function parseTextConfig(raw: unknown, input: IoSpec | undefined, model: string): TextConfig {
  const where = `model "${model}" model-config.yaml text`;
  if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) {
    throw nnsError('MODEL_CONFIG_INVALID', `${where} must be a mapping, got ${JSON.stringify(raw)}`);
  }
  const o = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw nnsError('MODEL_CONFIG_INVALID', `${where}: unknown key "${k}" (known: ${[...KEYS].join(', ')})`);
  const bad = (key: string, expected: string) => nnsError('MODEL_CONFIG_INVALID', `${where}.${key} must be ${expected}, got ${JSON.stringify(o[key])}`);
  const seq = input?.shape[1];
  const c: TextConfig = {
    vocab: 'vocab.json', level: 'char', lowercase: true, maxLength: typeof seq === 'number' ? seq : 128,
    padding: 'left', unknownToken: '<unk>', padToken: '<pad>',
  };
  if (o.vocab !== undefined) { if (typeof o.vocab !== 'string' || o.vocab === '') throw bad('vocab', 'a file name in the archive'); c.vocab = o.vocab; }
  if (o.level !== undefined) { if (o.level !== 'char' && o.level !== 'word') throw bad('level', '"char" or "word"'); c.level = o.level; }
  if (o.lowercase !== undefined) { if (typeof o.lowercase !== 'boolean') throw bad('lowercase', 'true or false'); c.lowercase = o.lowercase; }
  if (o.maxLength !== undefined) { if (!Number.isInteger(o.maxLength) || (o.maxLength as number) < 1) throw bad('maxLength', 'an integer >= 1'); c.maxLength = o.maxLength as number; }
  if (o.padding !== undefined) { if (o.padding !== 'left' && o.padding !== 'right') throw bad('padding', '"left" or "right"'); c.padding = o.padding; }
  for (const key of ['unknownToken', 'padToken'] as const) {
    if (o[key] !== undefined) { if (typeof o[key] !== 'string') throw bad(key, 'a string'); c[key] = o[key] as string; }
  }
  if (input) {
    const ok = input.shape.length === 2 && (typeof seq !== 'number' || seq === c.maxLength) && (input.dtype === 'int64' || input.dtype === 'int32');
    if (!ok) throw nnsError('MODEL_CONFIG_INVALID', `model "${model}" input "${input.name}" is ${input.dtype} [${input.shape}]; the text handler makes int64/int32 [batch, ${c.maxLength}] token ids`);
  }
  return c;
}

/** Read the vocabulary (a file inside the archive) and build the tokenizer. */
export async function loadTokenizer(config: TextConfig, archiveDir: string, model: string): Promise<Tokenizer> {
  const file = resolve(archiveDir, config.vocab);
  const rel = relative(archiveDir, file);
  if (rel.startsWith('..') || isAbsolute(rel)) throw nnsError('MODEL_CONFIG_INVALID', `model "${model}": text.vocab "${config.vocab}" is outside the archive`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw nnsError('MODEL_CONFIG_INVALID', `model "${model}": vocabulary ${config.vocab} cannot be read as JSON (archive it with --extra-files): ${(e as Error).message}`);
  }
  const vocab = new Map<string, number>();
  if (Array.isArray(raw)) raw.forEach((tok, i) => typeof tok === 'string' && vocab.set(tok, i));
  else if (raw && typeof raw === 'object') for (const [tok, id] of Object.entries(raw)) if (Number.isInteger(id)) vocab.set(tok, id as number);
  if (vocab.size === 0) throw nnsError('MODEL_CONFIG_INVALID', `model "${model}": vocabulary ${config.vocab} must map tokens to integer ids (or list tokens)`);
  const unk = vocab.get(config.unknownToken);
  const pad = vocab.get(config.padToken) ?? 0;
  const tokens = config.level === 'char'
    ? (s: string) => Array.from(s)
    : (s: string) => s.match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}']/gu) ?? [];
  return {
    config,
    encode(text, what) {
      const toks = tokens(config.lowercase ? text.toLowerCase() : text);
      const unit = config.level === 'char' ? 'characters' : 'words';
      if (toks.length === 0) throw nnsError('INPUT_INVALID', `model "${model}": ${what} is empty`);
      if (toks.length > config.maxLength) {
        throw nnsError('INPUT_INVALID', `model "${model}": ${what} has ${toks.length} ${unit}; this model reads at most ${config.maxLength} (text.maxLength)`);
      }
      const ids = toks.map((tok) => {
        const id = vocab.get(tok) ?? unk;
        if (id === undefined) throw nnsError('INPUT_INVALID', `model "${model}": ${what}: ${JSON.stringify(tok)} is not in the vocabulary, which has no "${config.unknownToken}" token`);
        return id;
      });
      const padding = new Array<number>(config.maxLength - ids.length).fill(pad);
      return config.padding === 'left' ? [...padding, ...ids] : [...ids, ...padding];
    },
  };
}
