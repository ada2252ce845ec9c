import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema, environmentVariables, type Config } from './schema.ts';

/** Raised when the configuration is invalid; `problems` holds one line per bad key. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(target: Json, source: Json): Json {
  const out: Json = { ...target };
  for (const [key, value] of Object.entries(source)) {
    out[key] = isObject(value) && isObject(out[key]) ? merge(out[key] as Json, value) : value;
  }
  return out;
}

function setPath(target: Json, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isObject(node[part])) node[part] = {};
    node = node[part] as Json;
  }
  node[parts.at(-1)!] = value;
}

/** The environment variable that sets a configuration path, for error messages. */
function variableFor(path: string): string {
  return Object.entries(environmentVariables).find(([, p]) => p === path)?.[0] ?? path;
}

export interface LoadOptions {
  /** Directory holding default.json and <env>.json. */
  configDir?: string;
  /** Explicit values that win over files and environment (tests use this). */
  overrides?: Json;
}

/**
 * Builds the configuration: config/default.json, then config/<NODE_ENV>.json, then environment
 * variables, then explicit overrides. Every bad key is reported at once, one line each, so the
 * operator fixes them in one go (convention 5).
 */
export function loadConfig(env: NodeJS.ProcessEnv, options: LoadOptions = {}): Config {
  const configDir = options.configDir ?? join(import.meta.dirname, '..', '..', 'config');
  const nodeEnv = env.NODE_ENV ?? 'development';
  let raw = merge(readJson(join(configDir, 'default.json')), { env: nodeEnv });
  if (/^[a-z]+$/.test(nodeEnv)) raw = merge(raw, readJson(join(configDir, `${nodeEnv}.json`)));

  for (const [variable, path] of Object.entries(environmentVariables)) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    setPath(raw, path, variable === 'COOKIE_KEYS' ? value.split(',').map((k) => k.trim()).filter(Boolean) : value);
  }
  if (options.overrides) raw = merge(raw, options.overrides);
  if (raw.issuer === undefined) raw.issuer = `http://localhost:${String(raw.port ?? 3000)}`;

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${variableFor(issue.path.join('.'))}: ${issue.message}`),
    );
  }
  return parsed.data;
}
