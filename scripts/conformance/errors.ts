// Failure kinds of the conformance runner. A test fails on the first thrown
// error; the message is what the report prints, so keep messages short.

/** A feature of the unified test format that this runner does not implement.
 *  It must fail the test loudly: a silently skipped check would report a pass
 *  the backend never earned. */
export class UnimplementedError extends Error {
  constructor(what: string) {
    super(`unimplemented: ${what}`);
    this.name = "UnimplementedError";
  }
}

/** The test cannot run on this deployment for a reason its runOnRequirements do not state
 *  (e.g. it needs a secondary); it is reported as not applicable, with the reason. */
export class NotApplicable extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "NotApplicable";
  }
}

/** Everything the test checks matched except what a known deviation of the installed driver
 *  explains (driver-deviations.ts): the backend earned the rest. Reported on its own, never as
 *  passed and never as not applicable, because a real mongod with this driver gives the same. */
export class DriverDeviationError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "DriverDeviationError";
  }
}

/** An expectation of the test file that the backend did not meet. */
export class AssertionFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AssertionFailure";
  }
}

/** The test file itself is malformed (unknown entity, duplicate id, ...). */
export class TestFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TestFileError";
  }
}

/** Runs `work` but gives up after `ms`: a backend that never answers (for
 *  example a change stream that never yields) must fail one test, not hang the
 *  whole run. The abandoned promise is left to settle on its own. */
export async function withTimeout<T>(what: string, ms: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AssertionFailure(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const prefix =
      err instanceof AssertionFailure || err instanceof UnimplementedError || err instanceof TestFileError
        ? ""
        : `${err.name}${code !== undefined ? ` (code ${String(code)})` : ""}: `;
    return `${prefix}${err.message}`;
  }
  return String(err);
}
