/**
 * The scriptable example: `example.js [--target ADDR] [--cache] [NAME]`.
 *
 * With NAME it resolves that name once and prints the definition as one line
 * of JSON (proto field names, secrets redacted), or `CODE: message [REASON]`
 * on stderr with exit status 1. Without NAME it reads JSON commands on stdin,
 * one per line, and writes one JSON line per command, flushed, in order (see
 * commands.ts); end of input ends it with status 0.
 *
 * The variable EXAMPLE_OPTIONS, if set, is a JSON object of options under
 * their schema names (`{"timeout": "500ms", "max_entries": 3}`), each given
 * to createResolver as an option in code, so it wins over the
 * EGRESS_CLIENT_* variables (the conformance suite shows that); --target
 * and --cache are options in code too, and win over EXAMPLE_OPTIONS. Options
 * given neither way come from the EGRESS_CLIENT_* variables.
 *
 *     node dist/src/example.js --target 127.0.0.1:50051 ip-1
 *     echo '{"select": "pool-1", "n": 3}' | node dist/src/example.js --target 127.0.0.1:50051 --cache
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createResolver, OptionError, ResolverError, sourceToJson, type Resolver } from "./client.js";
import { answer, codeOptions } from "./commands.js";

const USAGE =
  "usage: example [--target ADDR] [--cache] [NAME]   (ADDR: HOST:PORT, [V6]:PORT or unix:/PATH; " +
  "without NAME: JSON commands on stdin; EXAMPLE_OPTIONS='{\"timeout\": \"500ms\"}' gives options in code)";

/** Writes one line and waits until it is handed to the OS. */
function writeLine(line: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(`${line}\n`, (error) => (error ? reject(error) : resolve())),
  );
}

/** Answers every command line of stdin, in order, until end of input. */
async function serveLines(resolver: Resolver): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) {
      await writeLine(JSON.stringify(await answer(resolver, line)));
    }
  }
}

/** Resolves one name and prints it; returns the exit status. */
async function resolveOnce(resolver: Resolver, name: string): Promise<number> {
  try {
    await writeLine(JSON.stringify(sourceToJson(await resolver.get(name))));
    return 0;
  } catch (error) {
    if (!(error instanceof ResolverError)) {
      throw error;
    }
    console.error(error.describe());
    return 1;
  }
}

/** Runs the example with its command-line arguments; returns the exit status. */
async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { target: { type: "string" }, cache: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length > 1) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  let resolver: Resolver;
  try {
    const fromVariable = process.env["EXAMPLE_OPTIONS"]?.trim() ? codeOptions(process.env["EXAMPLE_OPTIONS"]) : {};
    resolver = createResolver({
      ...fromVariable,
      ...(values.target !== undefined ? { target: values.target } : {}),
      ...(values.cache ? { cache: true } : {}),
    });
  } catch (error) {
    if (error instanceof OptionError || error instanceof TypeError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  try {
    const [name] = positionals;
    if (name === undefined) {
      await serveLines(resolver);
      return 0;
    }
    return await resolveOnce(resolver, name);
  } finally {
    await resolver.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
