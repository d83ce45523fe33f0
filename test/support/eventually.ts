/**
 * The one polling helper of the tests: for state that changes without telling
 * anyone (a counter, what the server reports). A stream's own events are
 * awaited with `SseClient.until` instead, which wakes on every chunk.
 */

/**
 * Calls `check` every 20 ms until it returns something other than `false` and
 * does not throw; resolves with what it returned. `check` is a predicate
 * (`() => n === 2`) or an assertion (`() => expect(n).toBe(2)`). After
 * `timeoutMs` it rejects with the assertion's last error, or with
 * "timed out waiting for `what`" when the predicate was still false.
 */
export async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== false) return value as Exclude<T, false>;
      failure = new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    } catch (err) {
      failure = err;
    }
    if (Date.now() >= deadline) throw failure;
    await new Promise((r) => setTimeout(r, 20));
  }
}
