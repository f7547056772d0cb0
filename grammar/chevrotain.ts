/**
 * chevrotain, from the single-file bundle its package ships. The package entry loads
 * lodash-es as some 600 ES modules, 0.4 s at every start of the server and the CLI; the
 * bundle (same package, same version) holds the same code in one file. Its `exports` map
 * names only the entry, so the bundle is found next to it.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as Chevrotain from 'chevrotain';

const bundle = new URL('../chevrotain.mjs', pathToFileURL(createRequire(import.meta.url).resolve('chevrotain'))).href;
const chevrotain = (await import(bundle)) as typeof Chevrotain;

export const { createToken, Lexer, EmbeddedActionsParser } = chevrotain;
