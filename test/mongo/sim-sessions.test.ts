/**
 * The simulator's session table on its own, with a clock the test moves: what mongod
 * does when time passes (transactionLifetimeLimitSeconds, logicalSessionTimeoutMinutes)
 * cannot be waited for through the driver.
 */
import { UUID } from "bson";
import { describe, expect, it } from "vitest";
import { Oplog } from "../../src/mongo/sim/oplog";
import { Store } from "../../src/mongo/sim/store";
import { SESSION_TIMEOUT_MS, Sessions, TRANSACTION_LIFETIME_MS } from "../../src/mongo/sim/transactions";

function setup() {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const oplog = new Oplog(1000, clock);
  const store = new Store(oplog);
  store.create("db", "c", {});
  const sessions = new Sessions(store, oplog, clock);
  /** Starts a transaction on a new session that inserts {_id: id}. */
  const open = (id: number) => {
    const lsid = { id: new UUID() };
    const txn = sessions.statement("insert", { insert: "c", lsid, txnNumber: 1, autocommit: false, startTransaction: true })!;
    const view = sessions.view(txn);
    view.insert("db", view.get("db", "c")!, { _id: id });
    return { lsid, txn };
  };
  return { sessions, store, oplog, open, advance: (ms: number) => (now += ms) };
}

describe("session table", () => {
  it("an open transaction past transactionLifetimeLimitSeconds is aborted and its locks are free", () => {
    const { sessions, open, advance } = setup();
    const { txn } = open(1);
    expect(sessions.lockedBy("db", "c", 1)).toBe(txn);
    advance(TRANSACTION_LIFETIME_MS + 1);
    expect(sessions.lockedBy("db", "c", 1)).toBeUndefined();
    expect(txn.state).toBe("aborted");
  });

  it("a session unused for logicalSessionTimeoutMinutes is forgotten with its transaction once another session appears", () => {
    const { sessions, store, open, advance } = setup();
    const first = open(1);
    advance(SESSION_TIMEOUT_MS + 1);
    open(2);
    expect(first.txn.state).toBe("aborted");
    expect(sessions.openTransactions()).toHaveLength(1);
    // Its next statement finds no transaction: the session started over.
    expect(() => sessions.statement("insert", { insert: "c", lsid: first.lsid, txnNumber: 1, autocommit: false })).toThrow(
      /does not match any in-progress transactions/,
    );
    expect(store.get("db", "c")!.docs.size).toBe(0);
  });

  it("a writer waiting for a lock goes on when the holder commits", async () => {
    const { sessions, store, open } = setup();
    const { txn } = open(1);
    const waiting = sessions.blocking("db", "c", [1]);
    expect(waiting).toBeInstanceOf(Promise);
    sessions.commit(txn);
    await waiting;
    expect(sessions.blocking("db", "c", [1])).toBeUndefined();
    expect([...store.get("db", "c")!.docs.values()]).toEqual([{ _id: 1 }]);
  });

  it("a commit is one applyOps oplog entry with every write, the session and the transaction number; an abort logs nothing", () => {
    const { sessions, oplog, open } = setup();
    const before = oplog.size;
    const { lsid, txn } = open(1);
    const view = sessions.view(txn);
    const coll = view.get("db", "c")!;
    view.write("db", coll, { _id: 1 }, { _id: 1, v: 2 }, { op: "replace" });
    view.insert("db", view.get("db", "c")!, { _id: 2 });
    expect(oplog.size).toBe(before); // nothing until the commit
    sessions.commit(txn);
    expect(oplog.size).toBe(before + 1);
    const [entry] = [...oplog.newerThan(oplog.truncatedThrough)];
    expect(entry).toMatchObject({ op: "applyOps", txnNumber: 1, lsid: { id: lsid.id } });
    expect(entry!.lsid!.uid).toBeDefined();
    expect(entry!.ops!.map((o) => [o.op, o.db, o.coll, o.id])).toEqual([
      ["insert", "db", "c", 1],
      ["replace", "db", "c", 1],
      ["insert", "db", "c", 2],
    ]);
    const aborted = open(3);
    sessions.abortCommand(aborted.txn);
    expect(oplog.size).toBe(before + 1);
  });
});
