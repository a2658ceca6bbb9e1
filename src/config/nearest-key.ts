// Suggestion of the known setting a misspelled key was probably meant to be.

/**
 * Returns the known key closest to `key`, or undefined when none is close
 * enough to be a likely typo. Distance is the optimal string alignment
 * distance (Levenshtein plus swaps of two neighbors), ignoring case. A
 * suggestion may be one edit away per three characters of `key`, and one edit at least.
 */
export function findNearestKey(key: string, knownKeys: readonly string[]): string | undefined {
  const maxDistance = Math.max(1, Math.floor(key.length / 3));
  let nearest: string | undefined;
  let nearestDistance = Infinity;
  for (const known of knownKeys) {
    const distance = editDistance(key.toLowerCase(), known.toLowerCase());
    if (distance <= maxDistance && distance < nearestDistance) {
      nearest = known;
      nearestDistance = distance;
    }
  }
  return nearest;
}

/** Optimal string alignment distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  // rows[i][j] is the distance between the first i characters of a and the first j of b.
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(i === 0 ? j : 0);
    rows.push(row);
  }

  const at = (i: number, j: number): number => rows[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i]!;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
}
