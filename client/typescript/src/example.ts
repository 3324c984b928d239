/**
 * Example program: resolves one name and prints the definition as one line of
 * JSON (proto field names, secrets redacted), or `CODE: message [REASON]` on
 * stderr with exit status 1.
 *
 *     node dist/src/example.js 127.0.0.1:50051 ip-1
 */
import { createResolver, ResolverError, sourceToJson } from "./client.js";

const USAGE = "usage: example TARGET NAME   (TARGET: HOST:PORT, [V6]:PORT or unix:/PATH)";

/** Runs the example with its command-line arguments; returns the exit status. */
async function main(args: readonly string[]): Promise<number> {
  const [target, name] = args;
  if (args.length !== 2 || !target || name === undefined) {
    console.error(USAGE);
    return 2;
  }
  const resolver = createResolver(target);
  try {
    const source = await resolver.get(name);
    console.log(JSON.stringify(sourceToJson(source)));
    return 0;
  } catch (error) {
    if (!(error instanceof ResolverError)) {
      throw error;
    }
    console.error(error.describe());
    return 1;
  } finally {
    resolver.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
