#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64
/**
 * `nnserve start [--model-store DIR] [--models all|a.mar,b.mar] [--config FILE] [--ncs]`
 * `nnserve archive ...` (torch-model-archiver's flags; see docs/archive.md)
 */
import { runArchiveCli } from './archive/archiver.js';
import { loadConfig, readConfigFile, type Config } from './config.js';
import { isNnsError } from './errors.js';
import { runManagementCli } from './management-cli.js';
import { startServer } from './server.js';
import { runTrainCli } from './training/cli.js';

const USAGE = `usage:
  nnserve start [--model-store DIR] [--models all|a.mar,b.mar] [--config FILE] [--engine native|wasm]
  nnserve archive --model-name NAME --version V --serialized-file FILE [--handler H] [--extra-files a,b]
                  [--config-file model-config.yaml] --export-path DIR [-f]
  nnserve train --architecture arch.json [--weights W] --dataset KIND:PATH --loss NAME --optimizer NAME
                --lr X --batch-size N --epochs N [--seed S] --out DIR     (see nnserve train --help)
  nnserve register|list|describe|scale|unregister|set-default ...   (a running server; see --help of each)

Settings use TorchServe's key names, from --config (config.properties or YAML) or the
environment as NNSERVE_<KEY> (e.g. NNSERVE_INFERENCE_ADDRESS=http://127.0.0.1:9080).`;

function parseStartArgs(argv: string[]): { configFile?: string; overrides: Partial<Record<keyof Config, unknown>> } {
  const overrides: Partial<Record<keyof Config, unknown>> = {};
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--model-store': overrides.model_store = value(); break;
      case '--models': overrides.load_models = value(); break;
      case '--config': case '--ts-config': configFile = value(); break;
      case '--engine': overrides.engine = value(); break;
      case '--ncs': case '--no-config-snapshots': overrides.enable_snapshots = false; break;
      case '--foreground': break; // always in the foreground
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return { configFile, overrides };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start': {
      const { configFile, overrides } = parseStartArgs(rest);
      const config = loadConfig({ file: configFile ? readConfigFile(configFile) : undefined, overrides });
      await startServer(config);
      return -1; // keep running
    }
    case 'archive':
      return runArchiveCli(rest);
    case 'train':
      return runTrainCli(rest);
    case 'register': case 'list': case 'describe': case 'scale': case 'unregister': case 'set-default':
      return runManagementCli(cmd, rest);
    case undefined: case '-h': case '--help': case 'help':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`nnserve: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`nnserve: ${isNnsError(e) ? `${e.code}: ` : ''}${(e as Error).message}`);
    process.exitCode = 1;
  },
);
