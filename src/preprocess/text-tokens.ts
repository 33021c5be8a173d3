/**
 * Tokeniser for reviews and ad copy in any script. Produces text-encoder tokens, not
 * linguistic words: Latin/Cyrillic/Arabic/... words split at non-letters, and CJK runs (which have
 * no spaces) as character unigrams plus adjacent-character bigrams.
 */

// Cf (format) chars: zero-width space/joiners, BOM, bidi marks and isolates, soft hyphen. Removed
// outright (not turned into spaces) so "fr\u200Bee" still reads "free": a common filter dodge.
const FORMAT_CHARS = /\p{Cf}/gu;
// Cc (controls, incl. \n and \t) become separators.
const CONTROL_CHARS = /\p{Cc}/gu;

// A CJK character: scripts written without spaces. U+30FC (katakana long-vowel mark) has script
// Common, so it is listed explicitly to keep words like ブーツ in one run.
const CJK = String.raw`\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}\p{sc=Hangul}\u30FC`;
// One pass finds either a CJK run (group 1) or a run of other letters/digits (group 2). Marks
// (\p{M}) are word characters too: Devanagari, Thai and Arabic vowel signs are marks, and splitting
// on them would cut words in half. The lookahead keeps "iphone手机" as "iphone" + "手机".
const RUNS = new RegExp(String.raw`([${CJK}]+)|((?:(?![${CJK}])[\p{L}\p{N}\p{M}])+)`, 'gu');

// Tiny list: enough to stop the commonest words dominating hashed vectors, not a linguistic list.
const STOPWORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'from', 'has', 'have', 'i',
  'in', 'is', 'it', 'its', 'me', 'my', 'of', 'on', 'or', 'so', 'the', 'this', 'that', 'to',
  'too', 'very', 'was', 'we', 'with', 'you', 'your',
]);

// Single CJK characters that occur in almost every sentence (particles, pronouns): as unigrams
// they would make any two Chinese/Japanese texts look alike. They still take part in bigrams.
const CJK_STOP_UNIGRAMS: ReadonlySet<string> = new Set([
  '的', '了', '是', '很', '也', '都', '和', '在', '就', '我', '这', '那', '个',
  'の', 'は', 'が', 'を', 'に', 'で', 'と', 'も', 'た', 'す', 'い', 'ー',
]);

// Text past this many UTF-16 units per wanted token is never looked at: it bounds the work of
// normalisation and matching for huge inputs (a token plus separator is ~6 units on average).
const CHARS_PER_TOKEN_BUDGET = 64;

/**
 * Splits text into lowercase tokens, at most maxTokens of them. Never throws on odd input (emoji,
 * RTL, lone surrogates, control chars): anything that is not a letter, digit or mark separates.
 */
export function tokenize(text: string, maxTokens = 256): string[] {
  const tokens: string[] = [];
  if (maxTokens <= 0 || text.length === 0) return tokens;

  const budget = maxTokens * CHARS_PER_TOKEN_BUDGET;
  const input = text.length > budget ? text.slice(0, budget) : text;
  // NFKC folds full-width Latin, ligatures and half-width katakana into their usual forms;
  // toLowerCase (not toLocaleLowerCase) gives the same tokens on every host.
  const clean = input
    .normalize('NFKC')
    .toLowerCase()
    .replace(FORMAT_CHARS, '')
    .replace(CONTROL_CHARS, ' ');

  RUNS.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = RUNS.exec(clean)) !== null) {
    const cjk = m[1];
    if (cjk !== undefined) {
      if (!pushCjk(cjk, tokens, maxTokens)) break;
      continue;
    }
    const word = m[0];
    // One code point (length 1, or 2 for an astral letter) says too little to be worth a slot.
    if (word.length === 1 || (word.length === 2 && word.codePointAt(0)! > 0xffff)) continue;
    if (STOPWORDS.has(word)) continue;
    tokens.push(word);
    if (tokens.length >= maxTokens) break;
  }
  RUNS.lastIndex = 0;
  return tokens;
}

/**
 * Emits unigram, bigram, unigram, bigram... for a CJK run, interleaved so that truncation at
 * maxTokens keeps both kinds for the text it covers. Returns false once the bound is reached.
 */
function pushCjk(run: string, tokens: string[], maxTokens: number): boolean {
  let i = 0;
  while (i < run.length) {
    // Step by code point: Han extension B and later are surrogate pairs.
    const w = run.codePointAt(i)! > 0xffff ? 2 : 1;
    const ch = run.slice(i, i + w);
    if (!CJK_STOP_UNIGRAMS.has(ch)) {
      tokens.push(ch);
      if (tokens.length >= maxTokens) return false;
    }
    const j = i + w;
    if (j < run.length) {
      const w2 = run.codePointAt(j)! > 0xffff ? 2 : 1;
      tokens.push(run.slice(i, j + w2));
      if (tokens.length >= maxTokens) return false;
    }
    i = j;
  }
  return true;
}
