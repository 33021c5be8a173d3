/**
 * One place for every error the processor names. A dead letter's `reason` is one of these codes,
 * so operators can alert and count by code, and readers of the dead-letter topic can branch on it.
 */
export const ReasonCodes = {
  /** The value is empty (null or zero bytes); a tombstone on an event topic means nothing. */
  EMPTY_VALUE: 'Record has no value',
  /** Not in the Confluent wire format: missing magic byte 0 or shorter than 5 bytes. */
  BAD_FRAMING: 'Value is not framed as magic byte 0 + 4-byte schema id',
  /** The schema id in the header is not one we know (schemas/index.json, or the schema registry when one is set). */
  UNKNOWN_SCHEMA: 'Schema id is not in schemas/index.json or the schema registry',
  /** The schema registry could not be asked for the record's schema id (after retries). */
  SCHEMA_UNAVAILABLE: 'Schema registry could not be reached for the schema id',
  /** The writer's schema cannot be resolved into ours (Avro resolution rules), or is not Avro. */
  SCHEMA_UNRESOLVABLE: 'Writer schema cannot be read as this processor\'s schema',
  /** The schema is known but is not the kind this topic carries (e.g. a review on the clicks topic). */
  WRONG_SCHEMA: 'Schema does not belong on this topic',
  /** The Avro body could not be decoded with the writer schema (truncated, corrupt, trailing bytes). */
  DECODE_FAILED: 'Avro body could not be decoded',
  /** Decoded, but a field breaks a rule (empty id, absurd time, text too long, bad rating...). */
  INVALID_FIELD: 'A field is missing or out of range',
  /** The record is larger than the configured maximum. */
  OVERSIZED: 'Record is larger than the configured maximum',
  /** The image could not be read, fetched, or decoded, or breaks the pixel limit. */
  IMAGE_UNREADABLE: 'Image could not be fetched or decoded',
  /** The image reference points where the fetch policy does not allow (origin, scheme, path). */
  IMAGE_REFUSED: 'Image reference is not allowed by the fetch policy',
  /** The record key does not match the user id in the value (breaks per-user partitioning). */
  KEY_MISMATCH: 'Record key differs from the userId in the value',
  /** An unexpected error while handling this one record; logged with its stack. Never a crash. */
  PROCESSING_FAILED: 'Unexpected error while processing the record',
  /** An output the record produced (its user's state, scored candidates or segments) is too large for its topic. */
  OUTPUT_TOO_LARGE: 'An output of the record is larger than its topic accepts',
} as const;

export type ReasonCode = keyof typeof ReasonCodes;

/** An input record the processor rejects; becomes a dead letter with this code. */
export class RejectedRecordError extends Error {
  override readonly name = 'RejectedRecordError';
  constructor(
    readonly reason: ReasonCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A chunk failed after it changed users' state in memory (the fold ran, then scoring or a later
 * step failed): memory is ahead of the changelog, and handing the same records again would fold
 * them twice. The transport restores the partition from the changelog before it retries.
 */
export class StateChangedError extends Error {
  override readonly name = 'StateChangedError';
  constructor(cause: unknown) {
    super(`failed after changing user state: ${errorMessage(cause)}`, { cause });
  }
}

/** A setting is missing or invalid; the message names the setting and what it allows. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

/** A required program or service is missing from the machine; the message says what to install. */
export class EnvironmentError extends Error {
  override readonly name = 'EnvironmentError';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
