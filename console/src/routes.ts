/** The views and their hash routes (`#/overview` is the default). */
export type Route = "overview" | "presence" | "send" | "dead-letters" | "usage";

export const ROUTES: { path: Route; label: string }[] = [
  { path: "overview", label: "Overview" },
  { path: "presence", label: "Presence" },
  { path: "send", label: "Send" },
  { path: "dead-letters", label: "Dead letters" },
  { path: "usage", label: "Usage" },
];

export function routeOf(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  return ROUTES.find((r) => r.path === path)?.path ?? "overview";
}

/** What every view gets. */
export interface ViewProps {
  session: import("./session.ts").Session;
  config: import("./session.ts").ConsoleConfig;
  /** Tenants the admin may pick: its own, those the deployment listed, those watched. */
  tenants: string[];
}
