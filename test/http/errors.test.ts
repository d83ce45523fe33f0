import { describe, expect, it } from "vitest";
import { FlowsyncError, isFlowsyncError } from "../../src/errors";

describe("FlowsyncError", () => {
  it("carries code, default status/expose, cause and an explicit name", () => {
    const cause = new Error("root");
    const err = new FlowsyncError("E_FLOW_ID_INVALID", "flowId must not be empty", { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: "FlowsyncError", code: "E_FLOW_ID_INVALID", status: 400, expose: true, cause });
    expect(String(err)).toBe("FlowsyncError: flowId must not be empty");
  });

  it("hides the message of non-exposed errors in its JSON body", () => {
    expect(new FlowsyncError("E_FLOW_ID_INVALID", "bad flowId").toJSON()).toEqual({
      error: { code: "E_FLOW_ID_INVALID", message: "bad flowId" },
    });
    expect(new FlowsyncError("E_FILTER_INVALID", "secret path /etc").toJSON()).toEqual({
      error: { code: "E_FILTER_INVALID", message: "internal error" },
    });
  });

  it("lets status and expose be overridden, and is recognised by code", () => {
    const err = new FlowsyncError("E_INTERNAL", "x", { status: 503, expose: true });
    expect([err.status, err.expose]).toEqual([503, true]);
    expect(isFlowsyncError(err)).toBe(true);
    expect(isFlowsyncError(err, "E_INTERNAL")).toBe(true);
    expect(isFlowsyncError(err, "E_NOT_FOUND")).toBe(false);
    expect(isFlowsyncError(new Error("x"))).toBe(false);
  });
});
