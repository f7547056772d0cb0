/** Open sessions per user id: CONNECTION LIMIT, the server's maximum and the sessions gauge. */
export class ConnectionCounts {
  private readonly byUser = new Map<number, number>();

  of(userId: number): number {
    return this.byUser.get(userId) ?? 0;
  }

  total(): number {
    let n = 0;
    for (const c of this.byUser.values()) n += c;
    return n;
  }

  opened(userId: number): void {
    this.byUser.set(userId, this.of(userId) + 1);
  }

  closed(userId: number): void {
    const n = this.of(userId) - 1;
    if (n <= 0) this.byUser.delete(userId);
    else this.byUser.set(userId, n);
  }
}
