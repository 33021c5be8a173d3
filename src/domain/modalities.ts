/**
 * The modalities events and ads are embedded in, and their one order: the encoders, the rows of
 * the fusion graph's `modalities` input, the fusion weights and every per-modality tuple follow it.
 */
import type { EventKind } from './events.js';

export const MODALITIES = ['image', 'text', 'click'] as const;
export type Modality = (typeof MODALITIES)[number];

/** How many modalities there are (the fusion graphs' M). */
export const MODALITY_COUNT = MODALITIES.length;

/** A modality's position in MODALITIES. */
export const MODALITY_INDEX = Object.freeze(Object.fromEntries(MODALITIES.map((m, i) => [m, i]))) as Readonly<Record<Modality, number>>;

/** One value per modality, in MODALITIES order: [image, text, click]. */
export type PerModality<T> = TupleOf<typeof MODALITIES, T>;
// Generic so that the mapped type maps a tuple to a tuple (not to an object with keys "0", "1"...).
type TupleOf<Tuple extends readonly unknown[], T> = { -readonly [I in keyof Tuple]: T };

/** The modality each event kind is embedded in: an image view by its image, a review by its text. */
export const EVENT_MODALITY: Readonly<Record<EventKind, Modality>> = { image: 'image', review: 'text', click: 'click' };

/** A tuple of f(modality, index) in MODALITIES order. */
export function perModality<T>(f: (m: Modality, index: number) => T): PerModality<T> {
  // map keeps the length; the tuple type is what it cannot say.
  return MODALITIES.map(f) as unknown as PerModality<T>;
}
