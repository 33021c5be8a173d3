/**
 * Reads training examples exported from the `training-examples` topic: JSON lines (one record of
 * schemas/training-example.avsc per line) or an Avro object container file (which carries its
 * writer schema). Told apart by content: a container starts with the bytes "Obj\x01".
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import avro from 'avsc';
import type { TrainingExampleRecord } from './examples.js';

const AVRO_CONTAINER_MAGIC = Buffer.from('Obj\x01', 'latin1');

export async function readExampleFile(path: string): Promise<TrainingExampleRecord[]> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  return head.equals(AVRO_CONTAINER_MAGIC) ? readAvroContainer(path) : readJsonLines(path);
}

async function readJsonLines(path: string): Promise<TrainingExampleRecord[]> {
  const out: TrainingExampleRecord[] = [];
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    try {
      out.push(JSON.parse(text) as TrainingExampleRecord);
    } catch (err) {
      throw new Error(`${path}:${line}: not a JSON training example: ${(err as Error).message}`);
    }
  }
  return out;
}

function readAvroContainer(path: string): Promise<TrainingExampleRecord[]> {
  return new Promise((resolve, reject) => {
    const out: TrainingExampleRecord[] = [];
    avro
      .createFileDecoder(path)
      .on('data', (r: TrainingExampleRecord) => out.push(r))
      .on('error', (err: Error) => reject(new Error(`${path}: not an Avro container of training examples: ${err.message}`)))
      .on('end', () => resolve(out));
  });
}
