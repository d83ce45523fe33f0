// Server version and topology of the backend, read once through the
// internal client (spec "Initializing the Test Runner").
import type { Document, MongoClient } from "mongodb";
import type { ServerInfo, Topology, Version } from "./requirements.js";

/** Version from buildInfo.versionArray[0..2]; the version string may carry
 *  pre-release suffixes that must not take part in comparisons. */
export function versionFromBuildInfo(buildInfo: Document): Version {
  const arr = buildInfo.versionArray as unknown[] | undefined;
  if (!Array.isArray(arr) || arr.length < 3) throw new Error(`buildInfo has no usable versionArray: ${JSON.stringify(buildInfo.versionArray)}`);
  return [Number(arr[0]), Number(arr[1]), Number(arr[2])];
}

/** "replicaset" needs a replica set with a primary (a single-node set counts);
 *  mongos answers hello with msg "isdbgrid"; anything else is "single". */
export function topologyFromHello(hello: Document, url: string): Topology {
  if (/[?&]loadBalanced=true(&|$)/i.test(url)) return "load-balanced";
  if (hello.msg === "isdbgrid") return "sharded";
  if (typeof hello.setName === "string") {
    if (hello.isWritablePrimary === true || hello.ismaster === true || typeof hello.primary === "string") return "replicaset";
    throw new Error(`replica set ${hello.setName} has no primary; cannot run conformance tests`);
  }
  return "single";
}

/** Credentials in the URL mean the deployment uses auth. */
export function urlHasAuth(url: string): boolean {
  const rest = url.slice(url.indexOf("://") + 3);
  const authority = rest.split(/[/?]/)[0];
  return authority!.includes("@");
}

export async function readServerInfo(internal: MongoClient, url: string): Promise<ServerInfo> {
  const admin = internal.db("admin");
  const buildInfo = await admin.command({ buildInfo: 1 });
  const hello = await admin.command({ hello: 1 });
  let params: Promise<Record<string, unknown> | undefined> | undefined;
  return {
    version: versionFromBuildInfo(buildInfo),
    topology: topologyFromHello(hello, url),
    serverless: false,
    auth: urlHasAuth(url),
    secondaries: Math.max(0, (Array.isArray(hello.hosts) ? hello.hosts.length : 1) + (Array.isArray(hello.passives) ? hello.passives.length : 0) - 1),
    // Fetched at most once, and only when some requirement asks for it.
    serverParameters: () =>
      (params ??= admin.command({ getParameter: "*" }).then(
        (r) => r as Record<string, unknown>,
        () => undefined,
      )),
  };
}
