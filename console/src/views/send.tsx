/**
 * Send: the publish form (`POST /v1/messages`) for every target type the admin may use,
 * then the message's receipt read every second until it is final; and, when asked, a live
 * socket on the signed-in token listing what it receives.
 */
import { useEffect, useState } from "preact/hooks";
import { seg, withQuery } from "../api.ts";
import { buildEnvelope, checkJson, formatJson, targetTypes, type SendForm, type TargetType } from "../envelope.ts";
import { followReceipt, isFinal, progressText, type Receipt } from "../receipt.ts";
import type { ViewProps } from "../routes.ts";
import { Listen } from "./listen.tsx";
import { Alert, Loading, messageOf, TextField } from "./states.tsx";

const BLANK: SendForm = {
  targetType: "users",
  tenant: "",
  users: "",
  connections: "",
  data: '{\n  "text": "hello"\n}',
  id: "",
  expiresIn: "",
  pushTitle: "",
  pushBody: "",
};

export function Send({ session, config }: ViewProps) {
  const { api, caller } = session;
  const [form, setForm] = useState<SendForm>({ ...BLANK, tenant: caller.tenant });
  const [pushOn, setPushOn] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [receipt, setReceipt] = useState<Receipt | undefined>();
  const [receiptNote, setReceiptNote] = useState<string | undefined>();
  const [sent, setSent] = useState<{ id: string; tenant: string | undefined } | undefined>();

  useEffect(() => {
    let alive = true;
    api("GET", "/v1/push/vapid-public-key").then(
      () => alive && setPushOn(true),
      () => alive && setPushOn(false),
    );
    return () => {
      alive = false;
    };
  }, [api]);

  useEffect(() => {
    if (!sent) return undefined;
    const follow = followReceipt(
      () => api<Receipt>("GET", withQuery(`/v1/messages/${seg(sent.id)}`, { tenant: sent.tenant })),
      {
        onReceipt: setReceipt,
        onError: (failure) => setReceiptNote(`The receipt could not be read: ${messageOf(failure)}`),
        onGiveUp: () => setReceiptNote("Still not final after 10 minutes: no longer following it."),
      },
    );
    return () => follow.stop();
  }, [api, sent]);

  const set = <K extends keyof SendForm>(key: K, value: SendForm[K]): void => setForm({ ...form, [key]: value });
  const data = checkJson(form.data);
  const types = targetTypes(caller.globalAdmin);
  const pushable = pushOn && (form.targetType === "users" || form.targetType === "tenant");

  async function send(): Promise<void> {
    setError(undefined);
    setResult(undefined);
    setReceipt(undefined);
    setReceiptNote(undefined);
    setSent(undefined);
    const built = buildEnvelope(form, new Date(), pushOn);
    if (!built.ok) {
      setError(built.message);
      return;
    }
    setBusy(true);
    try {
      const answer = await api<{ id: string; status?: string }>("POST", "/v1/messages", built.envelope);
      setResult(answer.status ? `Accepted: ${answer.id} (earlier, with this id)` : `Accepted: ${answer.id}`);
      const tenant = form.targetType === "broadcast" ? undefined : form.tenant.trim();
      setSent({ id: answer.id, tenant });
    } catch (failure) {
      setError(`Not sent: ${messageOf(failure)}`);
    }
    setBusy(false);
  }

  return (
    <section aria-labelledby="send-title">
      <h2 id="send-title">Send</h2>
      <form
        aria-label="Send a message"
        onSubmit={(event) => {
          event.preventDefault();
          if (data.ok && !busy) void send();
        }}
      >
        <div class="row">
          <span>
            <label for="send-type">Target type</label>
            <select
              id="send-type"
              value={form.targetType}
              onChange={(e) => set("targetType", e.currentTarget.value as TargetType)}
            >
              {types.map((t) => (
                <option value={t} key={t}>
                  {t}
                </option>
              ))}
            </select>
          </span>
          {form.targetType !== "broadcast" && (
            <TextField id="send-tenant" label="Tenant" value={form.tenant} onInput={(v) => set("tenant", v)} />
          )}
          {form.targetType === "users" && (
            <TextField id="send-users" label="Users" wide value={form.users} placeholder="alice, bob" onInput={(v) => set("users", v)} />
          )}
          {form.targetType === "connections" && (
            <TextField id="send-connections" label="Connections" wide value={form.connections} placeholder="connection ids, comma-separated" onInput={(v) => set("connections", v)} />
          )}
        </div>
        <label for="send-data">Data (JSON)</label>
        <textarea
          id="send-data"
          rows={6}
          spellcheck={false}
          class="mono"
          aria-invalid={!data.ok}
          aria-describedby="send-data-error"
          value={form.data}
          onInput={(e) => set("data", e.currentTarget.value)}
        />
        <p id="send-data-error" class="field-error" data-testid="data-error">
          {data.ok ? "" : data.message}
        </p>
        <button type="button" onClick={() => set("data", formatJson(form.data))} disabled={!data.ok}>
          Format JSON
        </button>
        <div class="row">
          <TextField id="send-id" label="Message id" value={form.id} placeholder="optional" onInput={(v) => set("id", v)} />
          <span>
            <label for="send-expires">Expires in seconds</label>
            <input
              id="send-expires"
              inputMode="numeric"
              placeholder="optional"
              value={form.expiresIn}
              onInput={(e) => set("expiresIn", e.currentTarget.value)}
            />
          </span>
          {pushable && (
            <>
              <TextField id="send-push-title" label="Push title" value={form.pushTitle} onInput={(v) => set("pushTitle", v)} />
              <TextField id="send-push-body" label="Push body" value={form.pushBody} onInput={(v) => set("pushBody", v)} />
            </>
          )}
        </div>
        <button type="submit" class="primary" disabled={!data.ok || busy}>
          Send
        </button>
      </form>
      <Alert message={error} />
      {busy && <Loading what="the answer to the publish" />}
      {result && <p data-testid="send-result">{result}</p>}
      {sent && !receipt && !receiptNote && <Loading what="the receipt" />}
      {receipt && (
        <dl class="receipt">
          <dt>Status</dt>
          <dd data-testid="receipt-status">{receipt.status}</dd>
          <dt>Progress</dt>
          <dd data-testid="receipt-progress">{progressText(receipt)}</dd>
          {isFinal(receipt) && (
            <>
              <dt>Final</dt>
              <dd data-testid="receipt-final">final: nothing more will change</dd>
            </>
          )}
        </dl>
      )}
      <Alert message={receiptNote} quiet />
      <Listen session={session} config={config} />
    </section>
  );
}
