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

/** Variables that hold a comma-separated list. */
const LISTS = new Set(['COOKIE_KEYS', 'SECRET_KEYS_PREVIOUS', 'DNS_SERVERS']);

/**
 * One problem, reported against the environment variable that sets it. A problem with one item
 * of a list (path `cookieKeys.1`) names the variable and the item's position
 * (`COOKIE_KEYS: key 2: …`), never an internal path, and never the value (it may be a secret).
 */
function describeIssue(issue: { path: PropertyKey[]; message: string }): string {
  const index = issue.path.findIndex((part) => typeof part === 'number');
  const key = (index === -1 ? issue.path : issue.path.slice(0, index)).map(String).join('.');
  const variable = Object.entries(environmentVariables).find(([, p]) => p === key)?.[0] ?? key;
  return index === -1 ? `${variable}: ${issue.message}` : `${variable}: key ${Number(issue.path[index]) + 1}: ${issue.message}`;
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
    setPath(raw, path, LISTS.has(variable) ? value.split(',').map((k) => k.trim()).filter(Boolean) : value);
  }
  if (options.overrides) raw = merge(raw, options.overrides);
  raw.issuerDefaulted = raw.issuer === undefined;
  if (raw.issuer === undefined) raw.issuer = `http://localhost:${String(raw.port ?? 3000)}`;

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(describeIssue),
    );
  }
  return parsed.data;
}
