// One unary call of a gRPC service from Node.js, every type learnt from the server's reflection.
//
// The way a Node.js service would call lepton.allocation.v1.AllocationService with
// @grpc/grpc-js and protobufjs-based loading (@grpc/proto-loader), except that no .proto file
// is given: the FileDescriptorProtos come from the server reflection service
// (grpc.reflection.v1, falling back to v1alpha), are loaded with
// protoLoader.loadFileDescriptorSetFromBuffer and called through grpc.loadPackageDefinition. The
// request object therefore goes through protobufjs `Type.fromObject`, with its silent
// conversions (an unknown enum name becomes 0, an unknown key is dropped).
//
// stdin:  {"address": "127.0.0.1:50051", "method": "Solve", "request": {...},
//          "service": "lepton.allocation.v1.AllocationService" (default), "timeout_seconds": 120}
//         request: the protobufjs object form (proto field names, enum names, int64 as strings),
//         which proto JSON with proto field names is.
// stdout: {"ok": true, "response": {...}}  (toObject: enums as names, int64 as strings)
//      or {"ok": false, "code": 3, "code_name": "INVALID_ARGUMENT", "details": "...",
//          "bad_request": [{"field": ..., "description": ...}], "status_details": [...]}
//         bad_request is decoded from the grpc-status-details-bin trailer: google.rpc.Status,
//         then each detail Any by its type URL, with descriptors fetched by reflection
//         (google.rpc.Status itself from reflection when the server serves it, else the
//         three-field definition of the gRPC status protocol below).
// Exit 0 whenever the call was made (ok or not); 1 (message on stderr) when it could not be.

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";

// Bootstrap: the reflection protocol itself (and google.rpc.Status as a fallback) cannot be
// learnt by reflection. Field names and numbers as in grpc/reflection/v1/reflection.proto and
// google/rpc/status.proto.
const BOOTSTRAP = `
syntax = "proto3";
package bootstrap;
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
`;
const boot = protobuf.parse(BOOTSTRAP, { keepCase: true }).root;
const ReflectionRequest = boot.lookupType("bootstrap.ServerReflectionRequest");
const ReflectionResponse = boot.lookupType("bootstrap.ServerReflectionResponse");
const BootstrapStatus = boot.lookupType("bootstrap.Status");
const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));
const TO_OBJECT = { enums: String, longs: String, bytes: String, defaults: false, oneofs: false, json: true };

class NotFound extends Error {}

/** File descriptors from server reflection, fetched on demand over one bidi stream. */
class Reflection {
  constructor(address) {
    this.address = address;
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.files = new Map(); // name -> FileDescriptorProto bytes
    this.service = null;    // the reflection service that answered
  }

  async open(service) {
    const call = this.client.makeBidiStreamRequest(
      `/${service}/ServerReflectionInfo`,
      (msg) => Buffer.from(ReflectionRequest.encode(ReflectionRequest.fromObject(msg)).finish()),
      (buf) => ReflectionResponse.toObject(ReflectionResponse.decode(buf), { oneofs: true }),
    );
    const waiting = [];
    let failure = null;
    call.on("data", (reply) => { const w = waiting.shift(); if (w) w.resolve(reply); });
    call.on("error", (err) => { failure = err; for (const w of waiting.splice(0)) w.reject(err); });
    call.on("end", () => { for (const w of waiting.splice(0)) w.reject(failure ?? new Error("reflection stream ended")); });
    this.call = call;
    this.ask = (request) => new Promise((resolve, reject) => {
      if (failure) { reject(failure); return; }
      waiting.push({ resolve, reject });
      call.write(request);
    });
    await this.ask({ list_services: "" }); // UNIMPLEMENTED here when this version is not served
    this.service = service;
  }

  async connect() {
    for (const service of REFLECTION_SERVICES) {
      try {
        await this.open(service);
        return;
      } catch (err) {
        this.call?.cancel();
        if (err.code !== grpc.status.UNIMPLEMENTED) throw err;
      }
    }
    throw new Error(`the server at ${this.address} serves no reflection (${REFLECTION_SERVICES.join(", ")})`);
  }

  async fetch(request) {
    const reply = await this.ask(request);
    if (reply.error_response) {
      const { error_code, error_message } = reply.error_response;
      const err = error_code === grpc.status.NOT_FOUND ? new NotFound(error_message) : new Error(error_message);
      err.code = error_code;
      throw err;
    }
    for (const bytes of reply.file_descriptor_response.file_descriptor_proto) {
      const file = descriptor.FileDescriptorProto.decode(bytes);
      if (!this.files.has(file.name)) this.files.set(file.name, { bytes, file });
    }
    // A server may send only the file asked for: fetch missing imports by name.
    for (const { file } of [...this.files.values()]) {
      for (const dep of file.dependency ?? []) {
        if (!this.files.has(dep)) await this.fetch({ file_by_filename: dep });
      }
    }
  }

  /** Makes sure the file defining `symbol` (and its imports) is known; false if the server has none. */
  async symbol(symbol) {
    try {
      await this.fetch({ file_containing_symbol: symbol });
      return true;
    } catch (err) {
      if (err instanceof NotFound) return false;
      throw err;
    }
  }

  descriptorSet() {
    const set = { file: [...this.files.values()].map(({ file }) => file) };
    return Buffer.from(descriptor.FileDescriptorSet.encode(descriptor.FileDescriptorSet.fromObject(set)).finish());
  }

  root() {
    const root = protobuf.Root.fromDescriptor(descriptor.FileDescriptorSet.decode(this.descriptorSet()));
    root.resolveAll();
    return root;
  }

  close() {
    this.call?.end();
    this.client.close();
  }
}

function lookupType(root, name) {
  try {
    return root.lookupType(name);
  } catch {
    return null;
  }
}

/** google.rpc.Status from grpc-status-details-bin, each Any detail decoded by its reflected type. */
async function decodeStatusDetails(reflection, bin) {
  const statusSchema = (await reflection.symbol("google.rpc.Status")) ? "reflection" : "builtin";
  let root = reflection.root();
  const Status = statusSchema === "reflection" ? root.lookupType("google.rpc.Status") : BootstrapStatus;
  const status = Status.toObject(Status.decode(bin), { defaults: true });
  const details = [];
  const badRequest = [];
  for (const any of status.details) {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    let Type = lookupType(root, typeName);
    if (!Type && (await reflection.symbol(typeName))) {
      root = reflection.root();
      Type = lookupType(root, typeName);
    }
    if (!Type) {
      details.push({ type: typeName, value: Buffer.from(any.value).toString("base64") });
      continue;
    }
    const decoded = Type.toObject(Type.decode(any.value), { ...TO_OBJECT, defaults: true });
    details.push({ type: typeName, message: decoded });
    if (typeName === "google.rpc.BadRequest") {
      for (const v of decoded.field_violations) badRequest.push({ field: v.field, description: v.description });
    }
  }
  return { statusSchema, statusCode: status.code, statusMessage: status.message, details, badRequest };
}

function lookupService(pkg, name) {
  const ctor = name.split(".").reduce((node, part) => node?.[part], pkg);
  if (typeof ctor !== "function") throw new Error(`reflection does not describe service ${name}`);
  return ctor;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const command = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const { address, method, request = {} } = command;
  const service = command.service ?? "lepton.allocation.v1.AllocationService";
  const timeoutSeconds = command.timeout_seconds ?? 120;

  const reflection = new Reflection(address);
  try {
    await reflection.connect();
    if (!(await reflection.symbol(service))) throw new Error(`reflection: no file defines ${service}`);
    const packageDefinition = protoLoader.loadFileDescriptorSetFromBuffer(reflection.descriptorSet(), TO_OBJECT);
    const Service = lookupService(grpc.loadPackageDefinition(packageDefinition), service);
    const client = new Service(address, grpc.credentials.createInsecure());
    if (typeof client[method] !== "function") throw new Error(`${service} has no method ${method}`);
    const deadline = new Date(Date.now() + timeoutSeconds * 1000);
    const outcome = await new Promise((resolve) => {
      client[method](request, new grpc.Metadata(), { deadline }, (err, response) => resolve({ err, response }));
    });
    client.close();
    let answer;
    if (!outcome.err) {
      answer = { ok: true, response: outcome.response };
    } else {
      const { code, details, metadata } = outcome.err;
      answer = { ok: false, code, code_name: CODE_NAMES[code], details, bad_request: [], status_details: [] };
      const bin = metadata?.get("grpc-status-details-bin") ?? [];
      if (bin.length > 0) {
        const decoded = await decodeStatusDetails(reflection, bin[0]);
        Object.assign(answer, {
          bad_request: decoded.badRequest,
          status_details: decoded.details,
          status_schema: decoded.statusSchema,
          status_code: decoded.statusCode,
          status_message: decoded.statusMessage,
        });
      }
    }
    answer.reflection_service = reflection.service;
    answer.reflected_files = [...reflection.files.keys()].sort();
    process.stdout.write(JSON.stringify(answer) + "\n");
  } finally {
    reflection.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`call.mjs: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
