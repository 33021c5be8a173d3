/**
 * A small builder for ONNX graphs, so the default models are code in this repository (reviewable,
 * deterministic, no Python, no download). Serialised with onnx-proto's generated protobuf classes.
 */
import onnxProto from 'onnx-proto';
import type { TensorDecl } from '../../inference/types.js';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'int64';
const DATA_TYPE: Record<ElemType, number> = { float32: onnx.TensorProto.DataType.FLOAT, int64: onnx.TensorProto.DataType.INT64 };

/** A dimension: a fixed size, or a symbolic name such as 'batch'. */
export type Dim = number | string;

type AttrValue = number | number[] | string | Float32Array;

export const OPSET = 17;
const IR_VERSION = 8;

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** The graph input of a tensor declared in model-io.ts. */
  inputOf(t: TensorDecl, dims: Dim[]): string {
    return this.input(t.name, t.type, dims);
  }

  /** The graph output of a tensor declared in model-io.ts (a node must produce t.name). */
  outputOf(t: TensorDecl, dims: Dim[]): void {
    this.output(t.name, t.type, dims);
  }

  /** A constant weight tensor (stored as raw little-endian bytes). */
  weight(name: string, data: Float32Array | BigInt64Array, dims: number[]): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`${name}: ${data.length} values for dims [${dims}]`);
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: data instanceof Float32Array ? DATA_TYPE.float32 : DATA_TYPE.int64,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  int64s(name: string, values: number[]): string {
    return this.weight(name, BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /** Adds a node; returns its output names (one per `outputs`, default 1). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, outputNames?: string[]): string[] {
    const outs = outputNames ?? Array.from({ length: outputs }, () => `${opType.toLowerCase()}_${this.counter++}`);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: `${opType}_${this.counter++}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  /** One-output shorthand. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputName?: string): string {
    return this.op(opType, inputs, attrs, 1, outputName ? [outputName] : undefined)[0]!;
  }

  /** Serialised ModelProto bytes. `metadata` lands in the model's metadata_props. */
  build(metadata: Record<string, string> = {}): Uint8Array {
    const graph = onnx.GraphProto.create({ name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'adstream',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: OPSET }],
      graph,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, v: AttrValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'number') return Number.isInteger(v) ? onnx.AttributeProto.create({ name, type: T.INT, i: v }) : onnx.AttributeProto.create({ name, type: T.FLOAT, f: v });
  if (v instanceof Float32Array) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...v] });
  return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
}
