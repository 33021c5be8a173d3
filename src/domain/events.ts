/** The processor's view of its inputs, after decoding and validation. */

/** What a user did with an item, weakest to strongest. */
export type ClickAction = 'VIEW' | 'CLICK' | 'ADD_TO_CART' | 'PURCHASE';

/** Where an input record came from; the unit of accounting for "nothing lost". */
export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offsets are 64-bit; kept as decimal strings as the clients give them. */
  readonly offset: string;
}

/** A record as any transport hands it over: Kafka, a replay file, a test. */
export interface InputRecord extends SourcePosition {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Broker or producer timestamp, ms since epoch. */
  readonly timestamp: number;
}

export type ImageSource =
  | { readonly kind: 'inline'; readonly data: Buffer; readonly contentType: string | null }
  | { readonly kind: 'reference'; readonly uri: string };

interface EventBase {
  readonly eventId: string;
  readonly userId: string;
  readonly itemId: string;
  readonly eventTime: number;
}

export interface ClickEvent extends EventBase {
  readonly kind: 'click';
  readonly categoryId: string;
  readonly action: ClickAction;
}

export interface ImageViewEvent extends EventBase {
  readonly kind: 'image';
  readonly categoryId: string | null;
  readonly imageId: string;
  readonly image: ImageSource;
}

export interface ReviewEvent extends EventBase {
  readonly kind: 'review';
  readonly categoryId: string | null;
  readonly rating: number;
  readonly text: string;
}

export type UserEvent = ClickEvent | ImageViewEvent | ReviewEvent;

/** A request to forget a user (the UserDeletion schema), from the deletions topic. */
export interface UserDeletion {
  readonly userId: string;
  readonly requestedAt: number;
  readonly requestId: string;
}
export type EventKind = UserEvent['kind'];

export interface Ad {
  readonly adId: string;
  readonly advertiserId: string;
  readonly title: string;
  readonly description: string;
  readonly categoryId: string;
  readonly image: ImageSource | null;
  readonly bidMicros: number;
  readonly active: boolean;
  readonly updatedAt: number;
}

/** What the ad server reports about an offered ad (the AdFeedback schema), from the feedback topic. */
export type FeedbackKind = 'IMPRESSION' | 'CLICK' | 'CONVERSION';

export interface AdFeedback {
  readonly feedbackId: string;
  readonly userId: string;
  readonly adId: string;
  /** The scored output that offered the ad, when the ad server kept it. */
  readonly outputId: string | null;
  readonly position: number;
  readonly kind: FeedbackKind;
  readonly eventTime: number;
}
