#!/usr/bin/env node
import { buildProgram } from './cli.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`mirrorgate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
