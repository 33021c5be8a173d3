/**
 * Full names of the records on our topics (schemas/*.avsc), and the accept-sets the codec's decode
 * takes, in one place: a misspelt name elsewhere would only show as WRONG_SCHEMA at run time.
 */
export const RecordNames = {
  click: 'dev.adstream.events.ClickEvent',
  imageView: 'dev.adstream.events.ImageViewEvent',
  review: 'dev.adstream.events.ReviewEvent',
  ad: 'dev.adstream.catalog.Ad',
  scored: 'dev.adstream.outputs.ScoredCandidates',
  segments: 'dev.adstream.outputs.InterestSegments',
  deadLetter: 'dev.adstream.outputs.DeadLetter',
  userState: 'dev.adstream.state.UserState',
  userDeletion: 'dev.adstream.privacy.UserDeletion',
  trainingExample: 'dev.adstream.learning.TrainingExample',
  adFeedback: 'dev.adstream.feedback.AdFeedback',
} as const;

const one = (name: string): ReadonlySet<string> => new Set([name]);

/** What decode() may accept for each kind of record. */
export const Accepts = {
  click: one(RecordNames.click),
  imageView: one(RecordNames.imageView),
  review: one(RecordNames.review),
  /** Any of the three input events. */
  events: new Set<string>([RecordNames.click, RecordNames.imageView, RecordNames.review]) as ReadonlySet<string>,
  ad: one(RecordNames.ad),
  scored: one(RecordNames.scored),
  segments: one(RecordNames.segments),
  deadLetter: one(RecordNames.deadLetter),
  userState: one(RecordNames.userState),
  userDeletion: one(RecordNames.userDeletion),
  trainingExample: one(RecordNames.trainingExample),
  adFeedback: one(RecordNames.adFeedback),
} as const;
