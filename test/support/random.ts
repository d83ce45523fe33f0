/** A small seeded PRNG (mulberry32) so randomized tests can be replayed from their printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from TEST_SEED, or a fresh one; printed so a failure can be replayed. */
export function testSeed(label: string): number {
  const seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: seed ${seed} (replay with TEST_SEED=${seed})`);
  return seed;
}
