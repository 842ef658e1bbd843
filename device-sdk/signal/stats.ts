/**
 * Medians shared by the ECG and PCG signal code (QRS thresholds, beat templates, AF irregularity, PCG
 * cycle templates and heart rate).
 *
 * - `median`: the middle value of an odd count, the mean of the two middle values of an even count.
 * - `upperMedian`: the larger of the two middle values of an even count (the value at index `n >> 1`
 *   of the sorted list); the PCG heart rate uses it.
 * - `medianInPlace`: `median` of the first `n` values of the caller's scratch buffer, reordering them
 *   (no copy).
 *
 * An empty list, or one holding a NaN, has no median: the result is NaN. Callers that skip unknown
 * values (the AF detector's atrial correlations) filter them out first; callers that want 0 for an
 * empty list say so.
 *
 * Nothing is allocated per call: `median` and `upperMedian` copy into a module scratch buffer that only
 * grows (the functions call nothing back, so one buffer serves every caller), short lists are
 * insertion-sorted and longer ones partially ordered by selection (O(n)). The QRS detector and the beat
 * features call these per beat.
 */

/** Lists up to this long are insertion-sorted; longer ones go through `selectInPlace`. */
const INSERTION_MAX = 32;

let scratch = new Float64Array(64);

/** Median of the first `n` values (all of them by default); `values` is not modified. NaN if empty or any is NaN. */
export function median(values: ArrayLike<number>, n: number = values.length): number {
  return middle(copyToScratch(values, n), n, false);
}

/** Upper median of the first `n` values: for an even count the larger middle value, not the mean of the two. */
export function upperMedian(values: ArrayLike<number>, n: number = values.length): number {
  return middle(copyToScratch(values, n), n, true);
}

/** Median of `buffer[0..n)`, reordering those values in place (the rest of the buffer is untouched). */
export function medianInPlace(buffer: Float64Array, n: number = buffer.length): number {
  checkCount(n, buffer.length);
  for (let i = 0; i < n; i++) if (Number.isNaN(buffer[i] as number)) return Number.NaN;
  return middle(buffer, n, false);
}

function checkCount(n: number, length: number): void {
  if (!Number.isInteger(n) || n < 0 || n > length) throw new RangeError(`median count ${n} must be an integer in 0..${length}`);
}

/** The first `n` values copied into the module scratch, or undefined when one of them is NaN. */
function copyToScratch(values: ArrayLike<number>, n: number): Float64Array | undefined {
  checkCount(n, values.length);
  if (n > scratch.length) scratch = new Float64Array(2 * n);
  const s = scratch;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (Number.isNaN(v)) return undefined;
    s[i] = v;
  }
  return s;
}

/** The median (or upper median) of `s[0..n)`, NaN-free, reordering those values. */
function middle(s: Float64Array | undefined, n: number, upper: boolean): number {
  if (s === undefined || n === 0) return Number.NaN;
  const m = n >> 1;
  if (n <= INSERTION_MAX) {
    for (let i = 1; i < n; i++) {
      const v = s[i] as number;
      let j = i - 1;
      while (j >= 0 && (s[j] as number) > v) {
        s[j + 1] = s[j] as number;
        j--;
      }
      s[j + 1] = v;
    }
    return n % 2 || upper ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
  }
  selectInPlace(s, n, m);
  if (n % 2 || upper) return s[m] as number;
  // s[0..m) holds the m smallest values: the lower middle value is the largest of them.
  let lower = s[0] as number;
  for (let i = 1; i < m; i++) if ((s[i] as number) > lower) lower = s[i] as number;
  return (lower + (s[m] as number)) / 2;
}

function swap(s: Float64Array, i: number, j: number): void {
  const t = s[i] as number;
  s[i] = s[j] as number;
  s[j] = t;
}

/**
 * Reorders `s[0..n)` so that `s[k]` is the value of rank k and `s[i] <= s[k] <= s[j]` for i < k < j
 * (median-of-three quickselect, Numerical Recipes `select`; values must not be NaN).
 */
function selectInPlace(s: Float64Array, n: number, k: number): void {
  let l = 0;
  let ir = n - 1;
  for (;;) {
    if (ir <= l + 1) {
      if (ir === l + 1 && (s[ir] as number) < (s[l] as number)) swap(s, l, ir);
      return;
    }
    const mid = (l + ir) >> 1;
    swap(s, mid, l + 1);
    if ((s[l] as number) > (s[ir] as number)) swap(s, l, ir);
    if ((s[l + 1] as number) > (s[ir] as number)) swap(s, l + 1, ir);
    if ((s[l] as number) > (s[l + 1] as number)) swap(s, l, l + 1);
    let i = l + 1;
    let j = ir;
    const pivot = s[l + 1] as number;
    for (;;) {
      do i++;
      while ((s[i] as number) < pivot);
      do j--;
      while ((s[j] as number) > pivot);
      if (j < i) break;
      swap(s, i, j);
    }
    s[l + 1] = s[j] as number;
    s[j] = pivot;
    if (j >= k) ir = j - 1;
    if (j <= k) l = i;
  }
}
