//! The waiting items: one slab, with the items threaded on FIFO lists.
//!
//! Every waiting item has a slot in one `Vec`. A slot freed by a pop or a
//! removal is reused by a later push, so the slab is as long as the most
//! items ever waiting at once, whatever keys they had.
//!
//! Each item is on exactly one [`List`]: its key's, or the unkeyed level of
//! its priority. The links live in the slots (a doubly linked list over
//! slot indices), so an item leaves its list in O(1) from anywhere in it,
//! which is what a waiter that gives up needs.

/// The end of a list, or a slot on none.
const NIL: usize = usize::MAX;

/// An empty slab keeps room for this many items; beyond it, the memory of a
/// burst is given back once nothing waits.
const SHRINK_ABOVE: usize = 4096;

/// Identifies one waiting item, to remove it before it starts.
///
/// A ticket outlives its item harmlessly: once the item has been popped or
/// removed, the ticket finds nothing, even if its slot holds another item
/// by then (every push has its own sequence number, of which a ticket keeps
/// the low 32 bits: so that it packs into 8 bytes, see [`pack`](Ticket::pack).
/// A ticket could only find the wrong item if its slot were reused by the
/// push 2³² pushes after its own while the ticket is still used; a pool
/// uses a ticket only while its job waits, or just after it was taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Ticket {
    slot: usize,
    seq: u32,
}

impl Ticket {
    fn new(slot: usize, seq: u64) -> Ticket {
        Ticket {
            slot,
            seq: seq as u32, // the low bits: see the type's docs
        }
    }

    /// The ticket in 8 bytes, never 0 (so that 0 can mean none); `None`
    /// if its slot is beyond 2³² − 2 (more items than any pool queues).
    pub(crate) fn pack(self) -> Option<std::num::NonZeroU64> {
        let slot = u32::try_from(self.slot.checked_add(1)?).ok()?;
        std::num::NonZeroU64::new(u64::from(slot) << 32 | u64::from(self.seq))
    }

    /// A ticket from [`pack`](Self::pack).
    pub(crate) fn unpack(packed: std::num::NonZeroU64) -> Ticket {
        let packed = packed.get();
        Ticket {
            slot: (packed >> 32) as usize - 1,
            seq: packed as u32,
        }
    }
}

/// One waiting item and what the rules need to know of it.
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// What the caller queued.
    pub(super) item: T,
    /// The index of its key's state (`keys.rs`), or [`LINK_NIL`] without a
    /// key (see [`key`](Entry::key)).
    key: u32,
    /// Its priority as submitted.
    pub(super) priority: i8,
    /// When it was pushed, in the caller's nanoseconds.
    pub(super) enqueued_at: u64,
    /// Its place in submission order: unique, increasing with every push.
    /// (Never 0: so that an `Option` of an entry needs no tag, and an
    /// entry of a pool's job fits one 64-byte cache line.)
    seq: std::num::NonZeroU64,
    /// The slots before and after it on its list, or [`LINK_NIL`]: `u32`,
    /// so that an entry with a pool's job fits one 64-byte cache line.
    prev: u32,
    next: u32,
}

impl<T> Entry<T> {
    /// Its place in submission order.
    #[inline]
    pub(super) fn seq(&self) -> u64 {
        self.seq.get()
    }

    /// The index of its key's state (`keys.rs`), or `None` without a key.
    #[inline]
    pub(super) fn key(&self) -> Option<usize> {
        (self.key != LINK_NIL).then_some(self.key as usize)
    }
}

/// The end of a list, in an entry's links; no key, in its key.
const LINK_NIL: u32 = u32::MAX;

/// A slot as an entry's link to it.
fn link(slot: usize) -> u32 {
    match slot {
        NIL => LINK_NIL,
        slot => u32::try_from(slot).expect("fewer than 2³² - 1 items wait"),
    }
}

/// An entry's link as a slot.
fn unlink_slot(link: u32) -> usize {
    match link {
        LINK_NIL => NIL,
        link => link as usize,
    }
}

/// A FIFO list of entries: its ends and its length. The links are in the
/// entries, so a `List` is only meaningful with the [`Entries`] it was
/// used with.
#[derive(Clone, Copy, Debug)]
pub(super) struct List {
    head: usize,
    tail: usize,
    len: usize,
}

impl List {
    /// A list with nothing on it.
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    /// How many entries are on it.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is on it.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The slab of waiting items.
#[derive(Debug)]
pub(super) struct Entries<T> {
    slots: Vec<Option<Entry<T>>>,
    /// Slots that are `None`, to be reused.
    free: Vec<usize>,
    /// Slots that are `Some`.
    len: usize,
}

impl<T> Entries<T> {
    /// No items.
    pub(super) fn new() -> Entries<T> {
        Entries {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// How many items are waiting.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The waiting items, in slot order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten().map(|entry| &entry.item)
    }

    /// The waiting items, in slot order, to change them in place.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten().map(|entry| &mut entry.item)
    }

    /// Stores an item at the back of `list`.
    #[inline]
    pub(super) fn push_back(
        &mut self,
        list: &mut List,
        item: T,
        key: Option<usize>,
        priority: i8,
        enqueued_at: u64,
        seq: u64,
    ) -> Ticket {
        let key = key.map_or(LINK_NIL, |key| {
            u32::try_from(key)
                .ok()
                .filter(|&key| key != LINK_NIL)
                .expect("fewer than 2³² - 1 keys in use")
        });
        let entry = Entry {
            item,
            key,
            priority,
            enqueued_at,
            seq: std::num::NonZeroU64::new(seq).expect("sequence numbers start at 1"),
            prev: link(list.tail),
            next: LINK_NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot].is_none(), "a free slot is empty");
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        match list.tail {
            NIL => list.head = slot,
            tail => self.at_mut(tail).next = link(slot),
        }
        list.tail = slot;
        list.len += 1;
        self.len += 1;
        Ticket::new(slot, seq)
    }

    /// The oldest entry on `list`.
    #[inline]
    pub(super) fn front(&self, list: &List) -> Option<&Entry<T>> {
        (list.head != NIL).then(|| self.at(list.head))
    }

    /// The ticket of the oldest entry on `list`.
    #[inline]
    pub(super) fn front_ticket(&self, list: &List) -> Option<Ticket> {
        self.front(list)
            .map(|entry| Ticket::new(list.head, entry.seq()))
    }

    /// The entry `ticket` names, if it is still waiting.
    #[inline]
    pub(super) fn get(&self, ticket: Ticket) -> Option<&Entry<T>> {
        match self.slots.get(ticket.slot) {
            Some(Some(entry)) if entry.seq() as u32 == ticket.seq => Some(entry),
            _ => None,
        }
    }

    /// The item `ticket` names, if it is still waiting, to change it in
    /// place.
    pub(super) fn get_mut(&mut self, ticket: Ticket) -> Option<&mut T> {
        match self.slots.get_mut(ticket.slot) {
            Some(Some(entry)) if entry.seq() as u32 == ticket.seq => Some(&mut entry.item),
            _ => None,
        }
    }

    /// Takes the oldest entry off `list`, and out of the slab.
    #[inline]
    pub(super) fn pop_front(&mut self, list: &mut List) -> Option<Entry<T>> {
        let ticket = self.front_ticket(list)?;
        Some(self.unlink(list, ticket))
    }

    /// Takes the entry `ticket` names off `list`, and out of the slab.
    ///
    /// # Panics
    /// If `ticket` names no waiting entry (check with [`get`](Self::get)).
    /// Taking it off a list it is not on corrupts both lists.
    #[inline]
    pub(super) fn unlink(&mut self, list: &mut List, ticket: Ticket) -> Entry<T> {
        assert!(
            self.get(ticket).is_some(),
            "unlink of an entry that is not waiting"
        );
        let entry = self.slots[ticket.slot].take().expect("checked just above");
        match unlink_slot(entry.prev) {
            NIL => list.head = unlink_slot(entry.next),
            prev => self.at_mut(prev).next = entry.next,
        }
        match unlink_slot(entry.next) {
            NIL => list.tail = unlink_slot(entry.prev),
            next => self.at_mut(next).prev = entry.prev,
        }
        list.len -= 1;
        self.len -= 1;
        self.free.push(ticket.slot);
        if self.len == 0 {
            // Nothing waits: start the slab afresh (amortised: it took as
            // many pushes as it has slots), and give the memory of a large
            // past burst back.
            self.slots.clear();
            self.free.clear();
            if self.slots.capacity() > SHRINK_ABOVE {
                self.slots.shrink_to_fit();
                self.free.shrink_to_fit();
            }
        }
        entry
    }

    /// The tickets of every waiting item, in no particular order.
    pub(super) fn tickets(&self) -> impl Iterator<Item = Ticket> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, entry)| entry.as_ref().map(|entry| Ticket::new(slot, entry.seq())))
    }

    #[inline]
    fn at(&self, slot: usize) -> &Entry<T> {
        self.slots[slot]
            .as_ref()
            .expect("a list links only occupied slots")
    }

    #[inline]
    fn at_mut(&mut self, slot: usize) -> &mut Entry<T> {
        self.slots[slot]
            .as_mut()
            .expect("a list links only occupied slots")
    }
}

#[cfg(all(test, not(taskpool_loom)))]
mod tests {
    use super::*;

    /// An entry holding a pool's job is one cache line (the slab is walked
    /// under the pool's lock): the job 32 bytes, the rest 32, and no tag
    /// for the `Option` of a slot.
    #[test]
    fn an_entry_of_a_pool_job_is_64_bytes() {
        assert_eq!(std::mem::size_of::<crate::job::QueuedJob>(), 32);
        assert_eq!(
            std::mem::size_of::<Option<Entry<crate::job::QueuedJob>>>(),
            64
        );
    }
}
