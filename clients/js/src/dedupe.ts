/**
 * The ids seen most recently, at most `limit` of them: delivery is at least once (docs/design.md: Messages),
 * so a message may arrive twice — from a retried post, from two sockets during a planned reconnect, or
 * again in a resume (docs/design.md: History and resume). Older ids fall out first.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly limit: number) {}

  /** Records `id`; false when it was already among the recent ones. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.limit) {
      // A Set iterates in insertion order: the first value is the oldest.
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}
