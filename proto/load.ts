/**
 * Loads the convoy.v1 contracts with proto-loader. Wire shapes are declared in ./wire; the
 * options below fix how they map: camelCase fields, int64 as JS numbers (all ours are millisecond
 * times and sequence numbers, far below 2^53), bytes as Buffers, defaults filled in, and the set
 * oneof member named in `body`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type * as protobufjs from 'protobufjs';

/** The contract files, relative to protoRoot(). */
export const PROTO_FILES = ['convoy/v1/agent.proto', 'convoy/v1/operator.proto'];

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** The directory holding `convoy/v1/*.proto`, from source (ts-jest) or from dist/. */
export function protoRoot(): string {
  const candidates = [__dirname, path.resolve(__dirname, '../../proto')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'convoy/v1/agent.proto')));
  if (found === undefined) throw new Error(`convoy/v1/agent.proto not found near ${__dirname}`);
  return found;
}

interface ConvoyPackage {
  convoy: {
    v1: { AgentService: grpc.ServiceClientConstructor; OperatorService: grpc.ServiceClientConstructor };
  };
}

let cached: ConvoyPackage['convoy']['v1'] | undefined;

/**
 * The single-file agent bundle has no proto/ directory beside it: its builder stamps the parsed
 * contracts in here as protobufjs JSON (scripts/build-agent.ts), and proto-loader reads that.
 */
declare const __CONVOY_PROTO_JSON__: string | undefined;

/** The two services' definitions and client constructors, loaded once per process. */
export function loadConvoyProtos(): ConvoyPackage['convoy']['v1'] {
  if (cached !== undefined) return cached;
  const definition =
    typeof __CONVOY_PROTO_JSON__ === 'string'
      ? protoLoader.fromJSON(JSON.parse(__CONVOY_PROTO_JSON__) as protobufjs.INamespace, LOADER_OPTIONS)
      : protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [protoRoot()] });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as ConvoyPackage;
  cached = pkg.convoy.v1;
  return cached;
}

/** Fully qualified method names of a service, for the default-deny policy check. */
export function methodNames(service: grpc.ServiceClientConstructor): string[] {
  return Object.keys(service.service);
}
