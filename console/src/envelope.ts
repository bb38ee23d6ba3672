/** The Send form's pure logic: target types, the data editor's JSON check, the envelope. */

export type TargetType = "users" | "tenant" | "connections" | "broadcast";

/** Target types offered to the signed-in admin: `broadcast` only to a global admin. */
export function targetTypes(globalAdmin: boolean): TargetType[] {
  const types: TargetType[] = ["users", "tenant", "connections"];
  return globalAdmin ? [...types, "broadcast"] : types;
}

export type JsonCheck = { ok: true; value: unknown } | { ok: false; message: string };

/** The data editor's text as JSON, or why it is not. */
export function checkJson(text: string): JsonCheck {
  if (text.trim() === "") return { ok: false, message: "Data is empty: write a JSON value" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: `Invalid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** The text pretty-printed (2 spaces), or unchanged when it is not JSON. */
export function formatJson(text: string): string {
  const check = checkJson(text);
  return check.ok ? JSON.stringify(check.value, null, 2) : text;
}

export interface SendForm {
  targetType: TargetType;
  tenant: string;
  /** Comma-separated. */
  users: string;
  /** Comma-separated. */
  connections: string;
  data: string;
  /** Optional. */
  id: string;
  /** Optional: seconds from now. */
  expiresIn: string;
  pushTitle: string;
  pushBody: string;
}

export type Built = { ok: true; envelope: Record<string, unknown> } | { ok: false; message: string };

/** A comma-separated list, trimmed, empties dropped. */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** The publish API's envelope (docs/design.md: Messages) from the form, or what is missing. */
export function buildEnvelope(form: SendForm, now: Date, pushOn: boolean): Built {
  const data = checkJson(form.data);
  if (!data.ok) return data;
  const tenant = form.tenant.trim();
  let target: Record<string, unknown>;
  if (form.targetType === "broadcast") {
    target = { type: "broadcast" };
  } else if (tenant === "") {
    return { ok: false, message: "Tenant is required" };
  } else if (form.targetType === "users") {
    const users = splitList(form.users);
    if (users.length === 0) return { ok: false, message: "Users: name at least one user" };
    target = { type: "users", tenant, users };
  } else if (form.targetType === "connections") {
    const connectionIds = splitList(form.connections);
    if (connectionIds.length === 0) {
      return { ok: false, message: "Connections: name at least one connection id" };
    }
    target = { type: "connections", tenant, connectionIds };
  } else {
    target = { type: "tenant", tenant };
  }
  const envelope: Record<string, unknown> = { target, data: data.value };
  if (form.id.trim() !== "") envelope.id = form.id.trim();
  if (form.expiresIn.trim() !== "") {
    const seconds = Number(form.expiresIn.trim());
    if (!Number.isInteger(seconds) || seconds <= 0) {
      return { ok: false, message: "Expires in seconds: a whole number above 0" };
    }
    envelope.expiresAt = new Date(now.getTime() + seconds * 1000).toISOString();
  }
  const pushable = form.targetType === "users" || form.targetType === "tenant";
  if (pushOn && pushable && (form.pushTitle.trim() !== "" || form.pushBody.trim() !== "")) {
    const push: Record<string, string> = {};
    if (form.pushTitle.trim() !== "") push.title = form.pushTitle.trim();
    if (form.pushBody.trim() !== "") push.body = form.pushBody.trim();
    envelope.push = push;
  }
  return { ok: true, envelope };
}
