/** The states every view shows: loading, empty, and the API's error as an alert. */
import { useEffect, useRef } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { ApiError } from "../api.ts";

export function Loading({ what }: { what: string }) {
  return (
    <p class="state" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="state empty">{children}</p>;
}

/** The message an error shows: the API's `message` when it sent one. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError || error instanceof Error) return error.message;
  return String(error);
}

/**
 * `role="alert"` with the message; takes the focus when its message changes (so a keyboard
 * user lands on it), unless `quiet` (errors of a view refreshing on its own).
 */
export function Alert({ message, quiet = false }: { message: string | undefined; quiet?: boolean }) {
  const ref = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (message && !quiet) ref.current?.focus();
  }, [message, quiet]);
  if (!message) return null;
  return (
    <p class="alert" role="alert" tabIndex={-1} ref={ref}>
      {message}
    </p>
  );
}

/** "First page" (when past it) and "Next page" (when the API gave a `next`). */
export function Pager({
  pages,
  next,
  onPages,
}: {
  pages: (string | undefined)[];
  next: string | null | undefined;
  onPages: (pages: (string | undefined)[]) => void;
}) {
  return (
    <div class="row">
      {pages.length > 1 && (
        <button type="button" onClick={() => onPages([undefined])}>
          First page
        </button>
      )}
      {next && (
        <button type="button" onClick={() => onPages([...pages, next])}>
          Next page
        </button>
      )}
    </div>
  );
}

/** A labelled select of tenants (`*` shown as broadcasts). */
export function TenantSelect(props: { id: string; label: string; value: string; tenants: string[]; onChange: (tenant: string) => void }) {
  return (
    <span>
      <label for={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.tenants.map((t) => (
          <option value={t} key={t}>
            {t === "*" ? "* (broadcasts)" : t}
          </option>
        ))}
      </select>
    </span>
  );
}

/** A labelled text input. */
export function TextField(props: {
  id: string;
  label: string;
  value: string;
  placeholder?: string;
  wide?: boolean;
  onInput: (value: string) => void;
}) {
  return (
    <span class={props.wide ? "wide" : undefined}>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        value={props.value}
        placeholder={props.placeholder ?? ""}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
    </span>
  );
}
