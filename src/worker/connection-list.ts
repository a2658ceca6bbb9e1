// The open connections of a service, as a doubly linked list whose links live in
// the connections themselves. Removing a member clears its links.
//
// With a Set in its place, V8 moved whole connections (sockets, stream
// state, pump) into the old generation under a new connection per request. In a
// worker reduced to accept, connect and pump, `--trace-gc-nvp` counted 1,192
// bytes promoted per connection with the Set and 432 with this list, over 3 s of
// `wrk -t1 -c64 -H "Connection: close"`. Each promoted byte costs a copy and,
// later, part of a full collection.

/** The links of a ConnectionList member. A new member starts with `listed: false`, and only the list changes them after that. */
export interface ListedConnection<T> {
  previous: T | undefined;
  next: T | undefined;
  listed: boolean;
}

export class ConnectionList<T extends ListedConnection<T>> {
  private head: T | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(member: T): void {
    if (member.listed) return;
    member.listed = true;
    member.previous = undefined;
    member.next = this.head;
    if (this.head !== undefined) this.head.previous = member;
    this.head = member;
    this.count++;
  }

  /** Removes `member`, and returns false when it was not in the list. */
  delete(member: T): boolean {
    if (!member.listed) return false;
    if (member.previous === undefined) this.head = member.next;
    else member.previous.next = member.next;
    if (member.next !== undefined) member.next.previous = member.previous;
    member.previous = undefined;
    member.next = undefined;
    member.listed = false;
    this.count--;
    return true;
  }

  /** Returns the members in an array, so that a caller can remove members while it walks them. */
  toArray(): T[] {
    const members: T[] = [];
    for (let member = this.head; member !== undefined; member = member.next) members.push(member);
    return members;
  }
}
