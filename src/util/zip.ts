/**
 * Reads members of a zip archive (a Python wheel is one) held in memory: the central directory
 * at the end says where each member is and how it is stored (stored or deflated). No zip64, no
 * encryption: wheels of a few tens of MB need neither.
 */
import { inflateRawSync } from 'node:zlib';

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

export interface ZipMember {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

/** The members listed in the archive's central directory. Throws on anything that is not a zip. */
export function zipMembers(zip: Buffer): ZipMember[] {
  // The end record is 22 bytes plus a comment of up to 64 KiB.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory record)');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const members: ZipMember[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== CENTRAL_SIGNATURE) throw new Error(`zip central directory entry ${i} is corrupt`);
    const nameLength = zip.readUInt16LE(at + 28);
    const member: ZipMember = {
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      size: zip.readUInt32LE(at + 24),
      localHeaderOffset: zip.readUInt32LE(at + 42),
    };
    // All ones: the real value is in a zip64 extra field, which this reader does not read.
    if (member.compressedSize === 0xffffffff || member.size === 0xffffffff || member.localHeaderOffset === 0xffffffff) throw new Error(`zip member ${member.name} needs zip64, which is not supported`);
    members.push(member);
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return members;
}

/** The bytes of member `name`; throws if it is missing, stored in an unknown way, or not of its listed size. */
export function readZipMember(zip: Buffer, name: string): Buffer {
  const m = zipMembers(zip).find((x) => x.name === name);
  if (!m) throw new Error(`zip has no member ${name}`);
  const at = m.localHeaderOffset;
  if (zip.readUInt32LE(at) !== LOCAL_SIGNATURE) throw new Error(`zip member ${name}: corrupt local header`);
  const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
  const raw = zip.subarray(start, start + m.compressedSize);
  let data: Buffer;
  if (m.method === 0) data = raw;
  else if (m.method === 8) data = inflateRawSync(raw);
  else throw new Error(`zip member ${name}: compression method ${m.method} is not supported (stored or deflated only)`);
  if (data.length !== m.size) throw new Error(`zip member ${name}: ${data.length} bytes, the directory says ${m.size}`);
  return data;
}
