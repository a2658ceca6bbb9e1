// The open connections of a service, as a doubly linked list whose links live in
// the connections themselves.
//
// A Set did the same job, but under a new connection per request V8 then moved
// whole connections (sockets, stream state, pump) into the old generation. In a
// worker reduced to accept, connect and pump, the Set raised what V8 promoted
// from 432 to 1,192 bytes per connection (`--trace-gc-nvp` over 3 s of
// `wrk -t1 -c64 -H "Connection: close"`). Each promoted byte costs a copy now
// and a full collection later. Removing a member clears its links, so the list
// keeps no reference to a closed connection.

/** A list member; the fields belong to the list. */
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

  /** Removes `member`; returns false when it was not in the list. */
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

  /** Returns the members in an array, so a caller may remove members while it goes through them. */
  toArray(): T[] {
    const members: T[] = [];
    for (let member = this.head; member !== undefined; member = member.next) members.push(member);
    return members;
  }
}
