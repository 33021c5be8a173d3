import sharp from 'sharp';
import { seededRandom } from '../util/random.js';

export { seededRandom };

/**
 * A small seeded synthetic shop for the demo and the tests: categories with their own look (image
 * colour) and words (English and Chinese), ads per category, and users who prefer 1-2 categories.
 * Deterministic for a seed, so a run can be repeated.
 */
export interface CategorySpec {
  readonly id: string;
  readonly rgb: readonly [number, number, number];
  readonly en: readonly string[];
  readonly zh: readonly string[];
}

export const CATEGORIES: readonly CategorySpec[] = [
  { id: 'shoes', rgb: [200, 40, 40], en: ['running', 'shoes', 'sneakers', 'laces', 'sole', 'trainers'], zh: ['跑鞋', '运动鞋', '鞋带', '鞋底', '舒服'] },
  { id: 'phones', rgb: [40, 40, 200], en: ['phone', 'battery', 'screen', 'camera', 'charger', 'android'], zh: ['手机', '电池', '屏幕', '相机', '充电'] },
  { id: 'books', rgb: [40, 160, 40], en: ['novel', 'author', 'chapter', 'story', 'paperback', 'reading'], zh: ['小说', '作者', '章节', '故事', '阅读'] },
  { id: 'kitchen', rgb: [220, 180, 30], en: ['pan', 'knife', 'cooking', 'kettle', 'blender', 'recipe'], zh: ['锅', '刀具', '烹饪', '水壶', '食谱'] },
  { id: 'toys', rgb: [200, 60, 200], en: ['lego', 'puzzle', 'doll', 'kids', 'blocks', 'game'], zh: ['玩具', '拼图', '娃娃', '积木', '儿童'] },
  { id: 'beauty', rgb: [240, 150, 170], en: ['lipstick', 'cream', 'skin', 'perfume', 'serum', 'makeup'], zh: ['口红', '面霜', '皮肤', '香水', '化妆'] },
  { id: 'sports', rgb: [30, 180, 190], en: ['yoga', 'dumbbell', 'fitness', 'bike', 'tennis', 'gym'], zh: ['瑜伽', '哑铃', '健身', '自行车', '网球'] },
  { id: 'garden', rgb: [110, 80, 30], en: ['plants', 'soil', 'hose', 'seeds', 'shovel', 'flowers'], zh: ['植物', '土壤', '种子', '铁锹', '花园'] },
];

const COMMON_EN = ['great', 'good', 'value', 'quality', 'fast', 'delivery', 'recommend', 'nice'];
const COMMON_ZH = ['很好', '质量', '推荐', '快递', '满意', '不错'];

export function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

/** A product image with the category's colour plus per-pixel noise, encoded as PNG or JPEG. */
export async function productImage(cat: CategorySpec, rand: () => number, size = 64, format: 'png' | 'jpeg' | 'webp' = 'jpeg'): Promise<Buffer> {
  const px = Buffer.alloc(size * size * 3);
  for (let i = 0; i < px.length; i += 3) {
    for (let c = 0; c < 3; c++) px[i + c] = Math.max(0, Math.min(255, cat.rgb[c]! + Math.round((rand() - 0.5) * 60)));
  }
  return sharp(px, { raw: { width: size, height: size, channels: 3 } }).toFormat(format).toBuffer();
}

export function reviewText(cat: CategorySpec, rand: () => number, chinese: boolean): string {
  const words: string[] = [];
  const n = 4 + Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) {
    const own = rand() < 0.7;
    words.push(chinese ? pick(rand, own ? cat.zh : COMMON_ZH) : pick(rand, own ? cat.en : COMMON_EN));
  }
  return chinese ? words.join('') + '。' : words.join(' ') + '.';
}

export interface SyntheticAd {
  readonly adId: string;
  readonly advertiserId: string;
  readonly title: string;
  readonly description: string;
  readonly categoryId: string;
  readonly image: Buffer;
  readonly bidMicros: number;
}

export async function syntheticAds(perCategory: number, seed = 7): Promise<SyntheticAd[]> {
  const rand = seededRandom(seed);
  const ads: SyntheticAd[] = [];
  for (const cat of CATEGORIES) {
    for (let i = 0; i < perCategory; i++) {
      const zh = rand() < 0.5;
      ads.push({
        adId: `ad-${cat.id}-${i}`,
        advertiserId: `adv-${cat.id}-${i % 5}`,
        title: zh ? `${pick(rand, cat.zh)} ${pick(rand, cat.zh)} 特价` : `${pick(rand, cat.en)} ${pick(rand, cat.en)} sale`,
        description: reviewText(cat, rand, zh),
        categoryId: cat.id,
        image: await productImage(cat, rand, 32),
        bidMicros: 100_000 + Math.floor(rand() * 900_000),
      });
    }
  }
  return ads;
}

export interface SyntheticUser {
  readonly userId: string;
  /** The hidden interests the events are drawn from. */
  readonly interests: readonly CategorySpec[];
}

export function syntheticUsers(count: number, seed = 11): SyntheticUser[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => {
    const first = pick(rand, CATEGORIES);
    const second = rand() < 0.4 ? pick(rand, CATEGORIES) : first;
    return { userId: `user-${i}`, interests: first === second ? [first] : [first, second] };
  });
}
