/**
 * Dead letters (serve only; on AWS the dead-letter queue is SQS's): a page at a time
 * (`GET /v1/dead-letters`), filtered by tenant, each letter's body on demand, and redrive of
 * one letter or all (the filter's), each after a confirmation dialog.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { withQuery } from "../api.ts";
import type { ViewProps } from "../routes.ts";
import { Alert, Empty, Loading, messageOf, Pager } from "./states.tsx";

export const PAGE_SIZE = 50;

interface Letter {
  id: string;
  body: string;
  error: string;
  receiveCount: number;
  deadAt: string;
  tenant?: string | null;
}

/** The letter's tenant: the API's, else the envelope's target tenant, else none. */
export function letterTenant(letter: Letter): string {
  if (letter.tenant) return letter.tenant;
  try {
    const body = JSON.parse(letter.body) as { target?: { tenant?: unknown }; tenant?: unknown };
    const tenant = body.target?.tenant ?? body.tenant;
    return typeof tenant === "string" ? tenant : "";
  } catch {
    return "";
  }
}

export function DeadLetters({ session, config }: ViewProps) {
  const { api } = session;
  const [filterText, setFilterText] = useState("");
  const [filter, setFilter] = useState("");
  const [pages, setPages] = useState<(string | undefined)[]>([undefined]);
  const [letters, setLetters] = useState<Letter[] | undefined>();
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | undefined>();
  const [shown, setShown] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<{ id?: string } | undefined>();
  const [result, setResult] = useState<string | undefined>();
  const [reloads, setReloads] = useState(0);
  const dialog = useRef<HTMLDialogElement>(null);
  const cursor = pages[pages.length - 1];

  useEffect(() => {
    if (config.deployment !== "serve") return undefined;
    let alive = true;
    setLetters(undefined);
    setError(undefined);
    api<{ items: Letter[]; next: string | null }>(
      "GET",
      withQuery("/v1/dead-letters", { limit: PAGE_SIZE, next: cursor, tenant: filter }),
    ).then(
      (answer) => {
        if (!alive) return;
        setLetters(answer.items);
        setNext(answer.next);
      },
      (failure) => alive && setError(messageOf(failure)),
    );
    return () => {
      alive = false;
    };
  }, [api, filter, cursor, reloads, config.deployment]);

  useEffect(() => {
    if (pending) dialog.current?.showModal?.();
    else dialog.current?.close?.();
  }, [pending]);

  if (config.deployment !== "serve") {
    return (
      <section aria-labelledby="dead-title">
        <h2 id="dead-title">Dead letters</h2>
        <p>
          On AWS the dead letters are in the publisher's SQS dead-letter queue: inspect and redrive them with
          SQS's own redrive (console or `aws sqs start-message-move-task`).
        </p>
      </section>
    );
  }

  async function redrive(): Promise<void> {
    const id = pending?.id;
    setPending(undefined);
    setResult(undefined);
    setError(undefined);
    try {
      const answer = await api<{ redriven: number }>(
        "POST",
        withQuery("/v1/dead-letters/redrive", { tenant: filter, id }),
      );
      setResult(`Redriven: ${answer.redriven}`);
      setPages([undefined]);
      setReloads((n) => n + 1);
    } catch (failure) {
      setError(`Redrive failed: ${messageOf(failure)}`);
    }
  }

  const scope = filter === "" ? "every dead letter you may see" : `every dead letter of tenant ${filter}`;
  return (
    <section aria-labelledby="dead-title">
      <h2 id="dead-title">Dead letters</h2>
      <form
        class="row"
        onSubmit={(event) => {
          event.preventDefault();
          setFilter(filterText.trim());
          setPages([undefined]);
          setReloads((n) => n + 1);
        }}
      >
        <span>
          <label for="dead-tenant">Tenant filter</label>
          <input id="dead-tenant" value={filterText} onInput={(e) => setFilterText(e.currentTarget.value)} />
        </span>
        <button type="submit">Apply</button>
        <button type="button" onClick={() => setPending({})} disabled={!letters || letters.length === 0}>
          Redrive all
        </button>
      </form>
      <Alert message={error} />
      {result && <p data-testid="redrive-result">{result}</p>}
      {letters === undefined && !error && <Loading what="dead letters" />}
      {letters !== undefined && letters.length === 0 && <Empty>No dead letters{filter ? ` of ${filter}` : ""}.</Empty>}
      {letters !== undefined && letters.length > 0 && (
        <table>
          <caption>Dead letters</caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Tenant</th>
              <th scope="col">Error</th>
              <th scope="col">Receive count</th>
              <th scope="col">Dead at</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {letters.map((letter) => (
              <tr key={letter.id}>
                <td class="mono">{letter.id}</td>
                <td>{letterTenant(letter) || "—"}</td>
                <td>
                  {letter.error}
                  {shown.has(letter.id) && <pre class="body">{letter.body}</pre>}
                </td>
                <td class="num">{letter.receiveCount}</td>
                <td class="nowrap">{letter.deadAt}</td>
                <td class="actions">
                  <button
                    type="button"
                    aria-expanded={shown.has(letter.id)}
                    onClick={() => {
                      const copy = new Set(shown);
                      if (!copy.delete(letter.id)) copy.add(letter.id);
                      setShown(copy);
                    }}
                  >
                    Show body
                  </button>
                  <button type="button" onClick={() => setPending({ id: letter.id })}>
                    Redrive
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager pages={pages} next={next} onPages={setPages} />
      <dialog ref={dialog} aria-labelledby="redrive-title" onClose={() => setPending(undefined)}>
        <h3 id="redrive-title">Redrive?</h3>
        <p>
          {pending?.id !== undefined
            ? `Redrive dead letter ${pending.id}: it goes back to the queue and is delivered again.`
            : `Redrive ${scope}: they go back to the queue and are delivered again.`}
        </p>
        <div class="row">
          <button type="button" class="primary" onClick={() => void redrive()}>
            Confirm redrive
          </button>
          <button type="button" onClick={() => setPending(undefined)}>
            Cancel
          </button>
        </div>
      </dialog>
    </section>
  );
}
