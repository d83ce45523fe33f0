/**
 * What an instance started, stopped in reverse order. The same list serves the
 * graceful stop and the rollback of a start that failed halfway, so the two
 * cannot disagree about what exists or in which order it goes.
 */
export interface StopList {
  /** Registers how to stop what was just started. */
  push(stop: () => unknown): void;
  /**
   * Runs the stops, last registered first, each awaited; idempotent. A stop that
   * fails does not keep the earlier ones from running: the first failure is
   * thrown once all have run.
   */
  stopAll(): Promise<void>;
}

export function stopList(): StopList {
  const stops: Array<() => unknown> = [];
  let stopping: Promise<void> | undefined;
  return {
    push: (stop) => void stops.push(stop),
    stopAll: () =>
      (stopping ??= (async () => {
        const failures: unknown[] = [];
        for (let stop = stops.pop(); stop; stop = stops.pop())
          await Promise.resolve()
            .then(stop)
            .catch((err: unknown) => failures.push(err));
        if (failures.length > 0) throw failures[0];
      })()),
  };
}
